//! Mining, for `mine`, `solo` and `demo` alike: a source (pools, or a node), the scheduler
//! and the devices, with a status line every few seconds and a summary at the end.

use std::process::ExitCode;

use super::args::RunArgs;
use crate::source::stratum::PoolConfig;
use crate::source::stratum::tls::Trust;
use crate::source::stratum::v2::session::ChannelKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::api::ApiContext;
use crate::device::Sweeper;
use crate::http::{Mode, Site};
use crate::listen::ListenOptions;
use crate::miner::Miner;
pub use crate::miner::Source;
use crate::source::stratum::ShareOutcome;
use crate::stats::Stats;
use crate::work::Difficulty;

#[derive(Clone)]
pub struct MineOptions {
    /// Stop after this long; `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
    pub status_every: Duration,
    /// The cgminer-compatible monitoring API, when asked for.
    pub api: Option<ListenOptions>,
    /// Metrics, JSON and the dashboard over HTTP, when asked for.
    pub http: Option<HttpOptions>,
    /// The temperature guard, when asked for.
    pub temp: Option<crate::sensor::TempLimits>,
    /// Each device's duty and power limit, in order (full duty and none where missing).
    pub budgets: Vec<crate::miner::Budget>,
    /// Stop as soon as this holds of the counters (tests and benches wait for outcomes, with
    /// `duration` as the ceiling).
    pub until: Option<Goal>,
}

/// Where to serve HTTP, and what besides the miner to show there.
#[derive(Clone)]
pub struct HttpOptions {
    pub listen: ListenOptions,
    /// `demo`: the embedded pool's own counters, by protocol.
    pub pool_side: Vec<(&'static str, Arc<crate::pool::PoolStats>)>,
    /// `-d browser`: browser pages that may sweep at once (`/device`); `None` takes none.
    pub browser_devices: Option<usize>,
}

/// A condition on the counters.
pub type Goal = Arc<dyn Fn(&Stats) -> bool + Send + Sync>;

impl MineOptions {
    /// Mines until `done` holds, or `ceiling` passes.
    pub fn until(done: Goal, ceiling: Duration) -> MineOptions {
        MineOptions {
            duration: Some(ceiling),
            status_every: Duration::from_secs(5),
            api: None,
            http: None,
            temp: None,
            budgets: Vec::new(),
            until: Some(done),
        }
    }

    /// Mines until `accepted` shares were accepted, or `ceiling` passes.
    pub fn until_accepted(accepted: u64, ceiling: Duration) -> MineOptions {
        MineOptions::until(accepted_shares(accepted), ceiling)
    }
}

/// The goal of `accepted` shares accepted.
pub fn accepted_shares(accepted: u64) -> Goal {
    Arc::new(move |stats: &Stats| stats.counts().accepted >= accepted)
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

/// Mines `source` on `devices` until the duration ends or Ctrl-C; returns the summary and the
/// devices.
pub async fn mine(
    source: Source,
    devices: Vec<Box<dyn Sweeper>>,
    options: &MineOptions,
) -> (Summary, Vec<Box<dyn Sweeper>>) {
    for d in &devices {
        tracing::info!("device: {}", d.info());
    }
    let solo = matches!(source, Source::Node(_));
    let started = Instant::now();
    let sensing = crate::miner::Sensing::detect(&devices, options.temp).with_budgets(options.budgets.clone());
    let mut miner = Miner::start_with(source, devices, sensing);
    if let Some(http) = &options.http {
        let mode = match (solo, http.pool_side.is_empty()) {
            (true, _) => Mode::Solo,
            (false, true) => Mode::Pools,
            (false, false) => Mode::Demo,
        };
        let site = Site { mode, stats: miner.stats.clone(), pool_side: http.pool_side.clone() };
        let browser = http.browser_devices.map(|max| Arc::new(browser_host(&miner, max)));
        serve_http(http.listen.clone(), site, browser).await;
    }
    let mut quit_rx = start_api(options, if solo { "Solo" } else { "Failover" }, &miner).await;
    watch_until_stopped(&mut miner, &mut quit_rx, options).await;
    // The rate counts the mining window only, not start-up and shutdown.
    let mining_time = started.elapsed().as_secs_f64();
    let (stats, hashes) = (miner.stats.clone(), miner.stats.hashes());
    let mut stopped = miner.stop().await;
    // Answers and journal entries that came while stopping are logged like the others.
    while let Ok((share, outcome)) = stopped.outcomes.try_recv() {
        log_outcome(&share, outcome);
    }
    for line in stats.device_lines() {
        println!("{line}");
    }
    let switches: Vec<f64> = stopped.switches.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    (summarize(&stats, mining_time, hashes, &switches), stopped.devices)
}

/// The status line every few seconds and the outcomes as they come, until the duration ends,
/// Ctrl-C or SIGTERM, or the API's `quit`.
async fn watch_until_stopped(miner: &mut Miner, quit_rx: &mut mpsc::UnboundedReceiver<()>, options: &MineOptions) {
    let stats = miner.stats.clone();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut status = tokio::time::interval(options.status_every);
    status.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(50));
    // One listener for the whole run: a signal between two turns of the loop is not missed.
    let signal = super::stop_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = check.tick(), if options.until.is_some() => {
                if options.until.as_ref().is_some_and(|done| done(&stats)) { break }
            }
            Some(()) = quit_rx.recv() => { tracing::info!("stopping (API quit)"); break }
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break,
            name = &mut signal => { tracing::info!("stopping ({name})"); break }
            _ = status.tick() => crate::logging::status(&stats.status_line()),
            Some((share, outcome)) = miner.outcomes.recv() => log_outcome(&share, outcome),
        }
    }
    crate::logging::end_status();
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

/// Browser pages attached to the running miner as devices of their own.
fn browser_host(miner: &Miner, max: usize) -> crate::browser::BrowserHost {
    let attacher = miner.attacher();
    crate::browser::BrowserHost::mining(max, miner.stats.clone(), Arc::new(move |device| attacher.attach(device)))
}

/// Metrics, JSON and the dashboard (and with `browser`, the page that makes a browser a
/// device); the URLs go to standard output, where a person looks first. A listener that
/// cannot be had is said, and the run goes on without it.
pub async fn serve_http(listen: ListenOptions, site: Site, browser: Option<Arc<crate::browser::BrowserHost>>) {
    let devices = browser.is_some();
    match crate::http::start_with(listen, site, browser).await {
        Ok(addr) => {
            println!("dashboard: http://{addr}/  (metrics: http://{addr}/metrics)");
            if devices {
                println!("browser device: open http://{addr}/device and press Start");
            }
        }
        Err(e) => tracing::warn!("HTTP: cannot listen: {e}; going on without it"),
    }
}

/// The cgminer-compatible API, when asked for; its `quit` command arrives on the receiver.
async fn start_api(options: &MineOptions, strategy: &'static str, miner: &Miner) -> mpsc::UnboundedReceiver<()> {
    let (quit_tx, quit_rx) = mpsc::unbounded_channel();
    if let Some(api) = options.api.clone() {
        let context = ApiContext {
            log_interval: options.status_every.as_secs(),
            strategy,
            quit: quit_tx,
            control: miner.control.clone(),
        };
        match crate::api::start(api, miner.stats.clone(), context).await {
            Ok(addr) => tracing::info!("API listening on {addr}"),
            Err(e) => tracing::warn!("API: cannot listen: {e}; mining without it"),
        }
    }
    quit_rx
}

fn log_outcome(share: &crate::source::Share, outcome: ShareOutcome) {
    let difficulty = Difficulty::of_hash(&share.hash).value();
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

/// The arguments of `wgminer mine` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// Pool URL: stratum+tcp://HOST:PORT, or stratum+ssl:// (stratum+tls://) for TLS, or
    /// stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY for Stratum V2 (the pool publishes its key)
    #[arg(short = 'o', long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Worker name, one for each -o (the last one serves the pools after it)
    #[arg(short, long, value_name = "USER", required = true)]
    pub user: Vec<String>,
    /// Worker password, one for each -o
    #[arg(short, long, default_value = "x", value_name = "PASS")]
    pub pass: Vec<String>,
    /// PEM file for stratum+ssl:// pools: CA certificates to trust besides the webpki roots,
    /// or the pool's own certificate (a self-signed `openssl req -x509` one too), which is
    /// then trusted as itself, still checked for host name and dates
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Take only the pool certificate with this SHA-256 fingerprint (64 hex digits, colons
    /// allowed: `openssl x509 -noout -fingerprint -sha256 -in pool.pem`)
    #[arg(long, value_name = "HEX", value_parser = crate::source::stratum::tls::parse_fingerprint)]
    pub pool_cert_sha256: Option<[u8; 32]>,
    /// Ask the pools for this share difficulty (mining.suggest_difficulty); on Stratum V2
    /// pools, the least difficulty the channel takes
    #[arg(long, value_name = "D", value_parser = super::args::parse_difficulty)]
    pub suggest_difficulty: Option<Difficulty>,
    /// The channel to open on Stratum V2 pools: extended (the extranonce rolled here, as in
    /// v1) or standard (header-only: version bits and ntime rolled)
    #[arg(long, value_name = "KIND", default_value = "extended")]
    pub sv2_channel: ChannelKind,
    /// Stop after this many seconds (default: until Ctrl-C)
    #[arg(long, value_name = "S", value_parser = super::args::positive_number)]
    pub seconds: Option<f64>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let options = self.run.options(self.seconds)?;
        let pools = self.pools()?;
        crate::source::check_journal(&self.run.journal)?;
        run(Source::Pools(pools), self.run.open()?, &options)?;
        Ok(ExitCode::SUCCESS)
    }

    /// The pools: each -u/-p belongs to the -o in the same position; a pool without one takes
    /// the last given. Every URL is checked now, not at its first connection.
    fn pools(&self) -> anyhow::Result<Vec<PoolConfig>> {
        let trust = Trust { ca_file: self.ca_file.clone(), cert_sha256: self.pool_cert_sha256 };
        let pick = |v: &[String], i: usize| v.get(i).or(v.last()).cloned().unwrap_or_default();
        let config = |(i, url): (usize, &String)| {
            let config = PoolConfig {
                url: url.clone(),
                user: pick(&self.user, i),
                pass: pick(&self.pass, i),
                journal: self.run.journal.clone(),
                trust: trust.clone(),
                suggest_difficulty: self.suggest_difficulty,
                channel: self.sv2_channel,
            };
            config.endpoint().map(|_| config)
        };
        Ok(self.urls.iter().enumerate().map(config).collect::<Result<_, _>>()?)
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
