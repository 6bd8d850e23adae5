//! Devices that fail while mining: faults injected at the `Sweeper` border (a device that
//! errors, loses its device, hangs inside a driver call, leaves for good, fails again after
//! coming back), each beside a device that works; and a real wgpu device destroyed under the
//! miner on lavapipe. What must hold: the job's nonce space is covered with no gap and no
//! range counted twice, shares go on being accepted, the failed device is shown sick and
//! comes back by itself, and shutdown is not held by a driver call that never returns.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use wgminer::cpu::CpuSweeper;
use wgminer::device::{DeviceInfo, Fault, Reopen, SweepError, Sweeper};
use wgminer::listen::{ListenOptions, Listener};
use wgminer::miner::Source;
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::run::{HttpOptions, MineOptions, mine};
use wgminer::scheduler::Scheduler;
use wgminer::source::SourceWork;
use wgminer::source::stratum::PoolConfig;
use wgminer::stats::{DeviceState, Event, Stats};
use wgminer::work::job::Job;
use wgminer::work::{Candidate, Difficulty, Extranonce1, NonceRange, PoolId, Target, VersionMask, Work};

/// What one opening of a faulty device does.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Works.
    Well,
    /// Its `queue` fails with `Fault` after this many pieces.
    FailAfter(usize, Fault),
    /// Its `next_result` blocks inside the "driver" after this many answers, until the test
    /// lets it go (a driver reset), then fails.
    HangAfter(usize),
    /// Opening it fails.
    WontOpen,
}

/// A range a device answered: the device, its unit (by merkle root), the range.
type Answered = (String, [u8; 32], NonceRange);

/// What the faulty devices of a test share: the plans of their next openings, the gate their
/// hangs wait at, and every range a device answered.
#[derive(Clone, Default)]
struct Harness {
    plans: Arc<Mutex<VecDeque<Plan>>>,
    gate: Arc<(Mutex<bool>, Condvar)>,
    answered: Arc<Mutex<Vec<Answered>>>,
}

impl Harness {
    fn with_plans(plans: &[Plan]) -> Harness {
        let harness = Harness::default();
        harness.plans.lock().unwrap().extend(plans);
        harness
    }

    /// Lets every hung driver call return.
    fn release(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }

    fn hang(&self) {
        let mut open = self.gate.0.lock().unwrap();
        while !*open {
            open = self.gate.1.wait(open).unwrap();
        }
    }
}

/// A device that answers at once with no candidates, a millisecond a piece: for covering a
/// nonce space fast.
struct Quick {
    info: DeviceInfo,
    queued: VecDeque<NonceRange>,
}

impl Quick {
    fn new(name: &str) -> Quick {
        let info = DeviceInfo { name: name.into(), backend: "test".into(), ..Default::default() };
        Quick { info, queued: VecDeque::new() }
    }
}

impl Sweeper for Quick {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn preferred_chunk(&self) -> u64 {
        3 << 12
    }
    fn depth(&self) -> usize {
        2
    }
    fn queue(&mut self, _: &Work, range: NonceRange) -> Result<(), SweepError> {
        self.queued.push_back(range);
        Ok(())
    }
    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        std::thread::sleep(Duration::from_millis(1));
        Ok(self.queued.pop_front().map(|r| (r, Vec::new())))
    }
}

/// Wraps a device and fails as its plan says; it is opened again with the harness's next plan.
struct Faulty {
    inner: Box<dyn Sweeper>,
    make: fn(&str) -> Box<dyn Sweeper>,
    plan: Plan,
    harness: Harness,
    queued: usize,
    answers: usize,
    /// The header of each queued piece, for the answered log.
    headers: VecDeque<[u8; 32]>,
}

impl Faulty {
    fn boxed(name: &str, make: fn(&str) -> Box<dyn Sweeper>, harness: &Harness) -> Box<dyn Sweeper> {
        let plan = harness.plans.lock().unwrap().pop_front().unwrap_or(Plan::Well);
        let inner = make(name);
        Box::new(Faulty {
            inner,
            make,
            plan,
            harness: harness.clone(),
            queued: 0,
            answers: 0,
            headers: VecDeque::new(),
        })
    }
}

impl Sweeper for Faulty {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
    fn preferred_chunk(&self) -> u64 {
        self.inner.preferred_chunk()
    }
    fn depth(&self) -> usize {
        self.inner.depth()
    }
    fn queue(&mut self, work: &Work, range: NonceRange) -> Result<(), SweepError> {
        if let Plan::FailAfter(n, fault) = self.plan {
            if self.queued == n {
                let error = SweepError::new(&self.info().name, "injected fault");
                return Err(SweepError { fault, ..error });
            }
        }
        self.queued += 1;
        self.headers.push_back(bitcoin::hashes::Hash::to_byte_array(work.header.merkle_root));
        self.inner.queue(work, range)
    }
    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        if matches!(self.plan, Plan::HangAfter(n) if self.answers == n) {
            self.harness.hang();
            return Err(SweepError::lost(&self.info().name, "the driver reset the device"));
        }
        let answer = self.inner.next_result()?;
        if let Some((range, _)) = &answer {
            self.answers += 1;
            let header = self.headers.pop_front().expect("a header per piece");
            self.harness.answered.lock().unwrap().push((self.info().name.clone(), header, *range));
        }
        Ok(answer)
    }
    fn reopener(&self) -> Option<Arc<dyn Reopen>> {
        Some(Arc::new(Again { name: self.info().name.clone(), make: self.make, harness: self.harness.clone() }))
    }
}

struct Again {
    name: String,
    make: fn(&str) -> Box<dyn Sweeper>,
    harness: Harness,
}

impl Reopen for Again {
    fn reopen(&self) -> Result<Box<dyn Sweeper>, SweepError> {
        let plan = self.harness.plans.lock().unwrap().front().copied();
        if let Some(Plan::WontOpen) = plan {
            self.harness.plans.lock().unwrap().pop_front();
            return Err(SweepError::new(&self.name, "injected: the driver refused a new device"));
        }
        Ok(Faulty::boxed(&self.name, self.make, &self.harness))
    }
}

/// Units of 2^16 nonces, 256 of them (a one-byte extranonce2), no version rolling and no
/// ntime rolling: a space the devices finish, so that its coverage can be checked whole.
const UNIT: u64 = 1 << 16;
const UNITS: u64 = 256;

fn finite_work() -> SourceWork {
    let job =
        Job::from_notify_hex("1", &"11".repeat(32), "", "", &[], "20000000", "1d00ffff", "00000000", true).unwrap();
    SourceWork {
        source: PoolId(0),
        generation: 1,
        job,
        extranonce1: Extranonce1(vec![7]),
        extranonce2_size: 1,
        target: Target::ZERO,
        version_mask: VersionMask::NONE,
        nonces: NonceRange::new(0, UNIT).unwrap(),
        time_roll: 0,
        received: Instant::now(),
    }
}

/// Every DeviceState event, as they come.
fn record_states(stats: &Stats) -> Arc<Mutex<Vec<(usize, DeviceState)>>> {
    let states = Arc::new(Mutex::new(Vec::new()));
    let mut events = stats.subscribe();
    let seen = states.clone();
    std::thread::spawn(move || {
        loop {
            match events.blocking_recv() {
                Ok(Event::DeviceState { device, state, .. }) => seen.lock().unwrap().push((device.0, state)),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => panic!("missed {n} events"),
                Err(_) => return,
            }
        }
    });
    states
}

/// Waits for `done` (10 ms steps), `ceiling` at most.
fn wait_for(ceiling: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + ceiling;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {ceiling:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The ranges answered for each unit (by its merkle root) tile its nonces exactly: no gap,
/// no overlap, every unit.
fn assert_covered_once(answered: &[Answered]) {
    let mut units: BTreeMap<[u8; 32], Vec<NonceRange>> = BTreeMap::new();
    for (_, unit, range) in answered {
        units.entry(*unit).or_default().push(*range);
    }
    assert_eq!(units.len() as u64, UNITS, "units swept");
    for (unit, mut ranges) in units {
        ranges.sort_by_key(|r| r.start);
        let mut next = 0u64;
        for r in &ranges {
            assert_eq!(u64::from(r.start), next, "unit {unit:02x?}: gap or overlap at {next} in {ranges:?}");
            next += r.count;
        }
        assert_eq!(next, UNIT, "unit {unit:02x?} ends at {next}");
    }
}

/// A device loses its device, comes back, hangs inside the driver, comes back again once the
/// driver lets go, is refused once on reopening and then comes back; beside it a device that
/// works. The whole space is swept exactly once, and hashes are counted once.
#[test]
fn a_failing_device_hands_its_ranges_to_the_others_and_comes_back() {
    let (work_tx, work_rx) = watch::channel(None);
    let (shares, _shares) = mpsc::channel(16);
    let stats = Arc::new(Stats::new());
    let states = record_states(&stats);
    let scheduler = Scheduler::new(work_rx, shares, stats.clone());
    work_tx.send(Some(Arc::new(finite_work()))).unwrap();
    // The steady device takes the first plan; the flaky one the rest, one an opening.
    let plans = [Plan::Well, Plan::FailAfter(20, Fault::Lost), Plan::HangAfter(30), Plan::WontOpen, Plan::Well];
    let harness = Harness::with_plans(&plans);
    let quick = |name: &str| Box::new(Quick::new(name)) as Box<dyn Sweeper>;
    scheduler.spawn(Faulty::boxed("steady", quick, &harness), Arc::default());
    scheduler.spawn(Faulty::boxed("flaky", quick, &harness), Arc::default());
    let flaky = |s: &Stats| s.devices()[1].status().state;

    wait_for(Duration::from_secs(60), "the flaky device sick twice", || {
        states.lock().unwrap().iter().filter(|(d, s)| *d == 1 && *s == DeviceState::Sick).count() >= 2
    });
    // The second time it hung: a driver reset ends the call, and the device is opened again
    // (refused once, then well).
    harness.release();
    wait_for(Duration::from_secs(60), "every nonce hashed", || stats.hashes() >= UNIT * UNITS);
    wait_for(Duration::from_secs(60), "the flaky device alive again", || flaky(&stats) == DeviceState::Alive);
    scheduler.stop_flag().store(true, Relaxed);
    scheduler.join();

    assert_eq!(stats.hashes(), UNIT * UNITS, "hashes counted once");
    let flaky_states: Vec<DeviceState> =
        states.lock().unwrap().iter().filter(|(d, _)| *d == 1).map(|(_, s)| *s).collect();
    use DeviceState::*;
    assert_eq!(
        flaky_states,
        [Alive, Sick, Starting, Alive, Sick, Starting, Sick, Starting, Alive],
        "lost, reopened; hung, reopened after the reset: refused once, then well"
    );
    let status = stats.devices()[1].status();
    assert_eq!(status.message.as_deref(), Some("injected: the driver refused a new device"), "the last fault is kept");
    // The ranges the devices answered tile the space, and each device is credited with what
    // it answered: none of the pieces the flaky device was given and did not answer.
    let answered = harness.answered.lock().unwrap().clone();
    assert_covered_once(&answered);
    for (i, name) in ["steady", "flaky"].into_iter().enumerate() {
        let swept: u64 = answered.iter().filter(|(n, _, _)| n == name).map(|(_, _, r)| r.count).sum();
        assert_eq!(swept, stats.devices()[i].hashes(), "{name}");
        assert!(swept > 0, "{name} swept nothing");
    }
}

fn pool_config(addr: std::net::SocketAddr, name: &str) -> PoolConfig {
    PoolConfig {
        url: format!("stratum+tcp://{addr}"),
        user: name.into(),
        pass: "x".into(),
        journal: std::env::temp_dir().join(format!("wgminer-test-life-{name}-{}.jsonl", std::process::id())),
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
        journal_max: wgminer::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
    }
}

fn cpu(_: &str) -> Box<dyn Sweeper> {
    Box::new(CpuSweeper::new())
}

/// Through the whole miner, on the embedded pool: one CPU device works, one loses its device
/// and comes back, one leaves for good. Shares go on being accepted from both that live; the
/// API, /api/v1/devices and /metrics say what became of each.
#[test]
fn the_api_and_metrics_show_each_device_s_life_while_shares_go_on() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let pool_options = PoolOptions { difficulty: Difficulty::new(0.0005).unwrap(), ..Default::default() };
        let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
        let harness =
            Harness::with_plans(&[Plan::Well, Plan::FailAfter(30, Fault::Lost), Plan::FailAfter(10, Fault::Gone)]);
        let devices = vec![
            Faulty::boxed("steady", cpu, &harness),
            Faulty::boxed("flaky", cpu, &harness),
            Faulty::boxed("tab", cpu, &harness),
        ];
        let http = std::net::SocketAddr::from(([127, 0, 0, 1], common::node::free_port()));
        let api = common::node::free_port();
        // Done when the flaky device is back and has had shares accepted since.
        let done = Arc::new(|s: &Stats| {
            let d = s.devices();
            d.len() == 3
                && d[1].status().state == DeviceState::Alive
                && d[1].status().message.is_some()
                && d[1].counts().accepted >= 2
                && d[2].status().state == DeviceState::Gone
        });
        let options = MineOptions {
            api: Some(ListenOptions::new(Listener::Api, &format!("127.0.0.1:{api}"), vec![]).unwrap()),
            http: Some(HttpOptions {
                listen: ListenOptions::new(Listener::Http, &http.to_string(), vec![]).unwrap(),
                pool_side: vec![],
                browser_devices: None,
            }),
            ..MineOptions::until(done, Duration::from_secs(120))
        };
        let (summary, _) = mine(Source::Pools(vec![pool_config(pool.addr, "life")]), devices, &options).await;
        assert!(summary.accepted >= 3, "{summary:?}");
        assert_eq!((summary.rejected, summary.hw_errors, summary.journaled), (0, 0, 0), "{summary:?}");

        // cgminer's DEVS: Status as api.c's status2str names LIFE_WELL and LIFE_DEAD; the
        // device that left is not enabled.
        let devs = common::http::get(http, "/api/v1/devices").await.json();
        let state = |i: usize| devs[i]["state"].as_str().unwrap().to_string();
        assert_eq!((state(0), state(1), state(2)), ("alive".into(), "alive".into(), "gone".into()), "{devs}");
        assert_eq!(devs[1]["last_fault"], "injected fault", "{devs}");
        let metrics = common::http::get(http, "/metrics").await.body;
        let metric = |name: &str, labels: &[&str]| common::http::metric_sum(&metrics, name, labels);
        assert_eq!(metric("wgminer_devices_alive", &[]), 2.0, "{metrics}");
        assert_eq!(metric("wgminer_device_state", &["device=\"2\"", "state=\"gone\""]), 1.0);
        assert_eq!(metric("wgminer_device_state", &["device=\"1\"", "state=\"alive\""]), 1.0);
        assert_eq!(metric("wgminer_device_state", &["device=\"1\"", "state=\"sick\""]), 0.0);
        let cgminer = cgminer_devs(api).await;
        let field = |i: usize, f: &str| cgminer["DEVS"][i][f].clone();
        assert_eq!((field(1, "Status"), field(1, "Enabled")), ("Alive".into(), "Y".into()), "{cgminer}");
        assert_eq!((field(2, "Status"), field(2, "Enabled")), ("Dead".into(), "N".into()), "{cgminer}");
        assert_eq!(field(1, "Last Fault"), "injected fault");
    });
}

async fn cgminer_devs(port: u16) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(br#"{"command":"devs"}"#).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(text.trim_end_matches('\0')).unwrap()
}

/// A driver call that never returns holds neither the other device, nor the shares it
/// found, nor shutdown: the hung device is shown sick, its work goes to the other, and
/// stopping the miner returns while the call is still stuck.
#[test]
fn a_hung_driver_call_holds_neither_mining_nor_shutdown() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let harness = Harness::with_plans(&[Plan::Well, Plan::HangAfter(5)]);
    runtime.block_on(async {
        let pool_options = PoolOptions { difficulty: Difficulty::new(0.0005).unwrap(), ..Default::default() };
        let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
        let devices = vec![Faulty::boxed("steady", cpu, &harness), Faulty::boxed("hung", cpu, &harness)];
        let miner = wgminer::miner::Miner::start(Source::Pools(vec![pool_config(pool.addr, "hung")]), devices);
        let ceiling = Duration::from_secs(60);
        assert!(miner.until(ceiling, |s| s.devices()[1].status().state == DeviceState::Sick).await, "never sick");
        let accepted = miner.stats.counts().accepted;
        assert!(miner.until(ceiling, |s| s.counts().accepted >= accepted + 3).await, "no shares after the hang");
        let stats = miner.stats.clone();
        let started = Instant::now();
        let stopped = tokio::time::timeout(Duration::from_secs(30), miner.stop()).await.expect("stop held by the hang");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(stopped.devices.len(), 1, "the well device is handed back, the hung one is not");
        let counts = stats.counts();
        assert_eq!(counts.found, counts.ended(), "{counts:?}");
        assert_eq!(
            stats.devices()[1].status().message.as_deref().map(|m| m.starts_with("no answer from the driver")),
            Some(true)
        );
    });
    harness.release();
}

/// A GPU whose wgpu device is destroyed after a few pieces, as a driver reset destroys it.
struct Destroyed {
    gpu: wgminer::gpu::GpuSweeper,
    pieces: usize,
}

impl Sweeper for Destroyed {
    fn info(&self) -> &DeviceInfo {
        self.gpu.info()
    }
    fn kernel_shape(&self) -> Option<(wgminer::device::Shape, wgminer::device::Origin)> {
        self.gpu.kernel_shape()
    }
    fn preferred_chunk(&self) -> u64 {
        self.gpu.preferred_chunk()
    }
    fn granule(&self) -> u64 {
        self.gpu.granule()
    }
    fn versions_per_nonce(&self) -> u32 {
        self.gpu.versions_per_nonce()
    }
    fn depth(&self) -> usize {
        self.gpu.depth()
    }
    fn queue(&mut self, work: &Work, range: NonceRange) -> Result<(), SweepError> {
        self.pieces += 1;
        if self.pieces == 6 {
            self.gpu.destroy_device();
        }
        self.gpu.queue(work, range)
    }
    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        self.gpu.next_result()
    }
    fn reopener(&self) -> Option<Arc<dyn Reopen>> {
        self.gpu.reopener()
    }
}

/// A real wgpu device destroyed under the miner on lavapipe (`Device::destroy`, what a driver
/// reset does): wgpu reports it through the device-lost callback and failed submits and
/// waits, never a panic; the device is shown sick, a new wgpu device is opened on the same
/// adapter, and it mines shares the pool accepts.
#[test]
fn a_destroyed_wgpu_device_is_opened_again_on_its_adapter() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let pool_options = PoolOptions { difficulty: Difficulty::new(0.002).unwrap(), ..Default::default() };
        let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
        let gpu = common::open_gpu();
        let device: Box<dyn Sweeper> = Box::new(Destroyed { gpu, pieces: 0 });
        let miner =
            wgminer::miner::Miner::start(Source::Pools(vec![pool_config(pool.addr, "destroyed")]), vec![device]);
        let events = record_states(&miner.stats);
        let ceiling = Duration::from_secs(120);
        let sick_then_alive = |events: &[(usize, DeviceState)]| {
            events.iter().skip_while(|(_, s)| *s != DeviceState::Sick).any(|(_, s)| *s == DeviceState::Alive)
        };
        assert!(
            miner.until(ceiling, |_| sick_then_alive(&events.lock().unwrap())).await,
            "{:?}",
            events.lock().unwrap()
        );
        let fault = miner.stats.devices()[0].status().message.unwrap_or_default();
        // wgpu calls the device-lost callback with DeviceLostReason::Destroyed.
        assert_eq!(fault, "device lost (Destroyed)");
        let accepted = miner.stats.devices()[0].counts().accepted;
        assert!(
            miner.until(ceiling, |s| s.devices()[0].counts().accepted >= accepted + 2).await,
            "no share after reopening"
        );
        let stats = miner.stats.clone();
        let stopped = miner.stop().await;
        assert_eq!(stopped.devices.len(), 1, "the new device is handed back");
        assert_eq!(stats.hw_errors(), 0);
    });
}
