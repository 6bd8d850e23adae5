//! A mining run as `mine`, `solo` and `demo` start it: the miner, what watches it (the HTTP
//! server with its browser devices, the cgminer API), the status line every few seconds, the
//! outcomes in the log, and the summary at the end. `commands/` parses the arguments into
//! `MineOptions` and prints the summary; the tests and the benches run the same thing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::api::ApiContext;
use crate::device::Sweeper;
use crate::http::{Mode, Site};
use crate::listen::ListenOptions;
use crate::miner::{Miner, Source};
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
    mine_watched(None, source, devices, options).await
}

/// `mine`, shown by `watchers` started before it (solo starts them before its node answers),
/// or, without, by the HTTP server and the API started here.
pub async fn mine_watched(
    watchers: Option<Watchers>,
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
    let stats = watchers.as_ref().map_or_else(|| Arc::new(Stats::new()), |w| w.stats.clone());
    let mut miner = Miner::start_on(stats, source, devices, sensing);
    let mut quit_rx = match watchers {
        Some(watchers) => {
            // Pages that open the device page from now on join this miner.
            let _ = watchers.attach.set(miner.attacher());
            watchers.quit
        }
        None => {
            let pool_side = options.http.as_ref().is_some_and(|h| !h.pool_side.is_empty());
            let mode = if solo {
                Mode::Solo
            } else if pool_side {
                Mode::Demo
            } else {
                Mode::Pools
            };
            let attach = Arc::new(std::sync::OnceLock::from(miner.attacher()));
            serve_site(options, mode, &miner.stats, &attach).await;
            let strategy = if solo { "Solo" } else { "Failover" };
            start_api(options, strategy, miner.control.clone(), &miner.stats).await
        }
    };
    let mut outcomes = OutcomeLog::default();
    watch_until_stopped(&mut miner, &mut quit_rx, options, &mut outcomes).await;
    // The rate counts the mining window only, not start-up and shutdown.
    let mining_time = started.elapsed().as_secs_f64();
    let (stats, hashes) = (miner.stats.clone(), miner.stats.hashes());
    let mut stopped = miner.stop().await;
    // Answers and journal entries that came while stopping are logged like the others.
    while let Ok((share, outcome)) = stopped.outcomes.try_recv() {
        outcomes.log(&share, outcome);
    }
    outcomes.flush(true);
    for line in stats.device_lines() {
        println!("{line}");
    }
    let switches: Vec<f64> = stopped.switches.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    (summarize(&stats, mining_time, hashes, &switches), stopped.devices)
}

/// What shows a run: its counters, served over HTTP and the cgminer API when asked for, and
/// the API's `quit`.
pub struct Watchers {
    pub stats: Arc<Stats>,
    quit: mpsc::UnboundedReceiver<()>,
    /// The miner that browser pages join, once it runs (a page before then is refused).
    attach: Arc<std::sync::OnceLock<crate::scheduler::Attach>>,
}

impl Watchers {
    /// Serves fresh counters before any miner runs (solo, while its node is awaited). The API
    /// has no pool commands, as in any solo run.
    pub async fn start(options: &MineOptions, mode: Mode) -> Watchers {
        let stats = Arc::new(Stats::new());
        let attach = Arc::default();
        serve_site(options, mode, &stats, &attach).await;
        let quit = start_api(options, "Solo", None, &stats).await;
        Watchers { stats, quit, attach }
    }

    /// Resolves when the API is told to `quit`; never without an API.
    pub async fn quit(&mut self) {
        if self.quit.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// The HTTP server over `stats`, when asked for.
async fn serve_site(
    options: &MineOptions,
    mode: Mode,
    stats: &Arc<Stats>,
    attach: &Arc<std::sync::OnceLock<crate::scheduler::Attach>>,
) {
    if let Some(http) = &options.http {
        let site = Site { mode, stats: stats.clone(), pool_side: http.pool_side.clone() };
        let browser = http.browser_devices.map(|max| Arc::new(browser_host(stats, max, attach.clone())));
        serve_http(http.listen.clone(), site, browser).await;
    }
}

/// The status line every few seconds and the outcomes as they come, until the duration ends,
/// Ctrl-C or SIGTERM, or the API's `quit`.
async fn watch_until_stopped(
    miner: &mut Miner,
    quit_rx: &mut mpsc::UnboundedReceiver<()>,
    options: &MineOptions,
    outcomes: &mut OutcomeLog,
) {
    let stats = miner.stats.clone();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut status = tokio::time::interval(options.status_every);
    status.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(50));
    // Repeated outcomes are summed up in the log once a second.
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    // One listener for the whole run: a signal between two turns of the loop is not missed.
    let signal = stop_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = flush.tick() => outcomes.flush(false),
            _ = check.tick(), if options.until.is_some() => {
                if options.until.as_ref().is_some_and(|done| done(&stats)) { break }
            }
            Some(()) = quit_rx.recv() => { tracing::info!("stopping (API quit)"); break }
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break,
            name = &mut signal => { tracing::info!("stopping ({name})"); break }
            _ = status.tick() => crate::logging::status(&stats.status_line()),
            Some((share, outcome)) = miner.outcomes.recv() => outcomes.log(&share, outcome),
        }
    }
    crate::logging::end_status();
}

/// Browser pages attached to the running miner as devices of their own.
/// Browser pages as devices of the miner in `attach`, once it runs.
fn browser_host(
    stats: &Arc<Stats>,
    max: usize,
    attach: Arc<std::sync::OnceLock<crate::scheduler::Attach>>,
) -> crate::browser::BrowserHost {
    let join = Arc::new(move |device| attach.get().map(|a| a.attach(device)));
    crate::browser::BrowserHost::mining(max, stats.clone(), join)
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
async fn start_api(
    options: &MineOptions,
    strategy: &'static str,
    control: Option<mpsc::UnboundedSender<crate::source::stratum::driver::PoolControl>>,
    stats: &Arc<Stats>,
) -> mpsc::UnboundedReceiver<()> {
    let (quit_tx, quit_rx) = mpsc::unbounded_channel();
    if let Some(api) = options.api.clone() {
        let context = ApiContext { log_interval: options.status_every.as_secs(), strategy, quit: quit_tx, control };
        match crate::api::start(api, stats.clone(), context).await {
            Ok(addr) => tracing::info!("API listening on {addr}"),
            Err(e) => tracing::warn!("API: cannot listen: {e}; mining without it"),
        }
    }
    quit_rx
}

/// Shares' outcomes in the log: each on its own line while they come slowly, at most a line a
/// second of each kind when they flood ("1,834 shares journaled in the last second"), so that
/// a pool that sets difficulty 1e-9 cannot fill the disk through the log.
#[derive(Default)]
struct OutcomeLog {
    tallies: [crate::logging::Tally; 5],
}

impl OutcomeLog {
    fn log(&mut self, share: &crate::source::Share, outcome: ShareOutcome) {
        let kind = outcome_kind(&outcome);
        let Some(n) = self.tallies[kind].add(1, std::time::Instant::now()) else { return };
        if n > 1 {
            say_more(n - 1, WORDS[kind]);
        }
        let difficulty = Difficulty::of_hash(&share.hash).value();
        let (nonce, job) = (format!("{:08x}", share.nonce), &share.job_id);
        match outcome {
            ShareOutcome::Accepted => {
                tracing::info!(%nonce, %job, difficulty = format!("{difficulty:.4}"), "share accepted")
            }
            ShareOutcome::Rejected(e) => tracing::warn!(%nonce, %job, reason = %e, "share rejected"),
            ShareOutcome::Stale(why) => tracing::info!(%nonce, %job, reason = %why, "share stale"),
            ShareOutcome::Journaled(why) => tracing::warn!(%nonce, %job, reason = %why, "share journaled"),
            ShareOutcome::Unjournaled(why) => {
                tracing::error!(%nonce, %job, reason = %why, "share neither sent nor journaled")
            }
        }
    }

    /// The counts of the last second not said yet (`end`: all of them).
    fn flush(&mut self, end: bool) {
        for (tally, words) in self.tallies.iter_mut().zip(WORDS) {
            if let Some(n) = if end { tally.rest() } else { tally.due(std::time::Instant::now()) } {
                say_more(n, words);
            }
        }
    }
}

/// What became of a share, by `outcome_kind`.
const WORDS: [&str; 5] = ["accepted", "rejected", "stale", "journaled", "neither sent nor journaled"];

fn say_more(n: u64, words: &str) {
    tracing::info!("{} share(s) {words} in the last second", crate::logging::thousands(n));
}

fn outcome_kind(outcome: &ShareOutcome) -> usize {
    match outcome {
        ShareOutcome::Accepted => 0,
        ShareOutcome::Rejected(_) => 1,
        ShareOutcome::Stale(_) => 2,
        ShareOutcome::Journaled(_) => 3,
        ShareOutcome::Unjournaled(_) => 4,
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

/// Resolves on Ctrl-C or SIGTERM (systemd, `docker stop`), with the signal's name: both stop
/// the miner the same way, journal included.
pub async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
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
