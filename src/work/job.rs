//! A pool job as Stratum v1's `mining.notify` describes it, and the headers it yields.
//! Pure code: the coinbase is coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, the merkle root folds
//! the coinbase txid with the branch, and the header takes the notify's fields.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::hex::DisplayHex;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};

use super::{JobId, hex_decode};

/// `mining.notify`, decoded. Field order and encodings are the wire's; see `from_notify_hex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub prev_hash: BlockHash,
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    /// Merkle branch hashes in internal byte order, from the coinbase's sibling upwards.
    pub merkle_branch: Vec<[u8; 32]>,
    pub version: u32,
    pub bits: CompactTarget,
    pub time: u32,
    pub clean: bool,
    /// Header-only work (a Stratum V2 standard channel): the pool gave the merkle root itself,
    /// and the coinbase fields and branch are empty.
    pub root: Option<TxMerkleNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {field} in mining.notify: {reason}")]
pub struct JobError {
    pub field: &'static str,
    pub reason: String,
}

fn err(field: &'static str, reason: impl ToString) -> JobError {
    JobError { field, reason: reason.to_string() }
}

fn hex_u32(field: &'static str, s: &str) -> Result<u32, JobError> {
    super::hex_u32(s).map_err(|e| err(field, e))
}

fn hex_32(field: &'static str, s: &str) -> Result<[u8; 32], JobError> {
    let bytes = hex_decode(s).map_err(|e| err(field, e))?;
    bytes.try_into().map_err(|b: Vec<u8>| err(field, format!("expected 32 bytes, got {}", b.len())))
}

impl Job {
    /// Builds a job from the notify's hex strings. The previous-block hash arrives as eight
    /// 4-byte words, each byte-swapped against the header's order; version, nbits and ntime are
    /// big-endian hex of the integers; branch hashes are in the header's (internal) order.
    #[allow(clippy::too_many_arguments)]
    pub fn from_notify_hex(
        id: &str,
        prev_hash: &str,
        coinb1: &str,
        coinb2: &str,
        merkle_branch: &[&str],
        version: &str,
        bits: &str,
        time: &str,
        clean: bool,
    ) -> Result<Job, JobError> {
        let mut prev = hex_32("prevhash", prev_hash)?;
        for word in prev.chunks_exact_mut(4) {
            word.reverse();
        }
        Ok(Job {
            id: JobId::from(id),
            prev_hash: BlockHash::from_byte_array(prev),
            coinb1: hex_decode(coinb1).map_err(|e| err("coinb1", e))?,
            coinb2: hex_decode(coinb2).map_err(|e| err("coinb2", e))?,
            merkle_branch: merkle_branch.iter().map(|h| hex_32("merkle_branch", h)).collect::<Result<_, _>>()?,
            version: hex_u32("version", version)?,
            bits: CompactTarget::from_consensus(hex_u32("nbits", bits)?),
            time: hex_u32("ntime", time)?,
            clean,
            root: None,
        })
    }

    /// The notify's prevhash field for this job's previous-block hash (the inverse of the
    /// word swap above); the embedded pool sends it.
    pub(crate) fn prev_hash_hex(&self) -> String {
        let mut bytes = self.prev_hash.to_byte_array();
        for word in bytes.chunks_exact_mut(4) {
            word.reverse();
        }
        bytes.to_lower_hex_string()
    }

    pub fn coinbase(&self, extranonce1: &[u8], extranonce2: &[u8]) -> Vec<u8> {
        [&self.coinb1[..], extranonce1, extranonce2, &self.coinb2[..]].concat()
    }

    pub fn merkle_root(&self, extranonce1: &[u8], extranonce2: &[u8]) -> TxMerkleNode {
        if let Some(root) = self.root {
            return root;
        }
        let mut node = sha256d::Hash::hash(&self.coinbase(extranonce1, extranonce2)).to_byte_array();
        for sibling in &self.merkle_branch {
            node = sha256d::Hash::hash(&[&node[..], &sibling[..]].concat()).to_byte_array();
        }
        TxMerkleNode::from_byte_array(node)
    }

    /// The header for one extranonce2, ntime and version; the nonce is left zero.
    pub fn header(&self, extranonce1: &[u8], extranonce2: &[u8], time: u32, version: u32) -> Header {
        Header {
            version: Version::from_consensus(version as i32),
            prev_blockhash: self.prev_hash,
            merkle_root: self.merkle_root(extranonce1, extranonce2),
            time,
            bits: self.bits,
            nonce: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of slush's Stratum documentation (mining.notify job "bf", extranonce1
    /// 08000002, and the share submitted as ["slush.miner1","bf","00000001","504e86ed","b2957c02"]).
    fn slush_job() -> Job {
        Job::from_notify_hex(
            "bf",
            "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008",
            "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",
            &[],
            "00000002",
            "1c2ac4af",
            "504e86b9",
            false,
        )
        .unwrap()
    }

    #[test]
    fn slush_documentation_example_byte_for_byte() {
        let job = slush_job();
        let en1 = hex_decode("08000002").unwrap();
        let en2 = hex_decode("00000001").unwrap();
        let mut header = job.header(&en1, &en2, 0x504e86ed, job.version);
        header.nonce = 0xb2957c02;
        let bytes = crate::work::header_bytes(&header);
        assert_eq!(
            bytes.to_lower_hex_string(),
            "02000000f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b440000000032414daa9ddac879fd2c62839b9ba710a3546363a5f5e22915d90dc3b1699deced864e50afc42a1c027c95b2"
        );
        assert_eq!(job.prev_hash_hex(), "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000");
        assert_eq!(header.block_hash().to_string(), "000000002076870fe65a2b6eeed84fa892c0db924f1482243a6247d931dcab32");
    }

    #[test]
    fn merkle_branch_folds_left_to_right() {
        let mut job = slush_job();
        let a = [1u8; 32];
        job.merkle_branch = vec![a];
        let coinbase_txid = sha256d::Hash::hash(&job.coinbase(b"x", b"y")).to_byte_array();
        let expected = sha256d::Hash::hash(&[&coinbase_txid[..], &a[..]].concat()).to_byte_array();
        assert_eq!(job.merkle_root(b"x", b"y").to_byte_array(), expected);
    }

    #[test]
    fn malformed_fields_name_themselves() {
        let bad = |prev: &str, version: &str| {
            Job::from_notify_hex("1", prev, "", "", &[], version, "1d00ffff", "504e86b9", true).unwrap_err().field
        };
        assert_eq!(bad("00", "00000002"), "prevhash");
        assert_eq!(bad(&"0".repeat(64), "2"), "version");
        assert_eq!(bad(&"zz".repeat(32), "00000002"), "prevhash");
    }
}
