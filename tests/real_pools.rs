//! The three ways wgminer failed on real pools, each reproduced on loopback: a pool that drops
//! the miner at `mining.configure` (stock ckpool before version rolling), a pool whose
//! certificate `openssl req -x509` made (CA:TRUE), and a TLS pool whose `client.reconnect`
//! the old client followed in plain text. Every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use wgminer::cpu::CpuSweeper;
use wgminer::miner::Miner;
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{MineOptions, Summary, mine};
use wgminer::source::stratum::PoolConfig;
use wgminer::source::stratum::tls::{Trust, parse_fingerprint};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn pool_config(url: String, trust: Trust, name: &str) -> PoolConfig {
    let journal = std::env::temp_dir().join(format!("wgminer-real-pools-{name}-{}.jsonl", std::process::id()));
    PoolConfig {
        url,
        user: "worker.1".into(),
        pass: "x".into(),
        journal,
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust,
        suggest_difficulty: None,
        channel: Default::default(),
    }
}

/// Mines on `pool` until `accepted` shares were accepted, or `ceiling` seconds pass: a pool
/// that must take the miner ends the run at its shares (60 s is only the ceiling), one that
/// must refuse it is given a short time to show that nothing comes.
async fn mine_until(accepted: u64, ceiling: u64, pool: PoolConfig) -> Summary {
    let run = MineOptions::until_accepted(accepted, Duration::from_secs(ceiling));
    mine(Source::Pools(vec![pool]), vec![Box::new(CpuSweeper::new())], &run).await.0
}

/// A stock ckpool from before version rolling, as its stratifier (src/stratifier.c,
/// parse_method) behaves: a method other than subscribe/auth from an unsubscribed client is
/// logged "Dropping %s from unsubscribed client" and the connection is dropped. In front of
/// the embedded pool (which checks every share by SHA-256d) this proxy does the same with
/// `mining.configure`, and records each connection's first line.
async fn drop_on_configure(
    upstream: std::net::SocketAddr,
    first_lines: mpsc::UnboundedSender<String>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((miner, _)) = listener.accept().await {
            let first_lines = first_lines.clone();
            tokio::spawn(async move {
                let (read, mut miner_write) = miner.into_split();
                let mut miner_read = BufReader::new(read);
                let mut first = String::new();
                if miner_read.read_line(&mut first).await.unwrap_or(0) == 0 {
                    return;
                }
                let _ = first_lines.send(first.trim().to_string());
                if first.contains("\"mining.configure\"") {
                    return; // connector_drop_client
                }
                let (mut pool_read, mut pool_write) = TcpStream::connect(upstream).await.unwrap().into_split();
                pool_write.write_all(first.as_bytes()).await.unwrap();
                tokio::select! {
                    _ = tokio::io::copy(&mut miner_read, &mut pool_write) => {}
                    _ = tokio::io::copy(&mut pool_read, &mut miner_write) => {}
                }
            });
        }
    });
    addr
}

#[test]
fn a_pool_that_drops_mining_configure_is_mined_on_without_it() {
    runtime().block_on(async {
        let pool = EmbeddedPool::start(
            "127.0.0.1:0",
            PoolOptions { difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(), ..Default::default() },
        )
        .await
        .unwrap();
        let (tx, mut first_lines) = mpsc::unbounded_channel();
        let proxy = drop_on_configure(pool.addr, tx).await;
        let summary =
            mine_until(2, 60, pool_config(format!("stratum+tcp://{proxy}"), Trust::default(), "configure")).await;
        // The first connection opened with configure and was dropped; the second went without.
        assert!(first_lines.recv().await.unwrap().contains("\"mining.configure\""));
        let second = first_lines.recv().await.unwrap();
        assert_eq!(second, r#"{"id":1,"method":"mining.subscribe","params":["wgminer/0.1.0"]}"#);
        // Remembered: no connection after it asked for configure again.
        while let Ok(line) = first_lines.try_recv() {
            assert!(!line.contains("mining.configure"), "{line}");
        }
        assert!(summary.accepted >= 2, "{summary:?}");
        assert_eq!((summary.rejected, summary.hw_errors), (0, 0), "{summary:?}");
        assert_eq!(pool.stats.accepted.load(Relaxed), summary.accepted);
    });
}

fn pem(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls").join(name)
}

/// A TLS server with the certificate and key of `tests/data/tls/{name}-*.pem`.
fn server_config(name: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_file(pem(&format!("{name}-cert.pem"))).unwrap();
    let key = PrivateKeyDer::from_pem_file(pem(&format!("{name}-key.pem"))).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

fn tls_pool_options(tls: Arc<rustls::ServerConfig>) -> PoolOptions {
    PoolOptions { difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(), tls: Some(tls), ..Default::default() }
}

/// The certificate `openssl req -x509` makes (CA:TRUE, see tests/data/tls/README.md): trusted
/// through `--ca-file` or `--pool-cert-sha256`, with the host name still checked; without
/// either, or with another certificate, refused.
#[test]
fn a_self_signed_openssl_certificate_is_trusted_when_given() {
    runtime().block_on(async {
        let pool = EmbeddedPool::start("127.0.0.1:0", tls_pool_options(server_config("pool"))).await.unwrap();
        let url = |host: &str| format!("stratum+ssl://{host}:{}", pool.addr.port());
        let pinned = Trust { ca_file: Some(pem("pool-cert.pem")), cert_sha256: None };
        let summary = mine_until(1, 60, pool_config(url("localhost"), pinned.clone(), "ca-file")).await;
        assert!(summary.accepted >= 1, "{summary:?}");
        // The name is checked against the certificate, which names localhost and 127.0.0.1.
        let summary = mine_until(1, 60, pool_config(url("127.0.0.1"), pinned, "ca-file-ip")).await;
        assert!(summary.accepted >= 1, "IP in the SAN: {summary:?}");

        let fingerprint = parse_fingerprint(
            "DF:61:43:E3:B0:73:EE:55:61:39:50:03:D1:4C:AB:84:07:88:90:5F:E0:99:09:06:DD:5B:87:0B:B0:9B:3B:BB",
        )
        .unwrap();
        let by_hash = Trust { ca_file: None, cert_sha256: Some(fingerprint) };
        let summary = mine_until(1, 60, pool_config(url("localhost"), by_hash, "sha256")).await;
        assert!(summary.accepted >= 1, "{summary:?}");

        let accepted = pool.stats.accepted.load(Relaxed);
        for (name, trust) in [
            ("none", Trust::default()),
            ("other", Trust { ca_file: Some(pem("other-cert.pem")), cert_sha256: None }),
            ("wrong-hash", Trust { ca_file: None, cert_sha256: Some([0x11; 32]) }),
        ] {
            let summary = mine_until(1, 2, pool_config(url("localhost"), trust, name)).await;
            assert_eq!(summary.accepted, 0, "{name}: {summary:?}");
        }
        assert_eq!(pool.stats.accepted.load(Relaxed), accepted, "no share reached the pool without trust");
    });
}

/// A CA and a leaf it signed (the other way pools are set up): the CA in `--ca-file` is
/// trusted as a root; a pinned certificate past its date is refused.
#[test]
fn a_ca_chain_is_trusted_and_an_expired_pin_is_not() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let expired_key = KeyPair::generate().unwrap();
    let mut expired_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    expired_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    expired_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    expired_params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let expired = expired_params.self_signed(&expired_key).unwrap();

    let dir = std::env::temp_dir();
    let ca_file = dir.join(format!("wgminer-test-chain-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let expired_file = dir.join(format!("wgminer-test-expired-{}.pem", std::process::id()));
    std::fs::write(&expired_file, expired.pem()).unwrap();
    let server = |cert: &rcgen::Certificate, key: &KeyPair| {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        Arc::new(config)
    };
    runtime().block_on(async {
        let chained = EmbeddedPool::start("127.0.0.1:0", tls_pool_options(server(&leaf, &leaf_key))).await.unwrap();
        let url = format!("stratum+ssl://localhost:{}", chained.addr.port());
        let trust = Trust { ca_file: Some(ca_file.clone()), cert_sha256: None };
        let summary = mine_until(1, 60, pool_config(url, trust, "chain")).await;
        assert!(summary.accepted >= 1, "{summary:?}");

        let stale = EmbeddedPool::start("127.0.0.1:0", tls_pool_options(server(&expired, &expired_key))).await.unwrap();
        let url = format!("stratum+ssl://localhost:{}", stale.addr.port());
        let trust = Trust { ca_file: Some(expired_file.clone()), cert_sha256: None };
        let summary = mine_until(1, 2, pool_config(url, trust, "expired")).await;
        assert_eq!((summary.accepted, stale.stats.accepted.load(Relaxed)), (0, 0));
        assert!(stale.stats.connections.load(Relaxed) >= 1, "the miner tried");
    });
}

/// A TLS pool that answers the subscription with `client.reconnect` to another port of its
/// host. The listener there records the first byte it receives: a TLS handshake record
/// (0x16), never the `{` of a plain-text line with the worker's password.
#[test]
fn client_reconnect_from_a_tls_pool_stays_tls() {
    runtime().block_on(async {
        let redirected = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = redirected.local_addr().unwrap().port();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_port = tls.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config("pool"));
        tokio::spawn(async move {
            let (stream, _) = tls.accept().await.unwrap();
            let stream = acceptor.accept(stream).await.unwrap();
            let (read, mut write) = tokio::io::split(stream);
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("mining.subscribe") {
                    let reconnect =
                        format!(r#"{{"id":null,"method":"client.reconnect","params":["localhost",{port},0]}}"#);
                    write.write_all(format!("{reconnect}\n").as_bytes()).await.unwrap();
                }
            }
        });
        let trust = Trust { ca_file: Some(pem("pool-cert.pem")), cert_sha256: None };
        let pool = pool_config(format!("stratum+ssl://localhost:{tls_port}"), trust, "reconnect");
        // No device: only the connections are watched.
        let miner = Miner::start(Source::Pools(vec![pool]), vec![]);
        let (mut stream, _) = tokio::time::timeout(Duration::from_secs(20), redirected.accept())
            .await
            .expect("the miner follows")
            .unwrap();
        let mut first = [0u8; 3];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut first)).await.unwrap().unwrap();
        assert_eq!(first[0], 0x16, "a TLS handshake record, not {:?}", String::from_utf8_lossy(&first));
        assert_eq!(first[1], 0x03, "TLS record version");
        tokio::time::timeout(Duration::from_secs(20), miner.stop()).await.expect("the miner stops");
    });
}
