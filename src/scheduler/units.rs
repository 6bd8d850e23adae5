//! Work units: each an (extranonce2, K versions, ntime) triple of the newest job, cut into
//! pieces for the devices; and the ranges a failed device leaves, which the others sweep
//! before anything new.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::source::SourceWork;
use crate::work::target::candidate_mask;
use crate::work::{Extranonce1, Extranonce2, NonceRange, Work};

/// Candidates a piece is expected to hold, at most. Pieces of an easy target (regtest's, where
/// every other hash is a block, or a tiny pool difficulty) are cut smaller, so that a device's
/// candidate buffer seldom overflows into re-sweeps and the source is not flooded.
const EXPECTED_CANDIDATES: u64 = 1024;

/// The nonces of one piece of `work`: the device's preferred size, or fewer for an easy target,
/// counting each nonce's hashes in every version.
pub(super) fn piece_size(preferred: u64, work: &Work) -> u64 {
    // A hash is a candidate when its top word has no bit of the mask set.
    let per_candidate = (1u64 << 32) / (u64::from(!candidate_mask(&work.target)) + 1);
    let versions = work.versions().len() as u64;
    preferred.min((EXPECTED_CANDIDATES * per_candidate / versions).max(256))
}

/// Hands out work units, each an (extranonce2, K versions, ntime) triple, from one counter per
/// extranonce1. With version rolling, up to 2^16 versions inside the mask come before the next
/// extranonce2, K at a time (fewer when the mask has fewer); once the extranonce2 space is
/// spent, ntime moves on by a second, as far as the source allows (header-only work has no
/// extranonce2 at all). The counter does not start over
/// on a new job: a pool may send the same coinbase again under a new job id (a difficulty
/// change), and fresh units keep that space from being swept twice.
#[derive(Debug, Default)]
pub(super) struct Extranonces {
    state: Mutex<(Extranonce1, u64)>, // extranonce1, next unit
}

/// Spreads the low bits of `value` over the set bits of `mask`, lowest first.
fn deposit(mut value: u32, mask: u32) -> u32 {
    let mut out = 0;
    let mut bits = mask;
    while bits != 0 && value != 0 {
        let lowest = bits & bits.wrapping_neg();
        if value & 1 == 1 {
            out |= lowest;
        }
        value >>= 1;
        bits &= bits - 1;
    }
    out
}

/// One unit's place in the job's search space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Roll {
    pub(super) extranonce2: Extranonce2,
    /// The versions hashed with each nonce (one without rolling).
    pub(super) versions: Vec<u32>,
    pub(super) time: u32,
}

impl Extranonces {
    /// The next unit of `versions` versions (a power of two, at most what the mask allows).
    pub(super) fn next(&self, work: &SourceWork, versions: u32) -> Option<Roll> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 != work.extranonce1 {
            *state = (work.extranonce1.clone(), 0);
        }
        let roll_bits = work.version_mask.0.count_ones().min(16);
        let k = u64::from(versions.max(1).next_power_of_two()).min(1 << roll_bits);
        // Devices with another K share the counter: a unit starts at a multiple of its K, so
        // that its versions never straddle two extranonce2s. What is skipped is never swept.
        let unit = state.1.next_multiple_of(k);
        let roll = (unit & ((1 << roll_bits) - 1)) as u32;
        let versions = (roll..roll + k as u32)
            .map(|r| work.version_mask.apply(work.job.version, deposit(r, work.version_mask.0)))
            .collect();
        let value = unit >> roll_bits;
        let size = work.extranonce2_size.min(8);
        let (value, seconds) =
            if size < 8 { (value & ((1 << (8 * size)) - 1), value >> (8 * size)) } else { (value, 0) };
        if seconds > u64::from(work.time_roll) {
            return None; // the space is spent: wait for a new job or extranonce1
        }
        state.1 = unit + k;
        let mut extranonce2 = vec![0u8; work.extranonce2_size];
        let n = extranonce2.len();
        extranonce2[n - size..].copy_from_slice(&value.to_be_bytes()[8 - size..]);
        Some(Roll { extranonce2: Extranonce2(extranonce2), versions, time: work.job.time.wrapping_add(seconds as u32) })
    }
}

/// One unit being swept: its work and what is left of its nonce range.
#[derive(Clone)]
pub(super) struct Unit {
    pub(super) source_work: Arc<SourceWork>,
    pub(super) roll: Roll,
    pub(super) work: Work,
    pub(super) rest: NonceRange,
}

/// Ranges that a failed device had been given and did not answer, and the rest of the unit
/// it was sweeping: the other devices take their pieces from here first, so that no range of
/// the job is skipped, and a range is credited only to the device that answers it.
#[derive(Default)]
pub(super) struct Orphans(Mutex<VecDeque<(Arc<Unit>, NonceRange)>>);

impl Orphans {
    pub(super) fn give(&self, unit: Arc<Unit>, range: NonceRange) {
        if range.count > 0 {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push_back((unit, range));
        }
    }

    /// A piece of at most `size(unit)` nonces of an orphan of work `generation` (those of
    /// older jobs are dropped, as a device drops its own unit on a new job).
    pub(super) fn take(&self, generation: u64, size: impl Fn(&Unit) -> u64) -> Option<(Arc<Unit>, NonceRange)> {
        let mut orphans = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((unit, range)) = orphans.pop_front() {
            if unit.source_work.generation != generation {
                continue;
            }
            let (piece, rest) = range.split_at(size(&unit).max(1));
            if rest.count > 0 {
                orphans.push_front((unit.clone(), rest));
            }
            return Some((unit, piece));
        }
        None
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::work::job::Job;
    use crate::work::{Difficulty, PoolId, Target, VersionMask};

    /// Work of one job with a one-byte extranonce1 and an extranonce2 of `size` bytes.
    pub(in crate::scheduler) fn work(extranonce1: u8, size: usize) -> SourceWork {
        let job =
            Job::from_notify_hex("1", &"00".repeat(32), "", "", &[], "20000000", "1d00ffff", "00000000", true).unwrap();
        SourceWork {
            source: PoolId(0),
            generation: 1,
            job,
            extranonce1: Extranonce1(vec![extranonce1]),
            extranonce2_size: size,
            target: Difficulty::ONE.to_target(),
            version_mask: VersionMask::NONE,
            nonces: NonceRange::FULL_RANGE,
            time_roll: 0,
            received: std::time::Instant::now(),
        }
    }

    /// Orphans of the current job come out in pieces, oldest first; those of an older job
    /// are dropped.
    #[test]
    fn orphans_are_cut_into_pieces_of_the_current_job() {
        let unit = |generation| {
            let mut w = work(1, 4);
            w.generation = generation;
            let roll = Extranonces::default().next(&w, 1).unwrap();
            let header = w.job.header(&w.extranonce1, &roll.extranonce2, roll.time, roll.versions[0]);
            let work = Work::with_versions(header, w.target, &roll.versions);
            Arc::new(Unit { source_work: Arc::new(w), roll, work, rest: NonceRange::FULL_RANGE })
        };
        let orphans = Orphans::default();
        orphans.give(unit(1), NonceRange::new(0, 100).unwrap());
        orphans.give(unit(2), NonceRange::new(500, 30).unwrap());
        orphans.give(unit(2), NonceRange::new(900, 0).unwrap());
        let ranges: Vec<_> = std::iter::from_fn(|| orphans.take(2, |_| 20)).map(|(_, r)| (r.start, r.count)).collect();
        assert_eq!(ranges, [(500, 20), (520, 10)]);
        assert_eq!(orphans.len(), 0);
    }

    #[test]
    fn easy_targets_get_small_pieces() {
        let header = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin).header;
        let size =
            |target: Target, versions: &[u32]| piece_size(1 << 24, &Work::with_versions(header, target, versions));
        let regtest = crate::work::target::target_from_compact(crate::work::CompactTarget::from_consensus(0x207f_ffff));
        assert_eq!(size(regtest.unwrap(), &[1]), 2048);
        // Eight versions a nonce: eight times the hashes, so an eighth of the nonces.
        assert_eq!(size(regtest.unwrap(), &[1, 2, 3, 4, 5, 6, 7, 8]), 256);
        assert_eq!(size(Difficulty::ONE.to_target(), &[1]), 1 << 24);
        assert_eq!(size(Target::MAX_ATTAINABLE_MAINNET, &[1, 2, 3, 4, 5, 6, 7, 8]), 1 << 24);
        assert_eq!(size(Target::from_be_bytes([0xff; 32]), &[1]), 1024);
    }

    #[test]
    fn version_rolling_comes_before_the_next_extranonce2() {
        assert_eq!(deposit(0b101, 0x1fff_e000), 0x0000_a000);
        assert_eq!(deposit(0xffff, 0x1fff_e000), 0x1fff_e000);
        let e = Extranonces::default();
        let mut w = work(1, 4);
        w.version_mask = VersionMask::BIP320;
        let units: Vec<_> =
            (0..65537).map(|_| e.next(&w, 1).map(|r| (r.extranonce2.0, r.versions[0])).unwrap()).collect();
        assert_eq!(units[0], (vec![0, 0, 0, 0], 0x2000_0000));
        assert_eq!(units[1], (vec![0, 0, 0, 0], 0x2000_2000));
        assert_eq!(units[65535], (vec![0, 0, 0, 0], 0x3fff_e000));
        assert_eq!(units[65536], (vec![0, 0, 0, 1], 0x2000_0000));
    }

    /// A unit holds K consecutive rolled versions; K shrinks to what the mask holds, is one
    /// without rolling, and a unit of another K starts at a multiple of its own, so that no
    /// unit straddles two extranonce2s and none is swept twice.
    #[test]
    fn a_unit_holds_k_versions_within_the_mask() {
        let e = Extranonces::default();
        let mut w = work(1, 4);
        w.version_mask = VersionMask::BIP320;
        let unit = |k| e.next(&w, k).map(|r| (r.extranonce2.0[3], r.versions)).unwrap();
        assert_eq!(unit(4), (0, vec![0x2000_0000, 0x2000_2000, 0x2000_4000, 0x2000_6000]));
        assert_eq!(unit(1), (0, vec![0x2000_8000]));
        assert_eq!(unit(2), (0, vec![0x2000_c000, 0x2000_e000])); // 0x2000_a000 is skipped
        assert_eq!(unit(8).1, (8..16).map(|r| 0x2000_0000 | r << 13).collect::<Vec<_>>());
        for _ in 0..(65536 - 16) / 8 {
            e.next(&w, 8).unwrap();
        }
        assert_eq!(unit(4), (1, vec![0x2000_0000, 0x2000_2000, 0x2000_4000, 0x2000_6000]));

        // Two rolled bits: four versions at most, then the next extranonce2.
        let e = Extranonces::default();
        w.version_mask = VersionMask(0x0001_8000);
        let units: Vec<_> = (0..2).map(|_| e.next(&w, 8).map(|r| (r.extranonce2.0[3], r.versions)).unwrap()).collect();
        let four = vec![0x2000_0000, 0x2000_8000, 0x2001_0000, 0x2001_8000];
        assert_eq!(units, [(0, four.clone()), (1, four)]);

        // No rolling: one version, the job's.
        let e = Extranonces::default();
        let roll = e.next(&work(1, 4), 8).unwrap();
        assert_eq!(roll.versions, [0x2000_0000]);
    }

    /// Header-only work (an SV2 standard channel) has no extranonce2: after the versions,
    /// ntime moves on a second at a time, as far as the source allows, then the space is spent.
    #[test]
    fn header_only_work_rolls_ntime_after_the_versions() {
        let e = Extranonces::default();
        let mut w = work(1, 0);
        w.job.time = 1_700_000_000;
        w.version_mask = VersionMask(0x0000_6000); // two bits: four versions a second
        w.time_roll = 2;
        let units: Vec<_> = std::iter::from_fn(|| e.next(&w, 1)).map(|r| (r.versions[0], r.time)).collect();
        let t = 1_700_000_000;
        let expected: Vec<_> =
            (0..3).flat_map(|s| [0x2000_0000, 0x2000_2000, 0x2000_4000, 0x2000_6000].map(|v| (v, t + s))).collect();
        assert_eq!(units, expected);
    }

    #[test]
    fn each_unit_gets_its_own_extranonce2_until_the_session_changes() {
        let e = Extranonces::default();
        let en2 = |w: &SourceWork| e.next(w, 1).map(|r| r.extranonce2.0);
        assert_eq!(en2(&work(1, 4)), Some(vec![0, 0, 0, 0]));
        let mut next_job = work(1, 4);
        next_job.generation = 2;
        assert_eq!(en2(&next_job), Some(vec![0, 0, 0, 1]));
        assert_eq!(en2(&work(2, 4)), Some(vec![0, 0, 0, 0]));
        // A one-byte extranonce2 has 256 values, then the session is spent.
        let w = work(3, 1);
        let all: Vec<_> = (0..256).map(|_| en2(&w).unwrap()).collect();
        assert_eq!(all[255], vec![255]);
        assert_eq!(en2(&w), None);
    }
}
