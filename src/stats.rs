//! Counters and rates shared by the status line, the summary and (later) the API. Lock-free
//! counters written by device threads and the pool session alike.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::pools::{PoolTable, Verdict};

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    pub hashes: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub stale: AtomicU64,
    pub hw_errors: AtomicU64,
    /// Verified shares handed to the source; each ends accepted, rejected, stale, journaled or
    /// unjournaled, exactly once.
    pub found: AtomicU64,
    pub journaled: AtomicU64,
    /// Shares that could be neither sent nor written to the journal (logged whole instead).
    pub unjournaled: AtomicU64,
    /// Solo mining: templates taken, blocks found, and the network difficulty (f64 bits, 0
    /// when mining for a pool).
    pub templates: AtomicU64,
    pub blocks: AtomicU64,
    network_difficulty: AtomicU64,
    /// f64 bits of the best share difficulty seen.
    best_share: AtomicU64,
    /// Sum and count of submit round trips, in microseconds.
    latency_us: AtomicU64,
    latency_n: AtomicU64,
    last_sample: Mutex<(Instant, u64)>,
    /// Hash counts of the last 10 s, one sample a second (`tick`), for the API's "MHS 5s".
    samples: Mutex<VecDeque<(Instant, u64, Vec<u64>)>>,
    devices: Mutex<Vec<Arc<DeviceStats>>>,
    pub pools: PoolTable,
}

/// What one device did: its own hashes and hardware errors.
#[derive(Debug, Default)]
pub struct DeviceStats {
    pub name: String,
    /// Position in `Stats::devices`, which shares carry.
    pub index: usize,
    pub hashes: AtomicU64,
    pub hw_errors: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
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
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            hw_errors: AtomicU64::new(0),
            found: AtomicU64::new(0),
            journaled: AtomicU64::new(0),
            unjournaled: AtomicU64::new(0),
            templates: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            network_difficulty: AtomicU64::new(0f64.to_bits()),
            best_share: AtomicU64::new(0f64.to_bits()),
            latency_us: AtomicU64::new(0),
            latency_n: AtomicU64::new(0),
            last_sample: Mutex::new((now, 0)),
            samples: Mutex::new(VecDeque::from([(now, 0, Vec::new())])),
            devices: Mutex::new(Vec::new()),
            pools: PoolTable::default(),
        }
    }

    /// Registers a device; its counters add to the totals through `add_hashes` and
    /// `add_hw_error`.
    pub fn device(&self, name: &str) -> Arc<DeviceStats> {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let device = Arc::new(DeviceStats { name: name.to_string(), index: devices.len(), ..Default::default() });
        devices.push(device.clone());
        device
    }

    /// Counts a pool's or node's answer to a share or block: in all, for the device that found
    /// it (stale counts as rejected there) and for the pool it went to.
    pub fn count_answer(&self, device: usize, pool: usize, verdict: Verdict) {
        let total = match verdict {
            Verdict::Accepted => &self.accepted,
            Verdict::Rejected => &self.rejected,
            Verdict::Stale => &self.stale,
        };
        total.fetch_add(1, Relaxed);
        if let Some(d) = self.devices().get(device) {
            if verdict == Verdict::Accepted { &d.accepted } else { &d.rejected }.fetch_add(1, Relaxed);
        }
        self.pools.count(pool, verdict);
    }

    pub fn add_hashes(&self, device: &DeviceStats, hashes: u64) {
        device.hashes.fetch_add(hashes, Relaxed);
        self.hashes.fetch_add(hashes, Relaxed);
    }

    pub fn add_hw_error(&self, device: &DeviceStats) {
        device.hw_errors.fetch_add(1, Relaxed);
        self.hw_errors.fetch_add(1, Relaxed);
    }

    /// One line per device: average MH/s and hardware errors.
    pub fn device_lines(&self) -> Vec<String> {
        let up = self.uptime().as_secs_f64().max(1e-9);
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mhs = d.hashes.load(Relaxed) as f64 / up / 1e6;
                format!("device {i} {}: {mhs:.2} MH/s avg, HW:{}", d.name, d.hw_errors.load(Relaxed))
            })
            .collect()
    }

    /// Snapshots of every registered device's counters, in registration order.
    pub fn devices(&self) -> Vec<Arc<DeviceStats>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes a one-second sample of the hash counters; the mining loop calls it every second.
    pub fn tick(&self) {
        let per_device: Vec<u64> = self.devices().iter().map(|d| d.hashes.load(Relaxed)).collect();
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

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn record_share_difficulty(&self, difficulty: f64) {
        let _ = self
            .best_share
            .fetch_update(Relaxed, Relaxed, |bits| (difficulty > f64::from_bits(bits)).then_some(difficulty.to_bits()));
    }

    pub fn best_share(&self) -> f64 {
        f64::from_bits(self.best_share.load(Relaxed))
    }

    pub fn set_network_difficulty(&self, difficulty: f64) {
        self.network_difficulty.store(difficulty.to_bits(), Relaxed);
    }

    pub fn network_difficulty(&self) -> f64 {
        f64::from_bits(self.network_difficulty.load(Relaxed))
    }

    pub fn record_latency(&self, latency: Duration) {
        self.latency_us.fetch_add(latency.as_micros() as u64, Relaxed);
        self.latency_n.fetch_add(1, Relaxed);
    }

    pub fn mean_latency(&self) -> Option<Duration> {
        let n = self.latency_n.load(Relaxed);
        (n > 0).then(|| Duration::from_micros(self.latency_us.load(Relaxed) / n))
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
        let mut line = format!(
            "{:.2} MH/s now, {:.2} MH/s avg | A:{} R:{} S:{} HW:{} | best share {:.4} | latency {} | up {}s",
            now,
            self.average_mhs(),
            self.accepted.load(Relaxed),
            self.rejected.load(Relaxed),
            self.stale.load(Relaxed),
            self.hw_errors.load(Relaxed),
            self.best_share(),
            self.mean_latency().map_or("-".into(), |d| format!("{} ms", d.as_millis())),
            self.uptime().as_secs()
        );
        let difficulty = self.network_difficulty();
        if difficulty > 0.0 {
            line += &format!(
                " | templates {} blocks {} | difficulty {}, expected block every {}",
                self.templates.load(Relaxed),
                self.blocks.load(Relaxed),
                // Regtest's is 4.7e-10, mainnet's 1e14: neither reads well with fixed decimals.
                if difficulty < 0.001 { format!("{difficulty:.3e}") } else { format!("{difficulty:.4}") },
                expected_time(difficulty, self.average_mhs())
            );
        }
        line
    }
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
    use crate::pools::PoolEntry;

    /// Totals, per-device and per-pool counters are bumped in one place, so they add up.
    #[test]
    fn answers_add_up_per_device_and_per_pool() {
        let stats = Stats::new();
        stats.device("a");
        stats.device("b");
        stats.pools.register("p0", "u");
        stats.pools.register("p1", "u");
        let answers =
            [(0, 0, Verdict::Accepted), (1, 1, Verdict::Rejected), (1, 0, Verdict::Stale), (0, 1, Verdict::Accepted)];
        for (device, pool, verdict) in answers {
            stats.count_answer(device, pool, verdict);
        }
        let (pools, _) = stats.pools.snapshot();
        let devices = stats.devices();
        let total = |f: fn(&PoolEntry) -> u64| pools.iter().map(f).sum::<u64>();
        assert_eq!(stats.accepted.load(Relaxed), total(|p| p.accepted));
        assert_eq!(stats.rejected.load(Relaxed), total(|p| p.rejected));
        assert_eq!(stats.stale.load(Relaxed), total(|p| p.stale));
        let by_device: u64 = devices.iter().map(|d| d.accepted.load(Relaxed) + d.rejected.load(Relaxed)).sum();
        assert_eq!(by_device, 4);
        assert_eq!(devices.iter().map(|d| d.accepted.load(Relaxed)).sum::<u64>(), stats.accepted.load(Relaxed));
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
