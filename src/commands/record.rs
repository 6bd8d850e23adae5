//! The record `bench --json` writes, one JSON line a device, which `bench --browser` writes
//! for a browser's WebGPU too and `report` reads back: rates with their spread, the kernel's
//! shape and settings, power and efficiency, the sustained series, the mining run.

use serde::{Deserialize, Serialize};

use crate::device::{DeviceInfo, Reading};
use crate::gpu::ops::OpCount;
use crate::gpu::shape::{Origin, Shape};

/// Repeated measurements of one rate: the median is the figure, min and max the spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Every run, MH/s, in the order measured.
    pub runs: Vec<f64>,
}

impl Measured {
    pub fn new(runs: Vec<f64>) -> Self {
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Measured {
            median,
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
            runs,
        }
    }

    /// (max - min) / median, as a percentage.
    pub fn spread_percent(&self) -> f64 {
        if self.median > 0.0 { (self.max - self.min) / self.median * 100.0 } else { 0.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    #[serde(flatten)]
    pub device: DeviceInfo,
    pub mhs: Measured,
    /// The median rate over the CPU reference's median.
    pub ratio_to_cpu: f64,
    /// A GPU's kernel shape, and where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelShape>,
    /// A GPU kernel's 32-bit operations per header hashed at its K (rotates as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_hash: Option<f64>,
    /// Effective integer throughput of a GPU, Gops/s: the median rate × `ops_per_hash`, to
    /// hold against a spec sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gops: Option<f64>,
    /// With `--sustained`: the rate sampled over the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustained: Option<Sustained>,
    /// What the device's sensor is ("NVML", "hwmon amdgpu (card0)", …), or "not reported".
    #[serde(default = "not_reported")]
    pub sensor: String,
    /// Power and efficiency over the measured runs, where the sensor reports power.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<Efficiency>,
}

pub(super) fn not_reported() -> String {
    "not reported".into()
}

/// Power over a device's measured runs, and what it buys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// Mean watts over the runs: from the energy counter where there is one, else the
    /// sensor's power at the end of each run.
    pub watts: f64,
    /// Median MH/s over mean watts: megahashes per joule.
    pub mh_per_joule: f64,
    /// The mining world's way round: joules per gigahash.
    pub joules_per_gh: f64,
    pub peak_temp_c: Option<f64>,
    /// Mean core clock at the end of each run.
    pub core_mhz: Option<f64>,
}

impl Efficiency {
    /// From each run's (watts, reading at its end), at `median_mhs`.
    pub(super) fn new(runs: &[(f64, Reading)], median_mhs: f64) -> Option<Efficiency> {
        if runs.is_empty() {
            return None;
        }
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let watts = mean(runs.iter().map(|r| r.0).collect())?;
        let mh_per_joule = if watts > 0.0 { median_mhs / watts } else { 0.0 };
        Some(Efficiency {
            watts,
            mh_per_joule,
            joules_per_gh: if mh_per_joule > 0.0 { 1e3 / mh_per_joule } else { 0.0 },
            peak_temp_c: runs.iter().filter_map(|r| r.1.temp_c).reduce(f64::max),
            core_mhz: mean(runs.iter().filter_map(|r| r.1.core_mhz).collect()),
        })
    }
}

/// A device's rate over a long run, where a laptop's throttling shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sustained {
    /// (seconds since the start, MH/s) at the end of each sample.
    pub samples: Vec<(f64, f64)>,
    /// The windows compared: a minute, or a quarter of a run shorter than four.
    pub window_s: f64,
    pub first_window_mhs: f64,
    pub last_window_mhs: f64,
    /// Last window over first: below 1 when the device slowed down.
    pub last_to_first: f64,
    /// The sensor at the end of each sample, where the device has one: throttling shows as a
    /// rate drop beside a temperature rise or a power limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<SampleReading>,
}

/// A sustained run's sample of the sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleReading {
    /// Seconds since the start, as the rate's sample.
    pub t: f64,
    pub watts: Option<f64>,
    pub temp_c: Option<f64>,
    pub core_mhz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<String>,
}

impl Sustained {
    /// Summarises samples in the order taken.
    pub fn new(samples: Vec<(f64, f64)>) -> Self {
        let total = samples.last().map_or(0.0, |s| s.0);
        let window_s = (total / 4.0).min(60.0);
        let mean = |keep: &dyn Fn(f64) -> bool| {
            let picked: Vec<f64> = samples.iter().filter(|(t, _)| keep(*t)).map(|s| s.1).collect();
            if picked.is_empty() { 0.0 } else { picked.iter().sum::<f64>() / picked.len() as f64 }
        };
        // A sample belongs to the window it ends in.
        let first_window_mhs = mean(&|t| t <= window_s + 1e-9);
        let last_window_mhs = mean(&|t| t > total - window_s + 1e-9);
        let last_to_first = if first_window_mhs > 0.0 { last_window_mhs / first_window_mhs } else { 0.0 };
        Sustained { samples, window_s, first_window_mhs, last_window_mhs, last_to_first, readings: Vec::new() }
    }

    /// The slowest and the fastest sample, MH/s (0, 0 without samples).
    pub fn range(&self) -> (f64, f64) {
        let rates = || self.samples.iter().map(|s| s.1);
        (rates().reduce(f64::min).unwrap_or(0.0), rates().reduce(f64::max).unwrap_or(0.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KernelShape {
    #[serde(flatten)]
    pub shape: Shape,
    #[serde(flatten)]
    pub origin: Origin,
}

/// The kernel settings GPU figures were measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelSettings {
    /// Records written before shapes were per device held the one shape of all of them here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonces_per_invocation: Option<u32>,
    pub dispatch_ms: Option<u64>,
    /// The kernel's 32-bit integer operations per nonce of one version (K = 1), counted from
    /// its IR (`gpu::ops`); each device's `ops_per_hash` is at its own K.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_nonce: Option<OpCount>,
}

/// One `bench --json` record: what `wgminer report` merges across machines and vendors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub wgminer: String,
    /// When it was measured (RFC 3339, UTC).
    pub date: String,
    pub os: String,
    pub arch: String,
    /// The host CPU, where the OS says (the CPU reference runs on it).
    pub host_cpu: Option<String>,
    pub runs: usize,
    pub seconds_per_run: f64,
    pub kernel: KernelSettings,
    pub devices: Vec<Rate>,
    pub cpu_reference: Rate,
    /// With `--mining`: the first device mining through the embedded pool.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub mining: Option<MiningRun>,
    /// With `--mining --sv2`: the same over Stratum V2, right after.
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub mining_sv2: Option<MiningRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiningRun {
    #[serde(flatten)]
    pub summary: crate::run::Summary,
    /// Hashes swept while mining over the device's `bench` rate in this run (the mean of its
    /// rates measured before and after mining).
    pub efficiency: f64,
    pub bench_after_mhs: f64,
    pub job_interval_s: f64,
    /// The device's `--duty` while mining: at 50 the efficiency should read about 0.5.
    pub duty_percent: u32,
}

/// The model of this machine's CPU, where /proc/cpuinfo says.
pub fn host_cpu() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}
