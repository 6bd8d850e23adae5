//! One device's mining loop: keeps its queue full from the newest job (or the ranges a failed
//! device left), takes each piece's candidates back under the watchdog's deadline, has the
//! CPU verify them, and rests between pieces as its duty says.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Shared;
use super::remote::{MIN_PATIENCE, Remote};
use super::units::{Unit, piece_size};
use crate::cpu;
use crate::device::{SweepError, Throttle};
use crate::source::{Share, SourceWork};
use crate::stats::{Event, ShareEvent};
use crate::work::{Candidate, DeviceId, Difficulty, NonceRange, Work};

/// A piece queued on the device: its unit, its range, when it was queued and, for the first
/// piece of a new job, when that job was received.
struct Queued {
    unit: Arc<Unit>,
    range: NonceRange,
    queued_at: Instant,
    switch: Option<Instant>,
}

pub(super) struct DeviceLoop {
    /// The id this device's events carry.
    pub(super) id: DeviceId,
    pub(super) shared: Arc<Shared>,
    work: watch::Receiver<Option<Arc<SourceWork>>>,
    pub(super) throttle: Arc<Throttle>,
    unit: Option<Arc<Unit>>,
    queued: VecDeque<Queued>,
    /// The device's time per piece, smoothed: the watchdog's yardstick.
    piece_time: Option<Duration>,
    last_answer: Option<Instant>,
}

impl DeviceLoop {
    pub(super) fn new(id: DeviceId, shared: Arc<Shared>, throttle: Arc<Throttle>) -> DeviceLoop {
        let work = shared.work.clone();
        DeviceLoop {
            id,
            shared,
            work,
            throttle,
            unit: None,
            queued: VecDeque::new(),
            piece_time: None,
            last_answer: None,
        }
    }

    pub(super) fn stopping(&self) -> bool {
        self.shared.stop.load(Relaxed)
    }

    /// How long a piece may take before the device counts as hung: ten times its usual time,
    /// and never less than `MIN_PATIENCE`.
    pub(super) fn patience(&self) -> Duration {
        self.piece_time.map_or(MIN_PATIENCE, |t| (t * 10).max(MIN_PATIENCE))
    }

    /// Mines on `device` until the miner stops (`Ok`) or the device fails.
    pub(super) fn mine(&mut self, device: &Remote) -> Result<(), SweepError> {
        // What is queued on the device adds up to less than one dispatch of the tuned size
        // (pieces of a third of one on a GPU, which keeps two in flight): a new job waits for
        // the rest of the running piece and the one behind it, two thirds of a dispatch, and
        // the host's and driver's jitter still leave it within one.
        let traits = &device.traits;
        // In the device's whole steps (see `Sweeper::granule`): with K versions a nonce a
        // piece has K times fewer workgroups, and a step left part-filled weighs K times more.
        let preferred = (traits.preferred_chunk / (traits.depth as u64 + 1)) / traits.granule * traits.granule;
        let preferred = preferred.max(traits.granule);
        self.last_answer = None;
        while !self.stopping() {
            // A device at less than full duty sweeps one piece at a time and rests after it.
            let depth = if self.throttle.duty() < 1.0 { 1 } else { traits.depth };
            while self.queued.len() < depth && !self.throttle.paused() {
                let Some((unit, range, switch)) = self.next_piece(preferred, traits.versions_per_nonce) else { break };
                if let Err(e) = device.queue(&unit.work, range, Instant::now() + self.patience()) {
                    self.shared.orphans.give(unit, range); // cut for this device, never queued
                    return Err(e);
                }
                // An idle device starts a new job's first piece at once; a busy one when the
                // piece before it ends.
                let switch = match switch {
                    Some(received) if self.queued.is_empty() => {
                        self.record_switch(received);
                        None
                    }
                    other => other,
                };
                self.queued.push_back(Queued { unit, range, queued_at: Instant::now(), switch });
            }
            if self.queued.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let Some((range, candidates)) = device.next_result(Instant::now() + self.patience())? else {
                return Err(SweepError::new(&traits.info.name, "the device lost a queued piece"));
            };
            let piece = self.queued.pop_front().expect("a piece per result");
            if range != piece.range {
                // A device answers only the ranges it was given, in order: a browser page that
                // claims another range is credited with nothing.
                self.queued.push_front(piece);
                return Err(SweepError::new(
                    &traits.info.name,
                    format!("answered {range:?}, not the piece it was given"),
                ));
            }
            let took = self.answered(&piece);
            // The device runs its queue in order: the next piece started as this one ended.
            if let Some(received) = self.queued.front_mut().and_then(|q| q.switch.take()) {
                self.record_switch(received);
            }
            self.shared.stats.record(Event::Hashes { device: self.id, count: piece.unit.work.hashes(range) });
            self.report(&piece.unit, range, &candidates, &traits.info.name);
            self.rest(took);
        }
        Ok(())
    }

    /// Times an answered piece, from when it started (queued on an idle device, or when the
    /// piece before it ended), into the watchdog's yardstick; returns that time.
    fn answered(&mut self, piece: &Queued) -> Duration {
        let now = Instant::now();
        let started = self.last_answer.map_or(piece.queued_at, |last| last.max(piece.queued_at));
        let took = now.duration_since(started);
        self.piece_time = Some(self.piece_time.map_or(took, |t| (t * 4 + took) / 5));
        self.last_answer = Some(now);
        took
    }

    /// At a duty under one, rests in proportion to the piece just swept, so that the device
    /// sweeps that share of the wall time.
    fn rest(&mut self, took: Duration) {
        let duty = self.throttle.duty();
        if duty >= 1.0 {
            return;
        }
        let until = Instant::now() + took.mul_f64(1.0 / duty - 1.0);
        while Instant::now() < until && !self.stopping() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        self.last_answer = None; // the next piece starts when it is queued
    }

    /// Hands every range the device held back to the scheduler, for the other devices: the
    /// pieces it was given and did not answer, and the rest of its unit.
    pub(super) fn give_back(&mut self) {
        for piece in self.queued.drain(..) {
            self.shared.orphans.give(piece.unit, piece.range);
        }
        if let Some(unit) = self.unit.take() {
            let rest = unit.rest;
            self.shared.orphans.give(unit, rest);
        }
    }

    /// The next piece to queue: from the ranges a failed device left, where the newest job
    /// has some, else from this device's unit of the newest job.
    fn next_piece(&mut self, preferred: u64, k: u32) -> Option<(Arc<Unit>, NonceRange, Option<Instant>)> {
        let generation = self.work.borrow().as_ref().map(|w| w.generation);
        if let Some((unit, range)) =
            generation.and_then(|g| self.shared.orphans.take(g, |unit| piece_size(preferred, &unit.work)))
        {
            return Some((unit, range, None));
        }
        let (unit, new_job) = self.current_unit(k)?;
        let (piece, rest) = unit.rest.split_at(piece_size(preferred, &unit.work));
        let next = Arc::new(Unit { rest, ..(*unit).clone() });
        self.unit = Some(next.clone());
        Some((next, piece, new_job))
    }

    /// A new job this device took up: the time from its notify to the start of the device's
    /// first dispatch of it (when the dispatch queued before it ended, or when it was queued
    /// on an idle device).
    fn record_switch(&self, received: Instant) {
        self.shared.stats.record(Event::JobSwitch { device: self.id, latency: received.elapsed() });
    }

    /// The unit to take the next piece from: the current one while its job is newest and
    /// nonces are left, else a fresh unit of the newest job of `k` versions; with when that
    /// job was received, if it is a new one for this device.
    fn current_unit(&mut self, k: u32) -> Option<(Arc<Unit>, Option<Instant>)> {
        let newer = self.work.has_changed().unwrap_or(false);
        if let Some(unit) = &self.unit {
            if !newer && unit.rest.count > 0 {
                return Some((unit.clone(), None));
            }
        }
        let source_work = self.work.borrow_and_update().clone()?;
        let roll = self.shared.extranonces.next(&source_work, k)?;
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

    fn report(&self, unit: &Unit, range: NonceRange, candidates: &[Candidate], name: &str) {
        let verified = cpu::verify(&unit.work, range, candidates);
        for error in &verified.hw_errors {
            self.shared.stats.record(Event::HardwareError { device: self.id });
            tracing::warn!("hardware error on {name}: {error}");
        }
        let source_work = &unit.source_work;
        for hit in verified.hits {
            self.shared.stats.record(Event::Hit { difficulty: Difficulty::of_hash(&hit.hash) });
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
            self.shared.stats.record(Event::Share { device, pool, event: ShareEvent::Found });
            if let Err(lost) = self.shared.shares.blocking_send(share) {
                tracing::error!("share found after the source stopped, not sent: {:?}", lost.0);
                self.shared.stats.record(Event::Share { device, pool, event: ShareEvent::Unjournaled });
            }
        }
    }
}
