//! `wgminer bench`: hash rate of each device, and of the sha2 one-thread CPU reference measured
//! in the same run, with the ratio between them.

use serde::{Deserialize, Serialize};

use super::{DeviceOptions, measure_rate, open_device};
use crate::cpu::CpuSweeper;
use crate::device::{DeviceInfo, DeviceSelector, Sweeper};

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
}

/// The kernel settings a GPU figure was measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelSettings {
    pub workgroup_size: u32,
    pub nonces_per_invocation: u32,
    pub dispatch_ms: Option<u64>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiningRun {
    #[serde(flatten)]
    pub summary: super::mine::Summary,
    /// Hashes swept while mining over the device's `bench` rate in this run (the mean of its
    /// rates measured before and after mining).
    pub efficiency: f64,
    pub bench_after_mhs: f64,
    pub job_interval_s: f64,
}

/// Nonces per sweep call while benchmarking: many dispatches, so the pipeline stays full.
const GPU_CHUNK: u64 = 1 << 28;
const CPU_CHUNK: u64 = 1 << 18;

fn mhs(device: &mut dyn Sweeper, seconds: f64, chunk: u64) -> anyhow::Result<f64> {
    let (hashes, secs) = measure_rate(device, seconds, chunk)?;
    Ok(hashes as f64 / secs / 1e6)
}

fn host_cpu() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// `mining`: also mine through the embedded pool for `seconds` on the first device, with a new
/// chain tip (clean jobs) every `job_interval`, and compare its rate with the device's bench.
/// Measures each device and the CPU reference `runs` times, `seconds` each, interleaved so
/// that a shared machine's drift touches all of them alike.
pub fn run(
    selectors: &[DeviceSelector],
    seconds: f64,
    runs: usize,
    options: &DeviceOptions,
    json: bool,
    mining: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let mut opened: Vec<(Box<dyn Sweeper>, u64)> = Vec::new();
    for selector in selectors {
        let chunk = if *selector == DeviceSelector::Cpu { CPU_CHUNK } else { GPU_CHUNK };
        opened.push((open_device(selector, options)?, chunk));
    }
    let (cpu_reference, devices) = measure_all(&mut opened, seconds, runs)?;
    if !json {
        print_rates(&cpu_reference, &devices);
    }
    let mut opened: Vec<Box<dyn Sweeper>> = opened.into_iter().map(|(d, _)| d).collect();
    let mining = match mining {
        Some(job_interval) if !opened.is_empty() => {
            let run = mine_once(opened.swap_remove(0), devices[0].mhs.median, seconds, job_interval)?;
            if !json {
                print_mining(&run, devices[0].mhs.median);
            }
            Some(run)
        }
        _ => None,
    };
    if json {
        let report = Report {
            wgminer: env!("CARGO_PKG_VERSION").into(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            host_cpu: host_cpu(),
            runs: runs.max(1),
            seconds_per_run: seconds,
            kernel: KernelSettings {
                workgroup_size: options.gpu.workgroup_size,
                nonces_per_invocation: options.gpu.nonces_per_invocation,
                dispatch_ms: options.dispatch.map(|d| d.as_millis() as u64),
            },
            devices,
            cpu_reference,
            mining,
        };
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// `runs` interleaved measurements of the CPU reference and of each device.
fn measure_all(opened: &mut [(Box<dyn Sweeper>, u64)], seconds: f64, runs: usize) -> anyhow::Result<(Rate, Vec<Rate>)> {
    let mut cpu = CpuSweeper::new();
    let mut cpu_runs = Vec::new();
    let mut device_runs = vec![Vec::new(); opened.len()];
    for _ in 0..runs.max(1) {
        cpu_runs.push(mhs(&mut cpu, seconds, CPU_CHUNK)?);
        for ((device, chunk), runs) in opened.iter_mut().zip(&mut device_runs) {
            runs.push(mhs(device.as_mut(), seconds, *chunk)?);
        }
    }
    let cpu_mhs = Measured::new(cpu_runs);
    let cpu_reference = Rate { device: cpu.info().clone(), ratio_to_cpu: 1.0, mhs: cpu_mhs.clone() };
    let devices = opened
        .iter()
        .zip(device_runs)
        .map(|((device, _), runs)| {
            let mhs = Measured::new(runs);
            Rate { device: device.info().clone(), ratio_to_cpu: mhs.median / cpu_mhs.median, mhs }
        })
        .collect();
    Ok((cpu_reference, devices))
}

fn print_rates(cpu_reference: &Rate, devices: &[Rate]) {
    let line = |r: &Rate| {
        format!(
            "{:<56} {:>10.2} MH/s  (median of {}, spread {:.1}%)",
            r.device.to_string(),
            r.mhs.median,
            r.mhs.runs.len(),
            r.mhs.spread_percent()
        )
    };
    println!("{}", line(cpu_reference));
    for d in devices {
        println!("{}  {:.2}x the CPU reference", line(d), d.ratio_to_cpu);
    }
}

/// Mines through the embedded pool on `device` for `seconds`, then measures the device again:
/// the mean of the rates before and after brackets the drift of a shared machine.
fn mine_once(
    device: Box<dyn Sweeper>,
    before: f64,
    seconds: f64,
    job_interval: std::time::Duration,
) -> anyhow::Result<MiningRun> {
    let pool = crate::pool::PoolOptions { job_interval, ..Default::default() };
    let run = super::mine::MineOptions {
        duration: Some(std::time::Duration::from_secs_f64(seconds)),
        status_every: std::time::Duration::from_secs(3600),
        api: None,
    };
    let journal = std::env::temp_dir().join("wgminer-bench-journal.jsonl");
    let (summary, mut back) = super::runtime()?.block_on(super::demo::demo(vec![device], &run, pool, journal))?;
    let after = match back.first_mut() {
        Some(device) => mhs(device.as_mut(), seconds, GPU_CHUNK)?,
        None => before,
    };
    let efficiency = summary.mhs / ((before + after) / 2.0);
    Ok(MiningRun { summary, efficiency, bench_after_mhs: after, job_interval_s: job_interval.as_secs_f64() })
}

fn print_mining(run: &MiningRun, before: f64) {
    let s = &run.summary;
    println!(
        "mining through the embedded pool: {:.2} MH/s, {:.1}% of bench ({:.2} before, {:.2} after); new job to device p50 {} ms, p99 {} ms",
        s.mhs,
        run.efficiency * 100.0,
        before,
        run.bench_after_mhs,
        s.job_switch_p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
        s.job_switch_p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
    );
}

#[cfg(test)]
mod tests {
    use super::Measured;

    #[test]
    fn median_and_spread() {
        let m = Measured::new(vec![3.0, 1.0, 2.0]);
        assert_eq!((m.median, m.min, m.max), (2.0, 1.0, 3.0));
        assert_eq!(m.spread_percent(), 100.0);
        assert_eq!(Measured::new(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Measured::new(vec![]).spread_percent(), 0.0);
    }
}
