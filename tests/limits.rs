//! A laptop's limits: `--power-limit` holds a device's power under the limit through its
//! sensor, settling without oscillating; a device whose power is not reported refuses it;
//! bad values of `--duty` and `--power-limit` get a clear error. (`--duty`'s share of the
//! rate is a benchmark: `wgminer bench --mining --duty 50`, in BENCHMARKS.md.)

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wgminer::cpu::CpuSweeper;
use wgminer::device::{DeviceInfo, Reading, SweepError, Sweeper};
use wgminer::miner::{Budget, Miner, Sensing, Source, check_power_limits};
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::sensor::Sensor;
use wgminer::source::stratum::PoolConfig;
use wgminer::work::{Candidate, Difficulty, NonceRange, Work};

/// A device whose pieces take 5 ms each (asleep, so that a busy machine does not change its
/// pace) and that counts the nanoseconds it spends on them: the work it is given.
struct Metered {
    info: DeviceInfo,
    queued: Vec<NonceRange>,
    busy_ns: Arc<AtomicU64>,
}

impl Sweeper for Metered {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn preferred_chunk(&self) -> u64 {
        1 << 16
    }
    fn queue(&mut self, _: &Work, range: NonceRange) -> Result<(), SweepError> {
        self.queued.push(range);
        Ok(())
    }
    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        if self.queued.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        self.busy_ns.fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
        Ok(Some((self.queued.remove(0), Vec::new())))
    }
}

/// A wattmeter on that device: 4 W at rest and 36 W more at full work, in proportion to the
/// share of the time since its last reading that the device was sweeping.
struct Wattmeter {
    busy_ns: Arc<AtomicU64>,
    last: (Instant, u64),
    readings: Arc<Mutex<Vec<(Duration, f64)>>>,
    started: Instant,
}

impl Sensor for Wattmeter {
    fn name(&self) -> String {
        "test wattmeter".into()
    }
    fn read(&mut self) -> Reading {
        let (now, busy) = (Instant::now(), self.busy_ns.load(Relaxed));
        let share = (busy - self.last.1) as f64 / now.duration_since(self.last.0).as_nanos().max(1) as f64;
        self.last = (now, busy);
        let watts = 4.0 + 36.0 * share.min(1.0);
        self.readings.lock().unwrap().push((now - self.started, watts));
        Reading { power_w: Some(watts), ..Default::default() }
    }
}

/// The loop brings a device drawing about 40 W under a 20 W limit within 15 readings of its
/// first at full power, and keeps the later readings within 10 % under it.
#[test]
fn the_power_limit_settles_under_the_limit_and_stays_near_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let pool_options = PoolOptions { difficulty: Difficulty::new(0.0005).unwrap(), ..Default::default() };
        let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
        let config = PoolConfig {
            url: format!("stratum+tcp://{}", pool.addr),
            user: "limited".into(),
            pass: "x".into(),
            journal: std::env::temp_dir().join(format!("wgminer-test-limit-{}.jsonl", std::process::id())),
            trust: Default::default(),
            suggest_difficulty: None,
            channel: Default::default(),
        };
        let busy_ns = Arc::new(AtomicU64::new(0));
        let readings = Arc::new(Mutex::new(Vec::new()));
        let now = Instant::now();
        let meter = Wattmeter { busy_ns: busy_ns.clone(), last: (now, 0), readings: readings.clone(), started: now };
        let every = Duration::from_millis(500);
        let sensing = Sensing {
            sensors: vec![Some(Box::new(meter) as Box<dyn Sensor>)],
            limits: None,
            every,
            budgets: vec![Budget { duty_percent: 100, power_limit_w: Some(20.0) }],
        };
        let info = DeviceInfo { name: "metered".into(), backend: "test".into(), ..Default::default() };
        let device: Box<dyn Sweeper> = Box::new(Metered { info, queued: Vec::new(), busy_ns });
        let miner = Miner::start_with(Source::Pools(vec![config]), vec![device], sensing);
        let enough = |_: &wgminer::stats::Stats| readings.lock().unwrap().len() >= 45;
        assert!(miner.until(Duration::from_secs(120), enough).await);
        let duty = miner.stats.devices()[0].duty();
        miner.stop().await;

        // From the first reading at full work (the pool's first job comes after a moment).
        let all: Vec<f64> = readings.lock().unwrap().iter().map(|r| r.1).collect();
        let full = all.iter().position(|&w| w > 30.0).expect("at full duty the device draws about 40 W");
        let watts = &all[full..];
        let settled = watts.iter().position(|&w| w <= 20.0).expect("never under the limit");
        assert!(settled <= 15, "under the limit only at reading {settled}: {watts:?}");
        let after = &watts[settled..];
        let within = after.iter().filter(|&&w| (18.0..=20.0).contains(&w)).count();
        // A reading's share of busy time is measured over half a second of 10 ms pieces and
        // their rests, so one in ten may stray by a piece; the loop's own steps never do.
        assert!(within * 10 >= after.len() * 9, "{after:?}");
        assert!(after.iter().all(|&w| w <= 21.0), "{after:?}");
        assert!((0.3..0.6).contains(&duty), "duty {duty}: about (19 - 4) / 36 of full");
    });
}

/// A power limit needs a power reading: a CPU device with RAPL's energy counter takes it; the
/// same device on a machine without powercap, and a GPU without a sensor, refuse it.
#[test]
fn a_power_limit_needs_a_power_reading() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sysfs");
    let cpu: Vec<Box<dyn Sweeper>> = vec![Box::new(CpuSweeper::new())];
    let limit = [Budget { duty_percent: 100, power_limit_w: Some(15.0) }];
    assert!(check_power_limits(&cpu, &limit, &fixtures.join("powercap")).is_ok());
    let error = check_power_limits(&cpu, &limit, &fixtures.join("no-such-tree")).unwrap_err();
    assert_eq!(error.index, 0);
    assert!(error.to_string().starts_with("--power-limit: device 0 (CPU reference"), "{error}");
    assert!(check_power_limits(&cpu, &[Budget::default()], &fixtures.join("no-such-tree")).is_ok(), "no limit asked");
}

fn wgminer(args: &[&str]) -> std::process::Output {
    let cache = std::env::temp_dir().join(format!("wgminer-test-limits-cache-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_wgminer")).args(args).env("XDG_CACHE_HOME", cache).output().unwrap()
}

/// Bad values are refused before anything starts, each with what was expected.
#[test]
fn bad_duty_and_power_limit_values_get_a_clear_error() {
    let pool = ["mine", "-o", "stratum+tcp://127.0.0.1:1", "-u", "x", "-d", "cpu"];
    let cases: &[(&[&str], &str)] = &[
        (&["--duty", "0"], "0 is not in 1..=100"),
        (&["--duty", "101"], "101 is not in 1..=100"),
        (&["--duty=-5"], "invalid value '-5' for '--duty <PERCENT>'"),
        (&["--duty", "NaN"], "invalid value 'NaN' for '--duty <PERCENT>'"),
        (&["--duty", "50,60"], "--duty gives 2 values for 1 device(s)"),
        (&["--power-limit", "0"], "expected a power in watts above 0 and at most 10000, got `0`"),
        (&["--power-limit=-3"], "got `-3`"),
        (&["--power-limit", "NaN"], "expected a power in watts above 0 and at most 10000, got `NaN`"),
        (&["--power-limit", "inf"], "got `inf`"),
        (&["--power-limit", "10,20"], "--power-limit gives 2 values for 1 device(s)"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = pool.iter().chain(extra.iter()).copied().collect();
        let out = wgminer(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was taken");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
