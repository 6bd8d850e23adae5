//! wgminer with SRI's real Stratum V2 software (`pool_sv2` 0.7.0 and `translator_sv2` 0.6.0
//! from crates.io, which `.ci/run` installs), fed by the tests' template provider: wgminer over
//! SV2 on SRI's pool, wgminer over Stratum v1 through SRI's translator to SRI's pool, and SRI's
//! translator on wgminer's own SV2 pool.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::sri::{self, AUTHORITY_PUBLIC};
use common::template_provider;
use wgminer::cpu::CpuSweeper;
use wgminer::miner::Source;
use wgminer::pool::PoolOptions;
use wgminer::pool::sv2::Sv2Pool;
use wgminer::run::{MineOptions, Summary, mine};
use wgminer::source::stratum::PoolConfig;
use wgminer::source::stratum::core::ConnectError;
use wgminer::source::stratum::v2::session::ChannelKind;
use wgminer::stats::Stats;
use wgminer::wire::stratum_v2::key::AuthorityPair;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn pool(url: String, channel: ChannelKind) -> PoolConfig {
    let name = url.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    PoolConfig {
        url,
        user: "wgminer-test".into(),
        pass: "x".into(),
        journal: std::env::temp_dir().join(format!("wgminer-test-{name}-{}.jsonl", std::process::id())),
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust: Default::default(),
        suggest_difficulty: None,
        channel,
    }
}

/// wgminer's CPU sweeper mining on one pool until `accepted` shares were accepted (or a
/// generous ceiling passes, and the test's assertions say what was missing).
async fn mine_on(config: PoolConfig, accepted: u64) -> Summary {
    mine_until(config, MineOptions::until_accepted(accepted, Duration::from_secs(90))).await
}

/// wgminer's CPU sweeper mining on one pool until `done` holds upstream (what a translator
/// forwards meets the upstream target, not only its own), 90 s at most.
async fn mine_until_upstream(config: PoolConfig, done: impl Fn() -> bool + Send + Sync + 'static) -> Summary {
    mine_until(config, MineOptions::until(Arc::new(move |_: &Stats| done()), Duration::from_secs(90))).await
}

async fn mine_until(config: PoolConfig, run: MineOptions) -> Summary {
    let journal = config.journal.clone();
    let (summary, _) = mine(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())], &run).await;
    let _ = std::fs::remove_file(journal);
    summary
}

fn mine_on_sri_pool(channel: ChannelKind) {
    runtime().block_on(async {
        let tp = template_provider::start(Duration::from_secs(5)).await;
        let port = sri::free_port();
        let _pool = sri::start_pool(tp.addr, port);
        let summary = mine_on(pool(format!("stratum2+tcp://127.0.0.1:{port}/{AUTHORITY_PUBLIC}"), channel), 2).await;
        // Accepted means SubmitShares.Success from SRI's pool, which validated each share
        // against the job it built (channels_sv2::server).
        assert!(summary.accepted >= 2, "{summary:?}");
        assert_eq!((summary.rejected, summary.hw_errors), (0, 0), "{summary:?}");
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
    runtime().block_on(async {
        let pool = Sv2Pool::start("127.0.0.1:0", AuthorityPair::generate(), PoolOptions::default()).await.unwrap();
        let tcp = tokio::net::TcpStream::connect(pool.addr).await.unwrap();
        let wrong = AUTHORITY_PUBLIC.parse().unwrap();
        let refused = wgminer::source::stratum::v2::transport::connect(tcp, &wrong).await.err().expect("refused");
        // Told apart from a timeout or a peer that is not SV2, and the words name the key.
        assert!(matches!(&refused, ConnectError::AuthorityKey { key, .. } if key == AUTHORITY_PUBLIC), "{refused:?}");
        assert!(refused.to_string().contains(AUTHORITY_PUBLIC), "{refused}");
        // The right key opens it.
        let tcp = tokio::net::TcpStream::connect(pool.addr).await.unwrap();
        assert!(wgminer::source::stratum::v2::transport::connect(tcp, &pool.authority).await.is_ok());
    });
}

/// `demo --sv2`'s path in-process: wgminer's client against wgminer's own SV2 pool; every
/// share the miner counts as accepted the pool validated (channels_sv2::server).
#[test]
fn the_embedded_sv2_pool_accepts_what_the_client_sends() {
    runtime().block_on(async {
        let options = PoolOptions { job_interval: Duration::from_secs(3600), ..Default::default() };
        let pool_sv2 = Sv2Pool::start("127.0.0.1:0", AuthorityPair::generate(), options).await.unwrap();
        // Past the UpdateChannel the client sends once its rate is measured.
        let summary = mine_on(pool(pool_sv2.url(), ChannelKind::Extended), 3).await;
        assert!(summary.accepted >= 3, "{summary:?}");
        // No new tip, and the UpdateChannel leaves the open jobs open: nothing stale.
        assert_eq!((summary.rejected, summary.stale, summary.journaled), (0, 0, 0), "{summary:?}");
        assert_eq!(pool_sv2.stats.accepted.load(Relaxed), summary.accepted);
    });
}

/// wgminer over Stratum v1 → SRI's translator → SRI's pool. The translator negotiates version
/// rolling and then reads the sixth `mining.submit` parameter (`sv1_server/
/// downstream_message_handler.rs`, `handle_configure` and `handle_submit`); it answers the
/// miner after its own check and forwards the share upstream, where pool_sv2 answers
/// `SubmitSharesSuccess`, which the translator logs.
#[test]
fn wgminer_over_stratum_v1_mines_through_sris_translator_on_sris_pool() {
    runtime().block_on(async {
        let tp = template_provider::start(Duration::from_secs(5)).await;
        let pool_port = sri::free_port();
        let _pool = sri::start_pool(tp.addr, pool_port);
        let port = sri::free_port();
        let upstream = ([127, 0, 0, 1], pool_port).into();
        let translator = sri::start_translator(upstream, AUTHORITY_PUBLIC, port, 2e6);
        let log = translator.log.clone();
        let upstream = move || sri::accepted_upstream(&std::fs::read_to_string(&log).unwrap_or_default()) >= 2;
        let summary =
            mine_until_upstream(pool(format!("stratum+tcp://127.0.0.1:{port}"), ChannelKind::default()), upstream)
                .await;
        assert!(summary.accepted >= 2, "{summary:?}");
        assert_eq!((summary.rejected, summary.hw_errors), (0, 0), "{summary:?}");
        let log = translator.log_text();
        assert!(
            sri::accepted_upstream(&log) >= 2,
            "pool_sv2 accepted too few of the translator's shares; see {}",
            translator.log.display()
        );
        assert!(!log.contains("SubmitSharesError("), "pool_sv2 rejected a share; see {}", translator.log.display());
    });
}

/// SRI's translator pointed at wgminer's SV2 pool, with wgminer over Stratum v1 below it: the
/// translator's SetupConnection, OpenExtendedMiningChannel and SubmitSharesExtended, as SRI
/// writes them, are served and validated by the embedded pool.
#[test]
fn sris_translator_mines_on_the_embedded_sv2_pool() {
    runtime().block_on(async {
        let pool_sv2 = Sv2Pool::start("127.0.0.1:0", AuthorityPair::generate(), PoolOptions::default()).await.unwrap();
        let port = sri::free_port();
        let translator = sri::start_translator(pool_sv2.addr, &pool_sv2.authority.to_string(), port, 2e6);
        // Done when the translator has logged two of the pool's SubmitShares.Success.
        let log = translator.log.clone();
        let upstream = move || sri::accepted_upstream(&std::fs::read_to_string(&log).unwrap_or_default()) >= 2;
        let summary =
            mine_until_upstream(pool(format!("stratum+tcp://127.0.0.1:{port}"), ChannelKind::default()), upstream)
                .await;
        assert!(summary.accepted >= 2, "{summary:?}");
        assert_eq!((summary.rejected, summary.hw_errors), (0, 0), "{summary:?}");
        let accepted = pool_sv2.stats.accepted.load(Relaxed);
        assert!(accepted >= 2, "the embedded pool accepted {accepted}; see {}", translator.log.display());
        assert_eq!(pool_sv2.stats.rejected.load(Relaxed), 0, "see {}", translator.log.display());
        // Every share the pool accepted, the translator heard accepted (its log may trail).
        let heard = || (sri::accepted_upstream(&translator.log_text()), pool_sv2.stats.accepted.load(Relaxed));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while heard().0 != heard().1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (logged, accepted) = heard();
        assert_eq!(logged, accepted, "see {}", translator.log.display());
    });
}
