//! The listeners against hostile clients: the embedded pool, the HTTP server and the cgminer API
//! under floods of connections that never get anywhere (they once locked every real client
//! out: 256 silent connections held the pool's every slot for its 30 s login deadline, 64 idle
//! ones the HTTP server's), and the HTTP server against DNS rebinding and other origins.
//! Loopback only: the floods come from other loopback addresses (Linux routes all of
//! 127.0.0.0/8 to `lo`), bounded in count, and stop with the test.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::http::{get, get_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wgminer::cpu::CpuSweeper;
use wgminer::http::{Mode, Site};
use wgminer::listen::{ListenOptions, Listener};
use wgminer::miner::{Miner, Source};
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::source::stratum::PoolConfig;
use wgminer::work::Difficulty;

/// A connection to `addr` from 127.0.0.`from`.
async fn connect_from(from: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, from], 0)))?;
    socket.connect(addr).await
}

/// Connections that never get anywhere, opened one after another for as long as it runs: from
/// each of `from` in turn, each sending `opening` (nothing, or half a request) and then
/// nothing more, the newest `keep` of them held open.
struct Flood {
    opened: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Flood {
    fn start(addr: SocketAddr, from: Vec<u8>, keep: usize, opening: &'static [u8]) -> Flood {
        let (opened, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, done) = (opened.clone(), stop.clone());
        tokio::spawn(async move {
            let mut held = VecDeque::new();
            for n in 0.. {
                if done.load(Relaxed) {
                    return;
                }
                let Ok(mut stream) = connect_from(from[n % from.len()], addr).await else { continue };
                let _ = stream.write_all(opening).await;
                held.push_back(stream);
                if held.len() > keep {
                    held.pop_front();
                }
                count.fetch_add(1, Relaxed);
                tokio::task::yield_now().await;
            }
        });
        Flood { opened, stop }
    }

    fn opened(&self) -> usize {
        self.opened.load(Relaxed)
    }

    /// Waits until `more` connections past now were opened.
    async fn until_more(&self, more: usize) {
        let target = self.opened() + more;
        until(&format!("{more} more flood connections"), Duration::from_secs(60), || self.opened() >= target).await;
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// Waits until `done` holds, polling; panics with `what` after `ceiling`.
async fn until(what: &str, ceiling: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + ceiling;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pool_config(addr: SocketAddr, name: &str) -> PoolConfig {
    PoolConfig {
        url: format!("stratum+tcp://{addr}"),
        user: "w".into(),
        pass: "x".into(),
        journal: std::env::temp_dir().join(format!("wgminer-hostile-{name}-{}.jsonl", std::process::id())),
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
    }
}

/// The embedded pool at its defaults (256 connections, 64 an address, 30 s to log in), a
/// share every few thousand hashes.
async fn pool() -> EmbeddedPool {
    let options =
        PoolOptions { difficulty: Difficulty::new(1e-5).unwrap(), share_interval: None, ..Default::default() };
    EmbeddedPool::start("127.0.0.1:0", options).await.unwrap()
}

/// Before the miner comes, connections that never log in fill the pool's 256 slots, from 20
/// addresses, and keep coming. The miner gets a share accepted within 20 s all the same (the
/// oldest silent connection makes room for it, and it is not shed while logging in), and once
/// logged in it is never shed: two more pool-fulls of newcomers later it is still on its first
/// connection, mining.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_mines_through_a_flood_of_connections_that_never_log_in() {
    let pool = pool().await;
    let flood = Flood::start(pool.addr, (2..22).collect(), 300, b"");
    until("the pool full of silent connections", Duration::from_secs(60), || {
        pool.stats.connections.load(Relaxed) >= 300
    })
    .await;
    let miner = Miner::start(Source::Pools(vec![pool_config(pool.addr, "flood")]), vec![Box::new(CpuSweeper::new())]);
    let accepted = miner.until(Duration::from_secs(20), |s| s.counts().accepted > 0).await;
    assert!(accepted, "no share accepted within 20 s of a flood");
    let before = miner.stats.counts().accepted;
    flood.until_more(512).await;
    miner.until(Duration::from_secs(30), |s| s.counts().accepted > before).await;
    let view = &miner.stats.pools().entries[0];
    assert_eq!(view.last_failure, None, "the logged-in miner was shed");
    assert!(miner.stats.counts().accepted > before);
    drop(flood);
    tokio::time::timeout(Duration::from_secs(30), miner.stop()).await.unwrap();
}

/// The same from the miner's own address: the flood holds at most its address's share of the
/// slots (64), shedding its own oldest, and the miner from that address gets its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_the_miners_own_address_sheds_its_own() {
    let pool = pool().await;
    let flood = Flood::start(pool.addr, vec![1], 100, b"");
    flood.until_more(200).await;
    let miner = Miner::start(Source::Pools(vec![pool_config(pool.addr, "own")]), vec![Box::new(CpuSweeper::new())]);
    let accepted = miner.until(Duration::from_secs(20), |s| s.counts().accepted > 0).await;
    assert!(accepted, "no share accepted within 20 s of a flood from its own address");
    flood.until_more(200).await;
    assert_eq!(miner.stats.pools().entries[0].last_failure, None, "the logged-in miner was shed");
    drop(flood);
    tokio::time::timeout(Duration::from_secs(30), miner.stop()).await.unwrap();
}

/// While the pool is more than half full, a newcomer has a sixth of the login deadline: 5 s
/// of 30 s, where it once held its slot for the whole 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_deadline_is_shorter_under_pressure() {
    let options = PoolOptions { max_connections: 8, ..Default::default() };
    let pool = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
    let mut calm = Vec::new();
    for from in 2..6 {
        calm.push(connect_from(from, pool.addr).await.unwrap());
    }
    let mut pressed = connect_from(6, pool.addr).await.unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), pressed.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the fifth of eight was not closed: {read:?}");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(7), "closed after {took:?}");
    for c in &mut calm {
        let still_open = tokio::time::timeout(Duration::from_millis(50), c.read(&mut byte)).await.is_err();
        assert!(still_open, "a connection admitted in calm keeps its 30 s");
    }
}

/// The HTTP server with nothing mining: the counters are not what is tested here.
async fn http_server(hosts: &[&str]) -> SocketAddr {
    let site = Site { mode: Mode::Pools, stats: Default::default(), pool_side: vec![] };
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let listen = ListenOptions::new(Listener::Http, "127.0.0.1:0", vec![]).unwrap().with_hosts(&hosts).unwrap();
    wgminer::http::start(listen, site).await.unwrap()
}

/// 64 connections served at once: idle clients and slowloris heads from eight addresses keep
/// coming, hundreds of them, and every real request is answered, each within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_requests_are_answered_through_a_flood_of_idle_and_dripping_clients() {
    let http = http_server(&[]).await;
    let idle = Flood::start(http, (2..6).collect(), 100, b"");
    let slow = Flood::start(http, (6..10).collect(), 100, b"GET /api/v1/pools HTTP/1.1\r\nHost: localhost\r\n");
    idle.until_more(100).await;
    slow.until_more(100).await;
    for path in ["/api/v1/summary", "/metrics", "/api/v1/pools", "/"] {
        let reply = tokio::time::timeout(Duration::from_secs(5), get(http, path)).await;
        assert_eq!(reply.expect("no answer within 5 s during the flood").status, 200, "{path}");
    }
    idle.until_more(200).await;
    assert_eq!(get(http, "/api/v1/summary").await.status, 200);
}

/// The cgminer API's 32 connections, under the same flood: `summary` is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cgminer_api_answers_through_a_flood() {
    let (quit, _quit_rx) = tokio::sync::mpsc::unbounded_channel();
    let context = wgminer::api::ApiContext { log_interval: 5, strategy: "Failover", quit, control: None };
    let options = ListenOptions::new(Listener::Api, "127.0.0.1:0", vec![]).unwrap();
    let api = wgminer::api::start(options, Default::default(), context).await.unwrap();
    let flood = Flood::start(api, (2..10).collect(), 100, b"");
    flood.until_more(200).await;
    for _ in 0..5 {
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            let mut stream = TcpStream::connect(api).await.unwrap();
            stream.write_all(b"summary").await.unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.unwrap();
            reply
        })
        .await
        .expect("no answer within 5 s during the flood");
        assert!(String::from_utf8_lossy(&answer).contains("STATUS=S"), "{}", String::from_utf8_lossy(&answer));
    }
}

/// DNS rebinding: a page on `evil.example`, its name pointed at 127.0.0.1, makes the browser
/// send `Host: evil.example:PORT`. Every path, the unknown ones and the stream included, is
/// refused 421 (RFC 9110 §15.5.20: not a name this server answers for) without a byte of the
/// miner's data; the names it has (its address, localhost, [::1], a name allowed with
/// `--http-allow-host`) are answered. See `wgminer::http::guard` for the sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_name_is_refused_on_every_path() {
    let http = http_server(&["miner.lan"]).await;
    let port = http.port();
    for path in ["/api/v1/pools", "/api/v1/summary", "/metrics", "/", "/app.js", "/no/such", "/api/v1/stream"] {
        for host in [format!("evil.example:{port}"), "evil.example".into(), format!("localhost.evil.example:{port}")] {
            let reply = raw(http, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
            assert_eq!(reply.status, 421, "{path} for {host}: {}", reply.head);
            assert!(!reply.body.contains("mode") && !reply.body.contains("wgminer_"), "{}", reply.body);
        }
    }
    let absolute =
        raw(http, &format!("GET http://evil.example:{port}/api/v1/pools HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"))
            .await;
    assert_eq!(absolute.status, 421, "an absolute-form target names the host");
    let twice = raw(http, &format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n")).await;
    assert_eq!(twice.status, 400);
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "miner.lan".into(), "MINER.LAN:443".into()] {
        let reply =
            raw(http, &format!("GET /api/v1/pools HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.head);
    }
    let scripted = raw(http, "GET /api/v1/summary HTTP/1.0\r\n\r\n").await;
    assert_eq!(scripted.status, 200, "HTTP/1.0 without Host, as scripts send");
}

/// WebSockets are outside the same-origin policy and an `EventSource` may be opened from any
/// page, so a request carrying an `Origin` (the Fetch standard sends one on every WebSocket
/// handshake and cross-origin request; Chromium's `websocket_check_origin_handler` is its
/// test server's check) is answered only for this server's own origin: 403 otherwise. A
/// client without one (curl, Prometheus) is not a page, and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_upgrades_from_other_origins_are_forbidden() {
    let http = http_server(&[]).await;
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    let cases =
        [("/api/v1/stream", "Accept: text/event-stream"), ("/api/v1/device", upgrade), ("/api/v1/pools", "X: y")];
    for (path, extra) in cases {
        for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
            let reply = get_with(http, path, &[&format!("Origin: {origin}"), extra]).await;
            assert_eq!(reply.status, 403, "{path} from {origin}: {}", reply.head);
        }
    }
    let mut stream = TcpStream::connect(http).await.unwrap();
    let request = format!("GET /api/v1/stream HTTP/1.1\r\nHost: {http}\r\nOrigin: http://{http}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the dashboard's own stream");
    assert_eq!(get(http, "/api/v1/summary").await.status, 200, "no Origin: not a page");
}

/// Sends `request` and reads the reply to its end.
async fn raw(addr: SocketAddr, request: &str) -> common::http::Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let _ = stream.shutdown().await;
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    common::http::parse(&bytes)
}
