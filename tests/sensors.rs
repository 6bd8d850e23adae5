//! Power and temperature: the sysfs readers on fake trees shaped as the kernel documents them
//! (`tests/data/sysfs/`, see its README), NVML's reading behind a fake card, and the
//! temperature guard on a miner with a fake sensor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use wgminer::cpu::CpuSweeper;
use wgminer::device::{DeviceInfo, PciId, Reading, Sweeper};
use wgminer::miner::{Miner, Sensing, Source};
use wgminer::pool::{EmbeddedPool, PoolOptions};
use wgminer::sensor::nvml::{NvmlDevice, NvmlSensor};
use wgminer::sensor::{Sensor, TempLimits, hwmon, powercap};
use wgminer::source::stratum::PoolConfig;

fn tree(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sysfs").join(name)
}

/// A copy of a fixture tree whose counters a test may move.
fn copy(name: &str) -> PathBuf {
    let to = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sysfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    copy_dir(&tree(name), &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn rx_6800_xt() -> PciId {
    PciId::new(0x1002, 0x73bf)
}

#[test]
fn amdgpu_gives_power_temperature_clock_fan_and_activity() {
    let mut card = hwmon::find(&rx_6800_xt(), &tree("amdgpu")).expect("card0 matches 1002:73bf");
    assert_eq!(card.name(), "hwmon amdgpu (card0)");
    let r = card.read_at(0.0);
    assert_eq!(r.power_w, Some(182.0), "power1_average is in µW");
    assert_eq!(r.temp_c, Some(65.0), "temp1_input (edge) is in m°C");
    assert_eq!(r.core_mhz, Some(2450.0), "freq1_input is sclk in Hz");
    assert_eq!(r.fan_percent.map(|p| (p * 10.0).round() / 10.0), Some(50.2), "pwm1 is 0–255");
    assert_eq!(r.power_limit_w, Some(255.0));
    assert_eq!(r.activity_percent, Some(97.0));
    assert_eq!(r.energy_j, None);
    // Newer kernels: power1_input only.
    let mut newer = hwmon::find(&PciId::new(0x1002, 0x744c), &tree("amdgpu-new")).unwrap();
    assert_eq!((newer.read_at(0.0).power_w, newer.read_at(1.0).temp_c), (Some(301.0), Some(71.0)));
    // Another card's ids: none.
    assert!(hwmon::find(&PciId::new(0x1002, 0x1234), &tree("amdgpu")).is_none());
}

#[test]
fn i915_and_xe_give_power_from_energy_differences() {
    let root = copy("i915");
    let energy = root.join("class/drm/card1/device/hwmon/hwmon5/energy1_input");
    let mut card = hwmon::find(&PciId::new(0x8086, 0x56a0), &root).unwrap();
    let first = card.read_at(10.0);
    assert_eq!((first.power_w, first.energy_j), (None, Some(1000.0)), "one reading is no power");
    assert_eq!((first.core_mhz, first.power_limit_w), (Some(2100.0), Some(190.0)));
    std::fs::write(&energy, "1150000000\n").unwrap(); // 150 J in 2 s
    assert_eq!(card.read_at(12.0).power_w, Some(75.0));

    let root = copy("xe");
    let mut card = hwmon::find(&PciId::new(0x8086, 0xe20b), &root).unwrap();
    let first = card.read_at(0.0);
    assert_eq!(first.core_mhz, Some(2850.0), "xe's tile0/gt0/freq0/cur_freq, MHz");
    assert_eq!(first.temp_c, Some(58.0), "xe's package temperature, temp2_input");
    std::fs::write(root.join("class/drm/card0/device/hwmon/hwmon4/energy1_input"), "65000000\n").unwrap();
    assert_eq!(card.read_at(0.5).power_w, Some(120.0));
}

#[test]
fn rapl_wraps_and_skips_subzones() {
    let root = copy("powercap");
    let mut rapl = powercap::find(&root).expect("intel-rapl:0");
    assert_eq!(rapl.name(), "RAPL package energy (1 zone)", "intel-rapl:0:0 is part of the package");
    assert_eq!(rapl.read_at(0.0).power_w, None);
    // 262143.000000 J, then the counter wraps at 262143.328850 J and reaches 29.671150 J: 30 J.
    std::fs::write(root.join("class/powercap/intel-rapl:0/energy_uj"), "29671150\n").unwrap();
    let power = rapl.read_at(1.0).power_w.unwrap();
    assert!((power - 30.0).abs() < 1e-6, "{power} W: a wrapped counter gives a right power, not a negative one");
}

#[test]
fn garbage_missing_and_lookalike_cards_give_no_readings() {
    let mut card = hwmon::find(&rx_6800_xt(), &tree("garbage")).unwrap();
    assert_eq!(card.read_at(0.0), Reading::default(), "text, empty and infinite files are not numbers");
    assert!(powercap::find(&tree("garbage")).is_none(), "a zone without energy_uj");
    assert!(hwmon::find(&rx_6800_xt(), &tree("twins")).is_none(), "two alike cards, no slot: no guess");
    // With the adapter's slot (Vulkan's VK_EXT_pci_bus_info), the right one of the two.
    let second = PciId { bus: wgminer::device::pci_slot("0000:04:00.0"), ..rx_6800_xt() };
    assert_eq!(hwmon::find(&second, &tree("twins")).map(|c| c.name()).as_deref(), Some("hwmon amdgpu (card1)"));
    let absent = PciId { bus: wgminer::device::pci_slot("0000:09:00.0"), ..rx_6800_xt() };
    assert!(hwmon::find(&absent, &tree("twins")).is_none());
    assert!(hwmon::find(&rx_6800_xt(), Path::new("/nonexistent")).is_none());
    assert!(powercap::find(Path::new("/nonexistent")).is_none());
}

/// NVML's units (mW, mJ), its throttle reasons, and a card that answers some calls only.
struct FakeCard {
    energy_mj: Arc<AtomicU64>,
    power: bool,
}

impl NvmlDevice for FakeCard {
    fn power_mw(&self) -> Option<u32> {
        self.power.then_some(215_500)
    }
    fn energy_mj(&self) -> Option<u64> {
        Some(self.energy_mj.load(Relaxed))
    }
    fn temp_c(&self) -> Option<u32> {
        Some(71)
    }
    fn graphics_mhz(&self) -> Option<u32> {
        Some(2520)
    }
    fn fan_percent(&self) -> Option<u32> {
        None
    }
    fn power_limit_mw(&self) -> Option<u32> {
        Some(450_000)
    }
    fn utilization_percent(&self) -> Option<u32> {
        Some(100)
    }
    fn throttle(&self) -> Option<Vec<String>> {
        Some(vec!["SW_POWER_CAP".into()])
    }
}

#[test]
fn nvml_readings_in_watts_joules_and_reasons() {
    let energy = Arc::new(AtomicU64::new(5_000_000));
    let mut card = NvmlSensor::new(FakeCard { energy_mj: energy.clone(), power: true });
    let r = card.read_at(0.0);
    assert_eq!((r.power_w, r.energy_j, r.temp_c), (Some(215.5), Some(5000.0), Some(71.0)));
    assert_eq!((r.core_mhz, r.fan_percent, r.power_limit_w), (Some(2520.0), None, Some(450.0)));
    assert_eq!((r.activity_percent, r.throttle.as_deref()), (Some(100.0), Some("SW_POWER_CAP")));
    // Without a power reading (older cards), the energy counter gives it.
    let mut older = NvmlSensor::new(FakeCard { energy_mj: energy.clone(), power: false });
    older.read_at(0.0);
    energy.store(5_400_000, Relaxed);
    assert_eq!(older.read_at(2.0).power_w, Some(200.0));
}

/// A sensor whose temperature the test sets.
struct Thermometer(Arc<AtomicU64>);

impl Sensor for Thermometer {
    fn name(&self) -> String {
        "test thermometer".into()
    }
    fn read(&mut self) -> Reading {
        Reading { temp_c: Some(self.0.load(Relaxed) as f64), power_w: Some(50.0), ..Default::default() }
    }
}

/// Over the cutoff the device stops hashing; cooled to the target it goes on; every share
/// found in between still ends (none lost), and the readings reach the counters.
#[test]
fn the_temperature_guard_pauses_and_resumes_without_losing_a_share() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let pool_options =
            PoolOptions { difficulty: wgminer::work::Difficulty::new(0.0005).unwrap(), ..Default::default() };
        let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await.unwrap();
        let config = PoolConfig {
            url: format!("stratum+tcp://{}", pool.addr),
            user: "hot".into(),
            pass: "x".into(),
            journal: std::env::temp_dir().join(format!("wgminer-test-guard-{}.jsonl", std::process::id())),
            trust: Default::default(),
            suggest_difficulty: None,
            channel: Default::default(),
        };
        let temp = Arc::new(AtomicU64::new(60));
        let sensing = Sensing {
            sensors: vec![Some(Box::new(Thermometer(temp.clone())) as Box<dyn Sensor>)],
            limits: Some(TempLimits { cutoff: 90.0, target: 80.0 }),
            every: Duration::from_millis(100),
            budgets: Vec::new(),
        };
        let devices: Vec<Box<dyn Sweeper>> = vec![Box::new(CpuSweeper::new())];
        let miner = Miner::start_with(Source::Pools(vec![config]), devices, sensing);
        let ceiling = Duration::from_secs(60);
        let device = |s: &wgminer::stats::Stats| s.devices()[0].clone();
        assert!(miner.until(ceiling, |s| s.counts().accepted >= 1).await, "no share before the heat");
        assert_eq!(device(&miner.stats).sensor().and_then(|r| r.power_w), Some(50.0));

        temp.store(95, Relaxed);
        assert!(miner.until(ceiling, |s| device(s).paused()).await, "not paused at 95 °C");
        // What was queued finishes; then nothing more is hashed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = miner.stats.hashes();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(miner.stats.hashes(), held, "a paused device hashed");
        temp.store(85, Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(device(&miner.stats).paused(), "between target and cutoff it stays paused");

        temp.store(75, Relaxed);
        let accepted = miner.stats.counts().accepted;
        assert!(miner.until(ceiling, |s| !device(s).paused()).await, "not resumed at 75 °C");
        assert!(miner.until(ceiling, |s| s.counts().accepted > accepted).await, "no share after resuming");
        let stats = miner.stats.clone();
        miner.stop().await;
        let counts = stats.counts();
        assert_eq!(counts.found, counts.ended(), "{counts:?}");
        assert_eq!((counts.journaled, counts.unjournaled, counts.rejected), (0, 0, 0), "{counts:?}");
    });
}

#[test]
fn pci_slots_read_alike_from_nvml_sysfs_and_vulkan() {
    use wgminer::device::pci_slot;
    assert_eq!(pci_slot("00000000:01:00.0").as_deref(), Some("0000:01:00.0"), "NVML's eight-digit domain");
    assert_eq!(pci_slot("0000:C1:00.1").as_deref(), Some("0000:c1:00.1"));
    assert_eq!(pci_slot(""), None, "no VK_EXT_pci_bus_info");
    assert_eq!(pci_slot("01:00.0"), None);
    assert_eq!(pci_slot("zz:01:00.0"), None);
}

#[test]
fn a_cpu_device_looks_for_rapl_and_a_gpu_for_its_card() {
    let cpu = CpuSweeper::new().info().clone();
    let mut gpu = DeviceInfo { pci: Some(rx_6800_xt()), device_type: "DiscreteGpu".into(), ..cpu.clone() };
    assert_eq!(
        wgminer::sensor::for_device(&cpu, &tree("powercap")).map(|s| s.name()).as_deref(),
        Some("RAPL package energy (1 zone)")
    );
    assert_eq!(
        wgminer::sensor::for_device(&gpu, &tree("amdgpu")).map(|s| s.name()).as_deref(),
        Some("hwmon amdgpu (card0)")
    );
    gpu.pci = None;
    assert!(wgminer::sensor::for_device(&gpu, &tree("amdgpu")).is_none(), "no PCI ids, no guess by name");
}
