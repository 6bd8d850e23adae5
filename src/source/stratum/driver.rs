//! The one driver of every pool protocol: sockets, TLS or Noise, timers, the journal and the
//! counters. Every protocol decision is its session's (`core::Protocol`) and every choice of
//! pool is `failover::Failover`'s; this file only carries out what they return, in one loop
//! for every protocol.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use super::core::{Action, Close, ConnectError, Incoming, Protocol, ShareOutcome, Then, Wire};
use super::failover::{Attempt, FAILBACK_PROBE, Failover, PoolCommand, PoolControlError};
use super::pool_url::{Endpoint, PoolConfig};
use super::{v1, v2};
use crate::logging::{Tally, thousands};
use crate::source::{Share, SourceWork};
use crate::stats::{Event, ShareEvent, Stats};
use crate::wire::Outbox;
use crate::work::{HashRate, PoolId};
use bitcoin::hex::DisplayHex;

/// The sessions' clock: tokio's, so that the driver's timeouts run under paused time in tests.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// How long a TCP connect may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn fail(reason: impl ToString) -> Ended {
    Ended::Closed(Close::fail(reason.to_string()))
}

/// The TCP connection to a pool, for every protocol.
async fn tcp(endpoint: &Endpoint) -> Result<TcpStream, ConnectError> {
    let address = endpoint.address();
    let tcp = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&address)).await {
        Err(_) => return Err(ConnectError::TimedOut { address }),
        Ok(Err(e)) => return Err(ConnectError::io(address, &e)),
        Ok(Ok(tcp)) => tcp,
    };
    tcp.set_nodelay(true).map_err(|e| ConnectError::io(address, &e))?;
    Ok(tcp)
}

/// The session of each protocol: a share goes to its pool's.
#[derive(Default)]
struct Sessions {
    v1: v1::session::Session,
    v2: v2::session::Session,
}

/// A protocol the driver carries: its I/O (`Wire`, in the protocol's folder) and which of
/// the driver's sessions is its.
trait Driven: Wire {
    fn of(sessions: &mut Sessions) -> &mut Self;
}

impl Driven for v1::session::Session {
    fn of(sessions: &mut Sessions) -> &mut Self {
        &mut sessions.v1
    }
}

impl Driven for v2::session::Session {
    fn of(sessions: &mut Sessions) -> &mut Self {
        &mut sessions.v2
    }
}

/// A command for the pool choice (the API's switchpool / enablepool / disablepool), with
/// where its answer goes: the URL of the pool it names, or why not.
#[derive(Debug)]
pub struct PoolControl {
    pub command: PoolCommand,
    pub reply: oneshot::Sender<Result<String, PoolControlError>>,
}

/// How a connection ended.
enum Ended {
    Closed(Close),
    /// A pool of higher priority answers again, or the API asked for another.
    Switch(PoolId),
    Stop,
}

/// The I/O around the sessions.
struct Driver {
    /// Each pool by the id the counters' view handed out, in priority order.
    pools: Vec<(PoolId, PoolConfig)>,
    sessions: Sessions,
    failover: Failover,
    /// The pool connected to, or being tried.
    active: PoolId,
    work: watch::Sender<Option<Arc<SourceWork>>>,
    shares: mpsc::Receiver<Share>,
    devices_gone: bool,
    stats: Arc<Stats>,
    outcomes: Option<mpsc::UnboundedSender<(Share, ShareOutcome)>>,
    control: mpsc::UnboundedReceiver<PoolControl>,
    stop: watch::Receiver<bool>,
    /// Shares journaled and not said yet, and where the last went.
    journaled: (Tally, Option<String>),
    /// Journals that reached their limit, said once each.
    journals_full: BTreeSet<PathBuf>,
    /// Pools' messages for their users not said yet.
    messages: Tally,
    /// Bytes of unwritten shares' lines logged so far, and whether their limit was said.
    logged_unwritten: u64,
    unwritten_said: bool,
}

/// What the driver is connected to: the scheduler's work and shares, the counters, the
/// outcomes of shares (for the log), the API's pool commands, and the stop.
pub struct Links {
    pub work: watch::Sender<Option<Arc<SourceWork>>>,
    pub shares: mpsc::Receiver<Share>,
    pub stats: Arc<Stats>,
    pub outcomes: Option<mpsc::UnboundedSender<(Share, ShareOutcome)>>,
    pub control: mpsc::UnboundedReceiver<PoolControl>,
    pub stop: watch::Receiver<bool>,
}

/// Runs sessions until `stop` turns true, on `pools` in priority order. Outcomes of shares go
/// to `outcomes`, if given; whatever cannot be sent is journaled at the end.
pub async fn run(pools: Vec<PoolConfig>, links: Links) {
    // The counters' view hands out the ids; no URL kept or shown holds a password.
    let pools: Vec<(PoolId, PoolConfig)> = pools
        .into_iter()
        .map(PoolConfig::without_url_credentials)
        .map(|pool| (links.stats.register_pool(&pool.url, &pool.user), pool))
        .collect();
    let Some(&(first, _)) = pools.first() else { return };
    let Links { work, shares, stats, outcomes, control, stop } = links;
    let mut driver = Driver {
        failover: Failover::new(pools.iter().map(|(id, _)| *id)),
        pools,
        sessions: Sessions::default(),
        active: first,
        work,
        shares,
        devices_gone: false,
        stats,
        outcomes,
        control,
        stop,
        journaled: (Tally::default(), None),
        journals_full: BTreeSet::new(),
        messages: Tally::default(),
        logged_unwritten: 0,
        unwritten_said: false,
    };
    let mut next = Attempt { pool: first, after: Duration::ZERO };
    while !*driver.stop.borrow() {
        if !driver.wait(next.after).await {
            break;
        }
        let pool = driver.failover.wanted(next.pool).unwrap_or(next.pool);
        driver.active = pool;
        driver.report_choice();
        let ended = if driver.is_v2(pool) {
            driver.connection::<v2::session::Session>(pool).await
        } else {
            driver.connection::<v1::session::Session>(pool).await
        };
        next = match ended {
            Ended::Stop => break,
            Ended::Switch(pool) => {
                tracing::info!("switching to pool {}", driver.config(pool).url);
                Attempt { pool, after: Duration::ZERO }
            }
            Ended::Closed(close) => driver.after_close(pool, close),
        };
    }
    // Whatever could not be sent is written down, never dropped.
    while let Ok(share) = driver.shares.try_recv() {
        driver.route(share);
    }
    let actions = driver.sessions.v1.stop();
    driver.perform(first, actions);
    let actions = driver.sessions.v2.stop();
    driver.perform(first, actions);
    driver.say_journaled(None);
}

impl Driver {
    /// Waits `delay` while taking shares in (so that devices never block on a full queue);
    /// false when the miner stops.
    async fn wait(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                _ = self.stop.changed() => return false,
                Some(control) = self.control.recv() => self.control(control),
                share = self.shares.recv(), if !self.devices_gone => match share {
                    Some(share) => self.route(share),
                    None => self.devices_gone = true,
                },
            }
        }
    }

    /// Carries out a pool command and answers it; the choice it changes is reported.
    fn control(&mut self, control: PoolControl) {
        let result = self.failover.control(control.command).map(|pool| self.config(pool).url.clone());
        let _ = control.reply.send(result);
        self.report_choice();
    }

    /// Tells the counters' view what the failover policy chose.
    fn report_choice(&self) {
        let (preferred, enabled) = (self.failover.preferred(), self.failover.enabled());
        self.stats.record(Event::PoolChoice { active: self.active, preferred, enabled });
    }

    /// Pool `pool`'s settings (the first pool's for an id it never handed out).
    fn config(&self, pool: PoolId) -> &PoolConfig {
        let (_, first) = &self.pools[0];
        self.pools.iter().find(|(id, _)| *id == pool).map_or(first, |(_, config)| config)
    }

    /// Whether pool `pool` speaks Stratum V2.
    fn is_v2(&self, pool: PoolId) -> bool {
        self.config(pool).is_v2()
    }

    /// Hands a share to the session of its pool's protocol, outside that protocol's loop.
    fn route(&mut self, share: Share) {
        let pool = share.source;
        if self.is_v2(pool) {
            let actions = self.sessions.v2.share(share, now());
            self.perform(pool, actions);
        } else {
            let actions = self.sessions.v1.share(share, now());
            self.perform(pool, actions);
        }
    }

    /// What follows a closed connection to `pool`.
    fn after_close(&mut self, pool: PoolId, close: Close) -> Attempt {
        let url = self.config(pool).url.clone();
        match close.then {
            Then::Retry => {
                tracing::info!("pool {url}: {}", close.reason);
                Attempt { pool, after: Duration::ZERO }
            }
            Then::Redirect(redirect) => {
                let current = self.config(pool).endpoint().expect("checked at start");
                let (attempt, notice) = self.failover.redirected(pool, &current, &redirect);
                tracing::info!("pool {url}: {}", close.reason);
                if let Some(notice) = notice {
                    tracing::warn!("{notice}");
                }
                attempt
            }
            Then::Fail => {
                self.stats.record(Event::PoolDown { pool, reason: close.reason.clone() });
                let jitter = f64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .subsec_nanos()
                        % 1000,
                ) / 1000.0;
                let attempt = self.failover.failed(pool, jitter);
                if attempt.pool != pool {
                    tracing::warn!("pool {url}: {}; failing over to {}", close.reason, self.config(attempt.pool).url);
                } else {
                    tracing::warn!(
                        "pool {url}: {}; reconnecting in {:.0} s",
                        close.reason,
                        attempt.after.as_secs_f64()
                    );
                }
                attempt
            }
        }
    }

    /// One connection to `pool` in protocol `P`, from connect to close; whatever way it ends,
    /// the session hears that it is gone.
    async fn connection<P: Driven>(&mut self, pool: PoolId) -> Ended {
        // Shares queued now belong to the last connection: its session carries or journals them.
        for _ in 0..self.shares.len() {
            let Ok(share) = self.shares.try_recv() else { break };
            self.route(share);
        }
        let ended = self.session::<P>(pool).await;
        let released = P::of(&mut self.sessions).disconnected();
        self.perform(pool, released);
        ended
    }

    /// Opens the transport to `pool` (a redirect's endpoint once, else its URL): TCP, then
    /// the protocol's handshake, either of which a stop cuts short.
    async fn open<P: Driven>(&mut self, pool: PoolId) -> Result<(Incoming<P::In>, P::Writer, P::Login), Ended> {
        let config = self.config(pool).clone();
        let endpoint = self.failover.endpoint(pool, &config).map_err(fail)?;
        let open = async {
            let tcp = tcp(&endpoint).await?;
            P::open(tcp, &endpoint, &config).await
        };
        let (incoming, write) = tokio::select! {
            _ = self.stop.changed() => return Err(Ended::Stop),
            opened = open => opened.map_err(fail)?,
        };
        Ok((incoming, write, P::login(&config, &endpoint, self.hash_rate())))
    }

    /// Connects (a stop is honoured during the connect and the handshake), then carries
    /// messages, shares and ticks through the session until the connection ends.
    async fn session<P: Driven>(&mut self, pool: PoolId) -> Ended {
        let (mut incoming, mut write, login) = match self.open::<P>(pool).await {
            Ok(opened) => opened,
            Err(ended) => return ended,
        };
        let mut actions = P::of(&mut self.sessions).connected(pool, login, now());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut probe = tokio::time::interval(FAILBACK_PROBE);
        probe.tick().await;
        loop {
            if let Some(ended) = self.carry_out(pool, actions, &mut write).await {
                return ended;
            }
            let preferred = self.failover.preferred();
            actions = tokio::select! {
                _ = self.stop.changed() => return Ended::Stop,
                _ = tick.tick() => {
                    self.say_counts(pool);
                    let rate = self.hash_rate();
                    P::of(&mut self.sessions).tick(now(), rate)
                }
                _ = probe.tick(), if pool != preferred => {
                    if self.answers(preferred).await {
                        return Ended::Switch(preferred);
                    }
                    vec![]
                }
                Some(control) = self.control.recv() => {
                    self.control(control);
                    match self.failover.wanted(pool) {
                        Some(other) => return Ended::Switch(other),
                        None => vec![],
                    }
                }
                message = incoming.recv() => match message {
                    Some(Ok(message)) => P::of(&mut self.sessions).received(message, now()),
                    Some(Err(e)) => P::of(&mut self.sessions).closed(Some(e.to_string()), now()),
                    None => P::of(&mut self.sessions).closed(None, now()),
                },
                share = self.shares.recv(), if !self.devices_gone => match share {
                    // Shares of this protocol go to this session, whichever of its pools
                    // found them: it knows whether they can still be sent.
                    Some(share) if self.is_v2(share.source) == self.is_v2(pool) => {
                        P::of(&mut self.sessions).share(share, now())
                    }
                    Some(share) => {
                        self.route(share);
                        vec![]
                    }
                    // Devices gone (the miner is stopping): keep the connection for the
                    // answers to what was sent, until stop.
                    None => {
                        self.devices_gone = true;
                        vec![]
                    }
                },
            };
        }
    }

    /// The devices' rate now (none before the first measurement).
    fn hash_rate(&self) -> HashRate {
        HashRate::from_mhs(self.stats.mhs_5s().0)
    }

    /// Whether `pool` accepts a TCP connection now.
    async fn answers(&self, pool: PoolId) -> bool {
        let Ok(endpoint) = self.config(pool).endpoint() else { return false };
        matches!(tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(endpoint.address())).await, Ok(Ok(_)))
    }

    /// Sends what the session wants sent, and does the rest; `Some` when the connection ends.
    async fn carry_out<M>(
        &mut self,
        pool: PoolId,
        actions: Vec<Action<M>>,
        write: &mut impl Outbox<M>,
    ) -> Option<Ended> {
        let mut local = Vec::new();
        for action in actions {
            match action {
                Action::Send(message) => {
                    if let Err(reason) = write.put(message).await {
                        self.perform(pool, local);
                        return Some(fail(reason));
                    }
                }
                Action::Close(close) => {
                    self.perform(pool, local);
                    return Some(Ended::Closed(close));
                }
                other => local.push(other),
            }
        }
        self.perform(pool, local);
        None
    }

    /// The actions that need no socket. Shares to journal are written in one batch.
    fn perform<M>(&mut self, pool: PoolId, actions: Vec<Action<M>>) {
        let url = self.config(pool).url.clone();
        let mut to_journal = Vec::new();
        for action in actions {
            match action {
                Action::Publish { work, difficulty } => {
                    self.failover.worked();
                    self.work.send_replace(Some(work));
                    self.stats.record(Event::Job { pool, difficulty });
                }
                Action::Answered { share, outcome, latency } => {
                    if let Some(latency) = latency {
                        self.stats.record(Event::Answer { pool: share.source, latency });
                    }
                    let event = match &outcome {
                        ShareOutcome::Accepted => ShareEvent::Accepted,
                        ShareOutcome::Rejected(_) => ShareEvent::Rejected,
                        ShareOutcome::Stale(_) => ShareEvent::Stale,
                        ShareOutcome::Journaled(_) => ShareEvent::Journaled,
                        ShareOutcome::Unjournaled(_) => ShareEvent::Unjournaled,
                    };
                    self.stats.record(Event::Share { device: share.device, pool: share.source, event });
                    self.report(share, outcome);
                }
                Action::Journal { share, reason } => to_journal.push((share, reason)),
                Action::Notice(text) => tracing::warn!("{text}"),
                Action::PoolMessage(text) => self.pool_message(&url, &text),
                Action::Send(_) | Action::Close(_) => unreachable!("carried out by carry_out"),
            }
        }
        if !to_journal.is_empty() {
            self.journal(to_journal);
        }
    }

    fn count(&self, entries: &[Entry], event: ShareEvent) {
        for entry in entries {
            self.stats.record(Event::Share { device: entry.share.device, pool: entry.share.source, event });
        }
    }

    fn report(&self, share: Share, outcome: ShareOutcome) {
        if let Some(tx) = &self.outcomes {
            let _ = tx.send((share, outcome));
        }
    }

    /// Writes shares that cannot be sent to their pool's journal, up to its size limit. A
    /// share that cannot be written, or finds the journal full, is counted as unjournaled,
    /// never as journaled, and reported so.
    fn journal(&mut self, shares: Vec<(Share, String)>) {
        let mut by_file: BTreeMap<PathBuf, (u64, Vec<Entry>)> = BTreeMap::new();
        for (share, reason) in shares {
            let pool = self.config(share.source);
            let line = json!({
                "time": crate::stats::unix_time(),
                "pool": pool.url, "user": pool.user, "reason": reason,
                "job_id": share.job_id.to_string(), "extranonce1": share.extranonce1.to_lower_hex_string(), "extranonce2": share.extranonce2.to_lower_hex_string(),
                "ntime": format!("{:08x}", share.time), "nonce": format!("{:08x}", share.nonce), "hash": share.hash.to_string(),
            });
            let file = by_file.entry(pool.journal.clone()).or_insert((pool.journal_max, Vec::new()));
            file.1.push(Entry { share, reason, line: line.to_string() });
        }
        for (path, (max, mut entries)) in by_file {
            // What fits under the limit is written; the rest is counted, and said once.
            let room = max.saturating_sub(std::fs::metadata(&path).map_or(0, |m| m.len()));
            let mut used = 0;
            let fit = entries.iter().take_while(|e| (used += e.line.len() as u64 + 1, used <= room).1).count();
            let over = entries.split_off(fit);
            if !entries.is_empty() {
                self.write_journal(&path, entries);
            }
            if !over.is_empty() {
                self.journal_full(&path, max, over);
            }
        }
    }

    /// Appends and syncs `entries`; the summary of what was written is said at most once a
    /// second.
    fn write_journal(&mut self, path: &Path, entries: Vec<Entry>) {
        let text: String = entries.iter().map(|e| format!("{}\n", e.line)).collect();
        // The write and its sync block: off the runtime's workers where it has several.
        let write = || crate::source::append_lines(path, text.as_bytes());
        let written = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            _ => write(),
        };
        match written {
            Ok(()) => {
                let last = entries.last().expect("not empty");
                self.journaled.1 = Some(format!(
                    "{} (the last {:08x} of job {}: {})",
                    path.display(),
                    last.share.nonce,
                    last.share.job_id,
                    last.reason
                ));
                self.count(&entries, ShareEvent::Journaled);
                let n = entries.len() as u64;
                self.say_journaled(Some(n));
                for e in entries {
                    self.report(e.share, ShareOutcome::Journaled(e.reason));
                }
            }
            Err(e) => {
                self.log_unwritten(path, &e, &entries);
                self.count(&entries, ShareEvent::Unjournaled);
                for entry in entries {
                    let reason = format!("{}; the journal could not be written: {e}", entry.reason);
                    self.report(entry.share, ShareOutcome::Unjournaled(reason));
                }
            }
        }
    }

    /// Shares the journal could not take go to the log whole, the last copy there is, up to
    /// as many bytes as the journal may hold; past that they are counted only (said once), so
    /// that a failing journal does not move the flood into the log.
    fn log_unwritten(&mut self, path: &Path, error: &std::io::Error, entries: &[Entry]) {
        let max = entries.first().map_or(0, |e| self.config(e.share.source).journal_max);
        for entry in entries {
            let text =
                format!("could not write the share journal {}: {error}; the share was: {}", path.display(), entry.line);
            self.logged_unwritten += text.len() as u64;
            if self.logged_unwritten <= max {
                tracing::error!("{text}");
            } else if !std::mem::replace(&mut self.unwritten_said, true) {
                tracing::error!(
                    "could not write the share journal {}: {error}; {} MB of share lines are in the log, \
                     more shares are counted as unjournaled only",
                    path.display(),
                    max >> 20
                );
            }
        }
    }

    /// Shares past the journal's limit: counted as unjournaled (`/metrics` shows them), said
    /// once a journal, not written, not logged line by line (that would fill the disk too).
    fn journal_full(&mut self, path: &Path, max: u64, over: Vec<Entry>) {
        if self.journals_full.insert(path.to_path_buf()) {
            tracing::error!(
                "journal {} has reached its limit of {} MB (--journal-max-mb): shares that cannot be sent are \
                 counted as unjournaled from now on, not written",
                path.display(),
                max >> 20
            );
        }
        self.count(&over, ShareEvent::Unjournaled);
        for entry in over {
            let reason = format!("{}; the journal is full (--journal-max-mb)", entry.reason);
            self.report(entry.share, ShareOutcome::Unjournaled(reason));
        }
    }

    /// A pool's message for its users, cut short, and at most one a second: a pool that
    /// sends them in a flood must not fill the disk through the log.
    fn pool_message(&mut self, url: &str, text: &str) {
        const SHOWN: usize = 512;
        let Some(n) = self.messages.add(1, now()) else { return };
        let more =
            if n > 1 { format!(" ({} more in the last second, not shown)", thousands(n - 1)) } else { String::new() };
        let cut = text.char_indices().nth(SHOWN).map_or(text, |(end, _)| &text[..end]);
        let ellipsis = if cut.len() < text.len() { "…" } else { "" };
        tracing::info!("message from pool {url}: {cut}{ellipsis}{more}");
    }

    /// What the flood guards counted and did not say yet, once a second.
    fn say_counts(&mut self, pool: PoolId) {
        self.say_journaled(Some(0));
        if let Some(n) = self.messages.due(now()) {
            tracing::info!("{} more message(s) from pool {} not shown", thousands(n), self.config(pool).url);
        }
    }

    /// Says how many shares were journaled since the last line, at most once a second
    /// (`None`: whatever is left, at the end).
    fn say_journaled(&mut self, added: Option<u64>) {
        let said = match added {
            Some(n) => self.journaled.0.add(n, now()),
            None => self.journaled.0.rest(),
        };
        if let (Some(n), Some(last)) = (said, &self.journaled.1) {
            tracing::warn!("{} share(s) written to {last}", thousands(n));
        }
    }
}

/// A share on its way to the journal: why, and its line.
struct Entry {
    share: Share,
    reason: String,
    line: String,
}
