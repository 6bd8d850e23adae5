//! Hostile pools seen from the miner's side (issue 29): a pool URL that carries a password, a
//! pool that sets difficulty 1e-9 and never answers (the disk), a pool silent after TCP
//! connects (SV2), and errors that repeat themselves. A real `wgminer mine` on loopback with
//! everything it says captured; every wait bounded, every peer stopping by itself.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The password in the pool URLs: it must show nowhere.
const SECRET: &str = "s3cret-in-the-url";

const SLUSH_NOTIFY: &str = r#"{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}"#;

/// What the scripted pool saw: the authorize parameters and how many submits came.
#[derive(Default)]
struct Seen {
    authorize: Vec<serde_json::Value>,
    submits: usize,
}

/// A pool that logs the miner in, sets difficulty 1e-9 (a share every few hashes) with
/// slush's job, and never answers a submit: what the issue's hostile pool did. It serves
/// connections one after another until the test ends (the runtime drops it).
///
/// ckpool answers `mining.subscribe` with `[[…], extranonce1, extranonce2_size]` and takes
/// `mining.authorize` as `[user, password]` (ckpool's stratifier.c, `parse_subscribe` and
/// `parse_authorise`); 1e-9 is what the issue's pool sent.
async fn deaf_pool(listener: tokio::net::TcpListener, seen: Arc<Mutex<Seen>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            let reply = match v["method"].as_str() {
                Some("mining.subscribe") => format!(r#"{{"id":{},"result":[[],"08000002",4],"error":null}}"#, v["id"]),
                Some("mining.authorize") => {
                    seen.lock().unwrap().authorize = v["params"].as_array().cloned().unwrap_or_default();
                    format!(
                        "{{\"id\":{},\"result\":true,\"error\":null}}\n{{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1e-9]}}\n{SLUSH_NOTIFY}",
                        v["id"]
                    )
                }
                Some("mining.submit") => {
                    seen.lock().unwrap().submits += 1;
                    continue;
                }
                _ => continue,
            };
            if write.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                break;
            }
        }
    }
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// SIGTERM, then its exit code (30 s at most).
    fn stop(&mut self) -> Option<i32> {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "stops on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wgminer-hostile-{}-{name}", std::process::id()))
}

/// `wgminer ARGS`, stdout and stderr to files (a pipe nobody reads would stall it).
fn spawn(args: &[String], out: &Path, err: &Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(std::fs::File::create(err).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// One HTTP/1.1 GET, read until the server closes or `read_for` ends (a stream never does).
fn http_get(addr: SocketAddr, path: &str, read_for: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let (mut bytes, until, mut buf) = (Vec::new(), Instant::now() + read_for, [0u8; 8192]);
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// cgminer's API: one command, the whole reply.
fn cgminer(port: u16, command: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, r#"{{"command":"{command}"}}"#).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// Waits for `done` (checked every 100 ms), failing after `ceiling` with `what`.
fn wait_for(ceiling: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + ceiling;
    while !done() {
        assert!(Instant::now() < deadline, "waited {ceiling:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// The sum of a counter's samples with `label` in a Prometheus exposition.
fn metric(exposition: &str, metric: &str, label: &str) -> f64 {
    let body = exposition.split_once("\r\n\r\n").map_or(exposition, |(_, b)| b);
    common::http::metric_sum(body, metric, &[label])
}

/// `user:password@` in pool URLs, as other miners and pools' setup pages write it (ethminer's
/// docs/POOL_EXAMPLES_ETH.md: `scheme://user[.workername][:password]@hostname:port`), is the
/// pool's worker and password: the pool gets them at `mining.authorize`, and the password
/// shows nowhere. The first pool's port is closed, so its failure (its URL in the error) is in
/// `/api/v1/pools`' `last_failure`; the second never answers, so shares are journaled with its
/// URL. Everything the run says (log at debug, every HTTP answer and the live stream, the
/// cgminer API, the journal, `config --print`, a bad URL's error) is searched for the secret.
#[cfg(unix)]
#[test]
fn a_password_in_a_pool_url_is_used_and_shown_nowhere() {
    let rt = runtime();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let deaf = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    rt.spawn(deaf_pool(listener, seen.clone()));
    let closed = common::node::free_port();
    let (http, api) = (SocketAddr::from(([127, 0, 0, 1], common::node::free_port())), common::node::free_port());
    let (out, err, journal) = (temp("url-out"), temp("url-err"), temp("url-journal.jsonl"));
    let _ = std::fs::remove_file(&journal);
    let mut args: Vec<String> =
        ["--log-level", "debug", "mine", "-d", "cpu", "--seconds", "120"].map(String::from).into();
    args.extend(["-o".into(), format!("stratum+tcp://uu:{SECRET}@127.0.0.1:{closed}")]);
    args.extend(["-o".into(), format!("stratum+tcp://uu2:{SECRET}@{deaf}")]);
    args.extend(["--journal".into(), journal.display().to_string(), "--http-listen".into(), http.to_string()]);
    args.extend(["--api-listen".into(), format!("127.0.0.1:{api}")]);
    let mut miner = spawn(&args, &out, &err);
    wait_for(Duration::from_secs(60), "shares at the second pool", || seen.lock().unwrap().submits >= 3);
    assert_eq!(seen.lock().unwrap().authorize, [serde_json::json!("uu2"), serde_json::json!(SECRET)]);

    let mut said = Vec::new();
    for path in
        ["/", "/metrics", "/api/v1/summary", "/api/v1/devices", "/api/v1/pools", "/api/v1/events", "/api/v1/history"]
    {
        said.push(http_get(http, path, Duration::from_secs(10)));
    }
    said.push(http_get(http, "/api/v1/stream", Duration::from_secs(3)));
    for command in ["pools", "summary", "devs", "config", "stats"] {
        said.push(cgminer(api, command));
    }
    let pools: serde_json::Value = serde_json::from_str(said[4].split_once("\r\n\r\n").unwrap().1).unwrap();
    let failure = pools[0]["last_failure"].as_str().unwrap_or_default().to_string();
    assert!(failure.contains(&format!("127.0.0.1:{closed}")), "the first pool failed: {pools}");
    assert_eq!(pools[1]["url"], format!("stratum+tcp://{deaf}"), "{pools}");
    assert!(said[8].contains(&format!("stratum+tcp://{deaf}")), "cgminer's pools: {}", said[8]);
    assert_eq!(miner.stop(), Some(0));

    let journaled = std::fs::read_to_string(&journal).unwrap();
    assert!(journaled.contains(&format!("\"pool\":\"stratum+tcp://{deaf}\"")), "{journaled}");
    said.extend([journaled, std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&err).unwrap()]);
    // What `config --print` shows, and a URL refused for its port.
    let url = format!("stratum+tcp://uu:{SECRET}@127.0.0.1:{closed}");
    let config = Command::new(env!("CARGO_BIN_EXE_wgminer")).args(["config", "--print", "mine", "-o", &url]).output();
    let config = config.unwrap();
    said.push(String::from_utf8_lossy(&config.stdout).into_owned() + &String::from_utf8_lossy(&config.stderr));
    assert!(said.last().unwrap().contains("uu:********@"), "{}", said.last().unwrap());
    let bad = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["mine", "-d", "cpu", "-o", &format!("stratum+tcp://uu:{SECRET}@127.0.0.1:port")])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    said.push(String::from_utf8_lossy(&bad.stderr).into_owned());
    assert!(said.last().unwrap().contains("stratum+tcp://127.0.0.1:port"), "{}", said.last().unwrap());
    for text in &said {
        assert!(!text.contains(SECRET), "the password shows:\n{text}");
    }
}

/// The issue's pool: difficulty 1e-9 and never an answer, which made 34 MB of log and 34 MB
/// of journal in 20 s. Now the journal stops at `--journal-max-mb` (shares past it counted as
/// unjournaled, said once, in `/metrics`, and the run exits 2 as for any share lost), and the
/// log says repeated outcomes at most once a second each.
#[cfg(unix)]
#[test]
fn a_pool_that_floods_shares_and_never_answers_cannot_fill_the_disk() {
    let rt = runtime();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let deaf = listener.local_addr().unwrap();
    rt.spawn(deaf_pool(listener, Arc::new(Mutex::new(Seen::default()))));
    let http = SocketAddr::from(([127, 0, 0, 1], common::node::free_port()));
    let (out, err, journal) = (temp("flood-out"), temp("flood-err"), temp("flood-journal.jsonl"));
    let _ = std::fs::remove_file(&journal);
    let mut args: Vec<String> = ["mine", "-d", "cpu", "--seconds", "300", "-u", "w"].map(String::from).into();
    args.extend(["-o".into(), format!("stratum+tcp://{deaf}"), "--journal-max-mb".into(), "1".into()]);
    args.extend(["--journal".into(), journal.display().to_string(), "--http-listen".into(), http.to_string()]);
    let started = Instant::now();
    let mut miner = spawn(&args, &out, &err);
    // Well past the limit: the unsent queue (4,096) full, a megabyte journaled (~4,000
    // lines), and thousands more found since.
    let unjournaled = || {
        metric(&http_get(http, "/metrics", Duration::from_secs(10)), "wgminer_shares_total", "outcome=\"unjournaled\"")
    };
    wait_for(Duration::from_secs(120), "5,000 shares past the journal's limit", || {
        std::net::TcpStream::connect(http).is_ok() && unjournaled() >= 5000.0
    });
    let code = miner.stop();
    let seconds = started.elapsed().as_secs();
    let (stdout, stderr) = (std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&err).unwrap());
    assert_eq!(code, Some(2), "shares were lost, and the run says so:\n{stderr}");
    let size = std::fs::metadata(&journal).unwrap().len();
    assert!(size <= 1 << 20 && size > 900_000, "the journal holds {size} bytes");
    assert_eq!(stderr.matches("has reached its limit of 1 MB").count(), 1, "said once:\n{stderr}");
    // A line a second for each kind of outcome at most (journaled by the driver and by the
    // run, unjournaled), plus the start and the end: where it was two lines a share.
    let bound = 40 + 4 * seconds as usize;
    assert!(stderr.lines().count() <= bound, "{} lines in {seconds} s:\n{stderr}", stderr.lines().count());
    assert!(stderr.len() <= 300 * bound, "{} bytes of log in {seconds} s", stderr.len());
    assert!(stderr.contains(" in the last second"), "{stderr}");
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count() as u64;
    let summary = stdout.lines().find(|l| l.starts_with("summary:")).unwrap_or_default();
    assert!(
        summary.contains(&format!("journaled {lines},")),
        "every line written counted once: {summary} ({lines} lines)"
    );
    assert!(stdout.contains("NOT journaled: "), "{stdout}");
}

/// A journal in a directory that is not there: the system's reason said once, not twice
/// ("(os error 2): No such file or directory (os error 2)").
#[test]
fn an_unusable_journal_is_refused_with_its_reason_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["mine", "-d", "cpu", "-o", "stratum+tcp://127.0.0.1:9", "-u", "w", "--journal", "/nonexistent-dir/j"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
    assert!(stderr.contains("journal /nonexistent-dir/j cannot be written"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["--log-file", "/nonexistent-dir/log", "devices"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
}

/// A pool that takes the TCP connection and then says nothing of the Noise handshake is not
/// "connect timed out": TCP connected, and the error says what did not happen. SRI's
/// `NoiseTcpStream::connect` gives up after the timeout it is given (network_helpers'
/// noise_stream.rs, `Error::HandshakeTimeout`).
#[tokio::test]
async fn a_silent_sv2_handshake_is_not_a_connect_timeout() {
    use wgminer::source::stratum::core::ConnectError;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    });
    let key: wgminer::source::stratum::v2::AuthorityKey =
        "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72".parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let error = wgminer::source::stratum::v2::transport::connect(tcp, &key).await.err().expect("no handshake");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(matches!(error, ConnectError::HandshakeTimedOut { handshake: "Noise", .. }), "{error:?}");
    let said = error.to_string();
    assert!(said.contains("took the connection but did not finish the Noise handshake"), "{said}");
    assert!(!said.contains("connect to"), "{said}");
    silent.abort();
}

/// A pool that sends `client.show_message` (slush's Stratum docs: text for the miner's user)
/// 2,000 times, 20 KB each, 40 MB in all: the log says one a second, cut to 512 characters,
/// and how many more were not shown. The pool then sends a new job; a submit on it shows the
/// miner read every message before.
#[cfg(unix)]
#[test]
fn a_pool_that_floods_messages_cannot_fill_the_log() {
    let rt = runtime();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let pool = listener.local_addr().unwrap();
    let after = Arc::new(Mutex::new(false));
    let seen_after = after.clone();
    rt.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let text = format!("{}\\nFORGED", "m".repeat(20_000));
        while let Ok(Some(line)) = lines.next_line().await {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let reply = match v["method"].as_str() {
                Some("mining.subscribe") => format!(r#"{{"id":{},"result":[[],"08000002",4],"error":null}}"#, v["id"]),
                Some("mining.authorize") => {
                    let mut reply = format!("{{\"id\":{},\"result\":true,\"error\":null}}\n", v["id"]);
                    for _ in 0..2000 {
                        reply +=
                            &format!("{{\"id\":null,\"method\":\"client.show_message\",\"params\":[\"{text}\"]}}\n");
                    }
                    reply += "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1e-9]}\n";
                    reply + &SLUSH_NOTIFY.replace("\"bf\"", "\"after\"")
                }
                Some("mining.submit") => {
                    if v["params"][1] == "after" {
                        *seen_after.lock().unwrap() = true;
                    }
                    continue;
                }
                _ => continue,
            };
            if write.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let (out, err, journal) = (temp("messages-out"), temp("messages-err"), temp("messages-journal.jsonl"));
    let mut args: Vec<String> = ["mine", "-d", "cpu", "--seconds", "300", "-u", "w"].map(String::from).into();
    args.extend(["-o".into(), format!("stratum+tcp://{pool}"), "--journal".into(), journal.display().to_string()]);
    let mut miner = spawn(&args, &out, &err);
    wait_for(Duration::from_secs(60), "a share on the job after the messages", || *after.lock().unwrap());
    miner.stop();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(stderr.len() < 64 << 10, "{} bytes of log for 40 MB of messages", stderr.len());
    assert!(stderr.contains("message from pool") && stderr.contains("m…"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("FORGED")), "{stderr}");
    assert!(stderr.contains("not shown"), "the rest is counted: {stderr}");
}

/// The same flood into a journal that fails at every write (`/dev/full`): each share's line
/// goes to the log, the last copy there is, but only as many bytes as the journal may hold;
/// past that the shares are counted as unjournaled only (said once), so the flood does not
/// move into the log.
#[cfg(target_os = "linux")]
#[test]
fn a_failing_journal_does_not_move_the_flood_into_the_log() {
    let rt = runtime();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let deaf = listener.local_addr().unwrap();
    rt.spawn(deaf_pool(listener, Arc::new(Mutex::new(Seen::default()))));
    let http = SocketAddr::from(([127, 0, 0, 1], common::node::free_port()));
    let (out, err) = (temp("full-out"), temp("full-err"));
    let mut args: Vec<String> = ["mine", "-d", "cpu", "--seconds", "300", "-u", "w"].map(String::from).into();
    args.extend(["-o".into(), format!("stratum+tcp://{deaf}"), "--journal-max-mb".into(), "1".into()]);
    args.extend(["--journal".into(), "/dev/full".into(), "--http-listen".into(), http.to_string()]);
    let mut miner = spawn(&args, &out, &err);
    let unjournaled = || {
        metric(&http_get(http, "/metrics", Duration::from_secs(10)), "wgminer_shares_total", "outcome=\"unjournaled\"")
    };
    wait_for(Duration::from_secs(120), "10,000 shares the journal could not take", || {
        std::net::TcpStream::connect(http).is_ok() && unjournaled() >= 10_000.0
    });
    assert_eq!(miner.stop(), Some(2));
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(stderr.len() < (1 << 20) + (256 << 10), "{} bytes of log", stderr.len());
    assert!(stderr.contains("the share was: {"), "the first lines are kept");
    assert_eq!(stderr.matches("more shares are counted as unjournaled only").count(), 1);
}

/// `--journal-max-mb` is an option like every other: in the config file too, checked there.
#[test]
fn the_journal_limit_is_in_the_config_file_too() {
    let file = temp("limit.toml");
    std::fs::write(&file, "journal-max-mb = 2\n").unwrap();
    let print = |file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .arg("--config")
            .arg(file)
            .args(["config", "--print", "mine", "-o", "127.0.0.1:1", "-u", "w"])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, said) = print(&file);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("journal-max-mb = 2  # config file"), "{said}");
    std::fs::write(&file, "journal-max-mb = 0\n").unwrap();
    let (code, said) = print(&file);
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("line 1: `journal-max-mb`"), "{said}");
}
