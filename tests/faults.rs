//! Faults that used to lose work: a pool that goes away for good while shares keep coming,
//! and a journal that cannot be written. Loopback only; every wait is bounded.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use wgminer::cpu::CpuSweeper;
use wgminer::miner::Miner;
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{MineOptions, mine};
use wgminer::source::stratum::PoolConfig;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

const SLUSH_NOTIFY: &str = r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#;

/// A pool that logs the miner in, sends slush's job at difficulty 1e-9 (every few hashes a
/// share) and never answers a submit. Serves one connection until `submits` submits came or
/// `until`; returns how many came, and the connection, still open.
async fn never_answering_pool(
    listener: &tokio::net::TcpListener,
    submits: usize,
    until: Instant,
) -> (usize, tokio::net::TcpStream) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (stream, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await.unwrap().unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut seen = 0;
    let stream_back = |lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>, write| {
        lines.into_inner().into_inner().reunite(write).expect("the same stream")
    };
    while seen < submits {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Ok(Some(line))) = tokio::time::timeout(left, lines.next_line()).await else { break };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let reply = match v["method"].as_str() {
            Some("mining.subscribe") => format!(r#"{{"id":{},"result":[[],"08000002",4],"error":null}}"#, v["id"]),
            Some("mining.authorize") => format!(
                "{{\"id\":{},\"result\":true,\"error\":null}}\n{{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1e-9]}}\n{SLUSH_NOTIFY}",
                v["id"]
            ),
            Some("mining.submit") => {
                seen += 1;
                continue;
            }
            _ => continue,
        };
        write.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
    }
    (seen, stream_back(lines, write))
}

/// Pool `url` for worker "w", shares that cannot be sent going to `journal`.
fn pool_config(url: String, journal: std::path::PathBuf) -> PoolConfig {
    PoolConfig {
        url,
        user: "w".into(),
        pass: "x".into(),
        journal,
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
    }
}

fn journal_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The pool closes once it has accepted 100 shares and refuses reconnects, while the CPU
/// device finds about a thousand shares a second: more than the 4,096-share queue holds in
/// what is left of the 8 s run. The old client stopped reading shares between connections:
/// the queue filled, the device threads blocked, and `--seconds` was never honoured. Now the
/// run ends on time, and every share found after the pool left is in the journal, counted once.
#[test]
fn a_pool_gone_for_good_ends_on_time_with_every_share_journaled() {
    let journal = std::env::temp_dir().join(format!("wgminer-faults-gone-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(1e-6).unwrap(),
            share_interval: None,
            ..Default::default()
        };
        let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
        let config = pool_config(format!("stratum+tcp://{}", pool.addr), journal.clone());
        let run = MineOptions {
            duration: Some(Duration::from_secs(8)),
            status_every: Duration::from_secs(60),
            api: None,
            http: None,
            temp: None,
            budgets: Vec::new(),
            until: None,
        };
        let started = Instant::now();
        let miner =
            tokio::spawn(
                async move { mine(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())], &run).await.0 },
            );
        until("100 shares accepted", || pool.stats.accepted.load(Relaxed) >= 100).await;
        pool.shutdown();
        let summary = tokio::time::timeout(Duration::from_secs(30), miner).await.expect("the run ends").unwrap();
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
        assert!(summary.accepted > 0, "{summary:?}");
        assert_eq!(pool.stats.accepted.load(Relaxed), summary.accepted);
        let lines = journal_lines(&journal);
        assert!(summary.journaled > 10, "{summary:?}");
        assert_eq!(lines.len() as u64, summary.journaled, "journaled once each");
        assert_eq!(summary.unjournaled, 0);
        let distinct: std::collections::HashSet<String> =
            lines.iter().map(|l| format!("{} {} {}", l["job_id"], l["extranonce2"], l["nonce"])).collect();
        assert_eq!(distinct.len(), lines.len(), "no share twice");
    });
}

/// A journal that is a directory is refused before mining starts, with what to do.
#[test]
fn a_journal_that_cannot_be_written_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["mine", "-o", "stratum+tcp://127.0.0.1:9", "-u", "w", "-d", "cpu", "--seconds", "1", "--journal"])
        .arg(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a directory; give a file"), "{stderr}");
}

/// `solo --seconds` bounds the run while the node is down, as it does while mining.
#[test]
fn solo_seconds_holds_while_the_node_is_down() {
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["solo", "--rpc-url", "http://127.0.0.1:9", "--rpc-user", "u", "--rpc-password", "p"])
        .args(["--address", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "-d", "cpu", "--seconds", "2"])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not answer within --seconds"));
}

/// Runs `wgminer mine` with `journal` against a pool that answers the login and never a
/// submit, sends SIGTERM once three submits came, and returns the exit code and stderr.
#[cfg(unix)]
fn mine_until_sigterm(journal: &std::path::Path) -> (Option<i32>, String) {
    // stderr to a file: a pipe nobody reads while the miner runs would fill and stall it.
    let name = journal.file_name().unwrap().to_string_lossy();
    let log = std::env::temp_dir().join(format!("wgminer-faults-stderr-{}-{name}.log", std::process::id()));
    let code = runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .args(["mine", "-o", &format!("stratum+tcp://{}", listener.local_addr().unwrap()), "-u", "w", "-d", "cpu"])
            .arg("--journal")
            .arg(journal)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let (submits, _open) = never_answering_pool(&listener, 3, far).await;
        assert_eq!(submits, 3);
        let kill = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            assert!(Instant::now() < deadline, "stops on SIGTERM");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (code, std::fs::read_to_string(&log).unwrap())
}

/// SIGTERM (systemd, `docker stop`) stops the miner as Ctrl-C does: shares the pool has not
/// answered are journaled.
#[cfg(unix)]
#[test]
fn sigterm_journals_unanswered_shares() {
    let journal = std::env::temp_dir().join(format!("wgminer-faults-sigterm-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let (code, stderr) = mine_until_sigterm(&journal);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopping (SIGTERM)"), "{stderr}");
    let lines = journal_lines(&journal);
    let unanswered = lines.iter().filter(|l| l["reason"] == "miner stopped before the pool answered").count();
    assert!(unanswered >= 3, "{unanswered} of {} journaled shares were unanswered ones", lines.len());
}

/// A journal that fails at the write (`/dev/full` opens, and every write fails): the shares
/// are not counted journaled; each is logged whole and the run exits 2.
#[cfg(target_os = "linux")]
#[test]
fn a_journal_that_fails_at_the_write_is_not_counted_and_fails_the_run() {
    let (code, stderr) = mine_until_sigterm(std::path::Path::new("/dev/full"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("could not write the share journal /dev/full"), "{stderr}");
    assert!(stderr.contains("the share was: {"), "{stderr}");
    assert!(stderr.contains("could be neither sent nor journaled"), "{stderr}");
    // Said once and consistently: the error first, then no "share journaled" that contradicts it.
    assert!(stderr.contains("share neither sent nor journaled"), "{stderr}");
    assert!(!stderr.contains("share journaled") && !stderr.contains("written to /dev/full"), "{stderr}");
}

/// A pool that reads every submit and never answers, at a difficulty where every few hashes
/// are a share: the miner sends at most `MAX_IN_FLIGHT` and holds the rest (bounded too, the
/// oldest journaled past `MAX_UNSENT`), instead of growing without end (926 MB in 20 s once).
#[test]
fn a_pool_that_never_answers_gets_a_bounded_number_of_submits() {
    use wgminer::source::stratum::core::{MAX_IN_FLIGHT, MAX_UNSENT};
    let journal = std::env::temp_dir().join(format!("wgminer-faults-deaf-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = pool_config(format!("stratum+tcp://{}", listener.local_addr().unwrap()), journal.clone());
        let miner = Miner::start(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())]);
        let stats = miner.stats.clone();
        let (submits, _open) =
            never_answering_pool(&listener, usize::MAX, Instant::now() + Duration::from_secs(8)).await;
        let found = stats.counts().found as usize;
        assert!(found > MAX_IN_FLIGHT * 4, "the device found {found}");
        assert_eq!(submits, MAX_IN_FLIGHT, "the pool was sent exactly the window");
        tokio::time::timeout(Duration::from_secs(30), miner.stop()).await.unwrap();
        // Everything found is in the journal (those past MAX_UNSENT as soon as they came).
        let lines = journal_lines(&journal);
        assert_eq!(lines.len(), stats.counts().found as usize);
        assert!(
            stats.counts().found as usize <= MAX_UNSENT + MAX_IN_FLIGHT
                || lines.iter().any(|l| l["reason"] == "the pool is not keeping up with the shares found")
        );
    });
}

/// A peer that accepts TCP and never says a word: a stop during the Stratum V2 Noise
/// handshake (or v1's TLS handshake) ends the driver at once, not when the handshake's 10 s
/// run out (`mine --seconds 15` against such a peer once took 21 s).
#[test]
fn a_stop_during_a_handshake_is_honoured_at_once() {
    // The authority key of SRI's example configs: any valid key will do, nobody proves it.
    const KEY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
    runtime().block_on(async {
        for scheme in ["stratum2+tcp", "stratum+ssl"] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let url = match scheme {
                "stratum2+tcp" => format!("{scheme}://{address}/{KEY}"),
                _ => format!("{scheme}://{address}"),
            };
            let config = PoolConfig {
                url,
                user: "w".into(),
                pass: "x".into(),
                journal: std::env::temp_dir().join("wgminer-faults-handshake.jsonl"),
                journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
                trust: Default::default(),
                suggest_difficulty: None,
                channel: Default::default(),
            };
            let miner = Miner::start(Source::Pools(vec![config]), vec![]);
            // The outcome waited for: the driver connected and is in its handshake.
            let (_silent, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await; // into the handshake's read
            let stopped = Instant::now();
            tokio::time::timeout(Duration::from_secs(9), miner.stop())
                .await
                .unwrap_or_else(|_| panic!("{scheme}: the stop waited for the handshake timeout"));
            assert!(stopped.elapsed() < Duration::from_secs(2), "{scheme}: {:?}", stopped.elapsed());
        }
    });
}

/// Waits until `done` holds, polling; panics with `what` after a generous ceiling.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the pool closed `stream` (end of file or reset) within a generous ceiling, after
/// reading and dropping whatever it had sent.
async fn closed_by_peer(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// `wgminer pool` on a hostile LAN (it once held 1,500 idle or half-sent connections for
/// ever, and 1.57 GB for 1,500 unfinished 1 MiB lines): past the cap, the oldest connection
/// not logged in makes room for a newcomer (the logged-in miner is never shed), a connection
/// that does not log in is closed at its deadline, and a line past `MAX_MINER_LINE` ends its
/// connection, while the miner goes on having shares accepted. The floods themselves are in
/// `tests/hostile_listeners.rs`.
#[test]
fn the_embedded_pool_bounds_what_hostile_clients_hold() {
    use tokio::io::AsyncWriteExt;
    use wgminer::pool::MAX_MINER_LINE;
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(1e-5).unwrap(),
            share_interval: None,
            max_connections: 16,
            login_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
        let config = pool_config(format!("stratum+tcp://{}", pool.addr), std::env::temp_dir().join(format!("wgminer-faults-hostile-{}.jsonl", std::process::id())));
        let miner = Miner::start(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())]);
        until("the miner's first accepted share", || pool.stats.accepted.load(Relaxed) > 0).await;

        // The miner holds one slot; 15 silent clients take the rest; 5 more come, and the 5
        // oldest silent ones make room for them.
        let mut silent = Vec::new();
        for _ in 0..15 {
            silent.push(tokio::net::TcpStream::connect(pool.addr).await.unwrap());
        }
        until("the silent clients taken", || pool.stats.connections.load(Relaxed) == 16).await;
        for _ in 0..5 {
            silent.push(tokio::net::TcpStream::connect(pool.addr).await.unwrap());
        }
        until("the newcomers admitted", || pool.stats.connections.load(Relaxed) == 21).await;
        let before = pool.stats.accepted.load(Relaxed);
        for client in &mut silent {
            assert!(closed_by_peer(client).await, "a client that never logs in is closed");
        }
        drop(silent);

        // A logged-in client that sends a line longer than any miner's is dropped at the limit.
        let mut long = tokio::net::TcpStream::connect(pool.addr).await.unwrap();
        let login = "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"x\",\"x\"]}\n";
        long.write_all(login.as_bytes()).await.unwrap();
        let _ = long.write_all(&vec![b'x'; MAX_MINER_LINE + 1]).await;
        assert!(closed_by_peer(&mut long).await, "a line past MAX_MINER_LINE ends the connection");

        until("shares accepted during the attack", || pool.stats.accepted.load(Relaxed) > before).await;
        assert_eq!(pool.stats.rejected.load(Relaxed), 0);
        tokio::time::timeout(Duration::from_secs(30), miner.stop()).await.unwrap();
    });
}

/// The driver's clock is tokio's: under paused time a pool that reads a submit and never
/// answers it is left after `ANSWER_TIMEOUT` (30 s) of virtual time, the share journaled,
/// and the miner dials again, without the test waiting 30 s.
#[test]
fn an_unanswered_submit_is_journaled_after_thirty_seconds_of_paused_time() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use wgminer::source::stratum::driver::{Links, run};
    let journal = std::env::temp_dir().join(format!("wgminer-faults-paused-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stats = std::sync::Arc::new(wgminer::stats::Stats::new());
        let (work, mut work_rx) = tokio::sync::watch::channel(None);
        let (share_tx, shares) = tokio::sync::mpsc::channel(8);
        let (_control_tx, control) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let config = pool_config(format!("stratum+tcp://{}", listener.local_addr().unwrap()), journal.clone());
        let links = Links { work, shares, stats: stats.clone(), outcomes: None, control, stop: stop_rx };
        let driver = tokio::spawn(run(vec![config], links));
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut submitted = false;
        while let Ok(Some(line)) = lines.next_line().await {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let reply = match v["method"].as_str() {
                Some("mining.subscribe") => format!(r#"{{"id":{},"result":[[],"08000002",4],"error":null}}"#, v["id"]),
                Some("mining.authorize") => {
                    format!("{{\"id\":{},\"result\":true,\"error\":null}}\n{SLUSH_NOTIFY}", v["id"])
                }
                Some("mining.submit") => {
                    submitted = true;
                    break;
                }
                Some(_) => format!(r#"{{"id":{},"result":null,"error":[20,"no",null]}}"#, v["id"]),
                None => continue,
            };
            write.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
            if v["method"] == "mining.authorize" {
                // The job is published: a share on it, as a device would hand it over.
                work_rx.changed().await.unwrap();
                let source = work_rx.borrow().clone().unwrap();
                let share = wgminer::source::Share {
                    source: source.source,
                    job_id: source.job.id.clone(),
                    extranonce1: source.extranonce1.clone(),
                    extranonce2: wgminer::work::Extranonce2(vec![0; source.extranonce2_size]),
                    time: source.job.time,
                    nonce: 7,
                    version_bits: None,
                    hash: <bitcoin::BlockHash as bitcoin::hashes::Hash>::all_zeros(),
                    device: wgminer::work::DeviceId(0),
                };
                share_tx.send(share).await.unwrap();
            }
        }
        assert!(submitted, "the share was submitted");
        let started = tokio::time::Instant::now();
        // Held open and silent: the miner must give up on it and dial again.
        let _again = listener.accept().await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(30), "{waited:?}");
        assert_eq!(stats.counts().journaled, 1);
        assert_eq!(journal_lines(&journal)[0]["nonce"], "00000007");
        drop((lines, write));
        let _ = stop.send(true);
        driver.await.unwrap();
    });
}

/// A pool whose port is closed: the failure is typed where it happens and its words reach the
/// log and the API's POOLS ("Last Failure"), told apart from a timeout or a TLS refusal.
#[test]
fn a_refused_connection_is_said_as_such_in_the_api() {
    runtime().block_on(async {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let journal = std::env::temp_dir().join(format!("wgminer-faults-refused-{}.jsonl", std::process::id()));
        let miner = Miner::start(Source::Pools(vec![pool_config(format!("stratum+tcp://{closed}"), journal)]), vec![]);
        let failed = miner
            .until(Duration::from_secs(30), |s| s.pools().entries.first().is_some_and(|p| p.last_failure.is_some()))
            .await;
        assert!(failed, "no failure reported");
        let (quit, _) = tokio::sync::mpsc::unbounded_channel();
        let context = wgminer::api::ApiContext { log_interval: 5, strategy: "Failover", quit, control: None };
        let reply =
            wgminer::api::respond(r#"{"command":"pools"}"#, wgminer::listen::Access::Read, &miner.stats, &context)
                .await;
        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
        let failure = reply["POOLS"][0]["Last Failure"].as_str().unwrap().to_string();
        assert!(failure.contains(&format!("connect to {closed}: refused")), "{failure}");
        assert_eq!(reply["POOLS"][0]["Status"], "Dead");
        miner.stop().await;
    });
}
