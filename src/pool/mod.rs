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
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::source::stratum::codec::{self, Message, RpcError, code};
use crate::work::job::Job;
use crate::work::{BlockHash, CompactTarget, Difficulty, hex_decode};

pub const EXTRANONCE2_SIZE: usize = 4;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// The version bits the pool lets miners roll (BIP320's general-purpose bits).
pub const VERSION_MASK: u32 = 0x1fff_e000;

#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Starting share difficulty of each connection.
    pub difficulty: f64,
    /// A new chain tip, sent with clean_jobs, this often.
    pub job_interval: Duration,
    /// Vardiff aims at one share per this interval; `None` keeps the difficulty fixed.
    pub share_interval: Option<Duration>,
    /// Serve Stratum over TLS with these settings (`stratum+ssl://` miners).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Give each miner that sent `mining.extranonce.subscribe` a new extranonce1 with every new
    /// chain tip (`mining.set_extranonce`), as proxies and rental services do.
    pub rotate_extranonce: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            difficulty: 0.001,
            job_interval: Duration::from_secs(30),
            share_interval: Some(Duration::from_secs(2)),
            tls: None,
            rotate_extranonce: false,
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
    stop: watch::Sender<bool>,
}

impl EmbeddedPool {
    pub async fn start(listen: &str, options: PoolOptions) -> std::io::Result<EmbeddedPool> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(PoolStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let (jobs, _) = broadcast::channel::<Arc<Job>>(16);
        let tip = Arc::new(std::sync::Mutex::new(new_job(1)));
        tokio::spawn(job_clock(jobs.clone(), tip.clone(), options.job_interval, stop_rx.clone()));
        let en1_counter = Arc::new(AtomicU32::new(1));
        let accept_stats = stats.clone();
        tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => return,
                    conn = listener.accept() => {
                        let Ok((stream, _)) = conn else { continue };
                        accept_stats.connections.fetch_add(1, Relaxed);
                        let session = Session::new(en1_counter.fetch_add(1, Relaxed), &options, accept_stats.clone());
                        let current = tip.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        let (jobs, stop) = (jobs.subscribe(), stop_rx.clone());
                        let tls = options.tls.clone();
                        tokio::spawn(async move {
                            let _ = stream.set_nodelay(true);
                            let (read, write): (Reader, Writer) = match tls {
                                None => {
                                    let (r, w) = stream.into_split();
                                    (Box::new(r), Box::new(w))
                                }
                                Some(config) => {
                                    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), accept).await else { return };
                                    let (r, w) = tokio::io::split(tls);
                                    (Box::new(r), Box::new(w))
                                }
                            };
                            session.run(read, write, jobs, current, stop).await;
                        });
                    }
                }
            }
        });
        Ok(EmbeddedPool { addr, stats, stop })
    }

    /// Closes the listener and every session.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for EmbeddedPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn job_clock(
    jobs: broadcast::Sender<Arc<Job>>,
    tip: Arc<std::sync::Mutex<Arc<Job>>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut height = 1u32;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        height += 1;
        let job = new_job(height);
        *tip.lock().unwrap_or_else(|p| p.into_inner()) = job.clone();
        let _ = jobs.send(job);
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
        id: format!("{height:x}"),
        prev_hash: BlockHash::from_byte_array(seed("tip")),
        coinb1,
        coinb2,
        merkle_branch: vec![seed("tx1"), seed("tx2")],
        version: 0x2000_0000,
        bits: CompactTarget::from_consensus(0x1d00_ffff),
        time: now,
        clean: true,
    })
}

struct Session {
    extranonce1: [u8; 4],
    difficulty: f64,
    options: PoolOptions,
    stats: Arc<PoolStats>,
    subscribed: bool,
    authorized: bool,
    /// Version-rolling mask agreed through mining.configure; 0 without.
    version_mask: u32,
    extranonce_subscribed: bool,
    /// Jobs this connection was sent, with the difficulty each carries.
    jobs: HashMap<String, (Arc<Job>, f64)>,
    seen: HashSet<(String, Vec<u8>, u32, u32, u32)>,
    current: Arc<Job>,
    resends: u32,
    window: (Instant, u32),
}

impl Session {
    fn new(id: u32, options: &PoolOptions, stats: Arc<PoolStats>) -> Session {
        Session {
            extranonce1: id.to_be_bytes(),
            difficulty: options.difficulty,
            options: options.clone(),
            stats,
            subscribed: false,
            authorized: false,
            version_mask: 0,
            extranonce_subscribed: false,
            jobs: HashMap::new(),
            seen: HashSet::new(),
            current: new_job(0),
            resends: 0,
            window: (Instant::now(), 0),
        }
    }

    async fn run(
        mut self,
        read: Reader,
        mut write: Writer,
        mut jobs: broadcast::Receiver<Arc<Job>>,
        tip: Arc<Job>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.current = tip;
        let mut lines = codec::spawn_line_reader(read);
        loop {
            let out: Vec<String> = tokio::select! {
                _ = stop.changed() => return,
                job = jobs.recv() => match job {
                    Ok(job) => { self.current = job; if self.authorized { self.new_tip() } else { vec![] } }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                line = lines.recv() => match line {
                    Some(Ok(line)) => self.handle(&line),
                    _ => return,
                },
            };
            for line in out {
                let bytes = format!("{line}\n");
                let send = async {
                    write.write_all(bytes.as_bytes()).await?;
                    write.flush().await
                };
                let sent = tokio::time::timeout(Duration::from_secs(10), send).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return; // the miner stopped reading: drop it
                }
            }
        }
    }

    /// A new chain tip: a new extranonce1 first where the miner asked for them, then the job.
    fn new_tip(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.options.rotate_extranonce && self.extranonce_subscribed {
            let next = u32::from_be_bytes(self.extranonce1).wrapping_add(0x0100_0000);
            self.extranonce1 = next.to_be_bytes();
            let en1 = self.extranonce1.to_lower_hex_string();
            out.push(codec::notification("mining.set_extranonce", json!([en1, EXTRANONCE2_SIZE])));
        }
        out.extend(self.notify(true));
        out
    }

    /// set_difficulty and a notify of the current job under a fresh id.
    fn notify(&mut self, clean: bool) -> Vec<String> {
        if clean {
            self.jobs.clear();
        }
        self.resends += 1;
        let mut job = (*self.current).clone();
        job.id = format!("{}.{}", self.current.id, self.resends);
        job.clean = clean;
        self.jobs.insert(job.id.clone(), (Arc::new(job.clone()), self.difficulty));
        vec![
            codec::notification("mining.set_difficulty", json!([self.difficulty])),
            codec::notification("mining.notify", codec::notify_params(&job)),
        ]
    }

    fn handle(&mut self, line: &str) -> Vec<String> {
        let (id, method, params) = match codec::parse_line(line) {
            Ok(Message::Request { id, method, params }) => (id, method, params),
            Ok(Message::Notification { .. } | Message::Response { .. }) => return vec![],
            Err(e) => {
                return vec![codec::response(
                    &Value::Null,
                    Value::Null,
                    Some(&RpcError::new(code::OTHER, e.to_string())),
                )];
            }
        };
        let reply = |result: Value| codec::response(&id, result, None);
        let error = |c: i64, m: &str| codec::response(&id, Value::Null, Some(&RpcError::new(c, m)));
        match method.as_str() {
            "mining.subscribe" => {
                self.subscribed = true;
                let session = self.extranonce1.to_lower_hex_string();
                vec![reply(json!([
                    [["mining.set_difficulty", session], ["mining.notify", session]],
                    session,
                    EXTRANONCE2_SIZE
                ]))]
            }
            "mining.authorize" if !self.subscribed => vec![error(code::NOT_SUBSCRIBED, "Not subscribed")],
            "mining.authorize" => {
                self.authorized = true;
                let mut out = vec![reply(json!(true))];
                out.extend(self.notify(true));
                out
            }
            "mining.extranonce.subscribe" => {
                self.extranonce_subscribed = true;
                vec![reply(json!(true))]
            }
            "mining.configure" => {
                let asks_rolling =
                    params.get(0).and_then(Value::as_array).is_some_and(|e| e.iter().any(|x| x == "version-rolling"));
                if !asks_rolling {
                    return vec![reply(json!({}))];
                }
                let requested = params
                    .get(1)
                    .and_then(|o| o.get("version-rolling.mask"))
                    .and_then(Value::as_str)
                    .and_then(|m| u32::from_str_radix(m, 16).ok())
                    .unwrap_or(u32::MAX);
                self.version_mask = requested & VERSION_MASK;
                vec![reply(
                    json!({"version-rolling": true, "version-rolling.mask": format!("{:08x}", self.version_mask)}),
                )]
            }
            "mining.suggest_difficulty" => {
                if let Some(d) = params.get(0).and_then(Value::as_f64).filter(|d| d.is_finite() && *d > 0.0) {
                    self.difficulty = d;
                }
                vec![reply(json!(true))]
            }
            "mining.submit" if !self.subscribed => vec![error(code::NOT_SUBSCRIBED, "Not subscribed")],
            "mining.submit" if !self.authorized => vec![error(code::UNAUTHORIZED, "Unauthorized worker")],
            "mining.submit" => match self.check_share(&params) {
                Ok(()) => {
                    self.stats.accepted.fetch_add(1, Relaxed);
                    let mut out = vec![reply(json!(true))];
                    out.extend(self.vardiff());
                    out
                }
                Err(e) => {
                    self.stats.rejected.fetch_add(1, Relaxed);
                    vec![codec::response(&id, Value::Null, Some(&e))]
                }
            },
            _ => vec![error(code::OTHER, &format!("Method {method} not supported"))],
        }
    }

    fn check_share(&mut self, params: &Value) -> Result<(), RpcError> {
        let bad = |m: &str| RpcError::new(code::OTHER, m);
        let a = params.as_array().ok_or_else(|| bad("params must be an array"))?;
        let field =
            |i: usize, what: &str| a.get(i).and_then(Value::as_str).ok_or_else(|| bad(&format!("missing {what}")));
        let (job_id, en2, ntime, nonce) =
            (field(1, "job_id")?, field(2, "extranonce2")?, field(3, "ntime")?, field(4, "nonce")?);
        let Some((job, difficulty)) = self.jobs.get(job_id).cloned() else {
            return Err(RpcError::new(code::JOB_NOT_FOUND, "Job not found"));
        };
        let en2 = hex_decode(en2).map_err(|_| bad("extranonce2 is not hex"))?;
        if en2.len() != EXTRANONCE2_SIZE {
            return Err(bad("wrong extranonce2 size"));
        }
        let hex_u32 = |s: &str, what: &str| crate::work::hex_u32(s).map_err(|e| bad(&format!("{what}: {e}")));
        let (ntime, nonce) = (hex_u32(ntime, "ntime")?, hex_u32(nonce, "nonce")?);
        if ntime < job.time || ntime > job.time + 7200 {
            return Err(bad("ntime out of range"));
        }
        let version = match a.get(5) {
            None => job.version,
            Some(bits) => {
                let bits = hex_u32(bits.as_str().unwrap_or(""), "version bits")?;
                if bits & !self.version_mask != 0 {
                    return Err(bad("version bits outside the negotiated mask"));
                }
                (job.version & !self.version_mask) | bits
            }
        };
        if !self.seen.insert((job_id.to_string(), en2.clone(), ntime, nonce, version)) {
            return Err(RpcError::new(code::DUPLICATE, "Duplicate share"));
        }
        let mut header = job.header(&self.extranonce1, &en2, ntime, version);
        header.nonce = nonce;
        let target = Difficulty::new(difficulty).map_err(|e| bad(&e.to_string()))?.to_target();
        if !target.is_met_by(header.block_hash()) {
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
        self.difficulty *= factor;
        self.notify(false)
    }
}
