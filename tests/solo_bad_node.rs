//! A scripted node on loopback that answers badly: HTTP 401 and 500, JSON-RPC errors,
//! truncated and wrong-typed templates, a submitblock that fails and then succeeds. Every case
//! must become a clear error or a retry, never a panic, and no found block may be lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bitcoin::ScriptBuf;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use wgminer::source::Share;
use wgminer::source::gbt::client::{self, SoloConfig};
use wgminer::source::gbt::rpc::{Auth, Node, RpcError};
use wgminer::stats::Stats;
use wgminer::work::block::BlockPlan;
use wgminer::work::{Candidate, Work};

type Handler = dyn Fn(&str, usize) -> (u16, String) + Send + Sync;

/// Serves `handler(method, call number of that method)` as (status, body), one request per
/// connection. Returns the RPC URL.
async fn fake_node(handler: Arc<Handler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (handler, counts) = (handler.clone(), counts.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                read.read_exact(&mut body).await.unwrap();
                let request: Value = serde_json::from_slice(&body).unwrap();
                let method = request["method"].as_str().unwrap().to_string();
                let n = {
                    let mut counts = counts.lock().unwrap();
                    let n = counts.entry(method.clone()).or_default();
                    *n += 1;
                    *n
                };
                let (status, body) = handler(&method, n);
                // Echo the request id into JSON bodies, as a node does.
                let body = body.replace("\"ID\"", &request["id"].to_string());
                let reply =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = write.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

fn ok(result: Value) -> (u16, String) {
    (200, format!(r#"{{"result":{result},"error":null,"id":"ID"}}"#))
}

fn rpc_error(code: i32, message: &str) -> (u16, String) {
    (500, format!(r#"{{"result":null,"error":{{"code":{code},"message":"{message}"}},"id":"ID"}}"#))
}

fn regtest_template() -> Value {
    json!({
        "version": 536870912, "previousblockhash": "69d5aeed25f544c8c83b69470833bf8aa72028fbc5a78a64296518aa24650181",
        "transactions": [], "coinbaseaux": {"flags": ""}, "coinbasevalue": 5000000000u64,
        "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
        "mintime": 1795577484, "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff", "sizelimit": 128000000, "curtime": 1795577484, "bits": "207fffff", "height": 2
    })
}

/// A share meeting regtest's target on `work`, found the way a device would.
fn found_share(work: &wgminer::source::SourceWork) -> (Share, u32) {
    let extranonce = vec![0, 0, 0, 0, 0, 0, 0, 5];
    let header = work.job.header(&[], &extranonce, work.job.time, work.job.version);
    let unit = Work::new(header, work.target);
    let hash = |nonce| unit.hash(Candidate::first(nonce)).unwrap();
    let nonce = (0..).find(|&n| unit.target.is_met_by(hash(n))).unwrap();
    let share = Share {
        source: wgminer::work::PoolId(0),
        job_id: work.job.id.clone(),
        extranonce1: wgminer::work::Extranonce1::default(),
        extranonce2: wgminer::work::Extranonce2(extranonce),
        time: work.job.time,
        nonce,
        version_bits: None,
        hash: hash(nonce),
        device: wgminer::work::DeviceId(0),
    };
    (share, nonce)
}

fn node(url: String) -> Node {
    Node { url, auth: Auth::UserPass { user: "u".into(), password: "p".into() } }
}

fn call(node: &Node, method: &str) -> Result<Value, RpcError> {
    let node = node.clone();
    let method = method.to_string();
    std::thread::spawn(move || node.call(&method, &[], Duration::from_secs(5))).join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_answer_is_a_clear_error() {
    let url = fake_node(Arc::new(|method: &str, _| match method {
        "unauthorized" => (401, String::new()),
        "syncing" => rpc_error(-10, "Bitcoin is downloading blocks..."),
        "lonely" => rpc_error(-9, "Bitcoin is not connected!"),
        "nosuch" => rpc_error(-32601, "Method not found"),
        "failing" => rpc_error(-1, "something broke"),
        "html" => (500, "<html>Internal Server Error</html>".into()),
        "truncated" => (200, r#"{"result":{"version":"#.into()),
        _ => ok(json!(null)),
    }))
    .await;
    let node = node(url);
    assert!(matches!(call(&node, "unauthorized"), Err(RpcError::Unauthorized)));
    assert!(matches!(call(&node, "syncing"), Err(RpcError::InitialDownload)));
    assert!(matches!(call(&node, "lonely"), Err(RpcError::NotConnected)));
    assert!(matches!(call(&node, "nosuch"), Err(RpcError::MethodNotFound(m)) if m == "nosuch"));
    match call(&node, "failing") {
        Err(e @ RpcError::Node { code: -1, .. }) => {
            assert_eq!(e.to_string(), "node error -1 from failing: something broke")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(call(&node, "html"), Err(RpcError::Http(500))));
    assert!(matches!(call(&node, "truncated"), Err(RpcError::BadReply { .. })));
    assert_eq!(call(&node, "fine").unwrap(), json!(null));
    assert!(RpcError::InitialDownload.is_transient() && !RpcError::Unauthorized.is_transient());
}

/// Templates come after a 500, a truncated reply and a wrong-typed one; the first block found
/// meets a submitblock that fails (HTTP 503), is kept, retried and accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_retries_through_bad_answers_and_loses_no_block() {
    let submitted: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let gbt_calls = Arc::new(AtomicUsize::new(0));
    let (seen, calls) = (submitted.clone(), gbt_calls.clone());
    let url = fake_node(Arc::new(move |method: &str, n| match (method, n) {
        ("getblocktemplate", n) => {
            calls.fetch_add(1, Relaxed);
            match n {
                1 => (500, "busy".into()),
                2 => (200, r#"{"result":{"version":536870912,"previous"#.into()),
                3 => ok(json!({"version": 1, "height": "two"})),
                _ => ok(regtest_template()),
            }
        }
        ("submitblock", 1) => (503, "overloaded".into()),
        ("submitblock", _) => {
            seen.lock().unwrap().push(String::new());
            ok(json!(null))
        }
        _ => rpc_error(-32601, "Method not found"),
    }))
    .await;
    let journal = std::env::temp_dir().join(format!("wgminer-test-bad-node-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let payout = ScriptBuf::from_bytes(vec![0x51]); // OP_TRUE: any script will do here
    let config =
        SoloConfig { node: node(url), payout: payout.clone(), journal: journal.clone(), poll: Duration::from_secs(30) };
    let (work_tx, mut work_rx) = watch::channel(None);
    let (share_tx, share_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::new());
    let session = tokio::spawn(client::run(config, work_tx, share_rx, stats.clone(), stop_rx));

    // Work arrives once the node makes sense (after backoffs of 1 and 2 and 4 s).
    let work = tokio::time::timeout(Duration::from_secs(20), work_rx.wait_for(Option::is_some))
        .await
        .expect("no work after bad answers")
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(gbt_calls.load(Relaxed), 4);
    assert_eq!(work.job.bits.to_consensus(), 0x207f_ffff);

    let template = wgminer::source::gbt::template::parse(&regtest_template()).unwrap();
    let plan = BlockPlan::new(template.block, payout.clone(), client::COINBASE_TAG).unwrap();
    let (share, nonce) = found_share(&work);
    let extranonce = share.extranonce2.clone();
    assert_eq!(share.hash, plan.header(&extranonce, work.job.time, work.job.version, nonce).block_hash());
    share_tx.send(share).await.unwrap();

    // Journaled at once; accepted on the retry, five seconds later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stats.counts().accepted == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the block was never resubmitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(submitted.lock().unwrap().len(), 1);
    let lines = std::fs::read_to_string(&journal).unwrap();
    let kept: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    let block = plan.block(&extranonce, work.job.time, work.job.version, nonce).unwrap();
    assert_eq!(kept["hex"], bitcoin::consensus::encode::serialize_hex(&block));
    assert_eq!(kept["hash"], block.block_hash().to_string());
    assert_eq!(kept["height"], 2);
    let _ = stop_tx.send(true);
    tokio::time::timeout(Duration::from_secs(5), session).await.unwrap().unwrap();
}

/// A block the node cannot take is retried only while its parent is the tip: once a template
/// on another parent arrives, it stays in the journal and is not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_is_retried_until_the_tip_moves_on() {
    let submits = Arc::new(AtomicUsize::new(0));
    let seen = submits.clone();
    let url = fake_node(Arc::new(move |method: &str, n| match (method, n) {
        ("getblocktemplate", 1 | 2) => ok(regtest_template()),
        ("getblocktemplate", _) => {
            let mut next = regtest_template();
            next["previousblockhash"] = json!("11".repeat(32));
            next["height"] = json!(3);
            ok(next)
        }
        ("submitblock", _) => {
            seen.fetch_add(1, Relaxed);
            (503, "down".into())
        }
        _ => rpc_error(-32601, "Method not found"),
    }))
    .await;
    let journal = std::env::temp_dir().join(format!("wgminer-test-tip-moves-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let config = SoloConfig {
        node: node(url),
        payout: ScriptBuf::from_bytes(vec![0x51]),
        journal: journal.clone(),
        poll: Duration::from_secs(1),
    };
    let (work_tx, mut work_rx) = watch::channel(None);
    let (share_tx, share_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::new());
    let session = tokio::spawn(client::run(config, work_tx, share_rx, stats.clone(), stop_rx));
    let work = work_rx.wait_for(Option::is_some).await.unwrap().clone().unwrap();
    share_tx.send(found_share(&work).0).await.unwrap();
    // The next tip arrives with the third template, about two seconds in: the block waiting
    // on the old one ends journaled.
    work_rx.wait_for(|w| w.as_ref().is_some_and(|w| w.job.prev_hash != work.job.prev_hash)).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while stats.counts().journaled == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    ended.await.expect("the block was not given up when the tip moved on");
    let after_tip = submits.load(Relaxed);
    assert!(after_tip >= 1);
    // Six more templates at one a second: past a retry interval (5 s) by the node's own count.
    let templates = stats.templates();
    let polled = tokio::time::timeout(Duration::from_secs(60), async {
        while stats.templates() < templates + 6 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    polled.await.expect("the session stopped polling");
    assert_eq!(submits.load(Relaxed), after_tip, "retried after the tip moved on");
    assert_eq!(stats.counts().accepted, 0);
    let kept = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(kept.lines().count(), 1, "the block stays in the journal");
    let _ = stop_tx.send(true);
    tokio::time::timeout(Duration::from_secs(5), session).await.unwrap().unwrap();
}

/// A node whose longpoll answers at once, every time (a node that sees the template change
/// with each mempool transaction, or a broken one): asked again a second later at the soonest,
/// not in a loop (23 templates a second before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longpoll_that_answers_at_once_is_not_asked_in_a_loop() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let url = fake_node(Arc::new(move |method, _| match method {
        "getblocktemplate" => {
            counted.fetch_add(1, Relaxed);
            let mut template = regtest_template();
            template["longpollid"] = json!("tip-and-mempool");
            ok(template)
        }
        _ => rpc_error(-32601, "Method not found"),
    }))
    .await;
    let journal = std::env::temp_dir().join(format!("wgminer-test-longpoll-{}.jsonl", std::process::id()));
    let config = SoloConfig {
        node: node(url),
        payout: ScriptBuf::from_bytes(vec![0x51]),
        journal,
        poll: Duration::from_secs(60),
    };
    let (work_tx, _work_rx) = watch::channel(None);
    let (_share_tx, share_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = std::time::Instant::now();
    let session = tokio::spawn(client::run(config, work_tx, share_rx, Arc::new(Stats::new()), stop_rx));
    // One fetch and a longpoll at once, then a longpoll a second at most: five calls take
    // three seconds or more (in a loop, they took milliseconds).
    let fifth = tokio::time::timeout(Duration::from_secs(30), async {
        while calls.load(Relaxed) < 5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    fifth.await.expect("the longpoll was not asked again");
    assert!(started.elapsed() >= Duration::from_millis(2900), "5 templates in {:?}", started.elapsed());
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
}

/// How a scripted node answers one method.
#[derive(Clone, Copy, PartialEq)]
enum Manner {
    /// At once, whole.
    Whole,
    /// A byte a second: the reply never ends within any run's deadline.
    Drip,
    /// A Content-Length ten times the body, the connection then held open.
    Lie,
}

/// A node on loopback that answers `slow` in `manner` and every other method at once:
/// `getblockchaininfo` says regtest, `getblocktemplate` gives `regtest_template`. Bitcoin Core
/// answers each JSON-RPC call with a Content-Length (src/httpserver.cpp, `WriteReply`); these
/// break that promise in time or in length, as a stalled or broken node or proxy would.
async fn slow_node(slow: &'static str, manner: Manner) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                if read.read_exact(&mut body).await.is_err() {
                    return;
                }
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let method = request["method"].as_str().unwrap_or("").to_string();
                let result = match method.as_str() {
                    "getblockchaininfo" => json!({"chain": "regtest", "blocks": 1}),
                    "getblocktemplate" => regtest_template(),
                    _ => json!(null),
                };
                let body = json!({"result": result, "error": null, "id": request["id"]}).to_string();
                let manner = if method == slow { manner } else { Manner::Whole };
                let claimed = if manner == Manner::Lie { body.len() * 10 } else { body.len() };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nContent-Type: application/json\r\n\r\n{body}"
                );
                match manner {
                    Manner::Whole | Manner::Lie => {
                        let _ = write.write_all(reply.as_bytes()).await;
                        // A liar holds the connection as if more were coming.
                        tokio::time::sleep(Duration::from_secs(120)).await;
                    }
                    Manner::Drip => {
                        for byte in reply.bytes() {
                            if write.write_all(&[byte]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        }
    });
    url
}

/// `wgminer solo --seconds SECONDS -d cpu` on `url` with `extra` arguments: how long it ran,
/// its exit code and its standard error.
fn solo_for(url: &str, seconds: u32, extra: &[&str]) -> (Duration, Option<i32>, String) {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["solo", "--rpc-url", url, "--rpc-user", "u", "--rpc-password", "p"])
        .args(["--address", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "-d", "cpu"])
        .args(["--seconds", &seconds.to_string(), "--found-blocks"])
        .arg(std::env::temp_dir().join(format!("wgminer-test-slow-node-{}.jsonl", std::process::id())))
        .args(extra)
        .output()
        .unwrap();
    (started.elapsed(), out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `solo --seconds` holds against a node that answers slowly or lies about its length, at
/// start or while mining: every wait on the node is cut by the run's deadline (a byte a second
/// once kept `--seconds 20` running 30 s, and `--seconds 5` 30 s at start), within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_deadline_holds_against_a_slow_or_lying_node() {
    let cases = [
        ("getblockchaininfo", Manner::Drip, 4),
        ("getblockchaininfo", Manner::Lie, 4),
        ("getblocktemplate", Manner::Drip, 6),
        ("getblocktemplate", Manner::Lie, 6),
    ];
    for (slow, manner, seconds) in cases {
        let url = slow_node(slow, manner).await;
        let (took, code, stderr) = tokio::task::spawn_blocking(move || solo_for(&url, seconds, &[])).await.unwrap();
        let limit = Duration::from_secs(u64::from(seconds) + 2);
        assert!(took < limit, "{slow} answered slowly: --seconds {seconds} ran {took:?}\n{stderr}");
        assert_eq!(code, Some(0), "{stderr}");
    }
}

/// While the node is down, `solo` is not blind: the HTTP server and the API answer from the
/// start, showing the node down and why (JSON, metrics, cgminer's `pools`), and the API's
/// `quit` ends the wait at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_node_is_down_the_http_server_and_the_api_show_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let extra = ["--http-listen".to_string(), http.to_string(), "--api-listen".into(), api.to_string()];
    let run = tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        solo_for(&url, 120, &[&extra[..], &["--api-allow", "W:127.0.0.1"]].concat())
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let pools = loop {
        assert!(std::time::Instant::now() < deadline, "the HTTP server never showed the node down");
        if tokio::net::TcpStream::connect(http).await.is_ok() {
            let pools = common_get(http, "/api/v1/pools").await;
            if pools[0]["last_failure"].is_string() {
                break pools;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pools[0]["state"], "down", "{pools}");
    assert!(pools[0]["last_failure"].as_str().unwrap().contains("cannot reach the node"), "{pools}");
    let metrics = raw_get(http, "/metrics").await;
    let up = metrics.lines().find_map(|l| l.strip_prefix("wgminer_pool_up{")?.rsplit_once(' ')?.1.parse::<f64>().ok());
    assert_eq!(up, Some(0.0), "{metrics}");
    let answer = api_call(api, r#"{"command":"pools"}"#).await;
    assert_eq!(answer["POOLS"][0]["Status"], "Dead", "{answer}");
    assert!(answer["POOLS"][0]["Last Failure"].as_str().unwrap().contains("cannot reach the node"), "{answer}");
    let quit_sent = std::time::Instant::now();
    api_call(api, r#"{"command":"quit"}"#).await;
    let (_, code, stderr) = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap();
    assert!(quit_sent.elapsed() < Duration::from_secs(3), "quit took {:?}", quit_sent.elapsed());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopping (API quit)"), "{stderr}");
}

/// GET `path`, the body.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut reply)).await.unwrap().unwrap();
    reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

async fn common_get(addr: std::net::SocketAddr, path: &str) -> Value {
    serde_json::from_str(&raw_get(addr, path).await).unwrap_or_default()
}

/// One cgminer API request, the JSON reply without its NUL.
async fn api_call(addr: std::net::SocketAddr, request: &str) -> Value {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await.unwrap().unwrap();
    serde_json::from_slice(reply.strip_suffix(b"\0").unwrap_or(&reply)).unwrap_or_default()
}
