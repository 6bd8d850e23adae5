//! The monitoring API, compatible with cgminer's (API 3.7) so that its dashboards and scripts
//! work: one request per TCP connection, either plain `command|parameter` or JSON
//! `{"command":"summary","parameter":""}`; the reply is cgminer's shape (a `STATUS` section,
//! then the data section) terminated by a NUL byte, and the connection closes.
//!
//! Off by default. It listens on loopback unless told otherwise, and any other address needs
//! an allow list. Reading is for everyone allowed; `switchpool`, `enablepool`, `disablepool`
//! and `quit` only for addresses allowed with `W:` (cgminer's `--api-allow W:127.0.0.1`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::listen::{self, Access, ListenOptions};
use crate::source::stratum::driver::PoolControl;
use crate::source::stratum::failover::{PoolCommand, PoolControlError};
use crate::stats::{DeviceState, Stats};
use crate::work::PoolId;

/// cgminer's API version, which dashboards check.
pub const API_VERSION: &str = "3.7";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4028";

/// What the API reports besides the counters.
#[derive(Debug, Clone)]
pub struct ApiContext {
    /// Seconds between status lines (CONFIG's "Log Interval").
    pub log_interval: u64,
    /// "Failover" for pools, "Solo" for a node.
    pub strategy: &'static str,
    /// Asked for by `quit`.
    pub quit: mpsc::UnboundedSender<()>,
    /// Where switchpool / enablepool / disablepool go: the failover policy of the Stratum
    /// driver; `None` when mining solo on a node.
    pub control: Option<mpsc::UnboundedSender<PoolControl>>,
}

/// Starts serving; returns the address it listens on.
pub async fn start(options: ListenOptions, stats: Arc<Stats>, context: ApiContext) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let context = Arc::new(context);
    tokio::spawn(listen::accept_allowed(listener, options, MAX_CONNECTIONS, move |stream, access| {
        let (stats, context) = (stats.clone(), context.clone());
        async move {
            let _ = tokio::time::timeout(REQUEST_DEADLINE, serve(stream, access, &stats, &context)).await;
        }
    }));
    Ok(addr)
}

/// Connections served at once; more are closed as they come, so that API clients cannot take
/// the descriptors the miner needs (its pool connections, its journal).
pub const MAX_CONNECTIONS: usize = 32;

/// A connection gets this long for its request and the reply, however slowly it sends.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

async fn serve(mut stream: TcpStream, access: Access, stats: &Stats, context: &ApiContext) -> std::io::Result<()> {
    let request = read_request(&mut stream).await?;
    let reply = respond(&request, access, stats, context).await;
    stream.write_all(reply.as_bytes()).await?;
    stream.write_all(b"\0").await?;
    stream.shutdown().await
}

/// Reads one request: clients send it and wait, without closing their side, so a request
/// ends at a newline or NUL, at a complete JSON object, or after a short pause.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut chunk)).await {
            Ok(n) => n?,
            Err(_) => break,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let complete = n == 0
            || text.contains(['\n', '\0'])
            || (text.trim_start().starts_with('{') && serde_json::from_str::<Value>(text.trim()).is_ok())
            || (!text.trim_start().starts_with('{') && !text.is_empty())
            || buf.len() > 65536;
        if complete {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).trim_matches(['\0', '\n', '\r', ' ']).to_string())
}

/// A section's rows, each an ordered list of fields.
type Row = Vec<(String, Value)>;

struct Status {
    kind: &'static str,
    code: u32,
    msg: String,
}

struct Reply {
    status: Status,
    section: Option<(&'static str, Vec<Row>)>,
}

fn ok(code: u32, msg: impl Into<String>, section: &'static str, rows: Vec<Row>) -> Reply {
    Reply { status: Status { kind: "S", code, msg: msg.into() }, section: Some((section, rows)) }
}

fn error(code: u32, msg: impl Into<String>) -> Reply {
    Reply { status: Status { kind: "E", code, msg: msg.into() }, section: None }
}

fn row(fields: Vec<(&str, Value)>) -> Row {
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The reply to one request, JSON or plain as it came.
pub async fn respond(request: &str, access: Access, stats: &Stats, context: &ApiContext) -> String {
    let json_request: Option<Value> = request.starts_with('{').then(|| serde_json::from_str(request).ok()).flatten();
    if request.starts_with('{') {
        let Some(object) = json_request else {
            return json_reply(&error(23, "Invalid JSON"));
        };
        let command = object.get("command").and_then(Value::as_str).unwrap_or("").to_string();
        let parameter = match object.get("parameter") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        if command.is_empty() {
            return json_reply(&error(24, "Missing JSON 'command'"));
        }
        // cgminer's joined commands: "summary+devs" answers each under its own name.
        if command.contains('+') {
            let mut parts = Vec::new();
            for c in command.split('+') {
                let reply = answer(c, &parameter, access, stats, context).await;
                parts.push(format!("{}:[{}]", serde_json::to_string(c).unwrap_or_default(), json_reply(&reply)));
            }
            return format!("{{{}}}", parts.join(","));
        }
        if command == "quit" && access == Access::Write {
            let _ = context.quit.send(());
            return r#"{"STATUS":"BYE"}"#.into();
        }
        return json_reply(&answer(&command, &parameter, access, stats, context).await);
    }
    let (command, parameter) = request.split_once('|').unwrap_or((request, ""));
    if command == "quit" && access == Access::Write {
        let _ = context.quit.send(());
        return "BYE".into();
    }
    plain_reply(&answer(command, parameter, access, stats, context).await)
}

/// One command's reply: the pool commands go to the failover policy and wait for its word.
async fn answer(command: &str, parameter: &str, access: Access, stats: &Stats, context: &ApiContext) -> Reply {
    match command {
        "switchpool" | "enablepool" | "disablepool" if access == Access::Write => {
            pool_control(command, parameter, stats, context).await
        }
        _ => run(command, access, stats, context),
    }
}

fn description() -> String {
    format!("wgminer {}", env!("CARGO_PKG_VERSION"))
}

fn status_row(status: &Status) -> Row {
    row(vec![
        ("STATUS", json!(status.kind)),
        ("When", json!(crate::stats::unix_time())),
        ("Code", json!(status.code)),
        ("Msg", json!(status.msg)),
        ("Description", json!(description())),
    ])
}

fn object(fields: &Row) -> String {
    let inner: Vec<String> =
        fields.iter().map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap_or_default(), v)).collect();
    format!("{{{}}}", inner.join(","))
}

fn json_reply(reply: &Reply) -> String {
    let mut out = format!("{{\"STATUS\":[{}]", object(&status_row(&reply.status)));
    if let Some((name, rows)) = &reply.section {
        let rows: Vec<String> = rows.iter().map(object).collect();
        out += &format!(",\"{name}\":[{}]", rows.join(","));
    }
    out + ",\"id\":1}"
}

fn plain_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// cgminer's plain form: `STATUS=S,When=…,Code=…,Msg=…,Description=…|` then one section per
/// row, `SUMMARY,Elapsed=…|` (or `GPU=0,…|` where the row starts with its own index).
fn plain_reply(reply: &Reply) -> String {
    let fields = |r: &Row| r.iter().map(|(k, v)| format!("{k}={}", plain_value(v))).collect::<Vec<_>>().join(",");
    let mut out = format!("{}|", fields(&status_row(&reply.status)));
    if let Some((name, rows)) = &reply.section {
        for r in rows {
            let indexed = r.first().is_some_and(|(k, _)| k == "GPU" || k == "POOL" || k == "STATS");
            if indexed {
                out += &format!("{}|", fields(r));
            } else {
                out += &format!("{name},{}|", fields(r));
            }
        }
    }
    out
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn run(command: &str, access: Access, stats: &Stats, context: &ApiContext) -> Reply {
    let privileged = matches!(command, "switchpool" | "enablepool" | "disablepool" | "quit");
    if privileged && access != Access::Write {
        return error(45, format!("Access denied to '{command}' command"));
    }
    match command {
        "version" => ok(
            22,
            "CGMiner versions",
            "VERSION",
            vec![row(vec![("Miner", json!(description())), ("API", json!(API_VERSION))])],
        ),
        "summary" => ok(11, "Summary", "SUMMARY", vec![summary(stats)]),
        "devs" => {
            let rows = devs(stats);
            ok(9, format!("{} GPU(s)", rows.len()), "DEVS", rows)
        }
        "pools" => {
            let rows = pools(stats);
            ok(7, format!("{} Pool(s)", rows.len()), "POOLS", rows)
        }
        "config" => ok(33, "CGMiner config", "CONFIG", vec![config(stats, context)]),
        "stats" => ok(70, "CGMiner stats", "STATS", stats_rows(stats)),
        _ => error(14, "Invalid command"),
    }
}

fn summary(stats: &Stats) -> Row {
    let elapsed = stats.uptime().as_secs_f64();
    let counts = stats.counts();
    let (accepted, rejected, stale) = (counts.accepted, counts.rejected, counts.stale);
    let hw = stats.hw_errors();
    let hashes = stats.hashes();
    let pools = stats.pools().entries;
    let submitted = accepted + rejected + stale;
    row(vec![
        ("Elapsed", json!(elapsed as u64)),
        ("MHS av", json!(round(stats.average_mhs(), 2))),
        ("MHS 5s", json!(round(stats.mhs_5s().0, 2))),
        ("Found Blocks", json!(stats.blocks())),
        ("Getworks", json!(pools.iter().map(|p| p.jobs).sum::<u64>())),
        ("Accepted", json!(accepted)),
        ("Rejected", json!(rejected)),
        ("Hardware Errors", json!(hw)),
        ("Utility", json!(round(accepted as f64 * 60.0 / elapsed.max(1.0), 2))),
        ("Discarded", json!(0)),
        ("Stale", json!(stale)),
        ("Get Failures", json!(0)),
        ("Local Work", json!(0)),
        ("Remote Failures", json!(0)),
        ("Network Blocks", json!(stats.templates())),
        ("Total MH", json!(round(hashes as f64 / 1e6, 4))),
        ("Best Share", json!(stats.best_share())),
        ("Device Hardware%", json!(round(percent(hw, hw + submitted), 4))),
        ("Device Rejected%", json!(round(percent(rejected, submitted), 4))),
        ("Pool Rejected%", json!(round(percent(rejected, submitted), 4))),
        ("Pool Stale%", json!(round(percent(stale, submitted), 4))),
        ("Journaled", json!(counts.journaled)),
    ])
}

fn devs(stats: &Stats) -> Vec<Row> {
    let elapsed = stats.uptime().as_secs_f64();
    let (_, rates) = stats.mhs_5s();
    stats
        .devices()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let hashes = d.hashes();
            let counts = d.counts();
            let (accepted, rejected, hw) = (counts.accepted, counts.rejected, d.hw_errors());
            let info = &d.info;
            // cgminer's ADL fields, from the device's sensor, -1 where it does not say; integers
            // but the temperature, as cgminer's api.c adds them (clients type them so).
            let sensor = d.sensor().unwrap_or_default();
            let status = d.status();
            let known = |v: Option<f64>, digits| json!(v.map_or(-1.0, |v| round(v, digits)));
            let whole = |v: Option<f64>| json!(v.map_or(-1, |v| v.round() as i64));
            row(vec![
                ("GPU", json!(i)),
                ("Name", json!(info.name)),
                ("Backend", json!(info.backend)),
                ("Driver", json!(info.driver)),
                ("Enabled", json!(if enabled(&status) { "Y" } else { "N" })),
                ("Status", json!(cgminer_status(&status))),
                ("State", json!(status.name())),
                ("Last Fault", json!(status.message.as_deref().unwrap_or(""))),
                ("Duty", json!(round(d.duty() * 100.0, 1))),
                ("Temperature", known(sensor.temp_c, 2)),
                ("Fan Speed", json!(-1)),
                ("Fan Percent", whole(sensor.fan_percent)),
                ("GPU Clock", whole(sensor.core_mhz)),
                ("GPU Activity", whole(sensor.activity_percent)),
                ("Power", known(sensor.power_w, 1)),
                ("MHS av", json!(round(hashes as f64 / elapsed.max(1e-9) / 1e6, 2))),
                ("MHS 5s", json!(round(rates.get(i).copied().unwrap_or(0.0), 2))),
                ("Accepted", json!(accepted)),
                ("Rejected", json!(rejected)),
                ("Hardware Errors", json!(hw)),
                ("Utility", json!(round(accepted as f64 * 60.0 / elapsed.max(1.0), 2))),
                ("Total MH", json!(round(hashes as f64 / 1e6, 4))),
                ("Device Hardware%", json!(round(percent(hw, hw + accepted + rejected), 4))),
                ("Device Rejected%", json!(round(percent(rejected, accepted + rejected), 4))),
                ("Device Elapsed", json!(elapsed as u64)),
            ])
        })
        .collect()
}

/// cgminer's DEVS `Status` (api.c's `status2str`): a device being opened is `Initialising`,
/// a sick one `Sick`, one that failed too often or left `Dead`; a paused one is `Alive` but not
/// enabled, as cgminer shows a device its temperature cutoff holds.
fn cgminer_status(status: &crate::stats::Status) -> &'static str {
    match status.state {
        DeviceState::Starting => "Initialising",
        DeviceState::Alive => "Alive",
        DeviceState::Sick => "Sick",
        DeviceState::Dead | DeviceState::Gone => "Dead",
    }
}

fn enabled(status: &crate::stats::Status) -> bool {
    !status.paused && status.state != DeviceState::Gone
}

fn pools(stats: &Stats) -> Vec<Row> {
    let crate::stats::Pools { entries: pools, active, preferred } = stats.pools();
    let (active, preferred) = (active.0, preferred.0);
    pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let submitted = p.shares.accepted + p.shares.rejected + p.shares.stale;
            let status = if !p.enabled {
                "Disabled"
            } else if p.alive {
                "Alive"
            } else {
                "Dead"
            };
            let last_share = p.last_share.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
            // cgminer's priority: the preferred pool first, then the others in order.
            let priority = if i == preferred { 0 } else { i + usize::from(i < preferred) };
            row(vec![
                ("POOL", json!(i)),
                ("URL", json!(p.url)),
                ("Status", json!(status)),
                // Not cgminer's: why the pool's last connection failed, as the log says it.
                ("Last Failure", json!(p.last_failure.as_deref().unwrap_or(""))),
                ("Priority", json!(priority)),
                ("Quota", json!(1)),
                ("Long Poll", json!("N")),
                ("Getworks", json!(p.jobs)),
                ("Accepted", json!(p.shares.accepted)),
                ("Rejected", json!(p.shares.rejected)),
                ("Works", json!(p.jobs)),
                ("Discarded", json!(0)),
                ("Stale", json!(p.shares.stale)),
                ("Get Failures", json!(0)),
                ("Remote Failures", json!(0)),
                ("User", json!(p.user)),
                ("Last Share Time", json!(last_share)),
                ("Diff", json!(p.difficulty)),
                ("Has Stratum", json!(!p.url.starts_with("http"))),
                ("Stratum Active", json!(i == active && p.alive)),
                ("Stratum URL", json!(p.url)),
                ("Pool Rejected%", json!(round(percent(p.shares.rejected, submitted), 4))),
                ("Pool Stale%", json!(round(percent(p.shares.stale, submitted), 4))),
            ])
        })
        .collect()
}

fn config(stats: &Stats, context: &ApiContext) -> Row {
    row(vec![
        ("GPU Count", json!(stats.devices().len())),
        ("ASC Count", json!(0)),
        ("PGA Count", json!(0)),
        ("Pool Count", json!(stats.pools().entries.len())),
        ("Strategy", json!(context.strategy)),
        ("Log Interval", json!(context.log_interval)),
        ("Device Code", json!("GPU")),
        ("OS", json!(std::env::consts::OS)),
        ("Hotplug", json!("None")),
    ])
}

fn stats_rows(stats: &Stats) -> Vec<Row> {
    let elapsed = stats.uptime().as_secs();
    stats
        .devices()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let d = &d.info;
            row(vec![
                ("STATS", json!(i)),
                ("ID", json!(format!("GPU{i}"))),
                ("Elapsed", json!(elapsed)),
                ("Calls", json!(0)),
                ("Wait", json!(0.0)),
                ("Max", json!(0.0)),
                ("Min", json!(0.0)),
                ("Name", json!(d.name)),
                ("Backend", json!(d.backend)),
                ("Vendor", json!(d.vendor)),
                ("Driver", json!(d.driver)),
            ])
        })
        .collect()
}

async fn pool_control(command: &str, parameter: &str, stats: &Stats, context: &ApiContext) -> Reply {
    if parameter.trim().is_empty() {
        return error(25, "Missing pool id parameter");
    }
    let count = stats.pools().entries.len();
    let Ok(index) = parameter.trim().parse::<usize>() else {
        return error(26, format!("Invalid pool id {parameter} - range is 0 - {}", count.saturating_sub(1)));
    };
    let command = match command {
        "switchpool" => PoolCommand::Switch(PoolId(index)),
        "enablepool" => PoolCommand::Enable(PoolId(index)),
        _ => PoolCommand::Disable(PoolId(index)),
    };
    let Some(control) = &context.control else {
        return error(49, "mining solo on a node: there is no pool to switch");
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if control.send(PoolControl { command, reply }).is_err() {
        return error(49, "the pool client has stopped");
    }
    let result = match tokio::time::timeout(Duration::from_secs(2), answer).await {
        Ok(Ok(result)) => result,
        _ => return error(49, "the pool client did not answer"),
    };
    let (code, verb) = match command {
        PoolCommand::Switch(_) => (27, "Switching to"),
        PoolCommand::Enable(_) => (47, "Enabling"),
        PoolCommand::Disable(_) => (48, "Disabling"),
    };
    match result {
        Ok(url) => {
            Reply { status: Status { kind: "S", code, msg: format!("{verb} pool {index}:'{url}'") }, section: None }
        }
        Err(e @ PoolControlError::NoSuchPool(..)) => error(26, e.to_string()),
        Err(e) => error(49, e.to_string()),
    }
}
