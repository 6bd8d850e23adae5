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
    // The next tip arrives with the third template, about two seconds in.
    work_rx.wait_for(|w| w.as_ref().is_some_and(|w| w.job.prev_hash != work.job.prev_hash)).await.unwrap();
    let after_tip = submits.load(Relaxed);
    assert!(after_tip >= 1);
    tokio::time::sleep(Duration::from_secs(7)).await; // more than a retry interval
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
    let session = tokio::spawn(client::run(config, work_tx, share_rx, Arc::new(Stats::new()), stop_rx));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let n = calls.load(Relaxed);
    // One fetch, then a longpoll a second at most.
    assert!((3..=7).contains(&n), "{n} templates in 4 s");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
}
