//! The driver of the Stratum sessions, v1 and V2: sockets, TLS or Noise, timers, the journal
//! and the counters. Every protocol decision is `session::Session`'s or
//! `v2::session::Session`'s and every choice of pool is `failover::Failover`'s; this file only
//! carries out what they return.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::codec::{self, ClientMessage, ServerMessage};
use super::failover::{Attempt, Endpoint, FAILBACK_PROBE, Failover, PoolConfig};
use super::session::{Action, Close, Login, Session, ShareOutcome, Then};
use super::v2;
use crate::pools::Verdict;
use crate::source::{Share, SourceWork};
use crate::stats::Stats;
use bitcoin::hex::DisplayHex;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// How long a connect or a TLS handshake may take, and a write to a pool that stopped reading.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The hash rate a Stratum V2 channel is opened with before the devices have been measured
/// (100 MH/s: a laptop GPU's order); `UpdateChannel` corrects it within seconds.
const NOMINAL_HASH_RATE: f64 = 1e8;

fn fail(reason: String) -> Ended {
    Ended::Closed(Close { reason, then: Then::Fail })
}

/// The TCP connection to a pool, for either protocol.
async fn tcp(endpoint: &Endpoint) -> Result<TcpStream, String> {
    let address = endpoint.address();
    let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&address))
        .await
        .map_err(|_| format!("connect to {address} timed out"))?
        .map_err(|e| format!("connect to {address}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

/// Opens a Stratum v1 connection, over TLS when the endpoint asks for it.
async fn connect(endpoint: &Endpoint, config: &PoolConfig) -> Result<(Reader, Writer), String> {
    let tcp = tcp(endpoint).await?;
    if !endpoint.tls {
        let (read, write) = tcp.into_split();
        return Ok((Box::new(read), Box::new(write)));
    }
    let tls = super::tls::client_config(&config.trust)?;
    let name = pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| format!("{}: {e}", endpoint.host))?;
    let address = endpoint.address();
    let stream = tokio::time::timeout(IO_TIMEOUT, tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp))
        .await
        .map_err(|_| format!("TLS handshake with {address} timed out"))?
        .map_err(|e| format!("TLS with {address}: {e}"))?;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

/// How a connection ended.
enum Ended {
    Closed(Close),
    /// A pool of higher priority answers again, or the API asked for another.
    Switch(usize),
    Stop,
}

/// The I/O around one `Session`.
struct Driver {
    pools: Vec<PoolConfig>,
    session: Session,
    v2: v2::session::Session,
    failover: Failover,
    work: watch::Sender<Option<Arc<SourceWork>>>,
    shares: mpsc::Receiver<Share>,
    devices_gone: bool,
    stats: Arc<Stats>,
    outcomes: Option<mpsc::UnboundedSender<(Share, ShareOutcome)>>,
    stop: watch::Receiver<bool>,
}

/// Runs sessions until `stop` turns true, on `pools` in priority order. Outcomes of shares go
/// to `outcomes`, if given; whatever cannot be sent is journaled at the end.
pub async fn run(
    pools: Vec<PoolConfig>,
    work: watch::Sender<Option<Arc<SourceWork>>>,
    shares: mpsc::Receiver<Share>,
    stats: Arc<Stats>,
    outcomes: Option<mpsc::UnboundedSender<(Share, ShareOutcome)>>,
    stop: watch::Receiver<bool>,
) {
    for pool in &pools {
        stats.pools.register(&pool.url, &pool.user);
    }
    let mut driver = Driver {
        pools,
        session: Session::new(),
        v2: v2::session::Session::new(),
        failover: Failover::new(),
        work,
        shares,
        devices_gone: false,
        stats,
        outcomes,
        stop,
    };
    let mut next = Attempt { pool: 0, after: Duration::ZERO };
    while !*driver.stop.borrow() {
        if !driver.wait(next.after).await {
            break;
        }
        driver.stats.pools.set_active(next.pool);
        let ended = driver.connection(next.pool).await;
        driver.session.disconnected();
        let released = driver.v2.disconnected();
        driver.perform(next.pool, released);
        next = match ended {
            Ended::Stop => break,
            Ended::Switch(pool) => {
                tracing::info!("switching to pool {}", driver.pools[pool].url);
                Attempt { pool, after: Duration::ZERO }
            }
            Ended::Closed(close) => driver.after_close(next.pool, close),
        };
    }
    // Whatever could not be sent is written down, never dropped.
    while let Ok(share) = driver.shares.try_recv() {
        driver.route(share);
    }
    let actions = driver.session.stop();
    driver.perform(0, actions);
    let actions = driver.v2.stop();
    driver.perform(0, actions);
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
                share = self.shares.recv(), if !self.devices_gone => match share {
                    Some(share) => self.route(share),
                    None => self.devices_gone = true,
                },
            }
        }
    }

    /// Whether pool `pool` speaks Stratum V2.
    fn is_v2(&self, pool: usize) -> bool {
        self.pools.get(pool).is_some_and(PoolConfig::is_v2)
    }

    /// Hands a share to the session of its pool's protocol, while no connection is in hand.
    fn route(&mut self, share: Share) {
        let pool = share.source;
        if self.is_v2(pool) {
            let actions = self.v2.share(share, Instant::now());
            self.perform(pool, actions);
        } else {
            let actions = self.session.share(share, Instant::now());
            self.perform(pool, actions);
        }
    }

    /// What follows a closed connection to `pool`.
    fn after_close(&mut self, pool: usize, close: Close) -> Attempt {
        let url = &self.pools[pool].url;
        match close.then {
            Then::Retry => {
                tracing::info!("pool {url}: {}", close.reason);
                Attempt { pool, after: Duration::ZERO }
            }
            Then::Redirect(redirect) => {
                let current = self.pools[pool].endpoint().expect("checked at start");
                let (attempt, notice) = self.failover.redirected(&self.stats.pools, pool, &current, &redirect);
                tracing::info!("pool {url}: {}", close.reason);
                if let Some(notice) = notice {
                    tracing::warn!("{notice}");
                }
                attempt
            }
            Then::Fail => {
                self.stats.pools.update(pool, |p| p.alive = false);
                let jitter = f64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .subsec_nanos()
                        % 1000,
                ) / 1000.0;
                let attempt = self.failover.failed(&self.stats.pools, pool, jitter);
                if attempt.pool != pool {
                    tracing::warn!("pool {url}: {}; failing over to {}", close.reason, self.pools[attempt.pool].url);
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

    /// One connection to `pool`, from connect to close.
    async fn connection(&mut self, pool: usize) -> Ended {
        let config = self.pools[pool].clone();
        let endpoint = match self.failover.endpoint(pool, &config) {
            Ok(e) => e,
            Err(reason) => return fail(reason),
        };
        // Shares queued now belong to the last connection: its session carries or journals them.
        for _ in 0..self.shares.len() {
            let Ok(share) = self.shares.try_recv() else { break };
            self.route(share);
        }
        if let Some(authority) = endpoint.authority {
            return self.connection_v2(pool, &endpoint, &authority).await;
        }
        let (read, mut write) = match connect(&endpoint, &config).await {
            Ok(io) => io,
            Err(reason) => return fail(reason),
        };
        let mut lines = codec::spawn_line_reader(read);
        let login = Login {
            user: config.user.clone(),
            pass: config.pass.clone(),
            suggest_difficulty: config.suggest_difficulty,
        };
        let actions = self.session.connected(pool, login, Instant::now());
        if let Some(ended) = self.carry_out(pool, actions, &mut write).await {
            return ended;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut probe = tokio::time::interval(FAILBACK_PROBE);
        probe.tick().await;
        loop {
            let actions = tokio::select! {
                _ = self.stop.changed() => return Ended::Stop,
                _ = tick.tick() => self.session.tick(Instant::now()),
                _ = probe.tick(), if pool != self.stats.pools.preferred() => {
                    let preferred = self.stats.pools.preferred();
                    if self.answers(preferred).await {
                        return Ended::Switch(preferred);
                    }
                    continue;
                }
                _ = self.stats.pools.changed.notified() => match self.stats.pools.wanted(pool) {
                    Some(other) => return Ended::Switch(other),
                    None => continue,
                },
                line = lines.recv() => match line {
                    Some(Ok(line)) => match ServerMessage::parse(&line, |id| self.session.expected(id)) {
                        Ok(message) => self.session.received(message, Instant::now()),
                        Err(e) => {
                            return fail(format!("bad line from the pool: {e}"));
                        }
                    },
                    Some(Err(e)) => self.session.closed(Some(e), Instant::now()),
                    None => self.session.closed(None, Instant::now()),
                },
                share = self.shares.recv(), if !self.devices_gone => match share {
                    Some(share) if self.is_v2(share.source) => {
                        self.route(share);
                        continue;
                    }
                    Some(share) => self.session.share(share, Instant::now()),
                    // Devices gone (the miner is stopping): keep the connection for the
                    // answers to what was sent, until stop.
                    None => {
                        self.devices_gone = true;
                        continue;
                    }
                },
            };
            if let Some(ended) = self.carry_out(pool, actions, &mut write).await {
                return ended;
            }
        }
    }

    /// One Stratum V2 connection to `pool`: TCP, the Noise handshake against the authority
    /// key, then messages both ways until it closes.
    async fn connection_v2(&mut self, pool: usize, endpoint: &Endpoint, authority: &v2::AuthorityKey) -> Ended {
        let tcp = match tcp(endpoint).await {
            Ok(tcp) => tcp,
            Err(reason) => return fail(reason),
        };
        let (read, mut write) = match v2::transport::connect(tcp, authority).await {
            Ok(io) => io,
            Err(reason) => return fail(reason),
        };
        let mut messages = v2::transport::spawn_reader(read);
        let config = &self.pools[pool];
        let login = v2::session::Login {
            user: config.user.clone(),
            channel: config.channel,
            nominal_hash_rate: self.hash_rate().max(NOMINAL_HASH_RATE) as f32,
            max_target: config.suggest_difficulty.map(|d| d.to_target()),
            host: endpoint.host.clone(),
            port: endpoint.port,
        };
        let mut actions = self.v2.connected(pool, login, Instant::now());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut probe = tokio::time::interval(FAILBACK_PROBE);
        probe.tick().await;
        loop {
            if let Some(ended) = self.carry_out(pool, actions, &mut write).await {
                return ended;
            }
            actions = tokio::select! {
                _ = self.stop.changed() => return Ended::Stop,
                _ = tick.tick() => self.v2.tick(Instant::now(), self.hash_rate()),
                _ = probe.tick(), if pool != self.stats.pools.preferred() => {
                    let preferred = self.stats.pools.preferred();
                    if self.answers(preferred).await {
                        return Ended::Switch(preferred);
                    }
                    vec![]
                }
                _ = self.stats.pools.changed.notified() => match self.stats.pools.wanted(pool) {
                    Some(other) => return Ended::Switch(other),
                    None => vec![],
                },
                message = messages.recv() => match message {
                    Some(Ok(message)) => self.v2.received(message, Instant::now()),
                    Some(Err(e)) => return fail(format!("the pool connection ended: {e}")),
                    None => return fail("the pool connection ended".into()),
                },
                share = self.shares.recv(), if !self.devices_gone => match share {
                    Some(share) if share.source == pool => self.v2.share(share, Instant::now()),
                    Some(share) => {
                        self.route(share);
                        vec![]
                    }
                    None => {
                        self.devices_gone = true;
                        vec![]
                    }
                },
            };
        }
    }

    /// The devices' rate now, in hashes a second (0 before the first measurement).
    fn hash_rate(&self) -> f64 {
        self.stats.mhs_5s().0 * 1e6
    }

    /// Whether the pool at `index` accepts a TCP connection now.
    async fn answers(&self, index: usize) -> bool {
        let Ok(endpoint) = self.pools[index].endpoint() else { return false };
        matches!(tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(endpoint.address())).await, Ok(Ok(_)))
    }

    /// Sends what the session wants sent, and does the rest; `Some` when the connection ends.
    async fn carry_out<M>(
        &mut self,
        pool: usize,
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
    fn perform<M>(&mut self, pool: usize, actions: Vec<Action<M>>) {
        let url = self.pools[pool].url.clone();
        let mut to_journal = Vec::new();
        for action in actions {
            match action {
                Action::Publish { work, difficulty } => {
                    self.failover.worked();
                    self.work.send_replace(Some(work));
                    self.stats.pools.update(pool, |p| {
                        p.alive = true;
                        p.jobs += 1;
                        p.difficulty = difficulty.value();
                    });
                }
                Action::Answered { share, outcome, latency } => {
                    if let Some(latency) = latency {
                        self.stats.record_latency(latency);
                    }
                    let verdict = match &outcome {
                        ShareOutcome::Accepted => Verdict::Accepted,
                        ShareOutcome::Stale(_) => Verdict::Stale,
                        _ => Verdict::Rejected,
                    };
                    self.stats.count_answer(share.device, share.source, verdict);
                    self.report(share, outcome);
                }
                Action::Journal { share, reason } => to_journal.push((share, reason)),
                Action::Notice(text) => tracing::warn!("{text}"),
                Action::PoolMessage(text) => tracing::info!("message from pool {url}: {text}"),
                Action::Send(_) | Action::Close(_) => unreachable!("carried out by carry_out"),
            }
        }
        if !to_journal.is_empty() {
            self.journal(to_journal);
        }
    }

    fn report(&self, share: Share, outcome: ShareOutcome) {
        if let Some(tx) = &self.outcomes {
            let _ = tx.send((share, outcome));
        }
    }

    /// Writes shares that cannot be sent to their pool's journal. A share that cannot be
    /// written either is logged whole and counted as unjournaled, never as journaled.
    fn journal(&mut self, shares: Vec<(Share, String)>) {
        let mut by_file: BTreeMap<PathBuf, Vec<(Share, String, serde_json::Value)>> = BTreeMap::new();
        for (share, reason) in shares {
            let pool = &self.pools[share.source.min(self.pools.len() - 1)];
            let line = json!({
                "time": crate::stats::unix_time(),
                "pool": pool.url, "user": pool.user, "reason": reason,
                "job_id": share.job_id, "extranonce1": share.extranonce1.to_lower_hex_string(), "extranonce2": share.extranonce2.to_lower_hex_string(),
                "ntime": format!("{:08x}", share.time), "nonce": format!("{:08x}", share.nonce), "hash": share.hash.to_string(),
            });
            by_file.entry(pool.journal.clone()).or_default().push((share, reason, line));
        }
        for (path, entries) in by_file {
            let lines: Vec<serde_json::Value> = entries.iter().map(|(_, _, line)| line.clone()).collect();
            // The write and its sync block: off the runtime's workers where it has several.
            let write = || crate::source::append_to_journal(&path, &lines);
            let written = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
                _ => write(),
            };
            match written {
                Ok(()) => {
                    let (first, reason, _) = &entries[0];
                    tracing::warn!(
                        "{} share(s) written to {} (first {:08x} of job {}): {reason}",
                        entries.len(),
                        path.display(),
                        first.nonce,
                        first.job_id
                    );
                    self.stats.journaled.fetch_add(entries.len() as u64, Relaxed);
                }
                Err(e) => {
                    for line in &lines {
                        tracing::error!(
                            "could not write the share journal {}: {e}; the share was: {line}",
                            path.display()
                        );
                    }
                    self.stats.unjournaled.fetch_add(entries.len() as u64, Relaxed);
                }
            }
            for (share, reason, _) in entries {
                self.report(share, ShareOutcome::Journaled(reason));
            }
        }
    }
}

/// Writes one line; a pool that stops reading for 10 s is a dead session.
/// Where a session's messages go: a v1 line writer or a V2 Noise writer. Either way a pool
/// that does not take a message within `IO_TIMEOUT` has stopped reading.
trait Outbox<M> {
    fn put(&mut self, message: M) -> impl Future<Output = Result<(), String>> + Send;
}

// For every lifetime of the trait object, not only `Writer`'s `'static`: with that alone rustc
// finds the spawned driver's future "not general enough" to be `Send`.
impl<'a> Outbox<ClientMessage> for Box<dyn AsyncWrite + Unpin + Send + 'a> {
    async fn put(&mut self, message: ClientMessage) -> Result<(), String> {
        send_line(self, &message.to_line()).await
    }
}

impl Outbox<v2::Message> for v2::transport::Writer {
    async fn put(&mut self, message: v2::Message) -> Result<(), String> {
        match tokio::time::timeout(IO_TIMEOUT, self.send(message)).await {
            Ok(sent) => sent,
            Err(_) => Err("the pool stopped reading".into()),
        }
    }
}

async fn send_line(write: &mut (impl AsyncWrite + Unpin), line: &str) -> Result<(), String> {
    let bytes = format!("{line}\n");
    let sent = async {
        write.write_all(bytes.as_bytes()).await?;
        write.flush().await // TLS holds data back until flushed
    };
    match tokio::time::timeout(IO_TIMEOUT, sent).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the pool stopped reading".into()),
    }
}
