//! The miner wired once: a source (Stratum pools or a node), the scheduler with a thread per
//! device, and the counters they report to. `commands::mine` runs it for `mine`, `solo` and
//! `demo`; the tests and the benches start the same thing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::device::Sweeper;
use crate::scheduler::Scheduler;
use crate::sensor::{self, Sensor, TempLimits, Watched};
use crate::source::gbt::client::SoloConfig;
use crate::source::stratum::driver::{self, Links, PoolControl};
use crate::source::stratum::{PoolConfig, ShareOutcome};
use crate::source::{Share, gbt};
use crate::stats::Stats;

/// Where work comes from.
pub enum Source {
    /// Stratum pools, in priority order.
    Pools(Vec<PoolConfig>),
    /// A node's getblocktemplate.
    Node(SoloConfig),
}

/// A running miner.
pub struct Miner {
    pub stats: Arc<Stats>,
    /// What became of each share sent to a pool (none for a node, whose blocks are logged).
    pub outcomes: mpsc::UnboundedReceiver<(Share, ShareOutcome)>,
    /// The pools' failover policy takes the API's commands here; `None` for a node.
    pub control: Option<mpsc::UnboundedSender<PoolControl>>,
    scheduler: Scheduler,
    threads: Vec<std::thread::JoinHandle<Box<dyn Sweeper>>>,
    /// The sensors' sampler, and what stops it.
    sampler: (std::thread::JoinHandle<()>, Arc<AtomicBool>),
    source: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// What a stopped miner hands back.
pub struct Stopped {
    pub devices: Vec<Box<dyn Sweeper>>,
    /// Each job switch after the first: from the job's arrival to its first dispatch.
    pub switches: Vec<Duration>,
    /// The outcomes that came while stopping, and any not yet read.
    pub outcomes: mpsc::UnboundedReceiver<(Share, ShareOutcome)>,
}

/// The devices' sensors and the temperature guard.
pub struct Sensing {
    /// One for each device, in order, where it has one.
    pub sensors: Vec<Option<Box<dyn Sensor>>>,
    pub limits: Option<TempLimits>,
    /// How often the sensors are read.
    pub every: Duration,
}

impl Sensing {
    /// Each device's sensor, where this platform has one (`sensor::of`).
    pub fn detect(devices: &[Box<dyn Sweeper>], limits: Option<TempLimits>) -> Sensing {
        let sensors = devices.iter().map(|d| sensor::of(d.info())).collect();
        Sensing { sensors, limits, every: Duration::from_secs(1) }
    }
}

impl Miner {
    /// Starts mining `source` on `devices`, with the sensors this platform has for them; to be
    /// called inside a Tokio runtime.
    pub fn start(source: Source, devices: Vec<Box<dyn Sweeper>>) -> Miner {
        let sensing = Sensing::detect(&devices, None);
        Miner::start_with(source, devices, sensing)
    }

    /// Starts mining with these sensors (a guard, a test's fakes).
    pub fn start_with(source: Source, devices: Vec<Box<dyn Sweeper>>, sensing: Sensing) -> Miner {
        Miner::start_on(Arc::new(Stats::new()), source, devices, sensing)
    }

    /// Starts mining into counters that exist already (solo shows them while its node is
    /// awaited).
    pub fn start_on(stats: Arc<Stats>, source: Source, devices: Vec<Box<dyn Sweeper>>, sensing: Sensing) -> Miner {
        let (work, work_rx) = watch::channel(None);
        let (share_tx, shares) = mpsc::channel(crate::scheduler::SHARE_QUEUE);
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let (control, source) = match source {
            Source::Pools(pools) => {
                for (i, pool) in pools.iter().enumerate() {
                    tracing::info!("pool {i}: {} as {}", pool.url, pool.user);
                }
                let (control, control_rx) = mpsc::unbounded_channel();
                let links = Links {
                    work,
                    shares,
                    stats: stats.clone(),
                    outcomes: Some(outcome_tx),
                    control: control_rx,
                    stop: stop_rx,
                };
                (Some(control), tokio::spawn(driver::run(pools, links)))
            }
            Source::Node(config) => {
                tracing::info!("node: {}, found blocks journaled to {}", config.node.url, config.journal.display());
                (None, tokio::spawn(gbt::client::run(config, work, shares, stats.clone(), stop_rx)))
            }
        };
        let scheduler = Scheduler::new(work_rx, share_tx, stats.clone());
        let mut watched = Vec::new();
        let mut sensors = sensing.sensors.into_iter();
        let threads = devices
            .into_iter()
            .map(|d| {
                let pause = Arc::new(AtomicBool::new(false));
                let (device, thread) = scheduler.spawn(d, pause.clone());
                match sensors.next().flatten() {
                    Some(sensor) => {
                        tracing::info!("device {}: power and temperature from {}", device.0, sensor.name());
                        watched.push(Watched { device, sensor, pause });
                    }
                    None if sensing.limits.is_some() => {
                        tracing::warn!(
                            "device {}: no temperature reported here, so --temp-cutoff cannot guard it",
                            device.0
                        )
                    }
                    None => tracing::info!("device {}: power and temperature not reported on this machine", device.0),
                }
                thread
            })
            .collect();
        let sampler_stop = Arc::new(AtomicBool::new(false));
        let sampler = sensor::sample(watched, sensing.limits, sensing.every, stats.clone(), sampler_stop.clone());
        Miner { stats, outcomes, control, scheduler, threads, sampler: (sampler, sampler_stop), source, stop }
    }

    /// Waits until `done` holds of the counters, or `ceiling` passes: whether it held. Tests
    /// and benches wait for outcomes this way, not for fixed times.
    pub async fn until(&self, ceiling: Duration, done: impl Fn(&Stats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + ceiling;
        while !done(&self.stats) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops the devices first, so that their last shares reach the source, lets the pool
    /// answer what was sent, then stops the source (which journals whatever it still holds).
    pub async fn stop(self) -> Stopped {
        self.scheduler.stop_flag().store(true, Relaxed);
        self.sampler.1.store(true, Relaxed);
        drop(self.scheduler);
        let (threads, sampler) = (self.threads, self.sampler.0);
        let devices = tokio::task::spawn_blocking(move || {
            let _ = sampler.join();
            threads.into_iter().filter_map(|t| t.join().ok()).collect()
        })
        .await
        .unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(200)).await; // answers to the last submits
        let _ = self.stop.send(true);
        let _ = self.source.await;
        let switches = self.stats.job_switches().into_iter().skip(1).collect();
        Stopped { devices, switches, outcomes: self.outcomes }
    }
}
