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

use crate::admission::{Admission, Limits, Ticket};
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
    /// Connections at once: past them, the oldest not logged in makes room for a newcomer,
    /// which is closed only when every one is logged in.
    pub max_connections: usize,
    /// Connections at once from one address.
    pub max_per_address: usize,
    /// A connection not logged in by then (v1: authorized; SV2: a channel open, the Noise
    /// handshake included) is closed; a sixth of it while the pool is more than half full.
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
            max_per_address: 64,
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
        let limits = limits(&options);
        accept_until_stopped(listener, stats.clone(), limits, stop_rx.clone(), move |stream, ticket| {
            let session = Session::new(en1_counter.fetch_add(1, Relaxed), &options, session_stats.clone());
            let current = tip.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let (jobs, stop) = (jobs.subscribe(), stop_rx.clone());
            let tls = options.tls.clone();
            async move {
                let login_by = ticket.deadline();
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
                serve(session, lines, LineWriter(write), jobs, ticket, stop).await;
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

/// Serves one connection until the miner leaves, stops reading, does not log in by its
/// ticket's deadline, or the pool stops. Logged in, it is held: never shed for a newcomer.
pub(crate) async fn serve<S: Served>(
    mut connection: S,
    mut incoming: tokio::sync::mpsc::Receiver<Result<S::In, crate::wire::TransportError>>,
    mut outbox: impl Outbox<S::Out>,
    mut tips: broadcast::Receiver<S::Tip>,
    ticket: Ticket,
    mut stop: watch::Receiver<bool>,
) {
    let login_by = ticket.deadline();
    let mut _held = None;
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
                Some(Ok(message)) => {
                    if _held.is_none() {
                        ticket.spoke();
                    }
                    connection.received(message)
                }
                _ => return,
            },
        };
        if _held.is_none() && connection.logged_in() {
            _held = Some(ticket.hold());
        }
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
pub(crate) fn limits(options: &PoolOptions) -> Limits {
    let patience = options.login_timeout;
    Limits {
        max: options.max_connections,
        per_peer: options.max_per_address,
        patience,
        // 30 s becomes 5 s: ample for a miner on a LAN, or across the world.
        hurried: (patience / 6).max(Duration::from_secs(1)).min(patience),
    }
}

/// Accepts connections until `stop`, the listener of both protocols' pools: each is admitted
/// (`crate::admission`: when the pool is full, or an address has its share, the oldest
/// connection not logged in makes room; a logged-in miner is never shed for a newcomer, and
/// only when all are logged in is a newcomer closed), counted, and served on a task of its own
/// by the future `serve` makes of it, with its ticket: the deadline to log in (shorter while
/// the pool is more than half full), and the hold a login takes.
pub(crate) fn accept_until_stopped<F>(
    listener: TcpListener,
    stats: Arc<PoolStats>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    mut serve: impl FnMut(TcpStream, Ticket) -> F + Send + 'static,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let admission = Admission::new(limits);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                conn = listener.accept() => {
                    let Ok((tcp, peer)) = conn else {
                        // Out of file descriptors, say: no busy loop while it lasts.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    if admission.serve(peer.ip(), |ticket| serve(tcp, ticket)) {
                        stats.connections.fetch_add(1, Relaxed);
                    }
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

/// Jobs a connection takes shares on: a notify adds one (vardiff's included), a new tip clears
/// them, and past this the oldest is closed.
pub const MAX_OPEN_JOBS: usize = 8;

/// Shares remembered per job to refuse duplicates (16 bytes each): with `MAX_OPEN_JOBS`, what a
/// connection can make the pool hold, however fast it finds shares at a fixed difficulty.
pub const MAX_SHARES_PER_JOB: usize = 16_384;

/// A job a connection was sent: the difficulty it carries and the shares taken on it
/// (extranonce2, ntime, nonce, version), dropped with it.
struct OpenJob {
    job: Arc<Job>,
    difficulty: Difficulty,
    /// Its place in the order jobs were sent.
    sent: u32,
    shares: HashSet<(u32, u32, u32, u32)>,
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
    /// Jobs this connection was sent and still takes shares on, each with its difficulty and
    /// the shares it took (at most `MAX_OPEN_JOBS`, `MAX_SHARES_PER_JOB` each).
    jobs: HashMap<String, OpenJob>,
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
        if self.jobs.len() >= MAX_OPEN_JOBS {
            // The oldest goes: a miner sweeps the newest job and at most a piece behind it.
            let oldest = self.jobs.iter().min_by_key(|(_, j)| j.sent).map(|(id, _)| id.clone());
            oldest.map(|id| self.jobs.remove(&id));
        }
        let open = OpenJob {
            job: Arc::new(job.clone()),
            difficulty: self.difficulty,
            sent: self.resends,
            shares: HashSet::new(),
        };
        self.jobs.insert(job.id.to_string(), open);
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
            ClientMessage::Submit { id, submission } => self.submitted(id, &submission),
            ClientMessage::Invalid { id, method, reason } => {
                vec![reply(id, Reply::Error(RpcError::new(code::OTHER, format!("{method}: {reason}"))))]
            }
            ClientMessage::Other { id: Some(id), method } => {
                error(id, code::OTHER, &format!("Method {method} not supported"))
            }
            ClientMessage::Other { id: None, .. } | ClientMessage::Answer { .. } => vec![],
        }
    }

    /// A logged-in miner's share: accepted (with vardiff's new difficulty, or a fresh job when
    /// the share's job is full) or refused.
    fn submitted(&mut self, id: Id, submission: &Submission) -> Vec<String> {
        match self.check_share(submission) {
            Ok(full) => {
                self.stats.accepted.fetch_add(1, Relaxed);
                let mut out = vec![reply(Some(id), Reply::Result(true))];
                if full {
                    // The job took all the shares it remembers: it is closed, and the miner
                    // moves on to a fresh one (its last pieces of the full one come back stale).
                    self.jobs.remove(&submission.job_id);
                }
                let renotified = self.vardiff();
                if full && renotified.is_empty() {
                    out.extend(self.notify(false));
                }
                out.extend(renotified);
                out
            }
            Err(e) => {
                self.stats.rejected.fetch_add(1, Relaxed);
                vec![reply(Some(id), Reply::Error(e))]
            }
        }
    }

    /// Checks a share: its job, its fields, its proof of work, then whether it came before (only
    /// a share with its work done is remembered, by its job). Ok: accepted, and whether its job
    /// now holds `MAX_SHARES_PER_JOB`.
    fn check_share(&mut self, s: &Submission) -> Result<bool, RpcError> {
        let bad = |m: &str| RpcError::new(code::OTHER, m);
        let Some(open) = self.jobs.get_mut(&s.job_id) else {
            return Err(RpcError::new(code::JOB_NOT_FOUND, "Job not found"));
        };
        let Ok(extranonce2) = <[u8; EXTRANONCE2_SIZE]>::try_from(s.extranonce2.as_slice()) else {
            return Err(bad("wrong extranonce2 size"));
        };
        let job = &open.job;
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
        let mut header = job.header(&self.extranonce1, &s.extranonce2, s.time, version);
        header.nonce = s.nonce;
        if !open.difficulty.to_target().is_met_by(header.block_hash()) {
            return Err(RpcError::new(code::LOW_DIFFICULTY, "Low difficulty share"));
        }
        if !open.shares.insert((u32::from_be_bytes(extranonce2), s.time, s.nonce, version)) {
            return Err(RpcError::new(code::DUPLICATE, "Duplicate share"));
        }
        Ok(open.shares.len() >= MAX_SHARES_PER_JOB)
    }

    /// Shares this connection remembers to refuse duplicates, over all its open jobs.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.jobs.values().map(|j| j.shares.len()).sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A logged-in session at `difficulty`, and the id of the job it was sent.
    fn logged_in(difficulty: f64) -> (Session, String) {
        let options = PoolOptions {
            difficulty: Difficulty::new(difficulty).unwrap(),
            share_interval: None,
            ..Default::default()
        };
        let mut session = Session::new(7, &options, Arc::new(PoolStats::default()));
        session.handle(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
        let out = session.handle(r#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#);
        (session, last_job(&out).unwrap())
    }

    /// The id of the last job notified in `lines`.
    fn last_job(lines: &[String]) -> Option<String> {
        lines.iter().rev().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["method"] == "mining.notify").then(|| v["params"][0].as_str().unwrap().to_string())
        })
    }

    fn submit(job: &str, extranonce2: u32, nonce: u32, time: u32) -> String {
        format!(
            r#"{{"id":9,"method":"mining.submit","params":["w","{job}","{extranonce2:08x}","{time:08x}","{nonce:08x}"]}}"#
        )
    }

    fn answer(lines: &[String]) -> serde_json::Value {
        serde_json::from_str(&lines[0]).unwrap()
    }

    /// One logged-in client sending distinct shares that miss the difficulty once grew the
    /// pool from 16 to 110 MB (550,000 of them): each was remembered before its work was
    /// checked. Now none is, and a share that meets it is remembered by its job only.
    #[test]
    fn junk_shares_are_not_remembered() {
        let (mut session, job) = logged_in(1e6);
        let time = session.jobs[&job].job.time;
        for n in 0..100_000u32 {
            let out = session.handle(&submit(&job, n, n, time));
            assert_eq!(answer(&out)["error"][0], code::LOW_DIFFICULTY, "{}", out[0]);
        }
        assert_eq!(session.remembered(), 0);
        assert_eq!(session.stats.rejected.load(Relaxed), 100_000);
    }

    /// At a difficulty every hash meets, a client sends shares as fast as it likes: the pool
    /// remembers at most `MAX_OPEN_JOBS` × `MAX_SHARES_PER_JOB`, a job that fills up is
    /// replaced by a new one, a duplicate is still refused, and a new tip forgets them all.
    #[test]
    fn remembered_shares_are_bounded_and_dropped_with_their_jobs() {
        let (mut session, mut job) = logged_in(1e-12);
        let time = session.jobs[&job].job.time;
        let mut jobs_sent = 1;
        for n in 0..(MAX_SHARES_PER_JOB as u32 * 5 / 2) {
            let out = session.handle(&submit(&job, n, n, time));
            assert_eq!(answer(&out)["result"], true, "{}", out[0]);
            assert!(session.remembered() <= MAX_OPEN_JOBS * MAX_SHARES_PER_JOB);
            if let Some(next) = last_job(&out) {
                job = next;
                jobs_sent += 1;
            }
        }
        assert_eq!(jobs_sent, 3, "a job that is full is replaced");
        assert_eq!(session.remembered(), MAX_SHARES_PER_JOB / 2);
        let again = MAX_SHARES_PER_JOB as u32 * 5 / 2 - 1;
        assert_eq!(answer(&session.handle(&submit(&job, again, again, time)))["error"][0], code::DUPLICATE);
        session.tip(new_job(5));
        assert_eq!(session.remembered(), 0, "a new tip drops the jobs and their shares");
    }
}
