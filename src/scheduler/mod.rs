//! The scheduler turns the source's latest work into work units and keeps every device busy.
//! Each unit has its own extranonce2 (and rolled versions: as many as the device hashes with
//! each nonce, where the source allows rolling), so no search space is swept twice.
//! A device keeps `depth()` pieces queued, and each piece queued is cut from the newest job, so
//! a new job waits only for the piece already running (one dispatch on a GPU). Verified shares
//! go back to the source, which knows whether their job is still current.
//!
//! Devices run on threads of their own (the GPU path is synchronous); the source is async.
//! They meet here, through a `watch` channel (latest work) and an mpsc channel (shares).
//! Devices come and go while mining (`Attach`); each lives through `life`: a device that
//! fails or hangs hands its ranges back (`units::Orphans`), which the others sweep first, and
//! is opened again.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};

use crate::device::{Sweeper, Throttle};
use crate::source::{Share, SourceWork};
use crate::stats::Stats;
use crate::work::DeviceId;

mod device_loop;
mod life;
mod remote;
mod units;

use device_loop::DeviceLoop;
use units::{Extranonces, Orphans};

/// Verified shares waiting for the source, at most.
pub const SHARE_QUEUE: usize = 4096;

/// A device's thread, which hands the device back if it is well at the end.
type DeviceThread = JoinHandle<Option<Box<dyn Sweeper>>>;

/// What every device's loop shares: the newest work, where shares go, the counters, the stop
/// flag, the unit counter and the ranges failed devices left.
struct Shared {
    work: watch::Receiver<Option<Arc<SourceWork>>>,
    shares: mpsc::Sender<Share>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    extranonces: Extranonces,
    orphans: Orphans,
    /// Each device's thread; joining it gives the device back if it is well.
    threads: Mutex<Vec<DeviceThread>>,
}

pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Scheduler {
    pub fn new(work: watch::Receiver<Option<Arc<SourceWork>>>, shares: mpsc::Sender<Share>, stats: Arc<Stats>) -> Self {
        let shared = Shared {
            work,
            shares,
            stats,
            stop: Arc::new(AtomicBool::new(false)),
            extranonces: Extranonces::default(),
            orphans: Orphans::default(),
            threads: Mutex::default(),
        };
        Scheduler { shared: Arc::new(shared) }
    }

    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.shared.stop.clone()
    }

    /// Starts mining on `device` until the stop flag is set, as `throttle` allows (its duty,
    /// the temperature guard's pause). The id is the one the device's events carry.
    pub fn spawn(&self, device: Box<dyn Sweeper>, throttle: Arc<Throttle>) -> DeviceId {
        self.attacher().attach_throttled(device, throttle)
    }

    /// Adds devices to this scheduler while it runs (browser tabs that open the page).
    pub fn attacher(&self) -> Attach {
        Attach { shared: self.shared.clone() }
    }

    /// Waits for every device's thread (after the stop flag is set): the devices that are
    /// well, handed back. A device stuck in its driver is not waited for.
    pub fn join(self) -> Vec<Box<dyn Sweeper>> {
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap_or_else(|p| p.into_inner()));
        threads.into_iter().filter_map(|t| t.join().ok().flatten()).collect()
    }
}

/// Attaches devices to a running scheduler: each gets the next `DeviceId` and a life of its
/// own, and mines until the miner stops or it leaves (`Fault::Gone`).
#[derive(Clone)]
pub struct Attach {
    shared: Arc<Shared>,
}

impl Attach {
    /// Attaches `device` at full duty.
    pub fn attach(&self, device: Box<dyn Sweeper>) -> DeviceId {
        self.attach_throttled(device, Arc::default())
    }

    pub fn attach_throttled(&self, device: Box<dyn Sweeper>, throttle: Arc<Throttle>) -> DeviceId {
        let stats = &self.shared.stats;
        let id = stats.device(device.info());
        stats.record(crate::stats::Event::Duty { device: id, duty: throttle.duty() });
        let mining = DeviceLoop::new(id, self.shared.clone(), throttle);
        let thread = std::thread::Builder::new()
            .name(format!("device {}", id.0))
            .spawn(move || life::run(mining, device))
            .expect("a thread for a device");
        self.shared.threads.lock().unwrap_or_else(|p| p.into_inner()).push(thread);
        id
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use super::*;
    use crate::work::{Candidate, NonceRange, Work};
    use units::tests::work;

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
        scheduler.spawn(Box::new(device), Arc::default());
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
        scheduler.join();
        let latencies = stats.job_switches();
        assert_eq!(latencies.len(), 2, "{latencies:?}");
        assert!(latencies[0] < hold, "the first job started on an idle device: {latencies:?}");
        assert!(latencies[1] >= 2 * hold, "{latencies:?}");
        assert!(sizes.lock().unwrap().iter().all(|&n| n == 1 << 20));
    }
}
