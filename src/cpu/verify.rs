//! Every candidate a device reports is hashed again here, with sha2, before it counts.
//!
//! Devices pre-filter on the top 32 bits of the hash (`candidate_mask`), so a candidate falls in
//! one of three classes: a hit (the full hash meets the target), a near miss (the top word
//! passes the filter but the hash misses the target: expected, dropped silently), or a hardware
//! error (the device claimed a hash that it does not have, a duplicate, a nonce outside the
//! range it was given, or a version the work does not have).

use crate::work::target::{candidate_mask, passes_filter};
use crate::work::{BlockHash, Candidate, Hit, NonceRange, Work};

/// A candidate that the device should never have reported; `hash` is `None` when its version
/// index is not one of the work's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardwareError {
    pub candidate: Candidate,
    pub hash: Option<BlockHash>,
}

impl std::fmt::Display for HardwareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Candidate { nonce, version } = self.candidate;
        match self.hash {
            Some(hash) => write!(f, "nonce {nonce:08x} (version #{version}) hashes to {hash}"),
            None => write!(f, "nonce {nonce:08x} reported with version #{version}, which the work does not have"),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Verified hits, in nonce order, then version order.
    pub hits: Vec<Hit>,
    pub near_misses: u64,
    pub hw_errors: Vec<HardwareError>,
}

pub fn verify(work: &Work, range: NonceRange, candidates: &[Candidate]) -> Verified {
    let mask = candidate_mask(&work.target);
    let mut sorted = candidates.to_vec();
    sorted.sort_unstable();
    let mut out = Verified::default();
    for (i, &candidate) in sorted.iter().enumerate() {
        let header = work.header_of(candidate);
        let hash = header.map(|h| h.block_hash());
        let duplicate = i > 0 && sorted[i - 1] == candidate;
        match (header, hash) {
            (Some(header), Some(hash))
                if !duplicate && range.contains(candidate.nonce) && passes_filter(hash.as_ref(), mask) =>
            {
                if work.target.is_met_by(hash) {
                    out.hits.push(Hit { nonce: candidate.nonce, version: header.version.to_consensus() as u32, hash });
                } else {
                    out.near_misses += 1;
                }
            }
            _ => out.hw_errors.push(HardwareError { candidate, hash }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::{Difficulty, Target, header_from_hex};

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    #[test]
    fn sorts_candidates_into_hits_near_misses_and_errors() {
        let header = header_from_hex(GENESIS).unwrap();
        let work = Work::block(header).unwrap();
        let range = NonceRange::new(0x7c2b_ac00, 0x100).unwrap();
        let real = 0x7c2b_ac1d;
        let candidates = [real, real, 0x7c2b_ac00, 5].map(Candidate::first);
        let v = verify(&work, range, &candidates);
        assert_eq!(v.hits.len(), 1);
        assert_eq!((v.hits[0].nonce, v.hits[0].version), (real, 1));
        assert_eq!(v.hits[0].hash.to_string(), "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
        // The duplicate, a nonce whose hash fails the top word, and one outside the range.
        let mut bad: Vec<u32> = v.hw_errors.iter().map(|e| e.candidate.nonce).collect();
        bad.sort();
        assert_eq!(bad, [5, 0x7c2b_ac00, real]);
        assert_eq!(v.near_misses, 0);
    }

    /// The genesis block as the second of two versions: its nonce is a hit there and a hardware
    /// error at a version the work does not have; the hit carries the version hashed.
    #[test]
    fn a_hit_carries_its_version() {
        let genesis = header_from_hex(GENESIS).unwrap();
        let target = Work::block(genesis).unwrap().target;
        let work = Work::with_versions(genesis, target, &[0x2000_0000, 1]);
        let range = NonceRange::new(genesis.nonce, 1).unwrap();
        let candidates = [0, 1, 2].map(|version| Candidate { nonce: genesis.nonce, version });
        let v = verify(&work, range, &candidates);
        assert_eq!(v.hits.len(), 1);
        assert_eq!((v.hits[0].nonce, v.hits[0].version, v.hits[0].hash), (genesis.nonce, 1, genesis.block_hash()));
        let errors: Vec<_> = v.hw_errors.iter().map(|e| (e.candidate.version, e.hash.is_some())).collect();
        assert_eq!(errors, [(0, true), (2, false)]);
    }

    #[test]
    fn a_top_word_match_above_the_target_is_a_near_miss() {
        let header = header_from_hex(GENESIS).unwrap();
        // A target with the genesis hash's top word but lower bits all zero.
        let hash = header.block_hash();
        let mut le = [0u8; 32];
        le[28..].copy_from_slice(&AsRef::<[u8; 32]>::as_ref(&hash)[28..]);
        let work = Work::new(header, Target::from_le_bytes(le));
        let v = verify(&work, NonceRange::new(header.nonce, 1).unwrap(), &[Candidate::first(header.nonce)]);
        assert_eq!((v.hits.len(), v.near_misses, v.hw_errors.len()), (0, 1, 0));
        // A hash above the target whose top word is still below the power of two just above
        // the target's passes the kernel's filter: a near miss as well, not a hardware error.
        let nonce = 0;
        let top = u32::from_le_bytes(
            AsRef::<[u8; 32]>::as_ref(&Work::new(header, Target::ZERO).hash(Candidate::first(nonce)).unwrap())[28..]
                .try_into()
                .unwrap(),
        );
        assert!(!top.is_power_of_two(), "pick another nonce");
        let mut le = [0u8; 32];
        le[28..].copy_from_slice(&(1u32 << top.ilog2()).to_le_bytes());
        let work = Work::new(header, Target::from_le_bytes(le));
        let v = verify(&work, NonceRange::new(nonce, 1).unwrap(), &[Candidate::first(nonce)]);
        assert_eq!((v.hits.len(), v.near_misses, v.hw_errors.len()), (0, 1, 0));
        // And with difficulty 1 it is a hit.
        let work = Work::new(header, Difficulty::ONE.to_target());
        let v = verify(&work, NonceRange::new(header.nonce, 1).unwrap(), &[Candidate::first(header.nonce)]);
        assert_eq!(v.hits.len(), 1);
    }
}
