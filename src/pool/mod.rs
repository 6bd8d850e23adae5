//! The embedded Stratum v1 pool behind `wgminer pool` and `wgminer demo`, and the tests' peer.
//! Small but real: jobs from a synthetic chain tip, shares validated by SHA-256d against the
//! difficulty each job was sent with, Stratum's error codes, vardiff towards a share rate, and a
//! new tip (clean jobs) every few seconds.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::hex::DisplayHex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};

use crate::wire::Outbox;
use crate::wire::stratum_v1::LineWriter;
use crate::wire::stratum_v1::{
    ClientMessage, Extranonce, Id, Reply, RpcError, ServerMessage, Submission, VersionMask, code,
};
use crate::work::job::Job;
use crate::work::{BlockHash, CompactTarget, Difficulty, hex_decode};

pub mod sv2;
pub mod template;

pub const EXTRANONCE2_SIZE: usize = 4;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// The version bits the pool lets miners roll (BIP320's general-purpose bits).

#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Starting share difficulty of each connection.
    pub difficulty: Difficulty,
    /// A new chain tip, sent with clean_jobs, this often.
    pub job_interval: Duration,
    /// Vardiff aims at one share per this interval; `None` keeps the difficulty fixed.
    pub share_interval: Option<Duration>,
    /// Serve Stratum over TLS with these settings (`stratum+ssl://` miners).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Give each miner that sent `mining.extranonce.subscribe` a new extranonce1 with every new
    /// chain tip (`mining.set_extranonce`), as proxies and rental services do.
    pub rotate_extranonce: bool,
    /// Grant BIP310 version rolling to a miner that asks (BIP320's bits); without, answer its
    /// `mining.configure` with `"version-rolling": false`, as a pool that does not roll does.
    pub version_rolling: bool,
    /// Connections served at once; more are closed as they come.
    pub max_connections: usize,
    /// A connection not logged in by then (v1: authorized; SV2: a channel open, the Noise
    /// handshake included) is closed.
    pub login_timeout: Duration,
}

/// The longest line a miner sends is a submit of a few hundred bytes: a connection whose line
/// passes this is dropped. With `max_connections` it bounds what unfinished lines hold.
pub const MAX_MINER_LINE: usize = 16 << 10;

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            difficulty: Difficulty::new(0.001).expect("positive"),
            job_interval: Duration::from_secs(30),
            share_interval: Some(Duration::from_secs(2)),
            tls: None,
            rotate_extranonce: false,
            version_rolling: true,
            max_connections: 256,
            login_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
pub struct PoolStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub connections: AtomicU64,
}

pub struct EmbeddedPool {
    pub addr: SocketAddr,
    pub stats: Arc<PoolStats>,
    stop: Shutdown,
}

impl EmbeddedPool {
    pub async fn start(listen: &str, options: PoolOptions) -> std::io::Result<EmbeddedPool> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(PoolStats::default());
        let (stop, stop_rx) = Shutdown::new();
        let (jobs, _) = broadcast::channel::<Arc<Job>>(16);
        let tip = Arc::new(std::sync::Mutex::new(new_job(1)));
        let (clock_jobs, clock_tip) = (jobs.clone(), tip.clone());
        tokio::spawn(chain_clock(options.job_interval, stop_rx.clone(), move |height| {
            let job = new_job(height);
            *clock_tip.lock().unwrap_or_else(|p| p.into_inner()) = job.clone();
            let _ = clock_jobs.send(job);
        }));
        let en1_counter = Arc::new(AtomicU32::new(1));
        let session_stats = stats.clone();
        let limits = Limits::of(&options);
        accept_until_stopped(listener, stats.clone(), limits, stop_rx.clone(), move |stream, login_by| {
            let session = Session::new(en1_counter.fetch_add(1, Relaxed), &options, session_stats.clone());
            let current = tip.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let (jobs, stop) = (jobs.subscribe(), stop_rx.clone());
            let tls = options.tls.clone();
            async move {
                let (read, write): (Reader, Writer) = match tls {
                    None => {
                        let (r, w) = stream.into_split();
                        (Box::new(r), Box::new(w))
                    }
                    Some(config) => {
                        let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                        let Ok(Ok(tls)) = tokio::time::timeout_at(login_by, accept).await else { return };
                        let (r, w) = tokio::io::split(tls);
                        (Box::new(r), Box::new(w))
                    }
                };
                let mut session = session;
                session.current = current;
                let lines = crate::wire::stratum_v1::spawn_line_reader(read, MAX_MINER_LINE);
                serve(session, lines, LineWriter(write), jobs, login_by, stop).await;
            }
        });
        Ok(EmbeddedPool { addr, stats, stop })
    }

    /// Closes the listener and every session.
    pub fn shutdown(&self) {
        self.stop.now();
    }
}

/// One miner's connection as an embedded pool serves it, sans I/O: what the miner sends and
/// each new tip go in, messages to send come out. Both protocols' connections implement it,
/// and `serve` is the one loop around either.
pub(crate) trait Served {
    type In;
    type Out;
    type Tip: Clone;
    /// Whether the miner has logged in (v1: authorized; SV2: a channel open).
    fn logged_in(&self) -> bool;
    fn received(&mut self, message: Self::In) -> Vec<Self::Out>;
    fn tip(&mut self, tip: Self::Tip) -> Vec<Self::Out>;
}

/// Serves one connection until the miner leaves, stops reading, does not log in by
/// `login_by`, or the pool stops.
pub(crate) async fn serve<S: Served>(
    mut connection: S,
    mut incoming: tokio::sync::mpsc::Receiver<Result<S::In, crate::wire::TransportError>>,
    mut outbox: impl Outbox<S::Out>,
    mut tips: broadcast::Receiver<S::Tip>,
    login_by: tokio::time::Instant,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let out = tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(login_by), if !connection.logged_in() => return,
            tip = tips.recv() => match tip {
                Ok(tip) => connection.tip(tip),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
            message = incoming.recv() => match message {
                Some(Ok(message)) => connection.received(message),
                _ => return,
            },
        };
        for message in out {
            if outbox.put(message).await.is_err() {
                return; // the miner stopped reading: drop it
            }
        }
    }
}

/// What stops a pool, v1 or V2: its listener, chain clock and connections end when it is
/// told to or dropped.
pub(crate) struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    /// The stop and the receiver every task of the pool watches.
    pub(crate) fn new() -> (Shutdown, watch::Receiver<bool>) {
        let (stop, stop_rx) = watch::channel(false);
        (Shutdown(stop), stop_rx)
    }

    pub(crate) fn now(&self) {
        let _ = self.0.send(true);
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.now();
    }
}

/// What one pool lets its connections hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub login_timeout: Duration,
}

impl Limits {
    pub(crate) fn of(options: &PoolOptions) -> Limits {
        Limits { max_connections: options.max_connections.max(1), login_timeout: options.login_timeout }
    }
}

/// Accepts connections until `stop`, the listener of both protocols' pools: each is counted
/// and served on a task of its own by the future `serve` makes of it, with the instant by
/// which it must have logged in. Past `max_connections` at once, a connection is closed as it
/// comes (the miners already mining keep mining).
pub(crate) fn accept_until_stopped<F>(
    listener: TcpListener,
    stats: Arc<PoolStats>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    mut serve: impl FnMut(TcpStream, tokio::time::Instant) -> F + Send + 'static,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                conn = listener.accept() => {
                    let Ok((tcp, _)) = conn else {
                        // Out of file descriptors, say: no busy loop while it lasts.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                    stats.connections.fetch_add(1, Relaxed);
                    let _ = tcp.set_nodelay(true);
                    let served = serve(tcp, tokio::time::Instant::now() + limits.login_timeout);
                    tokio::spawn(async move {
                        served.await;
                        drop(slot);
                    });
                }
            }
        }
    });
}

/// The synthetic chain's clock, shared by both protocols' pools: a new tip every `every`
/// (heights from 2), handed to `on_tip`, until `stop`.
pub(crate) async fn chain_clock(every: Duration, mut stop: watch::Receiver<bool>, mut on_tip: impl FnMut(u32)) {
    let mut height = 1u32;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        height += 1;
        on_tip(height);
    }
}

/// A job on a synthetic chain: the coinbase pushes the height (BIP34) and the extranonces, and
/// pays 50 BTC to a fixed P2WPKH output; two made-up transactions give the merkle branch depth.
fn new_job(height: u32) -> Arc<Job> {
    let now = crate::stats::unix_time() as u32;
    let tag = b"/wgminer/";
    let script_len = 4 + 4 + EXTRANONCE2_SIZE + 1 + tag.len();
    let mut coinb1 =
        hex_decode("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff").expect("hex");
    coinb1.push(script_len as u8);
    coinb1.push(3);
    coinb1.extend_from_slice(&height.to_le_bytes()[..3]);
    let mut coinb2 = vec![tag.len() as u8];
    coinb2.extend_from_slice(tag);
    coinb2.extend_from_slice(&[0xff; 4]);
    coinb2.push(1);
    coinb2.extend_from_slice(&5_000_000_000u64.to_le_bytes());
    coinb2.extend_from_slice(&[22, 0x00, 0x14]);
    coinb2.extend_from_slice(&[0x5a; 20]);
    coinb2.extend_from_slice(&[0; 4]);
    let seed = |tag: &str| sha256d::Hash::hash(format!("wgminer {tag} {height}").as_bytes()).to_byte_array();
    Arc::new(Job {
        id: format!("{height:x}").into(),
        prev_hash: BlockHash::from_byte_array(seed("tip")),
        coinb1,
        coinb2,
        merkle_branch: vec![seed("tx1"), seed("tx2")],
        version: 0x2000_0000,
        bits: CompactTarget::from_consensus(0x1d00_ffff),
        time: now,
        clean: true,
        root: None,
    })
}

/// One miner's connection: what it was sent and agreed, and the shares it sent.
pub(crate) struct Session {
    extranonce1: [u8; 4],
    difficulty: Difficulty,
    options: PoolOptions,
    stats: Arc<PoolStats>,
    subscribed: bool,
    authorized: bool,
    /// Version-rolling mask agreed through mining.configure; 0 without.
    version_mask: VersionMask,
    extranonce_subscribed: bool,
    /// Jobs this connection was sent, with the difficulty each carries.
    jobs: HashMap<String, (Arc<Job>, Difficulty)>,
    seen: HashSet<(String, Vec<u8>, u32, u32, u32)>,
    current: Arc<Job>,
    resends: u32,
    window: (Instant, u32),
}

impl Session {
    pub(crate) fn new(id: u32, options: &PoolOptions, stats: Arc<PoolStats>) -> Session {
        Session {
            extranonce1: id.to_be_bytes(),
            difficulty: options.difficulty,
            options: options.clone(),
            stats,
            subscribed: false,
            authorized: false,
            version_mask: VersionMask::NONE,
            extranonce_subscribed: false,
            jobs: HashMap::new(),
            seen: HashSet::new(),
            current: new_job(0),
            resends: 0,
            window: (Instant::now(), 0),
        }
    }
}

impl Served for Session {
    type In = String;
    type Out = String;
    type Tip = Arc<Job>;

    fn logged_in(&self) -> bool {
        self.authorized
    }

    fn received(&mut self, line: String) -> Vec<String> {
        self.handle(&line)
    }

    fn tip(&mut self, job: Arc<Job>) -> Vec<String> {
        self.current = job;
        if self.authorized { self.new_tip() } else { vec![] }
    }
}

impl Session {
    /// A new chain tip: a new extranonce1 first where the miner asked for them, then the job.
    fn new_tip(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.options.rotate_extranonce && self.extranonce_subscribed {
            let next = u32::from_be_bytes(self.extranonce1).wrapping_add(0x0100_0000);
            self.extranonce1 = next.to_be_bytes();
            out.push(ServerMessage::SetExtranonce(self.extranonce()).to_line());
        }
        out.extend(self.notify(true));
        out
    }

    fn extranonce(&self) -> Extranonce {
        Extranonce { extranonce1: self.extranonce1.to_vec(), extranonce2_size: EXTRANONCE2_SIZE }
    }

    /// set_difficulty and a notify of the current job under a fresh id.
    fn notify(&mut self, clean: bool) -> Vec<String> {
        if clean {
            self.jobs.clear();
        }
        self.resends += 1;
        let mut job = (*self.current).clone();
        job.id = format!("{}.{}", self.current.id, self.resends).into();
        job.clean = clean;
        self.jobs.insert(job.id.to_string(), (Arc::new(job.clone()), self.difficulty));
        vec![ServerMessage::SetDifficulty(self.difficulty).to_line(), ServerMessage::Notify(job).to_line()]
    }

    pub(crate) fn handle(&mut self, line: &str) -> Vec<String> {
        let message = match ClientMessage::parse(line) {
            Ok(m) => m,
            Err(e) => return vec![reply(None, Reply::Error(RpcError::new(code::OTHER, e.to_string())))],
        };
        let error = |id: Id, c: i64, m: &str| vec![reply(Some(id), Reply::Error(RpcError::new(c, m)))];
        match message {
            ClientMessage::Subscribe { id, .. } => {
                self.subscribed = true;
                let session = Some(self.extranonce1.to_lower_hex_string());
                vec![reply(Some(id), Reply::Subscribed { session, extranonce: self.extranonce() })]
            }
            ClientMessage::Authorize { id, .. } if !self.subscribed => {
                error(id, code::NOT_SUBSCRIBED, "Not subscribed")
            }
            ClientMessage::Authorize { id, .. } => {
                self.authorized = true;
                let mut out = vec![reply(Some(id), Reply::Result(true))];
                out.extend(self.notify(true));
                out
            }
            ClientMessage::ExtranonceSubscribe { id } => {
                self.extranonce_subscribed = true;
                vec![reply(Some(id), Reply::Result(true))]
            }
            ClientMessage::Configure { id, version_rolling } => {
                let version_rolling = version_rolling.filter(|_| self.options.version_rolling);
                self.version_mask = version_rolling.map_or(VersionMask::NONE, |r| r.mask.and(VersionMask::BIP320));
                let granted = version_rolling.map(|_| self.version_mask);
                vec![reply(Some(id), Reply::Configured { version_rolling: granted })]
            }
            ClientMessage::SuggestDifficulty { id, difficulty } => {
                self.difficulty = difficulty;
                vec![reply(Some(id), Reply::Result(true))]
            }
            ClientMessage::Submit { id, .. } if !self.subscribed => error(id, code::NOT_SUBSCRIBED, "Not subscribed"),
            ClientMessage::Submit { id, .. } if !self.authorized => {
                error(id, code::UNAUTHORIZED, "Unauthorized worker")
            }
            ClientMessage::Submit { id, submission } => match self.check_share(&submission) {
                Ok(()) => {
                    self.stats.accepted.fetch_add(1, Relaxed);
                    let mut out = vec![reply(Some(id), Reply::Result(true))];
                    out.extend(self.vardiff());
                    out
                }
                Err(e) => {
                    self.stats.rejected.fetch_add(1, Relaxed);
                    vec![reply(Some(id), Reply::Error(e))]
                }
            },
            ClientMessage::Invalid { id, method, reason } => {
                vec![reply(id, Reply::Error(RpcError::new(code::OTHER, format!("{method}: {reason}"))))]
            }
            ClientMessage::Other { id: Some(id), method } => {
                error(id, code::OTHER, &format!("Method {method} not supported"))
            }
            ClientMessage::Other { id: None, .. } | ClientMessage::Answer { .. } => vec![],
        }
    }

    fn check_share(&mut self, s: &Submission) -> Result<(), RpcError> {
        let bad = |m: &str| RpcError::new(code::OTHER, m);
        let Some((job, difficulty)) = self.jobs.get(&s.job_id).cloned() else {
            return Err(RpcError::new(code::JOB_NOT_FOUND, "Job not found"));
        };
        if s.extranonce2.len() != EXTRANONCE2_SIZE {
            return Err(bad("wrong extranonce2 size"));
        }
        if s.time < job.time || s.time > job.time + 7200 {
            return Err(bad("ntime out of range"));
        }
        let version = match s.version_bits {
            None => job.version,
            Some(bits) if bits & !self.version_mask.0 != 0 => {
                return Err(bad("version bits outside the negotiated mask"));
            }
            Some(bits) => self.version_mask.apply(job.version, bits),
        };
        if !self.seen.insert((s.job_id.clone(), s.extranonce2.clone(), s.time, s.nonce, version)) {
            return Err(RpcError::new(code::DUPLICATE, "Duplicate share"));
        }
        let mut header = job.header(&self.extranonce1, &s.extranonce2, s.time, version);
        header.nonce = s.nonce;
        if !difficulty.to_target().is_met_by(header.block_hash()) {
            return Err(RpcError::new(code::LOW_DIFFICULTY, "Low difficulty share"));
        }
        Ok(())
    }

    /// After every 8 accepted shares, moves the difficulty towards one share per interval
    /// (by at most 4x either way) and sends it with the job at once.
    fn vardiff(&mut self) -> Vec<String> {
        let Some(interval) = self.options.share_interval else { return vec![] };
        self.window.1 += 1;
        if self.window.1 < 8 {
            return vec![];
        }
        let per_share = self.window.0.elapsed().as_secs_f64() / f64::from(self.window.1);
        self.window = (Instant::now(), 0);
        let factor = (interval.as_secs_f64() / per_share.max(1e-6)).clamp(0.25, 4.0);
        if (factor - 1.0).abs() < 0.2 {
            return vec![];
        }
        self.difficulty = Difficulty::new(self.difficulty.value() * factor).unwrap_or(self.difficulty);
        self.notify(false)
    }
}

fn reply(id: Option<Id>, reply: Reply) -> String {
    ServerMessage::Response { id, reply }.to_line()
}
