//! Pool mining over loopback: the embedded pool with the GPU, and a scripted pool that checks
//! the exact lines on the wire, bad input, reconnects and the share journal. Every wait is
//! bounded.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use wgminer::cpu::CpuSweeper;
use wgminer::device::DeviceSelector;
use wgminer::device::Sweeper;
use wgminer::gpu::{GpuOptions, GpuSweeper, select_adapter};
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{MineOptions, mine};
use wgminer::source::Share;
use wgminer::source::stratum::{PoolConfig, ShareOutcome};
use wgminer::work::job::Job;
use wgminer::work::{Difficulty, hex_decode};

const CONFIGURE: &str = r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}"#;

/// slush's subscribe answer, to request `id`.
fn subscribed(id: u64) -> String {
    SLUSH_SUBSCRIBED.replace(r#""id": 1,"#, &format!(r#""id": {id},"#))
}

const SLUSH_SUBSCRIBED: &str = r#"{"id": 1, "result": [[["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#;
const SLUSH_NOTIFY: &str = r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn journal_path(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wgminer-test-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The GPU (lavapipe in CI) mines through the embedded pool in its default shape, eight
/// versions per nonce: where the pool grants version rolling, its shares carry versions from
/// every place in a unit (the version index the kernel reports); where the pool refuses it
/// (`"version-rolling": false`, BIP310's answer for an extension not granted), work units have
/// one version and shares none. The pool re-hashes each share with the version it carries, so
/// every accepted one is a version the kernel really hashed.
#[test]
fn demo_against_the_embedded_pool_gets_shares_accepted_on_the_gpu() {
    for version_rolling in [true, false] {
        let adapter = select_adapter(&DeviceSelector::Auto).unwrap_or_else(|e| panic!("{e}"));
        let gpu = GpuSweeper::open(adapter, GpuOptions { batch: 1 << 20, ..GpuOptions::default() }).unwrap();
        assert_eq!(gpu.versions_per_nonce(), 8);
        runtime().block_on(async {
            let difficulty = Difficulty::new(0.0005).unwrap();
            let options = PoolOptions { difficulty, share_interval: None, version_rolling, ..Default::default() };
            let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
            let config = PoolConfig {
                url: format!("stratum+tcp://{}", pool.addr),
                user: "test".into(),
                pass: "x".into(),
                journal: journal_path("demo"),
                journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
                trust: Default::default(),
                suggest_difficulty: None,
                channel: Default::default(),
            };
            let mut miner = Miner(wgminer::miner::Miner::start(Source::Pools(vec![config]), vec![Box::new(gpu)]));
            let (mut accepted, mut places) = (0, std::collections::BTreeSet::new());
            while accepted < 12 {
                let (share, outcome) = miner.outcome().await;
                assert!(matches!(outcome, ShareOutcome::Accepted | ShareOutcome::Stale(_)), "{outcome:?}");
                accepted += usize::from(outcome == ShareOutcome::Accepted);
                assert_eq!(share.version_bits.is_some(), version_rolling, "{share:?}");
                // Units start at a multiple of four rolled versions: the low two bits of the
                // rolled value are the version's place in its unit.
                places.extend(share.version_bits.map(|bits| bits >> 13 & 3));
            }
            if version_rolling {
                assert!(places.len() >= 2, "every share at one place of four: {places:?}");
            }
            assert_eq!((miner.stats.counts().rejected, miner.stats.hw_errors()), (0, 0));
            miner.stop().await;
            // Every share the miner saw accepted, the pool validated by SHA-256d.
            assert!(pool.stats.accepted.load(Relaxed) >= accepted as u64);
            assert_eq!(pool.stats.rejected.load(Relaxed), 0);
        });
    }
}

/// One side of a scripted pool connection.
struct Peer {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Peer {
    async fn accept(listener: &TcpListener) -> Peer {
        let (stream, _) =
            tokio::time::timeout(Duration::from_secs(20), listener.accept()).await.expect("miner connects").unwrap();
        let (read, write) = stream.into_split();
        Peer { lines: BufReader::new(read).lines(), write }
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("open")
    }

    async fn json(&mut self) -> Value {
        serde_json::from_str(&self.line().await).unwrap()
    }

    async fn send(&mut self, line: &str) {
        self.write.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    /// Reads until a `mining.submit` arrives, answering nothing else.
    async fn submit(&mut self) -> Value {
        loop {
            let v = self.json().await;
            if v["method"] == "mining.submit" {
                return v;
            }
        }
    }
}

/// Checks a submitted share against slush's job with extranonce1 08000002, at `difficulty`.
fn assert_valid_slush_share(submit: &Value, difficulty: f64) -> u32 {
    assert_valid_slush_share_with(submit, difficulty, &[8, 0, 0, 2])
}

fn assert_valid_slush_share_with(submit: &Value, difficulty: f64, extranonce1: &[u8]) -> u32 {
    let (nonce, valid) = slush_share(submit, difficulty, extranonce1);
    assert!(valid, "share does not meet difficulty {difficulty}: {submit}");
    nonce
}

/// The share's nonce, and whether its hash meets `difficulty` with this extranonce1. The shape
/// of the submit itself is asserted.
fn slush_share(submit: &Value, difficulty: f64, extranonce1: &[u8]) -> (u32, bool) {
    let p = submit["params"].as_array().unwrap();
    assert!(p.len() == 5 || p.len() == 6, "{submit}");
    assert_eq!((p[0].as_str(), p[1].as_str(), p[3].as_str()), (Some("slush.miner1"), Some("bf"), Some("504e86b9")));
    let job = Job::from_notify_hex(
        "bf",
        "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008",
        "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",
        &[],
        "00000002",
        "1c2ac4af",
        "504e86b9",
        false,
    )
    .unwrap();
    let en2 = hex_decode(p[2].as_str().unwrap()).unwrap();
    assert_eq!(en2.len(), 4);
    let nonce = u32::from_str_radix(p[4].as_str().unwrap(), 16).unwrap();
    // With version rolling (BIP310) the sixth parameter carries the rolled bits.
    let version = match p.get(5) {
        Some(bits) => {
            let bits = u32::from_str_radix(bits.as_str().unwrap(), 16).unwrap();
            assert_eq!(bits & !0x1fff_e000, 0, "{submit}");
            2 | bits
        }
        None => 2,
    };
    let mut header = job.header(extranonce1, &en2, 0x504e86b9, version);
    header.nonce = nonce;
    (nonce, Difficulty::new(difficulty).unwrap().to_target().is_met_by(header.block_hash()))
}

/// wgminer's own miner on the CPU, with what these tests ask of it.
struct Miner(wgminer::miner::Miner);

impl std::ops::Deref for Miner {
    type Target = wgminer::miner::Miner;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Miner {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

fn start_miner(addr: std::net::SocketAddr, journal: std::path::PathBuf) -> Miner {
    start_miner_on(&[addr], journal)
}

fn start_miner_on(addrs: &[std::net::SocketAddr], journal: std::path::PathBuf) -> Miner {
    let pools = addrs
        .iter()
        .map(|addr| PoolConfig {
            url: format!("stratum+tcp://{addr}"),
            user: "slush.miner1".into(),
            pass: "password".into(),
            journal: journal.clone(),
            journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
            trust: Default::default(),
            suggest_difficulty: None,
            channel: Default::default(),
        })
        .collect();
    Miner(wgminer::miner::Miner::start(Source::Pools(pools), vec![Box::new(CpuSweeper::new())]))
}

impl Miner {
    /// Waits for accepted shares with `n` distinct keys (jobs, extranonces). Shares of a retired
    /// job may be counted stale on the way, but none may be rejected or journaled.
    async fn accepted_across<K: Ord>(&mut self, n: usize, key: impl Fn(&Share) -> K) {
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < n {
            let (share, outcome) = self.outcome().await;
            assert!(matches!(outcome, ShareOutcome::Accepted | ShareOutcome::Stale(_)), "{outcome:?}");
            if outcome == ShareOutcome::Accepted {
                seen.insert(key(&share));
            }
        }
    }

    async fn outcome(&mut self) -> (Share, ShareOutcome) {
        tokio::time::timeout(Duration::from_secs(20), self.outcomes.recv()).await.expect("an outcome in time").unwrap()
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(20), self.0.stop()).await.expect("the miner stops");
    }
}

#[test]
fn scripted_pool_session_wire_bytes_errors_and_resume() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut miner = start_miner(listener.local_addr().unwrap(), journal_path("scripted"));
        let mut pool = Peer::accept(&listener).await;

        // The exact lines a miner opens with. This pool predates BIP310 and refuses configure.
        assert_eq!(pool.line().await, CONFIGURE);
        pool.send(r#"{"id":1,"result":null,"error":[20,"Method not found",null]}"#).await;
        assert_eq!(pool.line().await, r#"{"id":2,"method":"mining.subscribe","params":["wgminer/0.1.0"]}"#);
        pool.send(&subscribed(2)).await;
        assert_eq!(pool.line().await, r#"{"id":3,"method":"mining.authorize","params":["slush.miner1","password"]}"#);
        // The optional requests follow the authorization (ckpool takes them from authorized
        // clients only).
        pool.send(r#"{"id":3,"result":true,"error":null}"#).await;
        assert_eq!(pool.line().await, r#"{"id":4,"method":"mining.extranonce.subscribe","params":[]}"#);

        // Calls the miner must answer, known and unknown.
        pool.send(r#"{"id":"v","method":"client.get_version","params":[]}"#).await;
        assert_eq!(pool.line().await, r#"{"error":null,"id":"v","result":"wgminer/0.1.0"}"#);
        pool.send(r#"{"id":9,"method":"mining.frobnicate","params":[]}"#).await;
        let reply = pool.json().await;
        assert_eq!(
            (reply["id"].clone(), reply["result"].clone(), reply["error"][0].clone()),
            (json!(9), Value::Null, json!(20))
        );

        // Fractional difficulty, then the job it applies to.
        pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[0.0002]}"#).await;
        pool.send(SLUSH_NOTIFY).await;
        let first = pool.submit().await;
        assert_valid_slush_share(&first, 0.0002);
        pool.send(&json!({"id": first["id"], "result": null, "error": [23, "Low difficulty share", null]}).to_string())
            .await;
        let (_, outcome) = miner.outcome().await;
        assert!(matches!(outcome, ShareOutcome::Rejected(ref e) if e.code == "23"), "{outcome:?}");
        let second = pool.submit().await;
        assert_valid_slush_share(&second, 0.0002);
        pool.send(&json!({"id": second["id"], "result": true, "error": null}).to_string()).await;
        let (_, outcome) = miner.outcome().await;
        assert_eq!(outcome, ShareOutcome::Accepted);

        // A share in flight when the pool goes away is sent again on the resumed session.
        let unanswered = pool.submit().await;
        let nonce = assert_valid_slush_share(&unanswered, 0.0002);
        pool.send("this is not json").await;
        drop(pool);
        // The refused configure is remembered for this pool: the new connection opens with the
        // resumed subscription.
        let mut pool = Peer::accept(&listener).await;
        assert_eq!(
            pool.line().await,
            r#"{"id":1,"method":"mining.subscribe","params":["wgminer/0.1.0","ae6812eb4cd7735a302a8a9dd95cf71f"]}"#
        );
        pool.send(&subscribed(1)).await;
        pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[0.0002]}"#).await;
        pool.send(SLUSH_NOTIFY).await;
        let again = pool.submit().await;
        assert_eq!(again["params"], unanswered["params"], "the unanswered share comes first after the resume");
        assert_eq!(assert_valid_slush_share(&again, 0.0002), nonce);
        assert!(miner.stats.counts().accepted == 1 && miner.stats.counts().rejected == 1);
        miner.stop().await;
    });
}

#[test]
fn shares_whose_session_is_gone_are_journaled_not_dropped() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let journal = journal_path("journal");
        let mut miner = start_miner(listener.local_addr().unwrap(), journal.clone());
        let mut pool = Peer::accept(&listener).await;
        // This pool grants version rolling: shares carry the rolled bits as a sixth parameter.
        assert_eq!(pool.line().await, CONFIGURE);
        pool.send(r#"{"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}"#).await;
        pool.line().await;
        pool.send(&subscribed(2)).await;
        pool.send(r#"{"id":3,"result":true,"error":null}"#).await;
        pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[0.0002]}"#).await;
        pool.send(SLUSH_NOTIFY).await;
        let lost = pool.submit().await;
        assert_eq!(lost["params"].as_array().unwrap().len(), 6, "{lost}");
        let nonce = assert_valid_slush_share(&lost, 0.0002);
        drop(pool);
        // The pool comes back with another extranonce1: the old share can never be valid there.
        let mut pool = Peer::accept(&listener).await;
        pool.line().await;
        pool.line().await;
        pool.send(&subscribed(2).replace("08000002", "0a0b0c0d")).await;
        pool.send(SLUSH_NOTIFY).await;
        loop {
            let (share, outcome) = miner.outcome().await;
            if share.nonce == nonce {
                assert!(matches!(outcome, ShareOutcome::Journaled(_)), "{outcome:?}");
                break;
            }
        }
        let text = std::fs::read_to_string(&journal).unwrap();
        let entry: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(entry["nonce"], format!("{nonce:08x}"));
        assert_eq!((entry["job_id"].as_str(), entry["extranonce1"].as_str()), (Some("bf"), Some("08000002")));
        miner.stop().await;
    });
}

/// No device is needed to be dropped by a bad pool: the driver alone, under tokio's paused
/// clock, so that its handshake timeout and backoffs (10 s, then 1 s, 2 s, …) pass at once.
#[test]
fn bad_pools_get_a_reconnect_not_a_panic() {
    let paused = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    paused.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pools = vec![PoolConfig {
            url: format!("stratum+tcp://{}", listener.local_addr().unwrap()),
            user: "slush.miner1".into(),
            pass: "password".into(),
            journal: journal_path("bad"),
            journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
            trust: Default::default(),
            suggest_difficulty: None,
            channel: Default::default(),
        }];
        let miner = Miner(wgminer::miner::Miner::start(Source::Pools(pools), vec![]));
        let garbage = [
            // notify before the subscription was answered
            SLUSH_NOTIFY.to_string(),
            // a subscribe answer of the wrong shape
            r#"{"id":2,"result":"yes","error":null}"#.to_string(),
            // a line over 1 MiB
            format!("{{\"id\":1,\"result\":\"{}\"}}", "a".repeat(1 << 20)),
        ];
        for line in garbage {
            let mut pool = Peer::accept(&listener).await;
            pool.line().await;
            let _ = pool.write.write_all(format!("{line}\n").as_bytes()).await;
            // The miner drops the connection and comes back (backoff 1 s, 2 s, …).
            let closed = tokio::time::timeout(Duration::from_secs(20), async {
                while let Ok(Some(_)) = pool.lines.next_line().await {}
            });
            closed.await.expect("the miner closes a connection that sent garbage");
        }
        // And a pool that never reads: the miner still comes back.
        let _pool = Peer::accept(&listener).await;
        miner.stop().await;
    });
}

/// Waits, bounded, until `counter` reaches `at_least`.
async fn wait_for(what: &str, at_least: u64, counter: impl Fn() -> u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while counter() < at_least {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn failover_to_the_second_pool_and_back_to_the_first() {
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(),
            share_interval: None,
            ..Default::default()
        };
        let first = EmbeddedPool::start("127.0.0.1:0", options.clone()).await.unwrap();
        let second = EmbeddedPool::start("127.0.0.1:0", options.clone()).await.unwrap();
        let miner = start_miner_on(&[first.addr, second.addr], journal_path("failover"));
        wait_for("a share on the first pool", 1, || first.stats.accepted.load(Relaxed)).await;
        assert_eq!(second.stats.connections.load(Relaxed), 0);

        // The first pool goes down: the second takes over at once.
        let addr = first.addr;
        first.shutdown();
        drop(first);
        wait_for("a share on the second pool", 1, || second.stats.accepted.load(Relaxed)).await;

        // The first comes back on the same address: the miner returns within a probe or two.
        let back = EmbeddedPool::start(&addr.to_string(), options).await.unwrap();
        wait_for("a share on the first pool again", 1, || back.stats.accepted.load(Relaxed)).await;
        assert_eq!(miner.stats.counts().rejected, 0);
        miner.stop().await;
    });
}

#[test]
fn clean_jobs_every_second_move_the_devices_along() {
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(),
            job_interval: Duration::from_secs(1),
            share_interval: None,
            ..Default::default()
        };
        let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
        let mut miner = start_miner(pool.addr, journal_path("clean"));
        miner.accepted_across(4, |share| share.job_id.to_string().split('.').next().unwrap().to_string()).await;
        let stats = miner.stats.clone();
        miner.stop().await;
        // A share sent just before a clean job reaches the miner is stale: the pool refuses it
        // as "job not found" (code 21), which the miner counts stale; nothing else is refused.
        // One found after the clean job reached the session is stale without being sent
        // (`v1::session`), so the pool refuses at most as many as the miner counts stale.
        assert_eq!(stats.counts().rejected, 0);
        assert!(pool.stats.rejected.load(Relaxed) <= stats.counts().stale);
    });
}

#[test]
fn set_extranonce_and_reconnect_requests_are_followed() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut miner = start_miner(listener.local_addr().unwrap(), journal_path("extranonce"));
        let mut pool = Peer::accept(&listener).await;
        pool.line().await;
        pool.send(r#"{"id":1,"result":null,"error":[20,"no",null]}"#).await;
        pool.line().await;
        pool.send(&subscribed(2)).await;
        pool.send(r#"{"id":3,"result":true,"error":null}"#).await;
        pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[0.0002]}"#).await;
        pool.send(SLUSH_NOTIFY).await;
        assert_valid_slush_share(&pool.submit().await, 0.0002);
        // A new extranonce1 applies from the next job on.
        pool.send(r#"{"id":null,"method":"mining.set_extranonce","params":["0a0b0c0d",4]}"#).await;
        pool.send(&SLUSH_NOTIFY.replace("false]", "true]")).await;
        loop {
            let submit = pool.submit().await;
            let en1 = [0x0a, 0x0b, 0x0c, 0x0d];
            let p = &submit["params"];
            // Shares of the old extranonce may still be in flight; the new ones must verify.
            let header_ok = p[1] == "bf" && slush_share(&submit, 0.0002, &en1).1;
            pool.send(&json!({"id": submit["id"], "result": true, "error": null}).to_string()).await;
            if header_ok {
                break;
            }
        }
        // A reconnect to another host is refused; to another port of the same host, followed.
        let port = other.local_addr().unwrap().port();
        pool.send(r#"{"id":null,"method":"client.reconnect","params":["evil.example",3333,0]}"#).await;
        let mut pool = Peer::accept(&listener).await;
        pool.line().await;
        pool.send(&format!(r#"{{"id":null,"method":"client.reconnect","params":["127.0.0.1",{port},0]}}"#)).await;
        let mut moved = Peer::accept(&other).await;
        assert!(moved.line().await.contains(r#""method":"mining.subscribe""#));
        while miner.outcomes.try_recv().is_ok() {}
        miner.stop().await;
    });
}

#[test]
fn tls_pool_with_its_own_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca_file = std::env::temp_dir().join(format!("wgminer-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, certified.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(),
            tls: Some(Arc::new(server)),
            ..Default::default()
        };
        let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
        let config = |ca_file: Option<std::path::PathBuf>| PoolConfig {
            url: format!("stratum+ssl://localhost:{}", pool.addr.port()),
            user: "tls".into(),
            pass: "x".into(),
            journal: journal_path("tls"),
            journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
            trust: wgminer::source::stratum::tls::Trust { ca_file, cert_sha256: None },
            suggest_difficulty: None,
            channel: Default::default(),
        };
        // Without the CA, the self-signed certificate is refused: no session, no share.
        let run = MineOptions::until_accepted(1, Duration::from_secs(2));
        let (summary, _) = mine(Source::Pools(vec![config(None)]), vec![Box::new(CpuSweeper::new())], &run).await;
        assert_eq!((summary.accepted, pool.stats.accepted.load(Relaxed)), (0, 0));
        assert!(pool.stats.connections.load(Relaxed) >= 1);
        // With it, shares flow over TLS.
        let run = MineOptions::until_accepted(1, Duration::from_secs(60));
        let (summary, _) =
            mine(Source::Pools(vec![config(Some(ca_file.clone()))]), vec![Box::new(CpuSweeper::new())], &run).await;
        assert!(summary.accepted >= 1, "{summary:?}");
        assert_eq!(pool.stats.accepted.load(Relaxed), summary.accepted);
        assert_eq!(summary.rejected, 0);
    });
}

#[test]
fn a_new_extranonce1_with_every_tip_is_followed_without_rejects() {
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(),
            job_interval: Duration::from_secs(1),
            share_interval: None,
            rotate_extranonce: true,
            ..Default::default()
        };
        let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
        let mut miner = start_miner(pool.addr, journal_path("rotate"));
        miner.accepted_across(3, |share| share.extranonce1.clone()).await;
        assert_eq!(pool.stats.rejected.load(Relaxed), 0);
        assert_eq!(miner.stats.counts().journaled, 0);
        miner.stop().await;
    });
}

#[test]
fn a_suggested_difficulty_is_sent_and_applies_from_the_next_job() {
    runtime().block_on(async {
        let options = PoolOptions {
            difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(),
            job_interval: Duration::from_secs(1),
            share_interval: None,
            ..Default::default()
        };
        let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
        let config = PoolConfig {
            url: format!("stratum+tcp://{}", pool.addr),
            user: "suggest".into(),
            pass: "x".into(),
            journal: journal_path("suggest"),
            journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
            trust: Default::default(),
            suggest_difficulty: Some(wgminer::work::Difficulty::new(0.002).unwrap()),
            channel: Default::default(),
        };
        let mut miner = wgminer::miner::Miner::start(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())]);
        let mut later_jobs = 0;
        while later_jobs < 3 {
            let (share, outcome) =
                tokio::time::timeout(Duration::from_secs(30), miner.outcomes.recv()).await.expect("a share").unwrap();
            if outcome != ShareOutcome::Accepted || share.job_id.to_string().starts_with("1.") {
                continue; // the first job went out at the starting difficulty
            }
            let hash = wgminer::work::Target::from_le_bytes(*AsRef::<[u8; 32]>::as_ref(&share.hash));
            assert!(Difficulty::from_target(&hash).value() >= 0.002, "{share:?}");
            later_jobs += 1;
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), miner.stop()).await;
    });
}

/// A pool that stops reading after the login, under paused time: the miner submits what it may
/// (`MAX_IN_FLIGHT`), holds the rest, leaves the connection once the submits go unanswered for
/// `ANSWER_TIMEOUT` (30 s of virtual time, not of the test's) and dials again; every share,
/// sent or held, ends in the journal once.
#[test]
fn a_pool_that_stops_reading_is_left_for_a_new_connection() {
    use wgminer::source::stratum::driver::{Links, run};
    const SHARES: u32 = 300;
    let journal = journal_path("deaf");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stats = Arc::new(wgminer::stats::Stats::new());
        let (work, mut work_rx) = tokio::sync::watch::channel(None);
        let (share_tx, shares) = tokio::sync::mpsc::channel(SHARES as usize);
        let (_control, control) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let config = PoolConfig {
            url: format!("stratum+tcp://{}", listener.local_addr().unwrap()),
            user: "slush.miner1".into(),
            pass: "password".into(),
            journal: journal.clone(),
            trust: Default::default(),
            suggest_difficulty: None,
            channel: Default::default(),
            journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        };
        let links = Links { work, shares, stats: stats.clone(), outcomes: None, control, stop: stop_rx };
        let driver = tokio::spawn(run(vec![config], links));
        let mut pool = Peer::accept(&listener).await;
        pool.line().await;
        pool.send(r#"{"id":1,"result":null,"error":[20,"no",null]}"#).await;
        pool.line().await;
        pool.send(&subscribed(2)).await;
        pool.send(r#"{"id":3,"result":true,"error":null}"#).await;
        pool.send(SLUSH_NOTIFY).await;
        // From here on the pool reads nothing; the shares come as a device would hand them over.
        work_rx.changed().await.unwrap();
        let source = work_rx.borrow().clone().unwrap();
        for nonce in 0..SHARES {
            let share = Share {
                source: source.source,
                job_id: source.job.id.clone(),
                extranonce1: source.extranonce1.clone(),
                extranonce2: wgminer::work::Extranonce2(vec![0; source.extranonce2_size]),
                time: source.job.time,
                nonce,
                version_bits: None,
                hash: <bitcoin::BlockHash as bitcoin::hashes::Hash>::all_zeros(),
                device: wgminer::work::DeviceId(0),
            };
            share_tx.send(share).await.unwrap();
        }
        let started = tokio::time::Instant::now();
        let _again = listener.accept().await.expect("the miner came back");
        let waited = started.elapsed();
        assert!(waited >= wgminer::source::stratum::v1::session::ANSWER_TIMEOUT, "{waited:?}");
        let _ = stop.send(true);
        driver.await.unwrap();
        drop(pool);
        let lines: Vec<Value> =
            std::fs::read_to_string(&journal).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let nonces: std::collections::BTreeSet<String> =
            lines.iter().map(|l| l["nonce"].as_str().unwrap().to_string()).collect();
        assert_eq!((lines.len(), nonces.len()), (SHARES as usize, SHARES as usize), "each share journaled once");
        assert_eq!(stats.counts().journaled, u64::from(SHARES));
    });
}
