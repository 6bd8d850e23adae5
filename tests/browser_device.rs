//! A browser's WebGPU as a device (`-d browser`, `/device`, `/api/v1/device`): headless
//! Chromium (Debian's, driven by playwright-core from `tests/browser/`) mines for `wgminer demo`
//! on its SwiftShader adapter; and hostile pages, scripted here, are refused while a CPU device
//! goes on mining beside them.
//!
//! Chromium's WebGPU is behind flags on Linux (`--enable-unsafe-webgpu`, Vulkan on); headless,
//! it offers SwiftShader's Vulkan, a CPU adapter. Blink's `GPUAdapterInfo`
//! (`third_party/blink/renderer/modules/webgpu/gpu_adapter_info.cc`) carries vendor,
//! architecture, device and description as Dawn reports them; on this machine's Chromium they
//! read "google" and "swiftshader" with an empty description, which the page sends as is. WebGPU
//! exists only in secure contexts (MDN's `GPUAdapterInfo` page), which a loopback `http://` URL
//! is: the tests open `http://127.0.0.1:PORT/device`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use wgminer::browser::frame::{Answer, Hello, HostFrame, PageFrame, Piece};
use wgminer::cpu::CpuSweeper;
use wgminer::device::Shape;
use wgminer::listen::{ListenOptions, Listener};
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{HttpOptions, MineOptions, Summary, mine};
use wgminer::source::stratum::PoolConfig;
use wgminer::work::{Candidate, Difficulty, NonceRange};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str, install: &str) -> std::path::PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("`{name}` not found: {install} (.ci/run does)"))
}

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::node::free_port()))
}

/// Headless Chromium opens the URL `wgminer demo -d browser` prints, presses Start, and its
/// WebGPU (SwiftShader) mines: the embedded pool accepts at least 5 shares (it checks each by
/// SHA-256d); `/api/v1/devices` and cgminer's DEVS list the WebGPU device by its adapter while
/// it mines; Stop detaches it and the API says so; nothing was swept before Start.
#[test]
fn a_real_browser_mines_for_the_demo() {
    let node = tool("node", "install Node.js");
    let chromium = tool("chromium", "install Debian's chromium (apt-get install chromium)");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (.ci/run does)"
    );
    let (http, api) = (free_addr(), common::node::free_port());
    let journal = std::env::temp_dir().join(format!("wgminer-test-browser-{}.jsonl", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["demo", "-d", "browser", "--seconds", "600", "--difficulty", "0.00002", "--status-every", "60"])
        .args(["--http-listen", &http.to_string(), "--api-listen", &format!("127.0.0.1:{api}")])
        .arg("--journal")
        .arg(journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let demo = Running(child);
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        out.read_line(line).unwrap();
    }
    assert!(lines[0].starts_with(&format!("dashboard: http://{http}/")), "{lines:?}");
    let url = format!("http://{http}/device");
    assert_eq!(lines[1].trim(), format!("browser device: open {url} and press Start"));
    let run = Command::new(node)
        .arg(browser_dir.join("device.mjs"))
        .args([url.as_str(), "mine", &api.to_string(), "5"])
        .env("CHROMIUM", chromium)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stdout}{stderr}");
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's report");
    assert_eq!(seen["adapter"]["architecture"], "swiftshader", "{seen}");
    assert_eq!(seen["sweptBeforeStart"], 0, "{seen}");
    assert!(seen["mining"]["status"]["accepted"].as_u64().unwrap() >= 5, "{seen}");
    assert_eq!(seen["mining"]["status"]["hwErrors"], 0, "{seen}");
    let listed = &seen["mining"]["devices"];
    let device = listed.as_array().unwrap().iter().find(|d| d["backend"] == "WebGPU").expect("the WebGPU device");
    assert!(device["name"].as_str().unwrap().contains("swiftshader"), "{seen}");
    assert!(device["shares"]["accepted"].as_u64().unwrap() >= 5, "{seen}");
    let devs = seen["mining"]["devs"]["DEVS"].as_array().unwrap();
    assert!(devs.iter().any(|d| d["Name"].as_str().unwrap_or("").contains("swiftshader")), "{seen}");
    let after = &seen["stopped"]["devices"];
    let gone = after.as_array().unwrap().iter().find(|d| d["backend"] == "WebGPU").unwrap();
    assert_eq!(gone["state"], "gone", "{seen}");
    // The pool's own count, printed at the end of the demo.
    let pid = demo.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    let pool_side = rest.iter().find_map(|l| l.strip_prefix("pool side: ")).expect("the pool's count");
    let accepted: u64 = pool_side.split(' ').next().unwrap().parse().unwrap();
    assert!(accepted >= 5, "{rest:?}");
}

/// The page's kernel finds exactly the candidates the CPU reference finds: eight versions of a
/// header at an easy target, in pieces handed over the socket as the scheduler would hand them
/// (`Sweeper::sweep`), the kernel's parameters going as the native sweeper's uniform bytes.
#[test]
fn the_pages_kernel_finds_what_the_cpu_finds() {
    use wgminer::browser::BrowserHost;
    use wgminer::device::Sweeper;
    let node = tool("node", "install Node.js");
    let chromium = tool("chromium", "install Debian's chromium (apt-get install chromium)");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let header = common::mainnet_headers().remove(0).header;
    let versions: Vec<u32> = (0..8).map(|k| 0x2000_0000 | k << 13).collect();
    // A hash is a candidate one time in 512 or so: its top word below 2^23.
    let mut target = [0u8; 32];
    target[1] = 0x40;
    let work = wgminer::work::Work::with_versions(header, wgminer::work::Target::from_be_bytes(target), &versions);
    let range = NonceRange { start: 0xffff_c000, count: 1 << 15 }; // across the wrap to 0
    let expected = wgminer::cpu::sweep::sweep(&work, range);
    assert!(expected.len() > 100, "{}", expected.len());
    let (found_tx, found) = std::sync::mpsc::channel();
    let attach = Arc::new(move |mut page: Box<dyn Sweeper>| {
        let (work, found_tx) = (work.clone(), found_tx.clone());
        std::thread::spawn(move || found_tx.send(page.sweep(&work, range).map_err(|e| e.to_string())));
        Some(wgminer::work::DeviceId(0))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stats = Arc::new(wgminer::stats::Stats::new());
    let host = Arc::new(BrowserHost::mining(1, stats.clone(), attach));
    let site = wgminer::http::Site { mode: wgminer::http::Mode::Pools, stats, pool_side: vec![] };
    let listen = ListenOptions::new(Listener::Http, "127.0.0.1:0", vec![]).unwrap();
    let http = runtime.block_on(wgminer::http::start_with(listen, site, Some(host))).unwrap();
    let run = Command::new(node)
        .arg(browser_dir.join("device.mjs"))
        .args([&format!("http://{http}/device"), "sweep"])
        .env("CHROMIUM", chromium)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stdout}{stderr}");
    let mut candidates = found.recv_timeout(Duration::from_secs(10)).expect("the sweep's end").expect("a clean sweep");
    candidates.sort_unstable();
    let mut expected = expected;
    expected.sort_unstable();
    assert_eq!(candidates, expected, "{stdout}");
}

/// `wgminer bench --browser`: the page's Bench checks every real block's known nonce on its
/// WebGPU (through the same pieces as mining), is measured, and its record, in `bench --json`'s
/// schema, is one that `wgminer report` renders beside native records.
#[test]
fn a_browser_bench_record_joins_the_report() {
    let node = tool("node", "install Node.js");
    let chromium = tool("chromium", "install Debian's chromium (apt-get install chromium)");
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let http = free_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["bench", "--browser", &http.to_string(), "--seconds", "2", "--runs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let bench = Running(child);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = format!("http://{http}/device");
    assert_eq!(first.trim(), format!("browser bench: open {url} and press Start"));
    let run = Command::new(node)
        .arg(browser_dir.join("device.mjs"))
        .args([&url, "bench"])
        .env("CHROMIUM", chromium)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stdout}{stderr}");
    let mut record = String::new();
    out.read_line(&mut record).unwrap();
    let mut bench = bench;
    let status = bench.0.wait().unwrap();
    let mut checks = String::new();
    std::io::Read::read_to_string(&mut bench.0.stderr.take().unwrap(), &mut checks).unwrap();
    assert!(status.success(), "{checks}");
    assert_eq!(checks.matches("PASS  block").count(), 8, "{checks}");
    let parsed: Value = serde_json::from_str(&record).unwrap_or_else(|e| panic!("{e}: {record:?} {checks}"));
    let device = &parsed["devices"][0];
    assert_eq!(device["backend"], "WebGPU", "{parsed}");
    assert!(device["mhs"]["median"].as_f64().unwrap() > 0.0, "{parsed}");
    assert_eq!(device["mhs"]["runs"].as_array().unwrap().len(), 2, "{parsed}");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-bench.jsonl");
    std::fs::write(&file, &record).unwrap();
    let svg = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-bench.svg");
    let report =
        Command::new(env!("CARGO_BIN_EXE_wgminer")).arg("report").arg(&file).arg("--svg").arg(&svg).output().unwrap();
    let table = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{table}{}", String::from_utf8_lossy(&report.stderr));
    assert!(table.lines().any(|l| l.contains("swiftshader") && l.contains("WebGPU")), "{table}");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(http: SocketAddr) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    tokio_tungstenite::connect_async(format!("ws://{http}/api/v1/device")).await.map(|(socket, _)| socket)
}

fn hello() -> Message {
    let shape = Shape { workgroup_size: 64, nonces_per_invocation: 64, versions_per_nonce: 8 };
    let hello = Hello {
        shape,
        rate: 2e5,
        vendor: "hostile".into(),
        architecture: "script".into(),
        description: String::new(),
        user_agent: "tests/browser_device.rs".into(),
    };
    Message::Binary(PageFrame::Hello(hello).encode().into())
}

/// The next piece the host hands out (status frames skipped).
async fn next_piece(socket: &mut Socket) -> Piece {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next()).await.unwrap().unwrap().unwrap();
        if let Message::Binary(bytes) = message {
            if let Ok(HostFrame::Piece(piece)) = HostFrame::decode(&bytes) {
                return *piece;
            }
        }
    }
}

fn answer(id: u32, range: NonceRange, candidates: Vec<Candidate>) -> Message {
    Message::Binary(PageFrame::Answer(Answer { id, range, candidates }).encode().into())
}

/// The close code the host ends the socket with (`None`: it ended without one).
async fn closed_with(socket: &mut Socket) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
    panic!("the host did not close the socket");
}

async fn devices(http: SocketAddr) -> Vec<Value> {
    common::http::get(http, "/api/v1/devices").await.json().as_array().cloned().unwrap_or_default()
}

/// Pages that lie, while a CPU device mines beside them: wrong candidates are counted as
/// hardware errors and never submitted; a claim of more nonces than handed ends the socket and
/// is not credited; garbage, text and oversized frames close the socket (RFC 6455's 1008 and
/// 1003); 100 connections at once get `--browser-devices` places, the rest refused; and the CPU
/// device's shares are accepted all along, with no hardware error of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pages_are_refused_and_mining_goes_on() {
    let pool_options = PoolOptions { difficulty: Difficulty::new(0.0005).unwrap(), ..Default::default() };
    let cpu = Box::new(CpuSweeper::new());
    let (pool, http, done, miner) =
        mine_beside_pages(pool_options, 4, Duration::from_secs(300), "hostile-pages", cpu).await;
    let cpu_accepted = |d: &[Value]| d[0]["shares"]["accepted"].as_u64().unwrap();
    let accepted_before = cpu_accepted(&devices(http).await);

    // Wrong candidates: hardware errors of that device, never submitted.
    let mut liar = connect(http).await.unwrap();
    liar.send(hello()).await.unwrap();
    for _ in 0..3 {
        let piece = next_piece(&mut liar).await;
        let wrong = vec![
            Candidate { nonce: piece.range.start, version: 0 },
            Candidate { nonce: piece.range.start, version: 7 },
        ];
        liar.send(answer(piece.id, piece.range, wrong)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let liar_seen = loop {
        let d = devices(http).await;
        if let Some(l) = d.iter().find(|d| d["name"].as_str().unwrap_or("").starts_with("hostile")) {
            if l["hardware_errors"].as_u64() >= Some(6) {
                break l.clone();
            }
        }
        assert!(Instant::now() < deadline, "no hardware errors counted: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(liar_seen["shares"]["found"], 0, "{liar_seen}");
    drop(liar);

    // A claim past what was handed: the socket ends, only the honest piece is credited.
    let mut greedy = connect(http).await.unwrap();
    greedy.send(hello()).await.unwrap();
    let first = next_piece(&mut greedy).await;
    greedy.send(answer(first.id, first.range, vec![])).await.unwrap();
    let second = next_piece(&mut greedy).await;
    let wider = NonceRange { start: second.range.start, count: second.range.count * 4 };
    greedy.send(answer(second.id, wider, vec![])).await.unwrap();
    assert_eq!(closed_with(&mut greedy).await, Some(1008));
    let credited = first.range.count * u64::from(first.params.sweep.versions);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = devices(http).await;
        let greedy = d.iter().filter(|d| d["name"].as_str().unwrap_or("").starts_with("hostile")).nth(1).cloned();
        if greedy.as_ref().is_some_and(|g| g["hashes"].as_u64() == Some(credited)) {
            break;
        }
        assert!(Instant::now() < deadline, "credited {greedy:?}, handed and answered {credited}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Garbage, text and oversized frames.
    for (message, code) in [
        (Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into()), Some(1008)),
        (Message::Text("hello".into()), Some(1003)),
        (Message::Binary(vec![1u8; 200 * 1024].into()), None),
    ] {
        let mut socket = connect(http).await.unwrap();
        let _ = socket.send(message).await;
        let closed = closed_with(&mut socket).await;
        if code.is_some() {
            assert_eq!(closed, code);
        }
    }

    // 100 at once: four places, never more (tried again while the sockets above still let go
    // of theirs).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crowd = futures_util::future::join_all((0..100).map(|_| connect(http))).await;
        let held: Vec<Socket> = crowd.into_iter().filter_map(Result::ok).collect();
        assert!(held.len() <= 4, "{} places held of 100 tries", held.len());
        if held.len() == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "{} places held of 100 tries", held.len());
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The CPU device went on mining throughout, and nothing of the pages reached the pool.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = devices(http).await;
        if cpu_accepted(&d) > accepted_before {
            assert_eq!(d[0]["hardware_errors"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "the CPU device stopped mining");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done.store(true, Relaxed);
    let (summary, _) = miner.await.unwrap();
    assert_eq!(pool.stats.rejected.load(Relaxed), 0);
    assert!(summary.hw_errors >= 6, "{summary:?}");
}

/// The CPU device, recording each piece it is handed: the kernel's parameters of its work (the
/// nonce range zeroed) and the range.
struct Recording {
    cpu: CpuSweeper,
    swept: Arc<std::sync::Mutex<Vec<(wgminer::gpu::kernel::KernelParams, NonceRange)>>>,
}

impl wgminer::device::Sweeper for Recording {
    fn info(&self) -> &wgminer::device::DeviceInfo {
        self.cpu.info()
    }
    fn preferred_chunk(&self) -> u64 {
        self.cpu.preferred_chunk()
    }
    fn queue(&mut self, work: &wgminer::work::Work, range: NonceRange) -> Result<(), wgminer::device::SweepError> {
        self.swept.lock().unwrap().push((wgminer::gpu::kernel::KernelParams::new(work), range));
        self.cpu.queue(work, range)
    }
    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, wgminer::device::SweepError> {
        self.cpu.next_result()
    }
}

/// A tab closed mid-piece while a CPU device mines: the pieces the page was handed and did not
/// answer are swept by the CPU device, every nonce of them, in the same work (issue 27's device
/// life gives a device's unfinished ranges back to the scheduler).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_closed_mid_piece_leaves_no_gap() {
    // No new job for the length of the test: orphans are swept while their job is the newest.
    let pool_options = PoolOptions {
        difficulty: Difficulty::new(0.01).unwrap(),
        job_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let swept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cpu = Box::new(Recording { cpu: CpuSweeper::new(), swept: swept.clone() });
    let (_pool, http, done, miner) = mine_beside_pages(pool_options, 1, Duration::from_secs(120), "gapless", cpu).await;
    let mut page = connect(http).await.unwrap();
    page.send(hello()).await.unwrap();
    let mut pieces = vec![next_piece(&mut page).await];
    page.send(answer(pieces[0].id, pieces[0].range, vec![])).await.unwrap();
    // The rest of what it is handed, then the tab closes.
    while let Ok(piece) = tokio::time::timeout(Duration::from_secs(2), next_piece(&mut page)).await {
        pieces.push(piece);
    }
    assert!(pieces.len() >= 3, "{} pieces handed", pieces.len());
    drop(page);
    let unanswered = &pieces[1..];
    let covered = |swept: &[(wgminer::gpu::kernel::KernelParams, NonceRange)], piece: &Piece| {
        let params = piece.params.dispatch(0, 0);
        piece.range.iter().all(|nonce| swept.iter().any(|(p, r)| *p == params && r.contains(nonce)))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = unanswered.iter().all(|piece| covered(&swept.lock().unwrap(), piece));
        if all {
            break;
        }
        assert!(Instant::now() < deadline, "the closed tab's pieces were not swept by the CPU device");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page_device = devices(http).await.into_iter().find(|d| d["backend"] == "WebGPU").unwrap();
    assert_eq!(page_device["state"], "gone", "{page_device}");
    assert_eq!(
        page_device["hashes"].as_u64(),
        Some(pieces[0].range.count * u64::from(pieces[0].params.sweep.versions))
    );
    done.store(true, Relaxed);
    miner.await.unwrap();
}

/// A miner on an embedded pool with `cpu` for its one local device and room for `pages`
/// browser devices, mining until the flag it returns is set (or `ceiling`); returned once its
/// HTTP server lists its devices, with the pool (kept open) and the server's address.
async fn mine_beside_pages(
    pool_options: PoolOptions,
    pages: usize,
    ceiling: Duration,
    name: &str,
    cpu: Box<dyn wgminer::device::Sweeper>,
) -> (
    EmbeddedPool,
    SocketAddr,
    Arc<AtomicBool>,
    tokio::task::JoinHandle<(Summary, Vec<Box<dyn wgminer::device::Sweeper>>)>,
) {
    let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
    let http = free_addr();
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let options = MineOptions {
        http: Some(HttpOptions {
            listen: ListenOptions::new(Listener::Http, &http.to_string(), vec![]).unwrap(),
            pool_side: vec![],
            browser_devices: Some(pages),
        }),
        ..MineOptions::until(Arc::new(move |_| finished.load(Relaxed)), ceiling)
    };
    let config = PoolConfig {
        url: format!("stratum+tcp://{}", pool.addr),
        user: name.into(),
        pass: "x".into(),
        journal: std::env::temp_dir().join(format!("wgminer-test-{name}-{}.jsonl", std::process::id())),
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
    };
    let miner = tokio::spawn(async move { mine(Source::Pools(vec![config]), vec![cpu], &options).await });
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(http).await.is_err() || devices(http).await.is_empty() {
        assert!(Instant::now() < deadline, "the miner's HTTP server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (pool, http, done, miner)
}
