//! wgminer against SRI's real Stratum V2 pool (`pool_sv2` 0.7.0 from crates.io, which `.ci/run`
//! installs), fed by the tests' template provider: shares answered `SubmitShares.Success`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::template_provider;
use wgminer::commands::mine::{MineOptions, Source, mine};
use wgminer::cpu::CpuSweeper;
use wgminer::source::stratum::PoolConfig;
use wgminer::source::stratum::v2::session::ChannelKind;

/// The authority key pair of SRI's example pool configs (`config-examples/*/pool-config-local-sv2-tp-example.toml`).
const AUTHORITY_PUBLIC: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
const AUTHORITY_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

fn pool_sv2() -> PathBuf {
    let candidates = [
        std::env::var_os("WGMINER_POOL_SV2").map(PathBuf::from),
        std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin/pool_sv2")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/pool_sv2")),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return found;
    }
    if Command::new("pool_sv2").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return PathBuf::from("pool_sv2");
    }
    panic!(
        "SRI's pool_sv2 is not installed: `apt-get install capnproto libcapnp-dev && cargo install pool_sv2 --version 0.7.0 --locked` (.ci/run does this), or point WGMINER_POOL_SV2 at the binary"
    );
}

struct Pool(Child);

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// SRI's example config, on loopback, every share answered (`share_batch_size = 1`).
fn start_pool(tp: std::net::SocketAddr, port: u16) -> Pool {
    let dir = std::env::temp_dir().join(format!("wgminer-sri-pool-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pool.toml");
    std::fs::write(
        &config,
        format!(
            r#"authority_public_key = "{AUTHORITY_PUBLIC}"
authority_secret_key = "{AUTHORITY_SECRET}"
cert_validity_sec = 3600
listen_address = "127.0.0.1:{port}"
coinbase_reward_script = "addr(tb1qa0sm0hxzj0x25rh8gw5xlzwlsfvvyz8u96w3p8)"
server_id = 1
pool_signature = "wgminer test"
shares_per_minute = 60.0
share_batch_size = 1

[template_provider_type.Sv2Tp]
address = "{tp}"
"#
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("pool.log")).unwrap();
    let child = Command::new(pool_sv2())
        .arg("--config")
        .arg(&config)
        .current_dir(&dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("pool_sv2 starts");
    // Bounded: the pool listens once it has its first template.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pool_sv2 did not listen within 30 s; see {}",
            dir.join("pool.log").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Pool(child)
}

fn mine_on_sri_pool(channel: ChannelKind) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let tp = template_provider::start(Duration::from_secs(5)).await;
        let port = free_port();
        let _pool = start_pool(tp.addr, port);
        let journal = std::env::temp_dir().join(format!("wgminer-test-sri-{channel:?}-{}.jsonl", std::process::id()));
        let config = PoolConfig {
            url: format!("stratum2+tcp://127.0.0.1:{port}/{AUTHORITY_PUBLIC}"),
            user: "wgminer-test".into(),
            pass: "x".into(),
            journal: journal.clone(),
            trust: Default::default(),
            suggest_difficulty: None,
            channel,
        };
        let run =
            MineOptions { duration: Some(Duration::from_secs(25)), status_every: Duration::from_secs(5), api: None };
        let (summary, _) = mine(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())], &run).await;
        // Accepted means SubmitShares.Success from SRI's pool, which validated each share
        // against the job it built (channels_sv2::server).
        assert!(summary.accepted >= 2, "{summary:?}");
        assert_eq!((summary.rejected, summary.hw_errors), (0, 0), "{summary:?}");
        let _ = std::fs::remove_file(journal);
    });
}

#[test]
fn wgminer_mines_on_sris_pool_over_an_extended_channel() {
    mine_on_sri_pool(ChannelKind::Extended);
}

#[test]
fn wgminer_mines_on_sris_pool_over_a_standard_channel() {
    mine_on_sri_pool(ChannelKind::Standard);
}

/// The Noise handshake proves the pool holds the secret behind the URL's key: against a pool
/// signing with another key it fails, with words that say so, and no share is sent.
#[test]
fn a_pool_with_another_authority_key_is_refused() {
    use wgminer::pool::PoolOptions;
    use wgminer::pool::sv2::Sv2Pool;
    use wgminer::source::stratum::v2::key::AuthorityPair;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let pool = Sv2Pool::start("127.0.0.1:0", AuthorityPair::generate(), PoolOptions::default()).await.unwrap();
        let tcp = tokio::net::TcpStream::connect(pool.addr).await.unwrap();
        let wrong = AUTHORITY_PUBLIC.parse().unwrap();
        let refused = wgminer::source::stratum::v2::transport::connect(tcp, &wrong).await.err().expect("refused");
        assert!(refused.contains("Noise handshake failed") && refused.contains(AUTHORITY_PUBLIC), "{refused}");
        // The right key opens it.
        let tcp = tokio::net::TcpStream::connect(pool.addr).await.unwrap();
        assert!(wgminer::source::stratum::v2::transport::connect(tcp, &pool.authority).await.is_ok());
    });
}

/// `demo --sv2`'s path in-process: wgminer's client against wgminer's own SV2 pool; every
/// share the miner counts as accepted the pool validated (channels_sv2::server).
#[test]
fn the_embedded_sv2_pool_accepts_what_the_client_sends() {
    use std::sync::atomic::Ordering::Relaxed;
    use wgminer::pool::PoolOptions;
    use wgminer::pool::sv2::Sv2Pool;
    use wgminer::source::stratum::v2::key::AuthorityPair;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let pool = Sv2Pool::start("127.0.0.1:0", AuthorityPair::generate(), PoolOptions::default()).await.unwrap();
        let config = PoolConfig {
            url: pool.url(),
            user: "wgminer-test".into(),
            pass: "x".into(),
            journal: std::env::temp_dir().join(format!("wgminer-test-sv2-embedded-{}.jsonl", std::process::id())),
            trust: Default::default(),
            suggest_difficulty: None,
            channel: ChannelKind::Extended,
        };
        let run =
            MineOptions { duration: Some(Duration::from_secs(12)), status_every: Duration::from_secs(5), api: None };
        let (summary, _) = mine(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())], &run).await;
        assert!(summary.accepted >= 1, "{summary:?}");
        assert_eq!((summary.rejected, summary.journaled), (0, 0), "{summary:?}");
        assert_eq!(pool.stats.accepted.load(Relaxed), summary.accepted);
    });
}
