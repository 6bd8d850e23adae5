//! A Stratum v1 client session: subscribe, authorize, follow jobs and difficulty, submit the
//! shares the scheduler hands back, and reconnect with backoff when the pool goes away.
//!
//! Difficulty: `mining.set_difficulty` applies to the work of the *next* `mining.notify`, as
//! pools (ckpool, slush) expect; shares of earlier jobs are checked against the difficulty their
//! job came with. Before the first notify the pending difficulty simply becomes the first job's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::codec::{self, Message, RpcError, code};
use crate::source::{Share, SourceWork};
use crate::stats::{Stats, Verdict};
use bitcoin::hex::DisplayHex;

use crate::work::{Difficulty, NonceRange};

/// The version bits wgminer asks to roll: BIP320's general-purpose bits 13-28.
pub const VERSION_MASK: u32 = 0x1fff_e000;

pub const USER_AGENT: &str = concat!("wgminer/", env!("CARGO_PKG_VERSION"));

/// A pool with no notify for this long is taken as silent and reconnected.
pub const SILENCE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `stratum+tcp://host:port` or `host:port`.
    pub url: String,
    pub user: String,
    pub pass: String,
    /// Where shares that could not be sent are written, one JSON line each.
    pub journal: PathBuf,
    /// PEM certificates to trust for TLS, besides the webpki roots (a pool's own CA).
    pub ca_file: Option<PathBuf>,
    /// Sent as `mining.suggest_difficulty` after authorizing (cgminer's --suggest-diff).
    pub suggest_difficulty: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// The TLS client settings: the webpki roots plus the certificates of `ca_file`.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use pki_types::CertificateDer;
    use pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// Opens the connection, over TLS when the URL asks for it.
async fn connect(config: &PoolConfig) -> Result<(Reader, Writer), SessionError> {
    let endpoint = config.endpoint().map_err(SessionError::Protocol)?;
    let address = config.address().map_err(SessionError::Protocol)?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&address))
        .await
        .map_err(|_| SessionError::Protocol(format!("connect to {address} timed out")))??;
    tcp.set_nodelay(true)?;
    if !endpoint.tls {
        let (read, write) = tcp.into_split();
        return Ok((Box::new(read), Box::new(write)));
    }
    let tls = tls_config(config.ca_file.as_deref()).map_err(SessionError::Protocol)?;
    let name = pki_types::ServerName::try_from(endpoint.host.clone())
        .map_err(|e| SessionError::Protocol(format!("{}: {e}", endpoint.host)))?;
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp),
    )
    .await
    .map_err(|_| SessionError::Protocol(format!("TLS handshake with {address} timed out")))?
    .map_err(|e| SessionError::Protocol(format!("TLS with {address}: {e}")))?;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

impl PoolConfig {
    /// `host:port` to connect to.
    /// Where the URL points: host, port and whether to speak TLS.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let (tls, rest) = match self.url.split_once("://") {
            Some(("stratum+tcp" | "tcp", rest)) => (false, rest),
            Some(("stratum+ssl" | "stratum+tls" | "ssl" | "tls", rest)) => (true, rest),
            Some((scheme, _)) => {
                return Err(format!(
                    "pool URL scheme `{scheme}` is not supported (use stratum+tcp://, stratum+ssl:// or stratum+tls://)"
                ));
            }
            None => (false, self.url.as_str()),
        };
        let rest = rest.trim_end_matches('/');
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => match port.parse::<u16>() {
                Ok(port) => Ok(Endpoint { host: host.trim_matches(['[', ']']).to_string(), port, tls }),
                Err(_) => Err(format!("pool URL `{}` has a bad port `{port}`", self.url)),
            },
            _ => {
                Err(format!("pool URL `{}` needs a host and a port, such as stratum+tcp://pool.example:3333", self.url))
            }
        }
    }

    /// `host:port` to connect to.
    pub fn address(&self) -> Result<String, String> {
        self.endpoint().map(|e| {
            if e.host.contains(':') { format!("[{}]:{}", e.host, e.port) } else { format!("{}:{}", e.host, e.port) }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShareOutcome {
    Accepted,
    Rejected(RpcError),
    Stale(String),
    Journaled(String),
}

/// While mining on a backup pool, the first pool is tried this often; once it answers, the
/// miner returns to it (cgminer's failover-only strategy).
pub const FAILBACK_PROBE: Duration = Duration::from_secs(5);

/// Runs sessions until `stop` turns true. `pools` are in priority order: when one fails or
/// falls silent the next is tried at once; after a whole round fails, the wait grows with
/// exponential backoff and jitter (1 s doubling to 60 s). Outcomes of submitted shares go to
/// `outcomes`, if given.
pub async fn run(
    pools: Vec<PoolConfig>,
    work: watch::Sender<Option<Arc<SourceWork>>>,
    mut shares: mpsc::Receiver<Share>,
    stats: Arc<Stats>,
    outcomes: Option<mpsc::UnboundedSender<(Share, ShareOutcome)>>,
    mut stop: watch::Receiver<bool>,
) {
    for pool in &pools {
        stats.pools.register(&pool.url, &pool.user);
    }
    let mut state = ClientState {
        generation: 0,
        session: None,
        unsent: VecDeque::new(),
        carried: VecDeque::new(),
        in_flight: HashMap::new(),
        pools,
        active: 0,
        stats,
        outcomes,
    };
    let mut backoff = Duration::from_secs(1);
    while !*stop.borrow() {
        let started = Instant::now();
        let result = state.session(&work, &mut shares, &mut stop).await;
        if *stop.borrow() {
            break;
        }
        match result {
            Ok(Reconnect::Now(delay)) => {
                backoff = Duration::from_secs(1);
                sleep_or_stop(delay, &mut stop).await;
                continue;
            }
            Ok(Reconnect::Switch(index)) => {
                tracing::info!("switching to pool {}", state.pools[index].url);
                state.switch_to(index);
                continue;
            }
            Err(e) if state.stats.pools.next_enabled(state.active) != state.active => {
                let next = state.stats.pools.next_enabled(state.active);
                tracing::warn!("pool {}: {e}; failing over to {}", state.config().url, state.pools[next].url);
                state.stats.pools.update(state.active, |p| p.alive = false);
                state.switch_to(next);
                if next != state.stats.pools.preferred() {
                    continue; // the next pool at once; back off only after a whole round
                }
            }
            Err(e) => {
                state.stats.pools.update(state.active, |p| p.alive = false);
                tracing::warn!("pool {}: {e}; reconnecting in {}s", state.config().url, backoff.as_secs())
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        let jitter = Duration::from_millis(
            u64::from(started.elapsed().subsec_nanos()) % 1000 * backoff.as_millis() as u64 / 4000,
        );
        sleep_or_stop(backoff + jitter, &mut stop).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
    // Whatever could not be sent is written down, never dropped.
    while let Ok(share) = shares.try_recv() {
        state.unsent.push_back(share);
    }
    let unanswered: Vec<Share> = state.in_flight.drain().map(|(_, p)| p.share).collect();
    for share in unanswered {
        state.journal(share, "miner stopped before the pool answered");
    }
    let pending: Vec<Share> = state.carried.drain(..).chain(state.unsent.drain(..)).collect();
    for share in pending {
        state.journal(share, "miner stopped before the share could be sent");
    }
}

async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
}

enum Reconnect {
    /// `client.reconnect` asked for it, after this delay.
    Now(Duration),
    /// A pool of higher priority answers again.
    Switch(usize),
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("no notify for {}s", SILENCE.as_secs())]
    Silent,
    #[error("connection closed by the pool")]
    Closed,
}

struct ClientState {
    generation: u64,
    /// The subscription id to resume after a reconnect, with the extranonce it had.
    session: Option<(String, Vec<u8>)>,
    /// Verified shares found on this connection, waiting for a job to check them against.
    unsent: VecDeque<Share>,
    /// Shares from before this connection: sent when their job is current on it, else journaled.
    carried: VecDeque<Share>,
    /// Shares sent and not yet answered, by request id.
    in_flight: HashMap<u64, Pending>,
    pools: Vec<PoolConfig>,
    /// Index into `pools` of the pool in use.
    active: usize,
    stats: Arc<Stats>,
    outcomes: Option<mpsc::UnboundedSender<(Share, ShareOutcome)>>,
}

struct Pending {
    share: Share,
    sent: Instant,
}

impl ClientState {
    fn config(&self) -> &PoolConfig {
        &self.pools[self.active]
    }

    fn switch_to(&mut self, index: usize) {
        self.active = index;
        self.session = None;
        self.stats.pools.set_active(index);
    }

    fn report(&self, share: Share, outcome: ShareOutcome) {
        if let Some(tx) = &self.outcomes {
            let _ = tx.send((share, outcome));
        }
    }

    fn journal(&mut self, share: Share, reason: &str) {
        let line = json!({
            "time": crate::stats::unix_time(),
            "pool": self.config().url, "user": self.config().user, "reason": reason,
            "job_id": share.job_id, "extranonce1": share.extranonce1.to_lower_hex_string(), "extranonce2": share.extranonce2.to_lower_hex_string(),
            "ntime": format!("{:08x}", share.time), "nonce": format!("{:08x}", share.nonce), "hash": share.hash.to_string(),
        });
        match crate::source::append_to_journal(&self.config().journal, &line) {
            Ok(()) => tracing::warn!(
                "share {:08x} of job {} written to {}: {reason}",
                share.nonce,
                share.job_id,
                self.config().journal.display()
            ),
            Err(e) => tracing::error!(
                "could not write the share journal {}: {e}; the share was: {line}",
                self.config().journal.display()
            ),
        }
        self.stats.journaled.fetch_add(1, Relaxed);
        self.report(share, ShareOutcome::Journaled(reason.to_string()));
    }

    async fn session(
        &mut self,
        work: &watch::Sender<Option<Arc<SourceWork>>>,
        shares: &mut mpsc::Receiver<Share>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Reconnect, SessionError> {
        let (read, mut write) = connect(self.config()).await?;
        let mut lines = codec::spawn_line_reader(read);

        // BIP310: ask for version rolling first; a pool that does not know the method answers
        // with an error and the session mines without it.
        let mut next_id = 1u64;
        let configure = json!([["version-rolling"], {"version-rolling.mask": format!("{VERSION_MASK:08x}"), "version-rolling.min-bit-count": 2}]);
        send_line(&mut write, codec::request(next_id, "mining.configure", configure)).await?;
        let configure_id = next_id;
        next_id += 1;
        let mut version_mask = 0u32;
        let subscribe_params = match &self.session {
            Some((id, _)) => json!([USER_AGENT, id]),
            None => json!([USER_AGENT]),
        };
        send_line(&mut write, codec::request(next_id, "mining.subscribe", subscribe_params)).await?;
        let subscribe_id = next_id;
        next_id += 1;

        let mut extranonce: Option<(Vec<u8>, usize)> = None;
        let mut pending_difficulty = 1.0;
        let mut authorize_id = 0;
        let mut jobs: HashSet<String> = HashSet::new();
        // Shares from before this connection (sent and never answered, queued, or found while
        // the pool was away) go out again once a job arrives, or to the journal.
        let mut unanswered: Vec<(u64, Share)> = self.in_flight.drain().map(|(id, p)| (id, p.share)).collect();
        unanswered.sort_by_key(|(id, _)| *id);
        self.carried.extend(unanswered.into_iter().map(|(_, share)| share));
        self.carried.extend(self.unsent.drain(..));
        // What is queued now, not what devices add meanwhile.
        for _ in 0..shares.len() {
            let Ok(share) = shares.try_recv() else { break };
            self.carried.push_back(share);
        }
        let mut last_notify = Instant::now();
        // A share sent before the first job on this connection is held until one arrives.
        let mut current: Option<Arc<SourceWork>> = None;
        let mut devices_gone = false;
        let mut probe = tokio::time::interval(FAILBACK_PROBE);
        probe.tick().await;

        loop {
            tokio::select! {
                _ = probe.tick(), if self.active != self.stats.pools.preferred() => {
                    let preferred = self.stats.pools.preferred();
                    if let Ok(primary) = self.pools[preferred].address() {
                        let answered = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(primary)).await;
                        if matches!(answered, Ok(Ok(_))) {
                            return Ok(Reconnect::Switch(preferred));
                        }
                    }
                }
                _ = self.stats.pools.changed.notified() => {
                    if let Some(index) = self.stats.pools.wanted(self.active) {
                        return Ok(Reconnect::Switch(index));
                    }
                }
                _ = stop.changed() => return Ok(Reconnect::Now(Duration::ZERO)),
                _ = tokio::time::sleep_until((last_notify + SILENCE).into()) => return Err(SessionError::Silent),
                line = lines.recv() => {
                    let line = match line {
                        Some(Ok(line)) => line,
                        Some(Err(e)) => return Err(SessionError::Protocol(e)),
                        None => return Err(SessionError::Closed),
                    };
                    let message = match codec::parse_line(&line) {
                        Ok(m) => m,
                        Err(e) => return Err(SessionError::Protocol(format!("bad line from pool: {e}"))),
                    };
                    match message {
                        Message::Response { id, result, error } if id == json!(configure_id) => {
                            version_mask = match error {
                                None => codec::parse_configure_result(&result) & VERSION_MASK,
                                Some(_) => 0,
                            };
                        }
                        Message::Notification { method, params } if method == "mining.set_version_mask" => {
                            version_mask = codec::parse_version_mask(&params).map_err(|e| SessionError::Protocol(e.to_string()))? & VERSION_MASK;
                        }
                        Message::Response { id, result, error } if id == json!(subscribe_id) => {
                            if let Some(e) = error {
                                return Err(SessionError::Protocol(format!("subscribe refused: {e}")));
                            }
                            let (session, en1, size) = codec::parse_subscribe_result(&result).map_err(|e| SessionError::Protocol(e.to_string()))?;
                            self.session = session.map(|s| (s, en1.clone()));
                            extranonce = Some((en1, size));
                            send_line(&mut write, codec::request(next_id, "mining.authorize", json!([self.config().user, self.config().pass]))).await?;
                            authorize_id = next_id;
                            next_id += 1;
                            send_line(&mut write, codec::request(next_id, "mining.extranonce.subscribe", json!([]))).await?;
                            next_id += 1;
                            if let Some(d) = self.config().suggest_difficulty {
                                send_line(&mut write, codec::request(next_id, "mining.suggest_difficulty", json!([d]))).await?;
                                next_id += 1;
                            }
                        }
                        Message::Response { id, result, error } if id == json!(authorize_id) => {
                            if error.is_some() || result != Value::Bool(true) {
                                return Err(SessionError::Protocol(format!("authorization of {} refused: {}", self.config().user, error.map_or(result.to_string(), |e| e.to_string()))));
                            }
                        }
                        Message::Response { id, result, error } => {
                            let Some(pending) = id.as_u64().and_then(|id| self.in_flight.remove(&id)) else { continue };
                            self.stats.record_latency(pending.sent.elapsed());
                            let (verdict, outcome) = match (result, error) {
                                (Value::Bool(true), None) => (Verdict::Accepted, ShareOutcome::Accepted),
                                (_, Some(e)) if e.code == code::JOB_NOT_FOUND => (Verdict::Stale, ShareOutcome::Stale(e.message)),
                                (_, Some(e)) => (Verdict::Rejected, ShareOutcome::Rejected(e)),
                                (other, None) => (Verdict::Rejected, ShareOutcome::Rejected(RpcError::new(code::OTHER, format!("result {other}")))),
                            };
                            self.stats.count_answer(pending.share.device, pending.share.source, verdict);
                            if let ShareOutcome::Rejected(e) = &outcome {
                                tracing::warn!("share {:08x} rejected: {e}", pending.share.nonce);
                            }
                            self.report(pending.share, outcome);
                        }
                        Message::Notification { method, params } | Message::Request { method, params, .. } if method == "mining.notify" => {
                            let Some((en1, size)) = extranonce.clone() else {
                                return Err(SessionError::Protocol("mining.notify before the subscription was answered".into()));
                            };
                            let job = codec::parse_notify(&params).map_err(|e| SessionError::Protocol(e.to_string()))?;
                            last_notify = Instant::now();
                            if job.clean {
                                jobs.clear();
                            }
                            jobs.insert(job.id.clone());
                            self.generation += 1;
                            let target = Difficulty::new(pending_difficulty).unwrap_or(Difficulty::ONE).to_target();
                            let next = Arc::new(SourceWork { source: self.active, generation: self.generation, job, extranonce1: en1, extranonce2_size: size, target, version_mask, nonces: NonceRange::FULL_RANGE, received: last_notify });
                            current = Some(next.clone());
                            work.send_replace(Some(next));
                            self.stats.pools.update(self.active, |p| { p.alive = true; p.jobs += 1; p.difficulty = pending_difficulty; });
                            self.flush_unsent(&mut write, &mut next_id, &jobs, &current).await?;
                        }
                        Message::Notification { method, params } | Message::Request { method, params, .. } if method == "mining.set_difficulty" => {
                            pending_difficulty = codec::parse_difficulty(&params).map_err(|e| SessionError::Protocol(e.to_string()))?;
                        }
                        Message::Notification { method, params } | Message::Request { method, params, .. } if method == "mining.set_extranonce" => {
                            let values = params.as_array().cloned().unwrap_or_default();
                            extranonce = Some(codec::parse_extranonce(&method, &values).map_err(|e| SessionError::Protocol(e.to_string()))?);
                        }
                        Message::Notification { method, params } if method == "client.show_message" => {
                            tracing::info!("message from pool {}: {}", self.config().url, params.get(0).and_then(|v| v.as_str()).unwrap_or(""));
                        }
                        Message::Request { id, method, params } => {
                            let reply = match method.as_str() {
                                "client.get_version" => codec::response(&id, json!(USER_AGENT), None),
                                "mining.ping" => codec::response(&id, json!("pong"), None),
                                "client.show_message" => {
                                    tracing::info!("message from pool {}: {}", self.config().url, params.get(0).and_then(|v| v.as_str()).unwrap_or(""));
                                    codec::response(&id, json!(true), None)
                                }
                                "client.reconnect" => {
                                    send_line(&mut write, codec::response(&id, json!(true), None)).await?;
                                    return self.reconnect_request(&params);
                                }
                                _ => codec::response(&id, Value::Null, Some(&RpcError::new(code::OTHER, format!("method {method} not supported")))),
                            };
                            send_line(&mut write, reply).await?;
                        }
                        Message::Notification { method, params } if method == "client.reconnect" => return self.reconnect_request(&params),
                        Message::Notification { .. } => {}
                    }
                }
                share = shares.recv(), if !devices_gone => {
                    // Devices gone (the miner is stopping): keep the session for the answers to
                    // what was sent, until stop.
                    let Some(share) = share else {
                        devices_gone = true;
                        continue;
                    };
                    self.unsent.push_back(share);
                    self.flush_unsent(&mut write, &mut next_id, &jobs, &current).await?;
                }
            }
        }
    }

    /// Sends queued shares whose job is still current on this connection with the same
    /// extranonce1; counts those of jobs a clean notify retired as stale; journals those that
    /// belonged to an earlier connection whose jobs are gone.
    async fn flush_unsent(
        &mut self,
        write: &mut Writer,
        next_id: &mut u64,
        jobs: &HashSet<String>,
        current: &Option<Arc<SourceWork>>,
    ) -> Result<(), SessionError> {
        let Some(current) = current else { return Ok(()) };
        let sendable = |share: &Share| {
            share.source == current.source && share.extranonce1 == current.extranonce1 && jobs.contains(&share.job_id)
        };
        while let Some(share) = self.carried.pop_front() {
            if sendable(&share) {
                self.submit(write, next_id, share).await?;
            } else {
                self.journal(
                    share,
                    "found before a reconnect; its job or extranonce is not current on the new session",
                );
            }
        }
        while let Some(share) = self.unsent.pop_front() {
            if sendable(&share) {
                self.submit(write, next_id, share).await?;
            } else if share.source == current.source && !jobs.contains(&share.job_id) {
                self.stats.stale.fetch_add(1, Relaxed);
                self.report(share, ShareOutcome::Stale("job retired by a clean notify".into()));
            } else {
                self.journal(share, "its extranonce1 changed (set_extranonce) while its job is still open");
            }
        }
        Ok(())
    }

    async fn submit(&mut self, write: &mut Writer, next_id: &mut u64, share: Share) -> Result<(), SessionError> {
        let params = codec::submit_params(&self.config().user, &share);
        let line = codec::request(*next_id, "mining.submit", params);
        self.in_flight.insert(*next_id, Pending { share, sent: Instant::now() });
        *next_id += 1;
        send_line(write, line).await
    }

    /// `client.reconnect [host, port, wait]`: honoured for the same host only.
    fn reconnect_request(&mut self, params: &Value) -> Result<Reconnect, SessionError> {
        let a = params.as_array().cloned().unwrap_or_default();
        let host = a.first().and_then(Value::as_str).unwrap_or("");
        let wait = a.get(2).and_then(|w| w.as_u64().or_else(|| w.as_str()?.parse().ok())).unwrap_or(0).min(3600);
        let ours = self.config().address().unwrap_or_default();
        let our_host = ours.rsplit_once(':').map_or("", |(h, _)| h);
        if !host.is_empty() && host != our_host {
            tracing::warn!("pool asked to reconnect to {host}; ignored (only the same host is honoured)");
            return Ok(Reconnect::Now(Duration::from_secs(1)));
        }
        let port = a.get(1).and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()));
        if let (Some(port), Some((h, _))) = (port, ours.rsplit_once(':')) {
            self.pools[self.active].url = format!("stratum+tcp://{h}:{port}");
        }
        Ok(Reconnect::Now(Duration::from_secs(wait)))
    }
}

/// Writes one line; a pool that stops reading for 10 s is a dead session.
async fn send_line(write: &mut Writer, line: String) -> Result<(), SessionError> {
    let bytes = format!("{line}\n");
    let sent = async {
        write.write_all(bytes.as_bytes()).await?;
        write.flush().await // TLS holds data back until flushed
    };
    tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .map_err(|_| SessionError::Protocol("the pool stopped reading".into()))?
        .map_err(SessionError::from)
}
