//! The miner wired once: a source (Stratum pools or a node), the scheduler with a thread per
//! device, and the counters they report to. `commands::mine` runs it for `mine`, `solo` and
//! `demo`; the tests and the benches start the same thing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::device::{Sweeper, Throttle};
use crate::scheduler::{Attach, Scheduler};
use crate::sensor::{self, PowerLoop, Sensor, TempLimits, Watched};
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
    /// The sensors' sampler, and what stops it.
    sampler: (std::thread::JoinHandle<()>, Arc<AtomicBool>),
    /// The one-second rate samples ("MHS 5s") and the watch over the devices' lives.
    ticker: JoinHandle<()>,
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

/// The devices' sensors, the temperature guard, and each device's duty and power limit.
pub struct Sensing {
    /// One for each device, in order, where it has one.
    pub sensors: Vec<Option<Box<dyn Sensor>>>,
    pub limits: Option<TempLimits>,
    /// How often the sensors are read.
    pub every: Duration,
    /// One for each device, in order; full duty and no power limit where missing.
    pub budgets: Vec<Budget>,
}

/// How hard one device may work: its share of the time (`--duty`) and the power its loop
/// holds it under (`--power-limit`, where its sensor reads power).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub duty_percent: u32,
    pub power_limit_w: Option<f64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { duty_percent: 100, power_limit_w: None }
    }
}

/// A `--power-limit` for a device whose power this machine does not report.
#[derive(Debug, thiserror::Error)]
#[error(
    "--power-limit: device {index} ({device}) reports no power on this machine (`wgminer devices` shows its sensor), so there is nothing to hold under the limit; use --duty instead"
)]
pub struct NoPowerReading {
    pub index: usize,
    pub device: String,
}

/// Refuses a power limit on a device whose sensor (found under `sys`) gives no power reading.
pub fn check_power_limits(
    devices: &[Box<dyn Sweeper>],
    budgets: &[Budget],
    sys: &std::path::Path,
) -> Result<(), NoPowerReading> {
    for (index, (device, budget)) in devices.iter().zip(budgets).enumerate() {
        let mut sensor = sensor::for_device(device.info(), sys);
        if budget.power_limit_w.is_some() && !sensor.as_mut().is_some_and(|s| sensor::reads_power(s.as_mut())) {
            return Err(NoPowerReading { index, device: device.info().to_string() });
        }
    }
    Ok(())
}

impl Sensing {
    /// Each device's sensor, where this platform has one (`sensor::of`).
    pub fn detect(devices: &[Box<dyn Sweeper>], limits: Option<TempLimits>) -> Sensing {
        let sensors = devices.iter().map(|d| sensor::of(d.info())).collect();
        Sensing { sensors, limits, every: Duration::from_secs(1), budgets: Vec::new() }
    }

    /// With these budgets, one a device.
    pub fn with_budgets(self, budgets: Vec<Budget>) -> Sensing {
        Sensing { budgets, ..self }
    }
}

impl Miner {
    /// Starts mining `source` on `devices`, with the sensors this platform has for them; to be
    /// called inside a Tokio runtime.
    pub fn start(source: Source, devices: Vec<Box<dyn Sweeper>>) -> Miner {
        let sensing = Sensing::detect(&devices, None);
        Miner::start_with(source, devices, sensing)
    }

    /// Starts mining with these sensors (a guard, a test's fakes) and budgets. With no
    /// device at all, only devices attached later (`attacher`) mine.
    pub fn start_with(source: Source, devices: Vec<Box<dyn Sweeper>>, sensing: Sensing) -> Miner {
        let stats = Arc::new(Stats::new());
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
                    stop: stop_rx.clone(),
                };
                (Some(control), tokio::spawn(driver::run(pools, links)))
            }
            Source::Node(config) => {
                tracing::info!("node: {}, found blocks journaled to {}", config.node.url, config.journal.display());
                (None, tokio::spawn(gbt::client::run(config, work, shares, stats.clone(), stop_rx.clone())))
            }
        };
        let scheduler = Scheduler::new(work_rx, share_tx, stats.clone());
        let (sampler, sampler_stop) = start_devices(&scheduler, devices, sensing, &stats);
        let ticker = tokio::spawn(tick(stats.clone(), stop_rx));
        Miner { stats, outcomes, control, scheduler, sampler: (sampler, sampler_stop), ticker, source, stop }
    }

    /// Adds devices while mining: browser tabs that open the device page.
    pub fn attacher(&self) -> Attach {
        self.scheduler.attacher()
    }

    /// Waits until `done` holds of the counters, or `ceiling` passes: whether it held. Tests
    /// and benches wait for outcomes this way, not for fixed times.
    pub async fn until(&self, ceiling: Duration, done: impl Fn(&Stats) -> bool) -> bool {
        Miner::wait(&self.stats, ceiling, done).await
    }

    async fn wait(stats: &Stats, ceiling: Duration, done: impl Fn(&Stats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + ceiling;
        while !done(stats) {
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
        let (scheduler, sampler) = (self.scheduler, self.sampler.0);
        let devices = tokio::task::spawn_blocking(move || {
            let _ = sampler.join();
            scheduler.join()
        })
        .await
        .unwrap_or_default();
        // The pool's answers to the last submits: waited for, not for a fixed time, and at
        // most two seconds (a pool that does not answer has them journaled below).
        let answered = |s: &Stats| {
            let c = s.counts();
            c.ended() >= c.found
        };
        let stats = self.stats.clone();
        Miner::wait(&stats, Duration::from_secs(2), answered).await;
        let _ = self.stop.send(true);
        self.ticker.abort();
        let _ = self.source.await;
        let switches = self.stats.job_switches().into_iter().skip(1).collect();
        Stopped { devices, switches, outcomes: self.outcomes }
    }
}

/// Starts each device with its throttle, and the sampler over the sensors of those that have
/// one (their temperature guard and power loop).
fn start_devices(
    scheduler: &Scheduler,
    devices: Vec<Box<dyn Sweeper>>,
    sensing: Sensing,
    stats: &Arc<Stats>,
) -> (std::thread::JoinHandle<()>, Arc<AtomicBool>) {
    let mut watched = Vec::new();
    let mut sensors = sensing.sensors.into_iter();
    let mut budgets = sensing.budgets.into_iter();
    for d in devices {
        let budget = budgets.next().unwrap_or_default();
        let throttle = Arc::new(Throttle::new(budget.duty_percent));
        let device = scheduler.spawn(d, throttle.clone());
        match sensors.next().flatten() {
            Some(sensor) => {
                tracing::info!("device {}: power and temperature from {}", device.0, sensor.name());
                let power = budget.power_limit_w.map(PowerLoop::new);
                watched.push(Watched { device, sensor, throttle, power });
            }
            None if sensing.limits.is_some() => {
                tracing::warn!("device {}: no temperature reported here, so --temp-cutoff cannot guard it", device.0)
            }
            None => tracing::info!("device {}: power and temperature not reported on this machine", device.0),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sensor::sample(watched, sensing.limits, sensing.every, stats.clone(), stop.clone());
    (sampler, stop)
}

/// A rate sample every second, for the API's "MHS 5s", the dashboard and V2's channel
/// updates; and, while no device is alive, a word once a minute (the miner keeps trying).
async fn tick(stats: Arc<Stats>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut next_word: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        stats.tick();
        let devices = stats.devices().len();
        if devices == 0 || stats.alive() > 0 {
            next_word = None;
            continue;
        }
        let now = tokio::time::Instant::now();
        if next_word.is_none_or(|at| now >= at) {
            tracing::warn!("no device is mining: {devices} device(s), none alive; still trying to open them");
            next_word = Some(now + Duration::from_secs(60));
        }
    }
}
