//! A device's life, as cgminer's watchdog keeps it: alive while its pieces come back in time;
//! sick when one does not or the driver reports a fault, its ranges handed to the others and
//! the device opened again after a backoff (1 s doubling to 60 s); dead after five failures
//! in ten minutes, tried again every ten minutes; gone when it leaves for good (a browser tab)
//! or cannot be opened again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::device_loop::DeviceLoop;
use super::remote::{Failed, Remote};
use crate::device::{Fault, Reopen, Sweeper};
use crate::stats::{DeviceState, Event};

/// Failures counted for the verdict dead, and how long each counts.
const DEAD_AFTER: usize = 5;
const WINDOW: Duration = Duration::from_secs(600);
/// The longest backoff of a sick device, and the wait of a dead one.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const DEAD_RETRY: Duration = Duration::from_secs(600);

/// A device that ran this long before failing starts its backoff over.
const WELL_AGAIN: Duration = Duration::from_secs(60);

/// When to open a failed device again: after 1 s, doubling with each failure in a row (a
/// device that ran a minute before failing starts over) up to 60 s; dead at the fifth failure
/// in ten minutes.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: VecDeque<Instant>,
    streak: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Sick: try again after this long.
    After(Duration),
    /// Dead: too many failures; try again after this long.
    Dead(Duration),
}

impl Backoff {
    /// A failure at `now`, after the device had run for `alive` (zero for a failed opening).
    pub(crate) fn failed(&mut self, now: Instant, alive: Duration) -> Retry {
        while self.failures.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if alive >= WELL_AGAIN {
            self.streak = 0;
        }
        let wait = Duration::from_secs(1 << self.streak.min(6)).min(MAX_BACKOFF);
        self.streak += 1;
        if self.failures.len() >= DEAD_AFTER {
            return Retry::Dead(DEAD_RETRY);
        }
        Retry::After(wait)
    }
}

/// Runs a device's life on the current thread until the miner stops: mines, and after each
/// failure waits, opens it again and goes on. Returns the device if it is well at the end.
pub(super) fn run(mut mining: DeviceLoop, device: Box<dyn Sweeper>) -> Option<Box<dyn Sweeper>> {
    let name = device.info().name.clone();
    let mut remote = Remote::start(device, &format!("device {}", mining.id.0));
    let reopen = remote.traits.reopener.clone();
    let mut life = Life { backoff: Backoff::default(), stuck: None, alive: Duration::ZERO };
    loop {
        set(&mining, DeviceState::Alive, None);
        let started = Instant::now();
        let result = mining.mine(&remote);
        life.alive = started.elapsed();
        let error = match result {
            Ok(()) => return remote.finish(Instant::now() + mining.patience()),
            Err(error) => error,
        };
        mining.give_back();
        tracing::warn!("device {} ({name}): {}; its work goes to the other devices", mining.id.0, error.message);
        // A worker stuck in the driver is watched until it returns; a failed device's own
        // resources go before a new one is opened.
        match error.fault {
            Fault::Hung => life.stuck = Some(remote.abandon()),
            _ => drop(remote),
        }
        let Some(reopen) = reopen.as_ref().filter(|_| error.fault != Fault::Gone) else {
            set(&mining, DeviceState::Gone, Some(error.message));
            return None;
        };
        set(&mining, DeviceState::Sick, Some(error.message));
        remote = life.recover(&mining, reopen)?;
    }
}

struct Life {
    backoff: Backoff,
    /// How long the device ran before its last failure.
    alive: Duration,
    /// A worker stuck in the driver, kept until it returns: a device never has two.
    stuck: Option<JoinHandle<()>>,
}

impl Life {
    /// Waits out the backoff and opens the device again, until it opens or the miner stops.
    fn recover(&mut self, mining: &DeviceLoop, reopen: &Arc<dyn Reopen>) -> Option<Remote> {
        let id = mining.id.0;
        loop {
            match self.backoff.failed(Instant::now(), std::mem::take(&mut self.alive)) {
                Retry::After(wait) => {
                    tracing::info!("device {id}: opening it again in {} s", wait.as_secs());
                    sleep(mining, wait)?;
                }
                Retry::Dead(wait) => {
                    tracing::error!("device {id}: failed {DEAD_AFTER} times in ten minutes; trying again in ten");
                    set(mining, DeviceState::Dead, None);
                    sleep(mining, wait)?;
                }
            }
            self.wait_for_stuck_worker(mining)?;
            set(mining, DeviceState::Starting, None);
            let name = format!("device {id}");
            match Remote::open(reopen.clone(), &name, Instant::now() + mining.patience().max(OPEN_PATIENCE)) {
                Ok(remote) => {
                    tracing::info!("device {id}: opened again");
                    return Some(remote);
                }
                Err(Failed { error, stuck }) => {
                    tracing::warn!("device {id}: cannot open it again: {}", error.message);
                    self.stuck = stuck.or(self.stuck.take());
                    set(mining, DeviceState::Sick, Some(error.message));
                }
            }
        }
    }

    /// A worker that hung in the driver still holds a thread: no second one is started on
    /// the device until it returns (a driver reset ends such calls), so that hung threads
    /// stay at one a device.
    fn wait_for_stuck_worker(&mut self, mining: &DeviceLoop) -> Option<()> {
        let mut said = false;
        while self.stuck.as_ref().is_some_and(|t| !t.is_finished()) {
            if !said {
                tracing::warn!("device {}: waiting for a driver call that has not returned", mining.id.0);
                said = true;
            }
            sleep(mining, Duration::from_secs(1))?;
        }
        self.stuck = None;
        Some(())
    }
}

/// Opening a device compiles its kernel: a slow driver takes seconds.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);

/// Sleeps `wait`, or until the miner stops (`None`).
fn sleep(mining: &DeviceLoop, wait: Duration) -> Option<()> {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if mining.stopping() {
            return None;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    (!mining.stopping()).then_some(())
}

fn set(mining: &DeviceLoop, state: DeviceState, message: Option<String>) {
    mining.shared.stats.record(Event::DeviceState { device: mining.id, state, message });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1, 2, 4, 8 s in a row, then dead at the fifth failure within ten minutes (retried after
    /// ten); failures older than that are forgotten, and a device that ran a minute starts
    /// its backoff over; the backoff stops growing at 60 s.
    #[test]
    fn backoff_doubles_and_five_failures_in_ten_minutes_are_dead() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut b = Backoff::default();
        let got: Vec<Retry> = (0..5).map(|i| b.failed(t0 + s(i * 10), s(2))).collect();
        let mut expected: Vec<Retry> = [1, 2, 4, 8].map(|n| Retry::After(s(n))).to_vec();
        expected.push(Retry::Dead(s(600)));
        assert_eq!(got, expected);

        // Failures twenty minutes apart, each after a short run: never dead, the backoff
        // doubles to 60 s and stays there.
        let mut b = Backoff::default();
        let waits: Vec<Retry> = (0..8).map(|i| b.failed(t0 + s(i * 1200), s(5))).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60].map(|n| Retry::After(s(n))));

        // A minute of mining starts the backoff over.
        let mut b = Backoff::default();
        assert_eq!(b.failed(t0, s(0)), Retry::After(s(1)));
        assert_eq!(b.failed(t0 + s(5), s(0)), Retry::After(s(2)));
        assert_eq!(b.failed(t0 + s(100), s(90)), Retry::After(s(1)));
    }
}
