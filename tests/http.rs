//! `--http-listen` against real clients: Prometheus' own `promtool` and server, headless
//! Chromium driven by Playwright, and hostile peers; and the numbers it shows against the
//! summary line and the cgminer API.
//!
//! Prometheus (Debian's `prometheus`), Chromium (Debian's `chromium`) and `playwright-core`
//! (npm, in `tests/browser/`) are installed by `.ci/run`; a missing one fails its test with
//! what to install.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::http::{get, get_with, metric_sum};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wgminer::cpu::CpuSweeper;
use wgminer::listen::{ListenOptions, Listener};
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{HttpOptions, MineOptions, Summary, mine};
use wgminer::source::stratum::PoolConfig;
use wgminer::work::Difficulty;

/// The pool password of these runs: it must show nowhere.
const PASSWORD: &str = "hunter2-not-for-your-eyes";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::node::free_port()))
}

/// `name` on the PATH, or a failure that says what to install.
fn tool(name: &str, install: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("`{name}` not found: {install} (.ci/run does)"))
}

/// The embedded pool and a CPU miner in this process, with the HTTP server on `http` and the
/// cgminer API on port `api`, mining until `done` holds (or 120 s). Both servers outlive the
/// run (they serve until the runtime ends), so the counters can be read after it, when they
/// stand still.
async fn mine_watched(http: SocketAddr, api: u16, done: wgminer::run::Goal) -> Summary {
    let pool_options = PoolOptions { difficulty: Difficulty::new(0.0005).unwrap(), ..Default::default() };
    let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
    let options = MineOptions {
        api: Some(ListenOptions::new(Listener::Api, &format!("127.0.0.1:{api}"), vec![]).unwrap()),
        http: Some(HttpOptions {
            listen: ListenOptions::new(Listener::Http, &http.to_string(), vec![]).unwrap(),
            pool_side: vec![("stratum v1", pool.stats.clone())],
            browser_devices: None,
        }),
        ..MineOptions::until(done, Duration::from_secs(120))
    };
    let config = PoolConfig {
        url: format!("stratum+tcp://{}", pool.addr),
        user: "watched".into(),
        pass: PASSWORD.into(),
        journal: std::env::temp_dir().join(format!("wgminer-test-http-{}.jsonl", std::process::id())),
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
    };
    mine(Source::Pools(vec![config]), vec![Box::new(CpuSweeper::new())], &options).await.0
}

/// cgminer's API: one JSON request, the reply without its NUL.
async fn cgminer_summary(port: u16) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(br#"{"command":"summary"}"#).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply.pop(), Some(0));
    serde_json::from_slice::<Value>(&reply).unwrap()["SUMMARY"][0].clone()
}

/// The summary line, `/metrics`, `/api/v1/summary` and cgminer's SUMMARY give the same numbers
/// (one set of counters, moved by the events); `promtool check metrics` takes the exposition;
/// OpenMetrics when asked for; and the pool's password is in no answer.
///
/// The two content types are Prometheus' own (prometheus/common, expfmt/expfmt.go: `FmtText`
/// is `text/plain; version=0.0.4; charset=utf-8`, `FmtOpenMetrics_1_0_0`
/// `application/openmetrics-text; version=1.0.0; charset=utf-8`); a Prometheus server asks for
/// OpenMetrics in its Accept header, and a browser or curl gets the plain text
/// (prometheus/client_java, docs/content/exporters/formats.md, "Scraping with a Prometheus
/// server").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_json_and_the_cgminer_api_agree_with_the_summary() {
    let (http, api) = (free_addr(), common::node::free_port());
    let summary = mine_watched(http, api, wgminer::run::accepted_shares(3)).await;
    assert!(summary.accepted >= 3, "{summary:?}");

    let metrics = get(http, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = &metrics.body;
    let by_outcome = |metric: &str, outcome: &str| metric_sum(text, metric, &[&format!("outcome=\"{outcome}\"")]);
    for (outcome, n) in [("accepted", summary.accepted), ("rejected", summary.rejected), ("stale", summary.stale)] {
        assert_eq!(by_outcome("wgminer_shares_total", outcome), n as f64, "{outcome} by device:\n{text}");
        assert_eq!(by_outcome("wgminer_pool_shares_total", outcome), n as f64, "{outcome} by pool:\n{text}");
    }
    assert_eq!(by_outcome("wgminer_shares_total", "journaled"), summary.journaled as f64);
    assert_eq!(metric_sum(text, "wgminer_hardware_errors_total", &[]), summary.hw_errors as f64);
    assert_eq!(metric_sum(text, "wgminer_best_share_difficulty", &[]), summary.best_share);
    assert_eq!(metric_sum(text, "wgminer_pool_up", &[]), 1.0);
    assert!(metric_sum(text, "wgminer_pool_submit_latency_seconds_count", &[]) >= summary.accepted as f64);
    assert!(text.contains("wgminer_build_info{version=\"0.1.0\",kernel_ops_per_nonce=\""), "{text}");

    let json = get(http, "/api/v1/summary").await.json();
    let cgminer = cgminer_summary(api).await;
    assert_eq!(json["shares"]["accepted"], summary.accepted);
    assert_eq!(cgminer["Accepted"], summary.accepted);
    assert_eq!(
        (&json["shares"]["rejected"], &cgminer["Rejected"]),
        (&summary.rejected.into(), &summary.rejected.into())
    );
    assert_eq!((&json["shares"]["stale"], &cgminer["Stale"]), (&summary.stale.into(), &summary.stale.into()));
    assert_eq!(cgminer["Hardware Errors"], summary.hw_errors);
    // The devices stopped: their hashes stand still, and every view counts the same ones.
    let hashes = json["hashes"].as_u64().unwrap();
    assert_eq!(metric_sum(text, "wgminer_hashes_total", &[]), hashes as f64);
    assert!(hashes >= summary.hashes, "the summary's count was taken as the devices stopped");
    assert_eq!(json["pool_side"][0]["accepted"], summary.accepted, "{json}");

    let checked = promtool_check(text);
    assert!(checked.status.success(), "promtool: {}{}", stdout(&checked), stderr(&checked));

    let open = get_with(http, "/metrics", &["Accept: application/openmetrics-text; version=1.0.0"]).await;
    assert!(open.header("content-type").unwrap().starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    assert_eq!(metric_sum(&open.body, "wgminer_shares_total", &["outcome=\"accepted\""]), summary.accepted as f64);

    for path in ["/", "/metrics", "/api/v1/summary", "/api/v1/devices", "/api/v1/pools", "/api/v1/events"] {
        let reply = get(http, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(!reply.body.contains(PASSWORD), "{path} shows the password");
    }
    let pools = get(http, "/api/v1/pools").await.json();
    assert_eq!((pools[0]["user"].as_str(), pools[0]["protocol"].as_str()), (Some("watched"), Some("stratum v1")));
    let events = get(http, "/api/v1/events").await.json();
    let accepted = events.as_array().unwrap().iter().filter(|e| e["kind"] == "accepted").count();
    assert_eq!(accepted as u64, summary.accepted, "{events}");
}

fn promtool_check(exposition: &str) -> std::process::Output {
    let promtool = tool("promtool", "install Debian's prometheus (apt-get install prometheus)");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `wgminer demo` with its dashboard on a free port: the URL it prints first, and the process.
fn demo(seconds: &str) -> (String, Running) {
    let journal = std::env::temp_dir().join(format!("wgminer-test-http-demo-{}.jsonl", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["demo", "-d", "cpu", "--seconds", seconds, "--difficulty", "0.0003", "--status-every", "60"])
        .arg("--journal")
        .arg(journal)
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first
        .strip_prefix("dashboard: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("demo's first line is not its dashboard's URL: {first:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{url}");
    (url, Running(child))
}

/// Polls `check` every half second until it gives a value, `ceiling` at most.
fn wait_for<T>(ceiling: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + ceiling;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "no {what} within {ceiling:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A real Prometheus server scrapes `wgminer demo` every second: its query API gives a hash
/// rate above zero and the accepted shares; every query of the Grafana dashboard in
/// `contrib/grafana/wgminer.json` is valid PromQL over these metrics.
#[test]
fn a_real_prometheus_scrapes_a_mining_demo() {
    let prometheus = tool("prometheus", "install Debian's prometheus (apt-get install prometheus)");
    let (url, _demo) = demo("150");
    let target = url.trim_start_matches("http://").trim_end_matches('/');
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wgminer\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let web = free_addr();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let _server = Running(
        Command::new(prometheus)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={web}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let query = |promql: &str| -> Option<Value> {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let reply = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), async {
                TcpStream::connect(web).await.ok()?;
                Some(get(web, &path).await)
            })
            .await
            .ok()
            .flatten()
        })?;
        (reply.status == 200).then(|| reply.json())
    };
    let first_value = |v: &Value| v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<f64>().ok());
    let log_tail = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let rate = wait_for(Duration::from_secs(90), "hash rate in Prometheus", || {
        first_value(&query("sum(rate(wgminer_hashes_total[5s]))")?).filter(|r| *r > 0.0)
    });
    let accepted = wait_for(Duration::from_secs(60), "accepted shares in Prometheus", || {
        first_value(&query("sum(wgminer_shares_total{outcome=\"accepted\"})")?).filter(|n| *n > 0.0)
    });
    assert!(rate > 1e5, "{rate} H/s from the CPU reference sweeper");
    assert!(accepted >= 1.0);
    let up = query("up{job=\"wgminer\"}").unwrap();
    assert_eq!(first_value(&up), Some(1.0), "{up}\n{}", log_tail());

    let dashboard: Value =
        serde_json::from_str(include_str!("../contrib/grafana/wgminer.json")).expect("the Grafana dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().replace("$__rate_interval", "10s").replace("$instance", ".*"));
        }
    }
    assert!(exprs.len() >= 5, "{exprs:?}");
    for expr in &exprs {
        let answer = query(expr).unwrap_or_else(|| panic!("Prometheus refused `{expr}`"));
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
    let hash_rate_panel = query(&exprs[0]).unwrap();
    assert!(first_value(&hash_rate_panel).is_some_and(|r| r > 0.0), "{}: {hash_rate_panel}", exprs[0]);
}

/// Percent-encoding for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Headless Chromium, driven by Playwright, opens `wgminer demo`'s dashboard: the chart shows a
/// hash rate, the accepted count rises while the page is open (live, by server-sent events),
/// and a screenshot is saved (`target/tmp/dashboard-*.png`) for a person to look at.
#[test]
fn a_real_browser_shows_the_demo_mining_live() {
    let node = tool("node", "install Node.js");
    let chromium = tool("chromium", "install Debian's chromium (apt-get install chromium)");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (.ci/run does)"
    );
    let (url, _demo) = demo("150");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = Command::new(node)
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(&url)
        .arg(shots)
        .env("CHROMIUM", chromium)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let seen: Value = serde_json::from_str(stdout(&out).lines().last().unwrap_or("")).expect("the script's report");
    assert!(seen["rate"].as_f64().unwrap() > 0.0, "{seen}");
    assert!(seen["accepted_after"].as_u64() > seen["accepted_before"].as_u64(), "{seen}");
    for shot in seen["screenshots"].as_array().unwrap() {
        let png = std::fs::read(shot.as_str().unwrap()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}

/// `wgminer pool --http-listen` shows the pool's side: connections and shares by protocol.
#[test]
fn the_embedded_pool_alone_serves_its_side() {
    let http = free_addr();
    let _pool = Running(
        Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .args(["pool", "--listen", "127.0.0.1:0", "--http-listen", &http.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let summary = wait_for(Duration::from_secs(30), "the pool's HTTP server", || {
        runtime.block_on(async {
            TcpStream::connect(http).await.ok()?;
            Some(get(http, "/api/v1/summary").await.json())
        })
    });
    assert_eq!(summary["mode"], "pool");
    assert_eq!(summary["pool_side"][0]["protocol"], "stratum v1");
    let metrics = runtime.block_on(get(http, "/metrics")).body;
    assert!(metrics.contains("wgminer_pool_server_connections_total{protocol=\"stratum v1\"} 0"), "{metrics}");
}

/// A crowd and a few kinds of bad manners at once, while the miner mines: 200 connections held
/// open, a slowloris, a 100 KB request line, 100 KB of headers, unknown paths and methods, more
/// live streams than allowed. Each is answered or closed; the held and the slow ones are
/// closed by the head deadline; afterwards the server answers as before, and shares were
/// accepted all along (counted through the cgminer API, which is not under attack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_bounded_and_mining_goes_on() {
    use wgminer::http::{HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_STREAMS};
    let (http, api) = (free_addr(), common::node::free_port());
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    let miner = tokio::spawn(mine_watched(http, api, Arc::new(move |_: &wgminer::stats::Stats| done.load(Relaxed))));
    let accepted = || async move {
        TcpStream::connect(("127.0.0.1", api)).await.ok()?;
        cgminer_summary(api).await["Accepted"].as_u64()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted().await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no share accepted in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // One at a time: each answered with a refusal, or closed.
    let huge_line = format!("GET /{} HTTP/1.1\r\nHost: {http}\r\n\r\n", "a".repeat(100_000));
    let huge_head =
        format!("GET / HTTP/1.1\r\n{}\r\n", "X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(2000));
    for (request, refusals) in [(&huge_line, &[400, 414, 431][..]), (&huge_head, &[400, 431][..])] {
        let reply = raw(http, request.as_bytes()).await;
        assert!(reply.status == 0 || refusals.contains(&reply.status), "{}", reply.head);
    }
    assert_eq!(get(http, "/no/such/page").await.status, 404);
    assert_eq!(get(http, "/../../etc/passwd").await.status, 404);
    assert_eq!(
        raw(
            http,
            format!("POST /metrics HTTP/1.1\r\nHost: {http}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes()
        )
        .await
        .status,
        405
    );
    assert_eq!(raw(http, b"\x16\x03\x01\x00\xff garbage, not HTTP\r\n\r\n").await.status, 400);

    // Live streams: the allowed number, then one more, refused.
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS {
        let mut s = TcpStream::connect(http).await.unwrap();
        s.write_all(format!("GET /api/v1/stream HTTP/1.1\r\nHost: {http}\r\n\r\n").as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        streams.push(s);
    }
    let refused = get(http, "/api/v1/stream").await;
    assert_eq!(refused.status, 503, "{}", refused.head);
    drop(streams);

    // The crowd and the slowloris, at once.
    let mut slow = TcpStream::connect(http).await.unwrap();
    slow.write_all(format!("GET / HTTP/1.1\r\nHost: {http}\r\n").as_bytes()).await.unwrap();
    let before = accepted().await.unwrap();
    let started = Instant::now();
    let mut crowd = Vec::new();
    for _ in 0..200 {
        crowd.push(TcpStream::connect(http).await.unwrap());
    }
    let mut closed_at_once = 0;
    for c in &mut crowd {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(20), c.read(&mut byte)).await {
            closed_at_once += 1;
        }
    }
    assert!(closed_at_once >= 200 - MAX_CONNECTIONS, "{closed_at_once} of 200 closed at once");
    // The slowloris sends a header line a second; the head deadline ends it all the same.
    let drip = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return;
            }
        }
    };
    let ceiling = HEAD_TIMEOUT + Duration::from_secs(5);
    tokio::time::timeout(ceiling, drip).await.expect("the slowloris was not closed");
    for c in &mut crowd {
        let mut byte = [0u8; 1];
        let read =
            tokio::time::timeout(ceiling.saturating_sub(started.elapsed()) + Duration::from_secs(1), c.read(&mut byte));
        assert!(matches!(read.await, Ok(Ok(0) | Err(_))), "a held connection outlived the head deadline");
    }
    let after = accepted().await.unwrap();
    assert!(after > before, "no share accepted during the attack ({before} then {after})");
    drop(crowd);

    let summary = get(http, "/api/v1/summary").await;
    assert_eq!(summary.status, 200);
    stop.store(true, Relaxed);
    let summary = tokio::time::timeout(Duration::from_secs(60), miner).await.unwrap().unwrap();
    assert_eq!(summary.hw_errors, 0);
}

/// Sends `request` as it is and reads the reply to its end (status 0: closed without one).
async fn raw(addr: SocketAddr, request: &[u8]) -> common::http::Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may close before it has read it all: what it answered still counts.
    let _ = stream.write_all(request).await;
    let _ = stream.shutdown().await;
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    common::http::parse(&bytes)
}

/// A device's sensor reaches `/metrics` as gauges in base units, and `/api/v1/devices` with its
/// MH/J; promtool takes the names and units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_readings_become_gauges() {
    use wgminer::stats::{Event, Stats};
    let stats = Arc::new(Stats::new());
    let device = stats.device(&wgminer::device::DeviceInfo { name: "card".into(), ..Default::default() });
    let reading = wgminer::device::Reading {
        power_w: Some(215.5),
        temp_c: Some(71.0),
        core_mhz: Some(2520.0),
        fan_percent: Some(40.0),
        ..Default::default()
    };
    stats.record(Event::Sensor { device, reading });
    stats.record(Event::Paused { device, paused: true, temp_c: Some(91.0) });
    let site = wgminer::http::Site { mode: wgminer::http::Mode::Pools, stats: stats.clone(), pool_side: vec![] };
    let listen = ListenOptions::new(Listener::Http, "127.0.0.1:0", vec![]).unwrap();
    let http = wgminer::http::start(listen, site).await.unwrap();
    let text = get(http, "/metrics").await.body;
    for (metric, value) in [
        ("wgminer_device_power_watts", 215.5),
        ("wgminer_device_temperature_celsius", 71.0),
        ("wgminer_device_core_clock_hertz", 2.52e9),
        ("wgminer_device_fan_ratio", 0.4),
        ("wgminer_device_paused", 1.0),
    ] {
        assert_eq!(metric_sum(&text, metric, &["device=\"0\""]), value, "{metric} in\n{text}");
    }
    let checked = promtool_check(&text);
    assert!(checked.status.success(), "promtool: {}{}", stdout(&checked), stderr(&checked));
    let devices = get(http, "/api/v1/devices").await.json();
    assert_eq!((devices[0]["sensor"]["temp_c"].as_f64(), devices[0]["paused"].as_bool()), (Some(71.0), Some(true)));
    // The guard letting the device go on is an event the page lists.
    stats.record(Event::Paused { device, paused: false, temp_c: Some(79.0) });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = get(http, "/api/v1/events").await.json();
        if let Some(e) = events.as_array().unwrap().iter().find(|e| e["kind"] == "resumed") {
            assert_eq!((e["device"].as_u64(), e["detail"].as_str()), (Some(0), Some("79 °C")), "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "no resumed event: {events}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
