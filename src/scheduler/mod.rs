//! The scheduler turns the source's latest work into work units and keeps every device busy.
//! Each unit has its own extranonce2 (and rolled versions: as many as the device hashes with
//! each nonce, where the source allows rolling), so no search space is swept twice.
//! A device keeps `depth()` pieces queued, and each piece queued is cut from the newest job, so
//! a new job waits only for the piece already running (one dispatch on a GPU). Verified shares
//! go back to the source, which knows whether their job is still current.
//!
//! Devices run on threads of their own (the GPU path is synchronous); the source is async.
//! They meet here, through a `watch` channel (latest work) and an mpsc channel (shares).

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::cpu;
use crate::device::Sweeper;
use crate::source::{Share, SourceWork};
use crate::stats::{Event, ShareEvent, Stats};
use crate::work::target::candidate_mask;
use crate::work::{Candidate, DeviceId, Difficulty, Extranonce1, Extranonce2, NonceRange, Work};

/// Verified shares waiting for the source, at most.
pub const SHARE_QUEUE: usize = 4096;

/// Candidates a piece is expected to hold, at most. Pieces of an easy target (regtest's, where
/// every other hash is a block, or a tiny pool difficulty) are cut smaller, so that a device's
/// candidate buffer seldom overflows into re-sweeps and the source is not flooded.
const EXPECTED_CANDIDATES: u64 = 1024;

/// The nonces of one piece of `work`: the device's preferred size, or fewer for an easy target,
/// counting each nonce's hashes in every version.
fn piece_size(preferred: u64, work: &Work) -> u64 {
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
struct Extranonces {
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
struct Roll {
    extranonce2: Extranonce2,
    /// The versions hashed with each nonce (one without rolling).
    versions: Vec<u32>,
    time: u32,
}

impl Extranonces {
    /// The next unit of `versions` versions (a power of two, at most what the mask allows).
    fn next(&self, work: &SourceWork, versions: u32) -> Option<Roll> {
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

pub struct Scheduler {
    work: watch::Receiver<Option<Arc<SourceWork>>>,
    shares: mpsc::Sender<Share>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    extranonces: Arc<Extranonces>,
}

impl Scheduler {
    pub fn new(work: watch::Receiver<Option<Arc<SourceWork>>>, shares: mpsc::Sender<Share>, stats: Arc<Stats>) -> Self {
        Scheduler { work, shares, stats, stop: Arc::new(AtomicBool::new(false)), extranonces: Arc::default() }
    }

    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Starts a thread that mines on `device` until the stop flag is set; joining it gives the
    /// device back. While `pause` is set (the temperature guard) the device takes no new piece
    /// and finishes those queued, whose shares go on as ever.
    /// The id is the one the device's events carry.
    pub fn spawn(&self, device: Box<dyn Sweeper>, pause: Arc<AtomicBool>) -> (DeviceId, JoinHandle<Box<dyn Sweeper>>) {
        let id = self.stats.device(device.info());
        let mut miner = DeviceLoop {
            id,
            device,
            work: self.work.clone(),
            shares: self.shares.clone(),
            stats: self.stats.clone(),
            stop: self.stop.clone(),
            pause,
            extranonces: self.extranonces.clone(),
            unit: None,
            queued: VecDeque::new(),
        };
        let thread = std::thread::spawn(move || {
            if let Err(e) = miner.run() {
                tracing::error!("device error: {e}; stopping this device");
            }
            // Whatever is still queued finishes before the device is handed back.
            while let Ok(Some(_)) = miner.device.next_result() {}
            miner.device
        });
        (id, thread)
    }
}

/// One unit being swept: its work and what is left of its nonce range.
#[derive(Clone)]
struct Unit {
    source_work: Arc<SourceWork>,
    roll: Roll,
    work: Work,
    rest: NonceRange,
}

struct DeviceLoop {
    device: Box<dyn Sweeper>,
    /// The id this device's events carry.
    id: DeviceId,
    work: watch::Receiver<Option<Arc<SourceWork>>>,
    shares: mpsc::Sender<Share>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    extranonces: Arc<Extranonces>,
    unit: Option<Arc<Unit>>,
    /// Pieces queued on the device, oldest first, with the unit each belongs to and, for the
    /// first piece of a new job, when that job was received.
    queued: VecDeque<(Arc<Unit>, Option<std::time::Instant>)>,
}

impl DeviceLoop {
    fn run(&mut self) -> Result<(), crate::device::SweepError> {
        // What is queued on the device adds up to less than one dispatch of the tuned size
        // (pieces of a third of one on a GPU, which keeps two in flight): a new job waits for
        // the rest of the running piece and the one behind it, two thirds of a dispatch, and
        // the host's and driver's jitter still leave it within one.
        let depth = self.device.depth().max(1);
        // In the device's whole steps (see `Sweeper::granule`): with K versions a nonce a
        // piece has K times fewer workgroups, and a step left part-filled weighs K times more.
        let granule = self.device.granule().max(1);
        let preferred = (self.device.preferred_chunk() / (depth as u64 + 1)) / granule * granule;
        let preferred = preferred.max(granule);
        while !self.stop.load(Relaxed) {
            // Keep the device's queue full, each new piece from the newest job.
            while self.queued.len() < depth && !self.pause.load(Relaxed) {
                let Some((unit, new_job)) = self.current_unit() else { break };
                let (piece, rest) = unit.rest.split_at(piece_size(preferred, &unit.work));
                let next = Arc::new(Unit { rest, ..(*unit).clone() });
                self.device.queue(&next.work, piece)?;
                // An idle device starts a new job's first piece at once; a busy one when the
                // piece before it ends.
                let pending = match new_job {
                    Some(received) if self.queued.is_empty() => {
                        self.record_switch(received);
                        None
                    }
                    other => other,
                };
                self.queued.push_back((next.clone(), pending));
                self.unit = Some(next);
            }
            if self.queued.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let Some((range, candidates)) = self.device.next_result()? else { continue };
            let (unit, _) = self.queued.pop_front().expect("a piece per result");
            // The device runs its queue in order: the next piece started as this one ended.
            if let Some(received) = self.queued.front_mut().and_then(|(_, r)| r.take()) {
                self.record_switch(received);
            }
            self.stats.record(Event::Hashes { device: self.id, count: unit.work.hashes(range) });
            self.report(&unit, range, &candidates);
        }
        Ok(())
    }

    /// A new job this device took up: the time from its notify to the start of the device's
    /// first dispatch of it (when the dispatch queued before it ended, or when it was queued
    /// on an idle device).
    fn record_switch(&self, received: std::time::Instant) {
        self.stats.record(Event::JobSwitch { device: self.id, latency: received.elapsed() });
    }

    /// The unit to take the next piece from: the current one while its job is newest and
    /// nonces are left, else a fresh unit of the newest job; with when that job was received,
    /// if it is a new one for this device.
    fn current_unit(&mut self) -> Option<(Arc<Unit>, Option<std::time::Instant>)> {
        let newer = self.work.has_changed().unwrap_or(false);
        if let Some(unit) = &self.unit {
            if !newer && unit.rest.count > 0 {
                return Some((unit.clone(), None));
            }
        }
        let source_work = self.work.borrow_and_update().clone()?;
        let roll = self.extranonces.next(&source_work, self.device.versions_per_nonce())?;
        let new_job = self
            .unit
            .as_ref()
            .is_none_or(|u| u.source_work.generation != source_work.generation)
            .then_some(source_work.received);
        let job = &source_work.job;
        let header = job.header(&source_work.extranonce1, &roll.extranonce2, roll.time, roll.versions[0]);
        let work = Work::with_versions(header, source_work.target, &roll.versions);
        let unit = Arc::new(Unit { source_work: source_work.clone(), roll, work, rest: source_work.nonces });
        self.unit = Some(unit.clone());
        Some((unit, new_job))
    }

    fn report(&self, unit: &Unit, range: NonceRange, candidates: &[Candidate]) {
        let verified = cpu::verify(&unit.work, range, candidates);
        for error in &verified.hw_errors {
            self.stats.record(Event::HardwareError { device: self.id });
            tracing::warn!("hardware error on {}: {error}", self.device.info().name);
        }
        let source_work = &unit.source_work;
        for hit in verified.hits {
            self.stats.record(Event::Hit { difficulty: Difficulty::of_hash(&hit.hash) });
            let share = Share {
                source: source_work.source,
                job_id: source_work.job.id.clone(),
                extranonce1: source_work.extranonce1.clone(),
                extranonce2: unit.roll.extranonce2.clone(),
                time: unit.roll.time,
                nonce: hit.nonce,
                version_bits: (!source_work.version_mask.is_none()).then_some(hit.version & source_work.version_mask.0),
                hash: hit.hash,
                device: self.id,
            };
            // The channel is bounded: a pool that cannot take shares as fast as they are found
            // (an absurdly low difficulty, a pool that stops reading) slows the device down
            // instead of filling memory. A closed channel means the miner is stopping.
            let (device, pool) = (self.id, source_work.source);
            self.stats.record(Event::Share { device, pool, event: ShareEvent::Found });
            if let Err(lost) = self.shares.blocking_send(share) {
                tracing::error!("share found after the source stopped, not sent: {:?}", lost.0);
                self.stats.record(Event::Share { device, pool, event: ShareEvent::Unjournaled });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::job::Job;
    use crate::work::{PoolId, Target, VersionMask};

    fn work(extranonce1: u8, size: usize) -> SourceWork {
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

    /// A device whose pieces end when the test says so.
    struct Gated {
        info: crate::device::DeviceInfo,
        release: std::sync::mpsc::Receiver<()>,
        queued: VecDeque<NonceRange>,
        sizes: Arc<Mutex<Vec<u64>>>,
    }

    impl Sweeper for Gated {
        fn info(&self) -> &crate::device::DeviceInfo {
            &self.info
        }
        fn preferred_chunk(&self) -> u64 {
            (3 << 20) + 999
        }
        fn granule(&self) -> u64 {
            1 << 10 // a third of the dispatch, cut down to whole workgroups: 1 << 20
        }
        fn depth(&self) -> usize {
            2
        }
        fn queue(&mut self, _: &Work, range: NonceRange) -> Result<(), crate::device::SweepError> {
            self.sizes.lock().unwrap().push(range.count);
            self.queued.push_back(range);
            Ok(())
        }
        fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, crate::device::SweepError> {
            let Some(range) = self.queued.pop_front() else { return Ok(None) };
            let _ = self.release.recv(); // the test ends a piece, or has ended
            Ok(Some((range, Vec::new())))
        }
    }

    /// A new job's switch is recorded when the device starts its first piece, after the
    /// pieces of the old job queued before it, not when that piece is cut; and pieces are a
    /// third of a dispatch, so that the two in flight hold two thirds of one.
    #[test]
    fn a_switch_counts_until_the_new_job_runs() {
        let (work_tx, work_rx) = watch::channel(None);
        let (shares, _shares_rx) = mpsc::channel(16);
        let stats = Arc::new(Stats::new());
        let scheduler = Scheduler::new(work_rx, shares, stats.clone());
        let (release, gate) = std::sync::mpsc::channel();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let info = crate::device::DeviceInfo {
            name: "gated".into(),
            backend: "test".into(),
            vendor: String::new(),
            device_type: String::new(),
            driver: String::new(),
            pci: None,
        };
        let device = Gated { info, release: gate, queued: VecDeque::new(), sizes: sizes.clone() };
        work_tx.send(Some(Arc::new(work(1, 4)))).unwrap();
        let (_, thread) = scheduler.spawn(Box::new(device), Arc::default());
        let wait_for = |n: usize| {
            while sizes.lock().unwrap().len() < n {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_for(2); // both slots hold the first job
        let mut next = work(1, 4);
        next.generation = 2;
        next.received = std::time::Instant::now();
        work_tx.send(Some(Arc::new(next))).unwrap();
        let hold = Duration::from_millis(60);
        std::thread::sleep(hold);
        release.send(()).unwrap(); // the running piece ends; the new job's first is cut
        wait_for(3);
        std::thread::sleep(hold);
        release.send(()).unwrap(); // the old job's second piece ends; the new job's starts
        wait_for(4);
        scheduler.stop_flag().store(true, Relaxed);
        drop(release);
        thread.join().unwrap();
        let latencies = stats.job_switches();
        assert_eq!(latencies.len(), 2, "{latencies:?}");
        assert!(latencies[0] < hold, "the first job started on an idle device: {latencies:?}");
        assert!(latencies[1] >= 2 * hold, "{latencies:?}");
        assert!(sizes.lock().unwrap().iter().all(|&n| n == 1 << 20));
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
