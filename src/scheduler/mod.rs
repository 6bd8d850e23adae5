//! The scheduler turns the source's latest work into work units and keeps every device busy.
//! Each unit has its own extranonce2, so no search space is swept twice; a device checks for
//! newer work between sweeps of one chunk (a dispatch or two), so a new job reaches it within
//! that time. Verified shares go back to the source; stale ones never leave the device thread.
//!
//! Devices run on threads of their own (the GPU path is synchronous); the source is async.
//! They meet here, through a `watch` channel (latest work) and an mpsc channel (shares).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::cpu;
use crate::device::Sweeper;
use crate::source::stratum::{PoolWork, Share};
use crate::stats::Stats;
use crate::work::{Difficulty, NonceRange, Work};

/// Hands out extranonce2 values from one counter per extranonce1. It does not start over on a
/// new job: a pool may send the same coinbase again under a new job id (a difficulty change),
/// and a fresh extranonce2 keeps that space from being swept twice.
#[derive(Debug, Default)]
struct Extranonces {
    state: Mutex<(Vec<u8>, u64)>, // extranonce1, next extranonce2
}

impl Extranonces {
    fn next(&self, work: &PoolWork) -> Option<Vec<u8>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 != work.extranonce1 {
            *state = (work.extranonce1.clone(), 0);
        }
        let value = state.1;
        let size = work.extranonce2_size.min(8);
        if size < 8 && value >> (8 * size) != 0 {
            return None; // the session's extranonce2 space is spent: wait for a new extranonce1
        }
        state.1 += 1;
        let mut bytes = vec![0u8; work.extranonce2_size];
        let n = bytes.len();
        bytes[n - size..].copy_from_slice(&value.to_be_bytes()[8 - size..]);
        Some(bytes)
    }
}

pub struct Scheduler {
    work: watch::Receiver<Option<Arc<PoolWork>>>,
    shares: mpsc::UnboundedSender<Share>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    extranonces: Arc<Extranonces>,
    /// Work units started, all devices together.
    pub units: Arc<AtomicU64>,
}

impl Scheduler {
    pub fn new(
        work: watch::Receiver<Option<Arc<PoolWork>>>,
        shares: mpsc::UnboundedSender<Share>,
        stats: Arc<Stats>,
    ) -> Self {
        Scheduler {
            work,
            shares,
            stats,
            stop: Arc::new(AtomicBool::new(false)),
            extranonces: Arc::default(),
            units: Arc::default(),
        }
    }

    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Starts a thread that mines on `device` until the stop flag is set.
    pub fn spawn(&self, mut device: Box<dyn Sweeper>) -> JoinHandle<()> {
        let mut rx = self.work.clone();
        let shares = self.shares.clone();
        let stats = self.stats.clone();
        let stop = self.stop.clone();
        let extranonces = self.extranonces.clone();
        let units = self.units.clone();
        std::thread::spawn(move || {
            let chunk = device.preferred_chunk();
            while !stop.load(Relaxed) {
                let Some(work) = rx.borrow_and_update().clone() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let Some(extranonce2) = extranonces.next(&work) else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                units.fetch_add(1, Relaxed);
                let job = &work.job;
                let header = job.header(&work.extranonce1, &extranonce2, job.time, job.version);
                let unit = Work::new(header, work.difficulty.to_target());
                let mut rest = NonceRange { start: 0, count: NonceRange::FULL };
                while rest.count > 0 && !stop.load(Relaxed) && !rx.has_changed().unwrap_or(true) {
                    let (range, tail) = rest.split_at(chunk);
                    rest = tail;
                    let candidates = match device.sweep(&unit, range) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("device error: {e}; stopping this device");
                            return;
                        }
                    };
                    stats.hashes.fetch_add(range.count, Relaxed);
                    let verified = cpu::verify(&unit, range, &candidates);
                    for error in &verified.hw_errors {
                        stats.hw_errors.fetch_add(1, Relaxed);
                        eprintln!(
                            "hardware error on {}: nonce {:08x} hashes to {}",
                            device.info().name,
                            error.nonce,
                            error.hash
                        );
                    }
                    for hit in verified.hits {
                        stats.record_share_difficulty(
                            Difficulty::from_target(&crate::work::Target::from_le_bytes(*AsRef::<[u8; 32]>::as_ref(
                                &hit.hash,
                            )))
                            .value(),
                        );
                        let share = Share {
                            job_id: job.id.clone(),
                            extranonce1: work.extranonce1.clone(),
                            extranonce2: extranonce2.clone(),
                            time: job.time,
                            nonce: hit.nonce,
                            hash: hit.hash,
                        };
                        if shares.send(share).is_err() {
                            return; // the source is gone: the miner is stopping
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::job::Job;

    fn work(extranonce1: u8, size: usize) -> PoolWork {
        let job =
            Job::from_notify_hex("1", &"00".repeat(32), "", "", &[], "20000000", "1d00ffff", "00000000", true).unwrap();
        PoolWork {
            generation: 1,
            job,
            extranonce1: vec![extranonce1],
            extranonce2_size: size,
            difficulty: Difficulty::ONE,
        }
    }

    #[test]
    fn each_unit_gets_its_own_extranonce2_until_the_session_changes() {
        let e = Extranonces::default();
        assert_eq!(e.next(&work(1, 4)), Some(vec![0, 0, 0, 0]));
        let mut next_job = work(1, 4);
        next_job.generation = 2;
        assert_eq!(e.next(&next_job), Some(vec![0, 0, 0, 1]));
        assert_eq!(e.next(&work(2, 4)), Some(vec![0, 0, 0, 0]));
        // A one-byte extranonce2 has 256 values, then the session is spent.
        let w = work(3, 1);
        let all: Vec<_> = (0..256).map(|_| e.next(&w).unwrap()).collect();
        assert_eq!(all[255], vec![255]);
        assert_eq!(e.next(&w), None);
    }
}
