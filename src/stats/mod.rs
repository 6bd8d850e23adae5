//! Counters and rates for the status line, the summary and the API, fed by events: sources
//! and devices report what happened (`Event`) through `Stats::record`, the one place a
//! counter changes; subscribers get the same events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

mod pools;
use pools::PoolViews;
pub use pools::{PoolView, Pools};

use crate::device::{DeviceInfo, Reading};
use crate::work::{DeviceId, Difficulty, PoolId};

/// One step in a share's life: found by a device (and handed to its source), then exactly
/// one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareEvent {
    Found,
    Accepted,
    Rejected,
    Stale,
    /// Written to the journal: it could not be sent, or was never answered.
    Journaled,
    /// Neither sent nor written (logged whole instead).
    Unjournaled,
}

/// What the sources and devices report. Every counter changes here and only here
/// (`Stats::record`), so the totals, each device's and each pool's are the same events
/// counted three ways; subscribers (`Stats::subscribe`) see the same events.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A device swept `count` nonces.
    Hashes { device: DeviceId, count: u64 },
    /// A candidate the CPU did not confirm.
    HardwareError { device: DeviceId },
    /// A share's step, on the work of `pool`, found by `device`.
    Share { device: DeviceId, pool: PoolId, event: ShareEvent },
    /// A verified hit's difficulty (the best is kept).
    Hit { difficulty: Difficulty },
    /// A pool or node answered a submission after `latency`.
    Answer { pool: PoolId, latency: Duration },
    /// New work from `pool`, at the share difficulty it carries.
    Job { pool: PoolId, difficulty: Difficulty },
    /// The connection to `pool` failed, and why (a refused port, a TLS trust failure, a wrong
    /// SV2 key, a pool that fell silent…).
    PoolDown { pool: PoolId, reason: String },
    /// The failover policy's choice: the pool in use, the one to return to, which are enabled.
    PoolChoice { active: PoolId, preferred: PoolId, enabled: Vec<bool> },
    /// Solo: a template from the node `pool`, at the network's difficulty.
    Template { pool: PoolId, network_difficulty: Difficulty },
    /// Solo: a block found (then journaled and submitted; its end is a `Share` event).
    Block,
    /// `device` took up a new job `latency` after it arrived (at its first dispatch).
    JobSwitch { device: DeviceId, latency: Duration },
    /// What `device`'s sensor read (once a second, where it has one).
    Sensor { device: DeviceId, reading: Reading },
    /// The temperature guard paused `device` (too hot) or let it go on (cooled).
    Paused { device: DeviceId, paused: bool, temp_c: Option<f64> },
    /// `device` changed state in its life (the watchdog's view), with the driver's message
    /// where a failure has one.
    DeviceState { device: DeviceId, state: DeviceState, message: Option<String> },
    /// `device` now sweeps this share of the time (its `--duty`, or the power limit's loop).
    Duty { device: DeviceId, duty: f64 },
}

/// Where a device is in its life: opened (or opened again), mining, failed and about to be
/// opened again, failed too often (retried every ten minutes), or gone for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Starting,
    Alive,
    Sick,
    Dead,
    Gone,
}

impl DeviceState {
    pub const ALL: [DeviceState; 5] =
        [DeviceState::Starting, DeviceState::Alive, DeviceState::Sick, DeviceState::Dead, DeviceState::Gone];

    pub fn name(self) -> &'static str {
        match self {
            DeviceState::Starting => "starting",
            DeviceState::Alive => "alive",
            DeviceState::Sick => "sick",
            DeviceState::Dead => "dead",
            DeviceState::Gone => "gone",
        }
    }
}

/// A device's state as the API, the metrics and the page show it: its life's state, or
/// `paused` while it is alive and the temperature guard holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: DeviceState,
    pub paused: bool,
    /// The driver's last message, kept after the device recovers.
    pub message: Option<String>,
    pub since: Instant,
}

impl Status {
    /// `starting`, `alive`, `paused`, `sick`, `dead` or `gone`.
    pub fn name(&self) -> &'static str {
        match self.state {
            DeviceState::Alive if self.paused => "paused",
            state => state.name(),
        }
    }
}

/// Share counters of one scope (all, a device, a pool).
#[derive(Debug, Default)]
struct Tally([AtomicU64; 6]);

impl Tally {
    fn add(&self, event: ShareEvent) {
        self.0[event as usize].fetch_add(1, Relaxed);
    }

    fn counts(&self) -> Counts {
        let n = |e: ShareEvent| self.0[e as usize].load(Relaxed);
        Counts {
            found: n(ShareEvent::Found),
            accepted: n(ShareEvent::Accepted),
            rejected: n(ShareEvent::Rejected),
            stale: n(ShareEvent::Stale),
            journaled: n(ShareEvent::Journaled),
            unjournaled: n(ShareEvent::Unjournaled),
        }
    }
}

/// What became of the shares of one scope so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    pub found: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub journaled: u64,
    pub unjournaled: u64,
}

impl Counts {
    /// Shares that reached their end; equal to `found` once nothing is in flight.
    pub fn ended(&self) -> u64 {
        self.accepted + self.rejected + self.stale + self.journaled + self.unjournaled
    }
}

/// Events kept for subscribers that fall behind (they are told how many they missed).
const EVENT_BUFFER: usize = 4096;

/// Job switches kept for the summary's quantiles: a day of a new job every 10 s, per device.
const MAX_SWITCHES: usize = 10_000;

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    hashes: AtomicU64,
    hw_errors: AtomicU64,
    shares: Tally,
    templates: AtomicU64,
    blocks: AtomicU64,
    /// f64 bits of the network difficulty; 0 when mining for a pool.
    network_difficulty: AtomicU64,
    /// f64 bits of the best share difficulty seen.
    best_share: AtomicU64,
    last_sample: Mutex<(Instant, u64)>,
    /// The latest job switches (`Event::JobSwitch`), oldest first, `MAX_SWITCHES` at most.
    switches: Mutex<VecDeque<Duration>>,
    /// Hash counts of the last 10 s, one sample a second (`tick`), for the API's "MHS 5s".
    samples: Mutex<VecDeque<(Instant, u64, Vec<u64>)>>,
    devices: Mutex<Vec<Arc<DeviceStats>>>,
    pools: PoolViews,
    events: broadcast::Sender<Event>,
}

/// What one device did.
#[derive(Debug)]
pub struct DeviceStats {
    /// What it is, as `wgminer devices` lists it.
    pub info: DeviceInfo,
    pub id: DeviceId,
    hashes: AtomicU64,
    hw_errors: AtomicU64,
    shares: Tally,
    sensor: Mutex<Option<Reading>>,
    paused: std::sync::atomic::AtomicBool,
    life: Mutex<(DeviceState, Option<String>, Instant)>,
    /// f64 bits of the share of the time it sweeps.
    duty: AtomicU64,
}

impl DeviceStats {
    /// The latest reading of its sensor; none without one.
    pub fn sensor(&self) -> Option<Reading> {
        self.sensor.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the temperature guard holds it.
    pub fn paused(&self) -> bool {
        self.paused.load(Relaxed)
    }

    pub fn status(&self) -> Status {
        let (state, message, since) = self.life.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Status { state, paused: self.paused(), message, since }
    }

    fn moved(&self, state: DeviceState, message: &Option<String>) {
        let mut life = self.life.lock().unwrap_or_else(|p| p.into_inner());
        // The last failure's message stays while the device recovers.
        *life = (state, message.clone().or(life.1.take()), Instant::now());
    }

    /// The share of the time it sweeps (1 at full speed).
    pub fn duty(&self) -> f64 {
        f64::from_bits(self.duty.load(Relaxed))
    }

    pub fn hashes(&self) -> u64 {
        self.hashes.load(Relaxed)
    }

    pub fn hw_errors(&self) -> u64 {
        self.hw_errors.load(Relaxed)
    }

    pub fn counts(&self) -> Counts {
        self.shares.counts()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        let now = Instant::now();
        Stats {
            started: now,
            hashes: AtomicU64::new(0),
            hw_errors: AtomicU64::new(0),
            shares: Tally::default(),
            templates: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            network_difficulty: AtomicU64::new(0f64.to_bits()),
            best_share: AtomicU64::new(0f64.to_bits()),
            last_sample: Mutex::new((now, 0)),
            switches: Mutex::new(VecDeque::new()),
            samples: Mutex::new(VecDeque::from([(now, 0, Vec::new())])),
            devices: Mutex::new(Vec::new()),
            pools: PoolViews::default(),
            events: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    /// Registers a device: the id its events carry.
    pub fn device(&self, info: &DeviceInfo) -> DeviceId {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let id = DeviceId(devices.len());
        devices.push(Arc::new(DeviceStats {
            info: info.clone(),
            id,
            hashes: AtomicU64::new(0),
            hw_errors: AtomicU64::new(0),
            shares: Tally::default(),
            sensor: Mutex::new(None),
            paused: Default::default(),
            life: Mutex::new((DeviceState::Alive, None, Instant::now())),
            duty: AtomicU64::new(1f64.to_bits()),
        }));
        id
    }

    /// Devices alive (a paused one too: it is well, and resumes by itself).
    pub fn alive(&self) -> usize {
        self.devices().iter().filter(|d| d.status().state == DeviceState::Alive).count()
    }

    /// Every event in one place: the totals, the device's and the pool's counters move
    /// together, then subscribers hear of it.
    pub fn record(&self, event: Event) {
        // One device's counters, without copying the list on every event.
        let device = |id: DeviceId| self.devices.lock().unwrap_or_else(|p| p.into_inner()).get(id.0).cloned();
        match &event {
            Event::Hashes { device: id, count } => {
                self.hashes.fetch_add(*count, Relaxed);
                if let Some(d) = device(*id) {
                    d.hashes.fetch_add(*count, Relaxed);
                }
            }
            Event::HardwareError { device: id } => {
                self.hw_errors.fetch_add(1, Relaxed);
                if let Some(d) = device(*id) {
                    d.hw_errors.fetch_add(1, Relaxed);
                }
            }
            Event::Share { device: id, pool, event } => {
                self.shares.add(*event);
                if let Some(d) = device(*id) {
                    d.shares.add(*event);
                }
                self.pools.count(*pool, *event);
            }
            Event::Hit { difficulty } => {
                let value = difficulty.value();
                let _ = self
                    .best_share
                    .fetch_update(Relaxed, Relaxed, |bits| (value > f64::from_bits(bits)).then_some(value.to_bits()));
            }
            Event::Answer { pool, latency } => self.pools.answer(*pool, *latency),
            Event::Job { pool, difficulty } => self.pools.job(*pool, *difficulty),
            Event::PoolDown { pool, reason } => self.pools.down(*pool, reason),
            Event::PoolChoice { active, preferred, enabled } => self.pools.choice(*active, *preferred, enabled),
            Event::Template { pool, network_difficulty } => {
                self.templates.fetch_add(1, Relaxed);
                self.network_difficulty.store(network_difficulty.value().to_bits(), Relaxed);
                self.pools.job(*pool, *network_difficulty);
            }
            Event::Block => _ = self.blocks.fetch_add(1, Relaxed),
            Event::Sensor { device: id, reading } => {
                if let Some(d) = device(*id) {
                    *d.sensor.lock().unwrap_or_else(|p| p.into_inner()) = Some(reading.clone());
                }
            }
            Event::Paused { device: id, paused, .. } => {
                device(*id).iter().for_each(|d| d.paused.store(*paused, Relaxed))
            }
            Event::JobSwitch { latency, .. } => self.switched(*latency),
            Event::DeviceState { device: id, state, message } => {
                device(*id).iter().for_each(|d| d.moved(*state, message))
            }
            Event::Duty { device: id, duty } => device(*id).iter().for_each(|d| d.duty.store(duty.to_bits(), Relaxed)),
        }
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event);
        }
    }

    fn switched(&self, latency: Duration) {
        let mut switches = self.switches.lock().unwrap_or_else(|p| p.into_inner());
        if switches.len() == MAX_SWITCHES {
            switches.pop_front();
        }
        switches.push_back(latency);
    }

    /// Adds a source to the view (pools in priority order, or the node): the id its events carry.
    pub fn register_pool(&self, url: &str, user: &str) -> PoolId {
        self.pools.register(url, user)
    }

    /// Every pool's state, as the events left it.
    pub fn pools(&self) -> Pools {
        self.pools.snapshot()
    }

    /// Every event from now on, as `record` takes it.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// What became of every share so far.
    pub fn counts(&self) -> Counts {
        self.shares.counts()
    }

    pub fn hashes(&self) -> u64 {
        self.hashes.load(Relaxed)
    }

    pub fn hw_errors(&self) -> u64 {
        self.hw_errors.load(Relaxed)
    }

    pub fn templates(&self) -> u64 {
        self.templates.load(Relaxed)
    }

    pub fn blocks(&self) -> u64 {
        self.blocks.load(Relaxed)
    }

    /// The latest job switches, oldest first (the first is each device's start).
    pub fn job_switches(&self) -> Vec<Duration> {
        self.switches.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }

    /// One line per device: average MH/s and hardware errors.
    pub fn device_lines(&self) -> Vec<String> {
        let up = self.uptime().as_secs_f64().max(1e-9);
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mhs = d.hashes() as f64 / up / 1e6;
                let status = d.status();
                let mut line =
                    format!("device {i} {}: {mhs:.2} MH/s avg, HW:{}, {}", d.info, d.hw_errors(), status.name());
                if d.duty() < 1.0 {
                    line += &format!(", duty {:.0} %", d.duty() * 100.0);
                }
                if let Some(message) = status.message {
                    line += &format!(" (last fault: {message})");
                }
                line
            })
            .collect()
    }

    /// Snapshots of every registered device's counters, in registration order.
    pub fn devices(&self) -> Vec<Arc<DeviceStats>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes a one-second sample of the hash counters; the mining loop calls it every second.
    pub fn tick(&self) {
        let per_device: Vec<u64> = self.devices().iter().map(|d| d.hashes()).collect();
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back((Instant::now(), self.hashes.load(Relaxed), per_device));
        while samples.len() > 11 {
            samples.pop_front();
        }
    }

    /// MH/s over the last five seconds (cgminer's "MHS 5s"): the total, then per device.
    pub fn mhs_5s(&self) -> (f64, Vec<f64>) {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (Some(last), Some(first)) = (
            samples.back(),
            samples.iter().rev().find(|s| s.0.elapsed() >= Duration::from_secs(5)).or(samples.front()),
        ) else {
            return (0.0, Vec::new());
        };
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        if seconds <= 0.0 {
            return (0.0, vec![0.0; last.2.len()]);
        }
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds / 1e6;
        let devices = last.2.iter().enumerate().map(|(i, &h)| rate(h, first.2.get(i).copied().unwrap_or(0))).collect();
        (rate(last.1, first.1), devices)
    }

    /// The devices' power added up and the hottest one, where any sensor reports power.
    pub fn power(&self) -> Option<Power> {
        let readings: Vec<Reading> = self.devices().iter().filter_map(|d| d.sensor()).collect();
        let watts: Vec<f64> = readings.iter().filter_map(|r| r.power_w).collect();
        let hottest_c = readings.iter().filter_map(|r| r.temp_c).reduce(f64::max);
        (!watts.is_empty()).then(|| Power { watts: watts.iter().sum(), hottest_c })
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn best_share(&self) -> f64 {
        f64::from_bits(self.best_share.load(Relaxed))
    }

    pub fn network_difficulty(&self) -> f64 {
        f64::from_bits(self.network_difficulty.load(Relaxed))
    }

    /// The mean submit round trip over every pool, from each pool's own.
    pub fn mean_latency(&self) -> Option<Duration> {
        let pools = self.pools().entries;
        let answers: u64 = pools.iter().map(|p| p.answers).sum();
        (answers > 0).then(|| pools.iter().map(|p| p.answer_time).sum::<Duration>().div_f64(answers as f64))
    }

    pub fn average_mhs(&self) -> f64 {
        self.hashes.load(Relaxed) as f64 / self.uptime().as_secs_f64().max(1e-9) / 1e6
    }

    /// MH/s since the last call (the status line's interval rate).
    pub fn interval_mhs(&self) -> f64 {
        let mut last = self.last_sample.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let hashes = self.hashes.load(Relaxed);
        let rate = (hashes - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9) / 1e6;
        *last = (now, hashes);
        rate
    }

    /// One line, as cgminer prints it every few seconds. Solo mining adds templates, blocks
    /// and the expected time to a block at the network difficulty.
    pub fn status_line(&self) -> String {
        let now = self.interval_mhs();
        let counts = self.counts();
        let mut line = format!(
            "{:.2} MH/s now, {:.2} MH/s avg | A:{} R:{} S:{} HW:{} | best share {:.4} | latency {} | up {}s",
            now,
            self.average_mhs(),
            counts.accepted,
            counts.rejected,
            counts.stale,
            self.hw_errors(),
            self.best_share(),
            self.mean_latency().map_or("-".into(), |d| format!("{} ms", d.as_millis())),
            self.uptime().as_secs()
        );
        let devices = self.devices();
        let others: Vec<String> = devices
            .iter()
            .map(|d| (d.id, d.status()))
            .filter(|(_, status)| status.state != DeviceState::Alive)
            .map(|(id, status)| format!("{} {}", id.0, status.name()))
            .collect();
        if !others.is_empty() {
            let alive = devices.len() - others.len();
            line += &format!(" | devices {alive}/{} alive ({})", devices.len(), others.join(", "));
        }
        let throttled: Vec<String> = devices
            .iter()
            .filter(|d| d.duty() < 1.0)
            .map(|d| format!("{} {:.0} %", d.id.0, d.duty() * 100.0))
            .collect();
        if !throttled.is_empty() {
            line += &format!(" | duty {}", throttled.join(", "));
        }
        if let Some(power) = self.power() {
            line += &format!(" | {:.0} W", power.watts);
            if now > 0.0 && power.watts > 0.0 {
                line += &format!(", {:.3} MH/J", now / power.watts);
            }
            if let Some(t) = power.hottest_c {
                line += &format!(", {t:.0} °C");
            }
        }
        let difficulty = self.network_difficulty();
        if difficulty > 0.0 {
            line += &format!(
                " | templates {} blocks {} | difficulty {}, expected block every {}",
                self.templates(),
                self.blocks(),
                // Regtest's is 4.7e-10, mainnet's 1e14: neither reads well with fixed decimals.
                if difficulty < 0.001 { format!("{difficulty:.3e}") } else { format!("{difficulty:.4}") },
                expected_time(difficulty, self.average_mhs())
            );
        }
        line
    }
}

/// What the devices' sensors say together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Power {
    pub watts: f64,
    pub hottest_c: Option<f64>,
}

/// Seconds since the Unix epoch, as journals and the API stamp their records.
pub fn unix_time() -> u64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The mean time to a block at `difficulty` and `mhs`: difficulty × 2^32 hashes.
pub fn expected_time(difficulty: f64, mhs: f64) -> String {
    if mhs <= 0.0 {
        return "-".into();
    }
    let seconds = difficulty * 4_294_967_296.0 / (mhs * 1e6);
    match seconds {
        s if s < 1.0 => format!("{:.0} ms", s * 1e3),
        s if s < 120.0 => format!("{s:.1} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s if s < 63_072_000.0 => format!("{:.1} days", s / 86400.0),
        s => format!("{:.3e} years", s / 31_557_600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random lives of shares across devices and pools (each found, then exactly one end,
    /// the lives interleaved, hashes and hardware errors between): in total, for every
    /// device and for every pool, found equals ended, and devices and pools each add up to
    /// the totals.
    #[test]
    fn every_share_ends_once_in_every_scope() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let ends = [
            ShareEvent::Accepted,
            ShareEvent::Rejected,
            ShareEvent::Stale,
            ShareEvent::Journaled,
            ShareEvent::Unjournaled,
        ];
        for _ in 0..300 {
            let stats = Stats::new();
            let (devices, pools) = (1 + next(4), 1 + next(3));
            for d in 0..devices {
                stats.device(&DeviceInfo { name: format!("d{d}"), ..Default::default() });
            }
            for p in 0..pools {
                stats.register_pool(&format!("p{p}"), "u");
            }
            let mut open: Vec<(DeviceId, PoolId)> = Vec::new();
            for _ in 0..next(400) {
                let (device, pool) = (DeviceId(next(devices)), PoolId(next(pools)));
                match next(4) {
                    0 => stats.record(Event::Hashes { device, count: 1 << 20 }),
                    1 if !open.is_empty() => {
                        let (device, pool) = open.swap_remove(next(open.len()));
                        stats.record(Event::Share { device, pool, event: ends[next(ends.len())] });
                    }
                    _ => {
                        stats.record(Event::Share { device, pool, event: ShareEvent::Found });
                        open.push((device, pool));
                    }
                }
            }
            assert_eq!(stats.counts().found - stats.counts().ended(), open.len() as u64, "in flight");
            for (device, pool) in open.drain(..) {
                stats.record(Event::Share { device, pool, event: ShareEvent::Journaled });
            }
            let total = stats.counts();
            assert_eq!(total.found, total.ended());
            let by_device: Vec<Counts> = stats.devices().iter().map(|d| d.counts()).collect();
            let by_pool: Vec<Counts> = stats.pools().entries.iter().map(|p| p.shares).collect();
            for scope in [&by_device, &by_pool] {
                assert!(scope.iter().all(|c| c.found == c.ended()), "{scope:?}");
                let sum = |f: fn(&Counts) -> u64| scope.iter().map(f).sum::<u64>();
                assert_eq!(sum(|c| c.found), total.found);
                assert_eq!(sum(|c| c.accepted), total.accepted);
                assert_eq!(sum(|c| c.rejected), total.rejected);
                assert_eq!(sum(|c| c.stale), total.stale);
                assert_eq!(sum(|c| c.journaled), total.journaled);
                assert_eq!(sum(|c| c.unjournaled), total.unjournaled);
            }
        }
    }

    /// Subscribers see the events the counters were moved by.
    #[test]
    fn subscribers_see_each_event() {
        let stats = Stats::new();
        let device = stats.device(&DeviceInfo { name: "d".into(), ..Default::default() });
        let mut events = stats.subscribe();
        let found = Event::Share { device, pool: PoolId(0), event: ShareEvent::Found };
        stats.record(found.clone());
        stats.record(Event::Hashes { device, count: 7 });
        assert_eq!(events.try_recv().unwrap(), found);
        assert_eq!(events.try_recv().unwrap(), Event::Hashes { device, count: 7 });
        assert_eq!((stats.hashes(), stats.devices()[0].hashes()), (7, 7));
    }

    #[test]
    fn expected_time_to_a_block() {
        use super::expected_time;
        // Regtest: difficulty 4.66e-10, two hashes per block.
        assert_eq!(expected_time(4.656542373906925e-10, 10.0), "0 ms");
        assert_eq!(expected_time(1.0, 10.0), "7.2 min");
        assert_eq!(expected_time(1.0, 1000.0), "4.3 s");
        assert_eq!(expected_time(100.0, 1.0), "5.0 days");
        assert_eq!(expected_time(1.0, 0.0), "-");
    }
}
