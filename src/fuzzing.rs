//! The parsers of outside input, one entry point each, for the `cargo fuzz` targets in
//! `fuzz/` and for `tests/fuzz_corpora.rs`, which replays every corpus entry through the same
//! functions on the stable toolchain. Each takes raw bytes and must not panic, whatever they
//! are; what it returns is beside the point.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use serde_json::Value;

use crate::source::stratum::core::{Action, Protocol};
use crate::source::stratum::{v1, v2};
use crate::source::{Share, SourceWork};
use crate::stats::Stats;
use crate::work::{DeviceId, Extranonce2, HashRate, PoolId};

fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data).split('\n').map(str::to_string).collect()
}

/// Lines a pool sends, read by the client's codec and fed to its session, with a share found
/// on each job and the clock moving a second a line.
pub fn stratum_client(data: &[u8]) {
    let login = v1::session::Login { user: "w".into(), pass: "x".into(), suggest_difficulty: None };
    drive(v1::session::Session::new(), login, lines(data));
}

/// What a pool sends, fed to a session of its protocol, with a share found on each job and
/// the clock moving a second a message; then the connection ends and the miner stops.
fn drive<P: Protocol>(mut session: P, login: P::Login, messages: impl IntoIterator<Item = P::In>) {
    let t0 = Instant::now();
    session.connected(PoolId(0), login, t0);
    for (i, message) in messages.into_iter().enumerate() {
        let now = t0 + Duration::from_secs(i as u64);
        for action in session.received(message, now) {
            if let Action::Publish { work, .. } = action {
                session.share(share_on(&work, i as u32), now);
            }
        }
        session.tick(now, HashRate::new(1e6));
    }
    session.closed(None, t0 + Duration::from_secs(3600));
    session.disconnected();
    session.stop();
}

/// A share on `work`, as a device would report it (the session does not hash it again).
fn share_on(work: &SourceWork, nonce: u32) -> Share {
    Share {
        source: work.source,
        job_id: work.job.id.clone(),
        extranonce1: work.extranonce1.clone(),
        extranonce2: Extranonce2(vec![0; work.extranonce2_size]),
        time: work.job.time,
        nonce,
        version_bits: (!work.version_mask.is_none()).then_some(work.version_mask.0),
        hash: bitcoin::BlockHash::from_byte_array([0; 32]),
        device: DeviceId(0),
    }
}

/// SV2 frames back to back, as they are inside the Noise transport: each is cut at the length
/// its header gives (or at the end of the data), so any bytes make frames.
fn frames(mut data: &[u8]) -> Vec<Vec<u8>> {
    const HEADER: usize = 6;
    let mut out = Vec::new();
    while data.len() >= HEADER {
        let length = HEADER + usize::from(data[3]) + (usize::from(data[4]) << 8) + (usize::from(data[5]) << 16);
        let (frame, rest) = data.split_at(length.min(data.len()));
        out.push(frame.to_vec());
        data = rest;
    }
    out
}

/// Frames an SV2 pool sends (the first byte picks the channel kind), decoded by the client's
/// transport and fed to its session, with a share found on each job and the clock moving a
/// second a frame.
pub fn stratum_v2_client(data: &[u8]) {
    use v2::session::{ChannelKind, Login, Session};
    let Some((&kind, data)) = data.split_first() else { return };
    let channel = if kind & 1 == 0 { ChannelKind::Extended } else { ChannelKind::Standard };
    let login = Login {
        user: "w".into(),
        channel,
        nominal_hash_rate: 1e6,
        max_target: None,
        host: "127.0.0.1".into(),
        port: 34254,
    };
    let messages =
        frames(data).into_iter().filter_map(|mut frame| crate::wire::stratum_v2::decode_frame(&mut frame).ok());
    drive(Session::new(), login, messages);
}

/// Frames an SV2 miner sends, decoded as the embedded pool's transport does and answered by
/// one connection, with a new tip every fourth frame.
pub fn stratum_v2_pool(data: &[u8]) {
    let stats = Arc::new(crate::pool::PoolStats::default());
    let mut connection = crate::pool::sv2::Connection::new(stats, crate::pool::sv2::allocator(), 1);
    for (i, mut frame) in frames(data).into_iter().enumerate() {
        if let Ok(message) = crate::wire::stratum_v2::decode_frame(&mut frame) {
            connection.handle(message);
        }
        if i % 4 == 3 {
            connection.tip(2 + i as u32 / 4);
        }
    }
}

/// Lines a miner sends, read by the embedded pool.
pub fn stratum_pool(data: &[u8]) {
    let stats = Arc::new(crate::pool::PoolStats::default());
    let mut session = crate::pool::Session::new(1, &crate::pool::PoolOptions::default(), stats);
    for line in lines(data) {
        session.handle(&line);
    }
}

/// A getblocktemplate result, as JSON.
pub fn getblocktemplate(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let _ = crate::source::gbt::template::parse(&value);
    }
}

/// A node's JSON-RPC response body, read as the node client reads each answer it uses.
pub fn node_reply(data: &[u8]) {
    let Ok(response) = serde_json::from_slice::<jsonrpc::Response>(data) else { return };
    let Ok(result) = response.result::<Value>() else { return };
    let _ = crate::source::gbt::template::parse(&result);
    if let Some(chain) = result.get("chain").and_then(Value::as_str) {
        let _ = crate::source::gbt::client::network_from_chain(chain);
    }
    let _ = crate::source::gbt::client::submit_answer(&result);
}

/// An HTTP response from the node, read by the node client's transport (minreq, through
/// rust-bitcoin's jsonrpc) and classified as `Node::call` does. A loopback thread answers each
/// call with the bytes under test and closes the connection.
pub fn node_http(data: &[u8]) {
    use std::sync::{Mutex, OnceLock};
    static SERVER: OnceLock<(String, Arc<Mutex<Vec<u8>>>)> = OnceLock::new();
    let (url, reply) = SERVER.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let reply: Arc<Mutex<Vec<u8>>> = Arc::default();
        let serving = reply.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let bytes = serving.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let _ = answer_http(stream, &bytes);
            }
        });
        (url, reply)
    });
    *reply.lock().unwrap_or_else(|p| p.into_inner()) = data.to_vec();
    let auth = crate::source::gbt::rpc::Auth::UserPass { user: "u".into(), password: "p".into() };
    let node = crate::source::gbt::rpc::Node { url: url.clone(), auth };
    if let Ok(result) = node.call("getblocktemplate", &[], Duration::from_secs(2)) {
        let _ = crate::source::gbt::template::parse(&result);
    }
}

/// Reads one HTTP request (headers, then Content-Length bytes) and writes `reply`.
fn answer_http(mut stream: std::net::TcpStream, reply: &[u8]) -> std::io::Result<()> {
    use std::io::{BufRead, Read, Write};
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    stream.write_all(reply)?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// A config file.
pub fn config_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::ConfigFile::parse(Path::new("fuzz.toml"), text);
    }
}

/// A request to the monitoring API, with write access (the commands that change things too).
pub fn api_request(data: &[u8]) {
    let stats = Stats::new();
    stats.register_pool("stratum+tcp://a:1", "u");
    stats.register_pool("stratum+tcp://b:1", "u");
    let (quit, _quit_rx) = tokio::sync::mpsc::unbounded_channel();
    let context = crate::api::ApiContext { log_interval: 5, strategy: "Failover", quit, control: None };
    let request = String::from_utf8_lossy(data);
    let _ = pollster::block_on(crate::api::respond(&request, crate::listen::Access::Write, &stats, &context));
}

/// What a browser page sends on `/api/v1/device`: a frame, read as the host reads it, through a
/// session that handed out two pieces; and every frame either side can read writes back to the
/// same bytes.
pub fn browser_frame(data: &[u8]) {
    use crate::browser::frame::{HostFrame, PageFrame};
    use crate::browser::session::Session;
    let mut session = Session::new(true);
    session.sent(0, crate::work::NonceRange { start: 0, count: 4096 });
    session.sent(1, crate::work::NonceRange { start: 4096, count: 4096 });
    for frame in data.split(|&b| b == 0xff).filter(|f| !f.is_empty()).chain([data]) {
        if session.received(frame).is_err() {
            break;
        }
    }
    if let Ok(frame) = PageFrame::decode(data) {
        assert_eq!(frame.encode(), data, "a page frame reads back as written");
    }
    if let Ok(frame) = HostFrame::decode(data) {
        assert_eq!(frame.encode(), data, "a host frame reads back as written");
    }
}
