//! Soak: mining for a long time against a pool that goes away for 10 s every 30 s, with a
//! difficulty that gives about 50 shares a second on the `cpu` device. Not a timed test: a
//! benchmark whose figures go into RELIABILITY.md.
//!
//! `cargo bench --bench soak -- --minutes 60 [--shares-per-second 50]`
//!
//! Each minute it prints the resident memory (VmRSS of /proc/self/status) and the counters.
//! At the end it checks what RELIABILITY.md promises and exits 1 if any fails: every share
//! found ends accepted, rejected, stale or journaled, exactly once; the pool took every share
//! counted accepted; memory after the first minutes stays flat.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use wgminer::cpu::CpuSweeper;
use wgminer::device::Sweeper;
use wgminer::miner::{Miner, Source};
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::source::stratum::{PoolConfig, ShareOutcome};
use wgminer::work::Difficulty;

const UP: Duration = Duration::from_secs(30);
const DOWN: Duration = Duration::from_secs(10);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Forwards to `upstream` for `UP`, then for `DOWN` closes every connection and refuses new
/// ones (accepts and drops them at once), and again.
async fn flapping_proxy(upstream: std::net::SocketAddr, flaps: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let (cut, _) = watch::channel(0u64);
    let cut = Arc::new(cut);
    let (cycle_down, cycle_cut) = (down.clone(), cut.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UP).await;
            cycle_down.store(true, Relaxed);
            cycle_cut.send_modify(|n| *n += 1);
            flaps.fetch_add(1, Relaxed);
            tokio::time::sleep(DOWN).await;
            cycle_down.store(false, Relaxed);
        }
    });
    tokio::spawn(async move {
        while let Ok((mut miner, _)) = listener.accept().await {
            if down.load(Relaxed) {
                continue; // dropped: refused
            }
            let mut cut = cut.subscribe();
            tokio::spawn(async move {
                let Ok(mut pool) = TcpStream::connect(upstream).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut miner, &mut pool) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    addr
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let minutes = arg("--minutes", 60.0);
    let per_second = arg("--shares-per-second", 50.0);
    let mut device = CpuSweeper::new();
    let (hashes, seconds) = wgminer::device::measure_rate(&mut device, 2.0, 1 << 20).expect("the cpu device sweeps");
    let rate = hashes as f64 / seconds;
    let difficulty = Difficulty::new(rate / per_second / 4_294_967_296.0).expect("a positive rate");
    println!(
        "soak: {minutes} min, cpu device at {:.2} MH/s, difficulty {difficulty} (~{per_second} shares/s)",
        rate / 1e6
    );
    let journal = std::env::temp_dir().join(format!("wgminer-soak-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let length = Duration::from_secs_f64(minutes * 60.0);
    let ok = runtime.block_on(soak(device, difficulty, per_second, length, journal.clone()));
    let lines = std::fs::read_to_string(&journal).map(|t| t.lines().count()).unwrap_or(0);
    println!("journal {}: {lines} lines", journal.display());
    std::process::exit(if ok { 0 } else { 1 });
}

/// Each share's one outcome: accepted, rejected, stale, journaled; and how many came twice.
struct Tally {
    /// A 64-bit hash of each share's identity: the soak measures the miner's memory, so the
    /// tally keeps little of its own.
    keys: HashSet<u64>,
    repeated: u64,
    counts: [u64; 4],
}

impl Tally {
    /// Room for `expected` shares reserved at once, so that the tally's own growth does not
    /// show in the RSS the soak measures (a doubling table is a step of megabytes).
    fn new(expected: usize) -> Tally {
        Tally { keys: HashSet::with_capacity(expected), repeated: 0, counts: [0; 4] }
    }

    fn count(&mut self, share: &wgminer::source::Share, outcome: &ShareOutcome) {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&share.job_id, &share.extranonce2, share.time, share.nonce, share.version_bits).hash(&mut hasher);
        if !self.keys.insert(hasher.finish()) {
            self.repeated += 1;
        }
        let i = match outcome {
            ShareOutcome::Accepted => 0,
            ShareOutcome::Rejected(_) => 1,
            ShareOutcome::Stale(_) => 2,
            ShareOutcome::Journaled(_) | ShareOutcome::Unjournaled(_) => 3,
        };
        self.counts[i] += 1;
    }
}

async fn soak(
    device: CpuSweeper,
    difficulty: Difficulty,
    per_second: f64,
    length: Duration,
    journal: std::path::PathBuf,
) -> bool {
    let options = PoolOptions { difficulty, share_interval: None, ..Default::default() };
    let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
    let flaps = Arc::new(AtomicU64::new(0));
    let proxy = flapping_proxy(pool.addr, flaps.clone()).await;
    let config = PoolConfig {
        url: format!("stratum+tcp://{proxy}"),
        user: "soak".into(),
        pass: "x".into(),
        journal,
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
    };
    let mut miner = Miner::start(Source::Pools(vec![config]), vec![Box::new(device) as Box<dyn Sweeper>]);
    let stats = miner.stats.clone();

    let started = Instant::now();
    let mut tally = Tally::new((length.as_secs_f64() * per_second * 2.0) as usize);
    let mut rss = Vec::new();
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    minute.tick().await;
    while started.elapsed() < length {
        tokio::select! {
            Some((share, outcome)) = miner.outcomes.recv() => tally.count(&share, &outcome),
            _ = minute.tick() => {
                rss.push(rss_kib());
                println!(
                    "minute {:>3}: RSS {:>7} KiB, found {}, accepted {}, rejected {}, stale {}, journaled {}, pool accepted {}, flaps {}",
                    rss.len(), rss.last().unwrap(), stats.counts().found, tally.counts[0], tally.counts[1], tally.counts[2], tally.counts[3],
                    pool.stats.accepted.load(Relaxed), flaps.load(Relaxed)
                );
            }
        }
    }
    let mut stopped = miner.stop().await;
    while let Ok((share, outcome)) = stopped.outcomes.try_recv() {
        tally.count(&share, &outcome);
    }
    let found = stats.counts().found;
    let counts = tally.counts;
    let ended: u64 = counts.iter().sum();
    let (first, last) = (rss.get(4).or(rss.first()).copied().unwrap_or(0), rss.last().copied().unwrap_or(0));
    let checks = [
        ("every share found ends once (found = accepted + rejected + stale + journaled)", found == ended),
        ("no share reported twice", tally.repeated == 0),
        // A connection cut between the pool's answer and its arrival leaves a share the pool
        // took and the miner journaled: never the other way round.
        ("the pool took every share counted accepted, and more only as many as were journaled", {
            let taken = pool.stats.accepted.load(Relaxed);
            taken >= counts[0] && taken - counts[0] <= counts[3]
        }),
        ("nothing unjournaled", stats.counts().unjournaled == 0),
        ("RSS flat after minute 5 (within 16 MiB)", last <= first + 16 * 1024),
    ];
    println!(
        "soak done: {:.0} s, found {found}, accepted {}, rejected {}, stale {}, journaled {}, flaps {}, RSS {first} → {last} KiB",
        started.elapsed().as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        flaps.load(Relaxed)
    );
    for (what, ok) in &checks {
        println!("{}  {what}", if *ok { "PASS" } else { "FAIL" });
    }
    checks.iter().all(|(_, ok)| *ok)
}
