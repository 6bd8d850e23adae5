//! `/api/v1/…`: the counters as JSON, read from `Stats` (which only events move), the same
//! numbers the summary line, the cgminer API and `/metrics` show.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::{Mode, Site, protocol, redact};
use crate::stats::Counts;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub version: &'static str,
    pub mode: Mode,
    /// Unix seconds.
    pub started: u64,
    pub uptime_s: f64,
    pub hashes: u64,
    pub mhs_5s: f64,
    pub mhs_avg: f64,
    pub shares: Counts,
    pub hardware_errors: u64,
    pub best_share: f64,
    pub mean_latency_ms: Option<f64>,
    /// Solo mining.
    pub templates: u64,
    pub blocks: u64,
    pub network_difficulty: Option<f64>,
    /// `demo` and `pool`: what the embedded pool saw, by protocol.
    pub pool_side: Vec<PoolSide>,
}

#[derive(Debug, Serialize)]
pub struct PoolSide {
    pub protocol: &'static str,
    pub accepted: u64,
    pub rejected: u64,
    pub connections: u64,
}

#[derive(Debug, Serialize)]
pub struct Device {
    pub id: usize,
    pub name: String,
    pub backend: String,
    pub hashes: u64,
    pub mhs_5s: f64,
    pub mhs_avg: f64,
    pub hardware_errors: u64,
    pub shares: Counts,
    /// The latest sensor reading, where the device has a sensor.
    pub sensor: Option<crate::device::Reading>,
    /// MH/s (5 s) over watts, where the sensor reports power.
    pub mh_per_joule: Option<f64>,
    /// Held by the temperature guard.
    pub paused: bool,
    /// starting, alive, paused, sick, dead or gone.
    pub state: &'static str,
    /// Seconds in that state.
    pub state_seconds: f64,
    /// The driver's last message when the device failed, kept after it recovers.
    pub last_fault: Option<String>,
    /// The share of the time it sweeps, 0 to 1 (`--duty`, `--power-limit`).
    pub duty: f64,
    /// What the adapter is and runs on: its backend's driver.
    pub driver: String,
}

#[derive(Debug, Serialize)]
pub struct Pool {
    pub id: usize,
    /// Without credentials.
    pub url: String,
    pub protocol: &'static str,
    pub user: String,
    /// "in use", "standby", "down" or "disabled".
    pub state: &'static str,
    pub active: bool,
    pub preferred: bool,
    pub jobs: u64,
    pub difficulty: f64,
    pub latency_ms: Option<f64>,
    /// Unix seconds of the last answered share.
    pub last_share: Option<u64>,
    pub last_failure: Option<String>,
    pub shares: Counts,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn summary(site: &Site) -> Summary {
    let stats = &site.stats;
    let uptime = stats.uptime();
    let difficulty = stats.network_difficulty();
    Summary {
        version: env!("CARGO_PKG_VERSION"),
        mode: site.mode,
        started: crate::stats::unix_time().saturating_sub(uptime.as_secs()),
        uptime_s: uptime.as_secs_f64(),
        hashes: stats.hashes(),
        mhs_5s: stats.mhs_5s().0,
        mhs_avg: stats.average_mhs(),
        shares: stats.counts(),
        hardware_errors: stats.hw_errors(),
        best_share: stats.best_share(),
        mean_latency_ms: stats.mean_latency().map(ms),
        templates: stats.templates(),
        blocks: stats.blocks(),
        network_difficulty: (difficulty > 0.0).then_some(difficulty),
        pool_side: site
            .pool_side
            .iter()
            .map(|(protocol, p)| {
                use std::sync::atomic::Ordering::Relaxed;
                PoolSide {
                    protocol,
                    accepted: p.accepted.load(Relaxed),
                    rejected: p.rejected.load(Relaxed),
                    connections: p.connections.load(Relaxed),
                }
            })
            .collect(),
    }
}

pub fn devices(site: &Site) -> Vec<Device> {
    let up = site.stats.uptime().as_secs_f64().max(1e-9);
    let (_, rates) = site.stats.mhs_5s();
    site.stats
        .devices()
        .iter()
        .enumerate()
        .map(|(i, d)| Device {
            id: i,
            name: d.info.name.clone(),
            backend: d.info.backend.clone(),
            hashes: d.hashes(),
            mhs_5s: rates.get(i).copied().unwrap_or(0.0),
            mhs_avg: d.hashes() as f64 / up / 1e6,
            hardware_errors: d.hw_errors(),
            shares: d.counts(),
            mh_per_joule: d
                .sensor()
                .and_then(|s| s.power_w)
                .filter(|w| *w > 0.0)
                .map(|w| rates.get(i).copied().unwrap_or(0.0) / w),
            sensor: d.sensor(),
            paused: d.paused(),
            state: d.status().name(),
            state_seconds: d.status().since.elapsed().as_secs_f64(),
            last_fault: d.status().message,
            duty: d.duty(),
            driver: d.info.driver.clone(),
        })
        .collect()
}

pub fn pools(site: &Site) -> Vec<Pool> {
    let pools = site.stats.pools();
    pools
        .entries
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let active = pools.active.0 == i;
            Pool {
                id: i,
                url: redact(&p.url),
                protocol: protocol(&p.url),
                user: p.user.clone(),
                state: match (p.enabled, p.alive, active) {
                    (false, _, _) => "disabled",
                    (true, false, _) => "down",
                    (true, true, true) => "in use",
                    (true, true, false) => "standby",
                },
                active,
                preferred: pools.preferred.0 == i,
                jobs: p.jobs,
                difficulty: p.difficulty,
                latency_ms: p.mean_latency().map(ms),
                last_share: p.last_share.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                last_failure: p.last_failure.clone(),
                shares: p.shares,
            }
        })
        .collect()
}
