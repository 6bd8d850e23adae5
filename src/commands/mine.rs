//! Mining, for `mine`, `solo` and `demo` alike: a source (pools, or a node), the scheduler
//! and the devices, with a status line every few seconds and a summary at the end.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::api::{ApiContext, ApiOptions};
use crate::device::Sweeper;
use crate::scheduler::Scheduler;
use crate::source::gbt::client::SoloConfig;
use crate::source::stratum::{PoolConfig, ShareOutcome, driver};
use crate::stats::Stats;
use crate::work::{Difficulty, Target};

pub struct MineOptions {
    /// Stop after this long; `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
    pub status_every: Duration,
    /// The cgminer-compatible monitoring API, when asked for.
    pub api: Option<ApiOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub seconds: f64,
    pub hashes: u64,
    pub mhs: f64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub hw_errors: u64,
    pub journaled: u64,
    /// Shares that could not be written to the journal either (their lines are in the log).
    pub unjournaled: u64,
    pub best_share: f64,
    /// Solo mining: templates taken and blocks found.
    pub templates: u64,
    pub blocks: u64,
    /// Time from a new job's notify to the start of a device's first dispatch of it (median and 99th
    /// percentile), over every job but the first.
    pub job_switch_p50_ms: Option<f64>,
    pub job_switch_p99_ms: Option<f64>,
}

/// The `q` quantile (0..=1) of `values`, by nearest rank.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Where work comes from.
pub enum Source {
    /// Stratum pools, in priority order.
    Pools(Vec<PoolConfig>),
    /// A node's getblocktemplate.
    Node(SoloConfig),
}

/// Mines `source` on `devices` until the duration ends or Ctrl-C; returns the summary and the
/// devices.
pub async fn mine(
    source: Source,
    devices: Vec<Box<dyn Sweeper>>,
    options: &MineOptions,
) -> (Summary, Vec<Box<dyn Sweeper>>) {
    let stats = Arc::new(Stats::new());
    let (work_tx, work_rx) = watch::channel(None);
    let (share_tx, share_rx) = mpsc::channel(crate::scheduler::SHARE_QUEUE);
    let (outcome_tx, mut outcome_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();

    for d in &devices {
        tracing::info!("device: {}", d.info());
    }
    let infos = devices.iter().map(|d| d.info().clone()).collect();
    let mut quit_rx = start_api(options, infos, &source, &stats).await;
    let client = spawn_source(source, work_tx, share_rx, stats.clone(), outcome_tx, stop_rx);
    let scheduler = Scheduler::new(work_rx, share_tx, stats.clone());
    let threads: Vec<_> = devices.into_iter().map(|d| scheduler.spawn(d)).collect();

    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut status = tokio::time::interval(options.status_every);
    status.tick().await;
    let mut sample = tokio::time::interval(Duration::from_secs(1));
    // One listener for the whole run: a signal between two turns of the loop is not missed.
    let signal = super::stop_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = sample.tick() => stats.tick(),
            Some(()) = quit_rx.recv() => { tracing::info!("stopping (API quit)"); break }
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break,
            name = &mut signal => { tracing::info!("stopping ({name})"); break }
            _ = status.tick() => crate::logging::status(&stats.status_line()),
            Some((share, outcome)) = outcome_rx.recv() => log_outcome(&share, outcome),
        }
    }
    crate::logging::end_status();
    // The rate counts the mining window only, not start-up and shutdown.
    let mining_time = started.elapsed().as_secs_f64();
    let hashes = stats.hashes();
    // Devices first, so that their last shares reach the client before it stops.
    let stop_flag = scheduler.stop_flag();
    stop_flag.store(true, Relaxed);
    let switches: Vec<f64> = {
        let latencies = scheduler.switch_latencies.lock().unwrap_or_else(|p| p.into_inner());
        latencies.iter().skip(1).map(|d| d.as_secs_f64() * 1e3).collect()
    };
    drop(scheduler);
    let devices: Vec<Box<dyn Sweeper>> =
        tokio::task::spawn_blocking(move || threads.into_iter().filter_map(|t| t.join().ok()).collect())
            .await
            .unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(200)).await; // answers to the last submits
    let _ = stop_tx.send(true);
    let _ = client.await;
    // Answers and journal entries that came while stopping are logged like the others.
    while let Ok((share, outcome)) = outcome_rx.try_recv() {
        log_outcome(&share, outcome);
    }
    for line in stats.device_lines() {
        println!("{line}");
    }
    let summary = summarize(&stats, mining_time, hashes, &switches);
    (summary, devices)
}

/// `wgminer mine`: mines on `source` until the duration ends or Ctrl-C, then prints the summary.
pub fn run(source: Source, devices: Vec<Box<dyn Sweeper>>, options: &MineOptions) -> anyhow::Result<Summary> {
    let (summary, _) = super::runtime()?.block_on(mine(source, devices, options));
    print_summary(&summary);
    if summary.unjournaled > 0 {
        anyhow::bail!(
            "{} share(s) could not be written to the journal; their lines are in the log",
            summary.unjournaled
        );
    }
    Ok(summary)
}

/// The cgminer-compatible API, when asked for; its `quit` command arrives on the receiver.
async fn start_api(
    options: &MineOptions,
    devices: Vec<crate::device::DeviceInfo>,
    source: &Source,
    stats: &Arc<Stats>,
) -> mpsc::UnboundedReceiver<()> {
    let (quit_tx, quit_rx) = mpsc::unbounded_channel();
    if let Some(api) = options.api.clone() {
        let context = ApiContext {
            devices,
            log_interval: options.status_every.as_secs(),
            strategy: if matches!(source, Source::Node(_)) { "Solo" } else { "Failover" },
            quit: quit_tx,
        };
        match crate::api::start(api, stats.clone(), context).await {
            Ok(addr) => tracing::info!("API listening on {addr}"),
            Err(e) => tracing::warn!("API: cannot listen: {e}; mining without it"),
        }
    }
    quit_rx
}

/// Starts the source's client: Stratum pools or a node.
fn spawn_source(
    source: Source,
    work_tx: watch::Sender<Option<Arc<crate::source::SourceWork>>>,
    share_rx: mpsc::Receiver<crate::source::Share>,
    stats: Arc<Stats>,
    outcome_tx: mpsc::UnboundedSender<(crate::source::Share, ShareOutcome)>,
    stop_rx: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    match source {
        Source::Pools(pools) => {
            for (i, pool) in pools.iter().enumerate() {
                tracing::info!("pool {i}: {} as {}", pool.url, pool.user);
            }
            tokio::spawn(driver::run(pools, work_tx, share_rx, stats, Some(outcome_tx), stop_rx))
        }
        Source::Node(config) => {
            tracing::info!("node: {}, found blocks journaled to {}", config.node.url, config.journal.display());
            tokio::spawn(crate::source::gbt::client::run(config, work_tx, share_rx, stats, stop_rx))
        }
    }
}

fn log_outcome(share: &crate::source::Share, outcome: ShareOutcome) {
    let difficulty = Difficulty::from_target(&Target::from_le_bytes(*AsRef::<[u8; 32]>::as_ref(&share.hash))).value();
    let (nonce, job) = (format!("{:08x}", share.nonce), &share.job_id);
    match outcome {
        ShareOutcome::Accepted => {
            tracing::info!(%nonce, %job, difficulty = format!("{difficulty:.4}"), "share accepted")
        }
        ShareOutcome::Rejected(e) => tracing::warn!(%nonce, %job, reason = %e, "share rejected"),
        ShareOutcome::Stale(why) => tracing::info!(%nonce, %job, reason = %why, "share stale"),
        ShareOutcome::Journaled(why) => tracing::warn!(%nonce, %job, reason = %why, "share journaled"),
    }
}

fn summarize(stats: &Stats, mining_time: f64, hashes: u64, switches: &[f64]) -> Summary {
    let counts = stats.counts();
    Summary {
        seconds: mining_time,
        hashes,
        mhs: hashes as f64 / mining_time / 1e6,
        accepted: counts.accepted,
        rejected: counts.rejected,
        stale: counts.stale,
        hw_errors: stats.hw_errors(),
        journaled: counts.journaled,
        unjournaled: counts.unjournaled,
        best_share: stats.best_share(),
        templates: stats.templates(),
        blocks: stats.blocks(),
        job_switch_p50_ms: quantile(switches, 0.5),
        job_switch_p99_ms: quantile(switches, 0.99),
    }
}

pub fn print_summary(s: &Summary) {
    println!(
        "summary: {:.1}s, {:.2} MH/s average, accepted {}, rejected {}, stale {}, hardware errors {}, journaled {}, best share {:.4}",
        s.seconds, s.mhs, s.accepted, s.rejected, s.stale, s.hw_errors, s.journaled, s.best_share
    );
    if s.unjournaled > 0 {
        println!(
            "NOT journaled: {} share(s) could not be written to the journal (their lines are in the log)",
            s.unjournaled
        );
    }
    if s.templates > 0 {
        println!("solo: {} templates, {} blocks found", s.templates, s.blocks);
    }
    if let (Some(p50), Some(p99)) = (s.job_switch_p50_ms, s.job_switch_p99_ms) {
        println!("new job to its first dispatch: p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::quantile(&v, 0.5), Some(50.0));
        assert_eq!(super::quantile(&v, 0.99), Some(99.0));
        assert_eq!(super::quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(super::quantile(&[], 0.5), None);
    }
}
