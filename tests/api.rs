//! The cgminer-compatible API against a running miner, read as cgminer's own `api-example`
//! scripts read it: connect, send the request, read to the end, drop the trailing NUL, parse.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wgminer::cpu::CpuSweeper;
use wgminer::listen::{ListenOptions, Listener};
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{MineOptions, mine};
use wgminer::source::stratum::PoolConfig;

/// Sends one request and returns the reply without its NUL terminator.
async fn ask(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await.unwrap().unwrap();
    assert_eq!(reply.pop(), Some(0), "replies end with NUL: {}", String::from_utf8_lossy(&reply));
    String::from_utf8(reply).unwrap()
}

async fn ask_json(port: u16, command: &str, parameter: &str) -> Value {
    let request = json!({"command": command, "parameter": parameter}).to_string();
    serde_json::from_str(&ask(port, &request).await).unwrap()
}

fn pool_config(addr: std::net::SocketAddr, name: &str) -> PoolConfig {
    PoolConfig {
        url: format!("stratum+tcp://{addr}"),
        user: name.into(),
        pass: "x".into(),
        journal: std::env::temp_dir().join(format!("wgminer-test-api-{name}-{}.jsonl", std::process::id())),
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
    }
}

/// Two embedded pools and one CPU device, the API on a free port with `allow`: once the
/// first share is accepted the queries run, and the run ends when they are done (or at
/// `quit`), `ceiling` seconds at most.
async fn run_miner(allow: &str, ceiling: u64, queries: impl AsyncFnOnce(u16)) -> wgminer::run::Summary {
    let options = PoolOptions { difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(), ..Default::default() };
    let first = EmbeddedPool::start("127.0.0.1:0", options.clone()).await.unwrap();
    let second = EmbeddedPool::start("127.0.0.1:0", options).await.unwrap();
    let port = common::node::free_port();
    let allow = allow.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let api = ListenOptions::new(Listener::Api, &format!("127.0.0.1:{port}"), allow).unwrap();
    let queried = Arc::new(AtomicBool::new(false));
    let done = queried.clone();
    let run = MineOptions {
        duration: Some(Duration::from_secs(ceiling)),
        status_every: Duration::from_secs(5),
        api: Some(api),
        http: None,
        temp: None,
        budgets: Vec::new(),
        until: Some(Arc::new(move |_: &wgminer::stats::Stats| done.load(Relaxed))),
    };
    let pools = Source::Pools(vec![pool_config(first.addr, "first"), pool_config(second.addr, "second")]);
    let miner = tokio::spawn(async move { mine(pools, vec![Box::new(CpuSweeper::new())], &run).await.0 });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(ceiling);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no share accepted in {ceiling} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            continue; // not listening yet
        }
        let summary = ask_json(port, "summary", "").await;
        let s = &summary["SUMMARY"][0];
        if s["Accepted"].as_u64() >= Some(1) && s["MHS 5s"].as_f64() > Some(0.0) {
            break;
        }
    }
    queries(port).await;
    queried.store(true, Relaxed);
    tokio::time::timeout(Duration::from_secs(ceiling + 10), miner).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_devs_and_pools_read_as_cgminer_shapes_them() {
    run_miner("", 60, async |port| {
        let summary = ask_json(port, "summary", "").await;
        let status = &summary["STATUS"][0];
        assert_eq!(
            (status["STATUS"].as_str(), status["Code"].as_u64(), status["Msg"].as_str()),
            (Some("S"), Some(11), Some("Summary"))
        );
        assert!(status["Description"].as_str().unwrap().starts_with("wgminer "));
        assert!(status["When"].as_u64().unwrap() > 1_700_000_000);
        let s = &summary["SUMMARY"][0];
        assert!(s["MHS av"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["MHS 5s"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["Accepted"].as_u64().unwrap() >= 1, "{s}");
        for field in ["Rejected", "Hardware Errors", "Stale", "Elapsed", "Getworks"] {
            assert!(s[field].is_u64(), "{field} in {s}");
        }
        for field in ["Best Share", "Pool Rejected%", "Pool Stale%", "Device Hardware%", "Utility", "Total MH"] {
            assert!(s[field].is_f64() || s[field].is_u64(), "{field} in {s}");
        }

        let devs = ask_json(port, "devs", "").await;
        assert_eq!(devs["STATUS"][0]["Msg"], "1 GPU(s)");
        let dev = &devs["DEVS"][0];
        assert_eq!(
            (dev["GPU"].as_u64(), dev["Name"].as_str(), dev["Enabled"].as_str()),
            (Some(0), Some("CPU reference (sha2, 1 thread)"), Some("Y"))
        );
        assert!(dev["MHS av"].as_f64().unwrap() > 0.0 && dev["Accepted"].as_u64().unwrap() >= 1, "{dev}");

        let pools = ask_json(port, "pools", "").await;
        assert_eq!(pools["STATUS"][0]["Msg"], "2 Pool(s)");
        let p = &pools["POOLS"];
        assert_eq!(
            (p[0]["POOL"].as_u64(), p[0]["Status"].as_str(), p[0]["Stratum Active"].as_bool()),
            (Some(0), Some("Alive"), Some(true))
        );
        assert_eq!(
            (p[1]["Priority"].as_u64(), p[1]["Stratum Active"].as_bool(), p[1]["User"].as_str()),
            (Some(1), Some(false), Some("second"))
        );
        assert!(p[0]["Accepted"].as_u64().unwrap() >= 1);

        let version = ask_json(port, "version", "").await;
        assert_eq!(version["VERSION"][0]["API"], "3.7");
        assert_eq!(ask_json(port, "config", "").await["CONFIG"][0]["Pool Count"], 2);
        assert_eq!(ask_json(port, "stats", "").await["STATS"][0]["ID"], "GPU0");

        // The plain form, as `echo -n summary | nc 127.0.0.1 4028` shows it.
        let plain = ask(port, "summary").await;
        assert!(plain.starts_with("STATUS=S,When="), "{plain}");
        assert!(plain.contains(",Code=11,Msg=Summary,Description=wgminer "), "{plain}");
        assert!(plain.contains("|SUMMARY,Elapsed=") && plain.contains(",MHS av=") && plain.ends_with('|'), "{plain}");
        let plain_devs = ask(port, "devs").await;
        assert!(plain_devs.contains("|GPU=0,Name=CPU reference (sha2, 1 thread),"), "{plain_devs}");
        // cgminer's joined commands.
        let joined = ask_json(port, "summary+pools", "").await;
        assert_eq!(joined["summary"][0]["STATUS"][0]["Code"], 11);
        assert_eq!(joined["pools"][0]["STATUS"][0]["Code"], 7);

        // Without W: privilege, pool control and quit are refused.
        for request in ["switchpool|1", "disablepool|0", "quit"] {
            let reply = ask(port, request).await;
            assert!(reply.starts_with("STATUS=E,") && reply.contains(",Code=45,"), "{request}: {reply}");
        }
        let refused = ask_json(port, "quit", "").await;
        assert_eq!(refused["STATUS"][0]["Msg"], "Access denied to 'quit' command");
        assert_eq!(ask_json(port, "nonsense", "").await["STATUS"][0]["Code"], 14);
        // A truncated JSON request is answered, after a short wait, with cgminer's code 23.
        let bad: Value = serde_json::from_str(&ask(port, "{\"command\":").await).unwrap();
        assert_eq!(bad["STATUS"][0]["Code"], 23);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_clients_switch_disable_and_quit() {
    let summary = run_miner("W:127.0.0.1", 60, async |port| {
        let switched = ask_json(port, "switchpool", "1").await;
        assert_eq!(switched["STATUS"][0]["Code"], 27, "{switched}");
        assert!(
            switched["STATUS"][0]["Msg"].as_str().unwrap().starts_with("Switching to pool 1:'stratum+tcp://127.0.0.1:")
        );
        let mut active = Value::Null;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            active = ask_json(port, "pools", "").await["POOLS"].clone();
            if active[1]["Stratum Active"] == true {
                break;
            }
        }
        assert_eq!(
            (active[0]["Stratum Active"].as_bool(), active[1]["Stratum Active"].as_bool()),
            (Some(false), Some(true)),
            "{active}"
        );
        assert_eq!(active[1]["Priority"], 0);

        assert_eq!(ask_json(port, "disablepool", "0").await["STATUS"][0]["Code"], 48);
        let last = ask_json(port, "disablepool", "1").await;
        assert_eq!(last["STATUS"][0]["STATUS"], "E", "{last}");
        assert_eq!(ask_json(port, "switchpool", "7").await["STATUS"][0]["Msg"], "Invalid pool id 7 - range is 0 - 1");
        assert_eq!(ask_json(port, "enablepool", "").await["STATUS"][0]["Code"], 25);
        assert_eq!(ask_json(port, "pools", "").await["POOLS"][0]["Status"], "Disabled");
        assert_eq!(ask_json(port, "enablepool", "0").await["STATUS"][0]["Code"], 47);
        assert_eq!(ask(port, "quit").await, "BYE");
    })
    .await;
    // `quit` ended a 60-second run early.
    assert!(summary.seconds < 30.0, "{summary:?}");
}

/// Local clients that drip one byte every second cannot hold the API, or the miner's file
/// descriptors: past an address's share of `MAX_CONNECTIONS` its oldest connection that has not
/// sent a whole request is closed for the newcomer, and each one gets `REQUEST_DEADLINE` in all.
/// Afterwards the API answers as before.
#[test]
fn slow_clients_are_capped_and_timed_out() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (quit, _quit_rx) = tokio::sync::mpsc::unbounded_channel();
        let context = wgminer::api::ApiContext { log_interval: 5, strategy: "Failover", quit, control: None };
        let stats = std::sync::Arc::new(wgminer::stats::Stats::new());
        let api = ListenOptions::new(Listener::Api, "127.0.0.1:0", vec![]).unwrap();
        let addr = wgminer::api::start(api, stats, context).await.unwrap();
        let extra = 8;
        let mut drippers = Vec::new();
        for _ in 0..wgminer::api::MAX_CONNECTIONS + extra {
            drippers.push(TcpStream::connect(addr).await.unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = std::time::Instant::now();
        let tasks: Vec<_> = drippers
            .into_iter()
            .map(|mut stream| {
                tokio::spawn(async move {
                    // Drip until the API closes the connection; return when that was.
                    let started = std::time::Instant::now();
                    let mut byte = [0u8; 1];
                    for _ in 0..20 {
                        if stream.write_all(b"{").await.is_err() {
                            return started.elapsed();
                        }
                        if let Ok(Ok(0) | Err(_)) =
                            tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await
                        {
                            return started.elapsed();
                        }
                    }
                    started.elapsed()
                })
            })
            .collect();
        let mut closed: Vec<Duration> = Vec::new();
        for task in tasks {
            closed.push(task.await.unwrap());
        }
        closed.sort();
        // The oldest ones over the cap are closed at once; every other one by its deadline.
        assert!(closed[extra - 1] < Duration::from_secs(2), "{closed:?}");
        assert!(closed.iter().all(|d| *d < wgminer::api::REQUEST_DEADLINE + Duration::from_secs(2)), "{closed:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let reply = ask(addr.port(), "version").await;
        assert!(reply.contains("wgminer"), "{reply}");
    });
}

/// DEVS shows a device's sensor in cgminer's ADL fields (cgminer's API-README, DEVS:
/// "Temperature", "Fan Speed", "Fan Percent", "GPU Clock", "GPU Activity"), -1 where it says
/// nothing; the temperature a float, the rest integers, as cgminer-era clients parse them (a
/// Go client's `CgMinerStats.Devs` types `Fan Percent`, `GPU Clock`, `GPU Activity` as `int`,
/// and Go's decoder refuses `40.0` for an int).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devs_show_the_sensor_in_cgminers_fields() {
    use wgminer::stats::{Event, Stats};
    let stats = Arc::new(Stats::new());
    let device = stats.device(&wgminer::device::DeviceInfo { name: "card".into(), ..Default::default() });
    let reading = wgminer::device::Reading {
        temp_c: Some(71.0),
        core_mhz: Some(2520.0),
        fan_percent: Some(40.0),
        ..Default::default()
    };
    stats.record(Event::Sensor { device, reading });
    let (quit, _quit_rx) = tokio::sync::mpsc::unbounded_channel();
    let context = wgminer::api::ApiContext { log_interval: 5, strategy: "Failover", quit, control: None };
    let api = ListenOptions::new(Listener::Api, "127.0.0.1:0", vec![]).unwrap();
    let addr = wgminer::api::start(api, stats, context).await.unwrap();
    let devs = ask_json(addr.port(), "devs", "").await;
    let dev = &devs["DEVS"][0];
    assert_eq!((dev["Temperature"].as_f64(), dev["GPU Clock"].as_i64()), (Some(71.0), Some(2520)), "{dev}");
    assert_eq!((dev["Fan Percent"].as_i64(), dev["Fan Speed"].as_i64()), (Some(40), Some(-1)), "{dev}");
    assert_eq!((dev["GPU Activity"].as_i64(), dev["Power"].as_f64()), (Some(-1), Some(-1.0)), "{dev}");
    assert!(dev["Temperature"].is_f64() && dev["GPU Clock"].is_i64(), "{dev}");
}
