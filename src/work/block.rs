//! From a node's block template to the block itself: the coinbase that pays the miner, the job
//! the devices sweep, and the full block once a nonce is found. Pure code over rust-bitcoin's
//! types: scripts, transactions, merkle roots, witness commitments and serialization are its.
//!
//! The template is cut into a Stratum-shaped `Job` (coinb1 ‖ extranonce ‖ coinb2 plus a merkle
//! branch), as cgminer's and ckpool's GBT paths do, so that solo and pool work go through one
//! scheduler: each work unit varies the extranonce at the end of the coinbase's scriptSig.

use bitcoin::blockdata::block::{Block, Header, Version};
use bitcoin::blockdata::locktime::absolute::LockTime;
use bitcoin::blockdata::script::{Builder, PushBytesBuf};
use bitcoin::blockdata::transaction::{self, OutPoint, Sequence, Transaction, TxIn, TxOut};
use bitcoin::consensus::encode;
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{Amount, BlockHash, CompactTarget, ScriptBuf, Witness};

use super::VersionMask;
use super::job::Job;

/// Bytes of the extranonce in the coinbase's scriptSig: 2^64 work units per template.
pub(crate) const EXTRANONCE_SIZE: usize = 8;

/// Consensus limit on a coinbase scriptSig.
pub(crate) const MAX_COINBASE_SCRIPT: usize = 100;

/// The coinbase's witness reserved value (BIP141): all zeros, as every miner uses.
pub(crate) const WITNESS_RESERVED_VALUE: [u8; 32] = [0; 32];

/// What the template says about the block to build, in rust-bitcoin's types.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockTemplate {
    pub version: i32,
    pub prev_hash: BlockHash,
    pub bits: CompactTarget,
    pub height: u64,
    pub coinbase_value: Amount,
    /// Bytes the node wants in the coinbase's scriptSig (`coinbaseaux`), in key order.
    pub coinbase_aux: Vec<u8>,
    /// The transactions after the coinbase, in the template's order.
    pub transactions: Vec<Transaction>,
    /// The node's witness commitment output script, when it sends one.
    pub witness_commitment: Option<ScriptBuf>,
    pub cur_time: u32,
    pub min_time: u32,
    /// Whether the template lets the miner change the time (`mutable` has `time`).
    pub time_mutable: bool,
    pub size_limit: Option<u64>,
    pub weight_limit: Option<u64>,
    pub sigop_limit: Option<u64>,
    /// Sigops the node counted in the template's transactions.
    pub sigops: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlockError {
    #[error(
        "the coinbase scriptSig would be {0} bytes, over the {MAX_COINBASE_SCRIPT}-byte limit (coinbaseaux too long?)"
    )]
    ScriptSigTooLong(usize),
    #[error(
        "the template's witness commitment {node} does not match the one computed from its transactions ({ours}): the template is inconsistent"
    )]
    CommitmentMismatch { node: String, ours: String },
    #[error("the block would exceed the template's {what} limit ({value} > {limit})")]
    OverLimit { what: &'static str, value: u64, limit: u64 },
    #[error("the coinbase does not parse back: {0}")]
    Coinbase(String),
    #[error("the assembled block fails its own check: {0}")]
    Check(&'static str),
}

/// A template turned into work: the job the devices sweep and what it takes to rebuild the
/// block from a found nonce.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockPlan {
    pub template: BlockTemplate,
    /// Coinbase (non-witness serialization) up to the extranonce, and after it.
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    pub merkle_branch: Vec<[u8; 32]>,
    /// Whether the coinbase carries a witness commitment (and so the reserved value).
    pub segwit: bool,
}

/// Merkle branch of the transaction at index 0 (the coinbase) over the other txids: the
/// sibling hashes from the bottom level up, as Stratum's `mining.notify` carries them.
pub(crate) fn coinbase_merkle_branch(txids: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut branch = Vec::new();
    let mut level = txids.to_vec();
    while let Some(&sibling) = level.first() {
        branch.push(sibling);
        level = level[1..]
            .chunks(2)
            .map(|pair| {
                let mut both = [0u8; 64];
                both[..32].copy_from_slice(&pair[0]);
                both[32..].copy_from_slice(pair.get(1).unwrap_or(&pair[0]));
                sha256d::Hash::hash(&both).to_byte_array()
            })
            .collect();
    }
    branch
}

impl BlockPlan {
    /// Builds the coinbase paying `coinbase_value` to `payout`, tagged with `tag`, with room for
    /// the extranonce at the end of its scriptSig, and checks the template's limits.
    pub fn new(template: BlockTemplate, payout: ScriptBuf, tag: &[u8]) -> Result<Self, BlockError> {
        let txids: Vec<[u8; 32]> = template.transactions.iter().map(|tx| tx.compute_txid().to_byte_array()).collect();
        let has_witness = template.transactions.iter().any(|tx| tx.input.iter().any(|i| !i.witness.is_empty()));
        let commitment = match &template.witness_commitment {
            Some(node) => {
                let ours = witness_commitment_script(&template.transactions);
                if *node != ours {
                    return Err(BlockError::CommitmentMismatch {
                        node: node.to_hex_string(),
                        ours: ours.to_hex_string(),
                    });
                }
                Some(ours)
            }
            // An older node: commit only when some transaction has witness data.
            None => has_witness.then(|| witness_commitment_script(&template.transactions)),
        };

        // BIP34 height first, then the node's aux bytes, our tag, and the extranonce last.
        let mut script = Builder::new().push_int(template.height as i64);
        for data in [&template.coinbase_aux[..], tag] {
            if !data.is_empty() {
                let push =
                    PushBytesBuf::try_from(data.to_vec()).map_err(|_| BlockError::ScriptSigTooLong(data.len()))?;
                script = script.push_slice(push);
            }
        }
        let script_sig = script.push_slice([0u8; EXTRANONCE_SIZE]).into_script();
        if script_sig.len() > MAX_COINBASE_SCRIPT {
            return Err(BlockError::ScriptSigTooLong(script_sig.len()));
        }
        let mut output = vec![TxOut { value: template.coinbase_value, script_pubkey: payout }];
        if let Some(script_pubkey) = commitment.clone() {
            output.push(TxOut { value: Amount::ZERO, script_pubkey });
        }
        let coinbase = Transaction {
            version: transaction::Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output,
        };
        let bytes = encode::serialize(&coinbase);
        // version, one input, the null outpoint, the script length (one byte: ≤ 100), the script.
        let script_end = 4 + 1 + 36 + 1 + coinbase.input[0].script_sig.len();
        let plan = BlockPlan {
            coinb1: bytes[..script_end - EXTRANONCE_SIZE].to_vec(),
            coinb2: bytes[script_end..].to_vec(),
            merkle_branch: coinbase_merkle_branch(&txids),
            segwit: commitment.is_some(),
            template,
        };
        plan.check_limits(&coinbase)?;
        Ok(plan)
    }

    fn check_limits(&self, coinbase: &Transaction) -> Result<(), BlockError> {
        let t = &self.template;
        // Counted as Block::total_size and Block::weight count, without copying the block.
        let txs = || std::iter::once(coinbase).chain(&t.transactions);
        let framing = 80 + encode::VarInt(txs().count() as u64).size() as u64;
        let size = framing + txs().map(|tx| tx.total_size() as u64).sum::<u64>();
        let weight = 4 * framing + txs().map(|tx| tx.weight().to_wu()).sum::<u64>();
        // Legacy sigops of our outputs; four-fold where weight counts (segwit rules).
        let scale = if t.weight_limit.is_some() { 4 } else { 1 };
        let sigops = t.sigops
            + coinbase.output.iter().map(|o| o.script_pubkey.count_sigops_legacy() as u64).sum::<u64>() * scale;
        for (what, value, limit) in
            [("size", size, t.size_limit), ("weight", weight, t.weight_limit), ("sigop", sigops, t.sigop_limit)]
        {
            if let Some(limit) = limit {
                if value > limit {
                    return Err(BlockError::OverLimit { what, value, limit });
                }
            }
        }
        Ok(())
    }

    /// The job the scheduler hands out: extranonce1 is empty and the extranonce is all of
    /// extranonce2.
    pub fn job(&self, id: super::JobId, time: u32) -> Job {
        Job {
            id,
            prev_hash: self.template.prev_hash,
            coinb1: self.coinb1.clone(),
            coinb2: self.coinb2.clone(),
            merkle_branch: self.merkle_branch.clone(),
            version: self.template.version as u32,
            bits: self.template.bits,
            time,
            clean: true,
            root: None,
        }
    }

    /// The version bits a miner may roll in this template's blocks: BIP320's general-purpose
    /// bits where the version is a BIP9 one (top bits 001), as ckpool's solo mode offers its
    /// miners (its `version_mask`, 1fffe000 by default), less any the node set (a deployment's
    /// signal stays as the node wrote it); none in an older version.
    pub fn version_mask(&self) -> VersionMask {
        let version = self.template.version as u32;
        if version >> 29 == 0b001 { VersionMask(VersionMask::BIP320.0 & !version) } else { VersionMask::NONE }
    }

    /// The header for `extranonce`, `time` and `version` (the template's, with rolled bits),
    /// nonce set.
    pub fn header(&self, extranonce: &[u8], time: u32, version: u32, nonce: u32) -> Header {
        let mut header = self.job("".into(), time).header(&[], extranonce, time, version);
        header.nonce = nonce;
        header
    }

    /// The full block for a found (extranonce, time, version, nonce), checked as a node would:
    /// merkle root, witness commitment and, where it applies, the BIP34 height; and the version
    /// differs from the template's only in the bits `version_mask` allows.
    pub fn block(&self, extranonce: &[u8], time: u32, version: u32, nonce: u32) -> Result<Block, BlockError> {
        if (version ^ self.template.version as u32) & !self.version_mask().0 != 0 {
            return Err(BlockError::Check("version bits outside BIP320's"));
        }
        let bytes = [&self.coinb1[..], extranonce, &self.coinb2[..]].concat();
        let mut coinbase: Transaction = encode::deserialize(&bytes).map_err(|e| BlockError::Coinbase(e.to_string()))?;
        if self.segwit {
            coinbase.input[0].witness = Witness::from_slice(&[WITNESS_RESERVED_VALUE]);
        }
        let mut txdata = Vec::with_capacity(1 + self.template.transactions.len());
        txdata.push(coinbase);
        txdata.extend(self.template.transactions.iter().cloned());
        let block = Block { header: self.header(extranonce, time, version, nonce), txdata };
        if !block.check_merkle_root() {
            return Err(BlockError::Check("merkle root"));
        }
        if self.segwit && !block.check_witness_commitment() {
            return Err(BlockError::Check("witness commitment"));
        }
        // rust-bitcoin reads heights pushed as data; heights 1-16 are OP_1..OP_16 (as Core writes them).
        if self.template.height > 16 && block.header.version >= Version::TWO {
            match block.bip34_block_height() {
                Ok(h) if h == self.template.height => {}
                _ => return Err(BlockError::Check("BIP34 height")),
            }
        }
        Ok(block)
    }
}

/// The witness commitment output script over `transactions` with the coinbase's wtxid taken as
/// zero (BIP141), for the all-zero reserved value.
fn witness_commitment_script(transactions: &[Transaction]) -> ScriptBuf {
    let wtxids = std::iter::once(bitcoin::Wtxid::all_zeros())
        .chain(transactions.iter().map(|tx| tx.compute_wtxid()))
        .map(|w| w.to_raw_hash());
    let root = bitcoin::merkle_tree::calculate_root(wtxids).map(bitcoin::WitnessMerkleNode::from_raw_hash);
    let commitment = Block::compute_witness_commitment(&root.expect("at least the coinbase"), &WITNESS_RESERVED_VALUE);
    let mut data = [0u8; 36];
    data[..4].copy_from_slice(&[0xaa, 0x21, 0xa9, 0xed]);
    data[4..].copy_from_slice(commitment.as_byte_array());
    Builder::new().push_opcode(bitcoin::opcodes::all::OP_RETURN).push_slice(data).into_script()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_branch_pairs_and_duplicates_the_odd_one() {
        let h = |b: u8| [b; 32];
        let pair = |a: [u8; 32], b: [u8; 32]| sha256d::Hash::hash(&[a, b].concat()).to_byte_array();
        assert_eq!(coinbase_merkle_branch(&[]), Vec::<[u8; 32]>::new());
        assert_eq!(coinbase_merkle_branch(&[h(1)]), vec![h(1)]);
        // [cb, 1, 2]: branch 1, then H(2,2).
        assert_eq!(coinbase_merkle_branch(&[h(1), h(2)]), vec![h(1), pair(h(2), h(2))]);
        // [cb, 1, 2, 3, 4]: 1, H(2,3), H(H(4,4), H(4,4)).
        let h44 = pair(h(4), h(4));
        assert_eq!(coinbase_merkle_branch(&[h(1), h(2), h(3), h(4)]), vec![h(1), pair(h(2), h(3)), pair(h44, h44)]);
    }
}
