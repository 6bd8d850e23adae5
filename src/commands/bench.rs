//! `wgminer bench`: hash rate of each device, and of the sha2 one-thread CPU reference measured
//! in the same run, with the ratio between them.

use serde::Serialize;

use super::{DeviceOptions, measure_rate, open_device};
use crate::cpu::CpuSweeper;
use crate::device::{DeviceInfo, DeviceSelector, Sweeper};

#[derive(Debug, Serialize)]
pub struct Rate {
    #[serde(flatten)]
    pub device: DeviceInfo,
    pub hashes: u64,
    pub seconds: f64,
    pub mhs: f64,
    /// This device's rate over the CPU reference's.
    pub ratio_to_cpu: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub devices: Vec<Rate>,
    pub cpu_reference: Rate,
    /// With `--mining`: the first device mining through the embedded pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mining: Option<MiningRun>,
}

#[derive(Debug, Serialize)]
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

fn rate(device: &mut dyn Sweeper, seconds: f64, chunk: u64, reference_mhs: Option<f64>) -> anyhow::Result<Rate> {
    let (hashes, secs) = measure_rate(device, seconds, chunk)?;
    let mhs = hashes as f64 / secs / 1e6;
    Ok(Rate {
        device: device.info().clone(),
        hashes,
        seconds: secs,
        mhs,
        ratio_to_cpu: reference_mhs.map_or(1.0, |r| mhs / r),
    })
}

/// `mining`: also mine through the embedded pool for `seconds` on the first device, with a new
/// chain tip (clean jobs) every `job_interval`, and compare its rate with the device's bench.
pub fn run(
    selectors: &[DeviceSelector],
    seconds: f64,
    options: &DeviceOptions,
    json: bool,
    mining: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let cpu_reference = rate(&mut CpuSweeper::new(), seconds, CPU_CHUNK, None)?;
    if !json {
        println!("{:<56} {:>10.2} MH/s", cpu_reference.device.name, cpu_reference.mhs);
    }
    let mut devices = Vec::new();
    let mut opened = Vec::new();
    for selector in selectors {
        let mut device = open_device(selector, options)?;
        let chunk = if *selector == DeviceSelector::Cpu { CPU_CHUNK } else { GPU_CHUNK };
        let measured = rate(device.as_mut(), seconds, chunk, Some(cpu_reference.mhs))?;
        if !json {
            println!(
                "{:<56} {:>10.2} MH/s  {:.2}x the CPU reference",
                measured.device.to_string(),
                measured.mhs,
                measured.ratio_to_cpu
            );
        }
        devices.push(measured);
        opened.push(device);
    }
    let mining = match mining {
        Some(job_interval) if !opened.is_empty() => {
            let device = opened.swap_remove(0);
            let pool = crate::pool::PoolOptions { job_interval, ..Default::default() };
            let run = super::mine::MineOptions {
                duration: Some(std::time::Duration::from_secs_f64(seconds)),
                status_every: std::time::Duration::from_secs(3600),
                api: None,
            };
            let journal = std::env::temp_dir().join("wgminer-bench-journal.jsonl");
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            let (summary, mut back) = runtime.block_on(super::mine::demo(vec![device], &run, pool, journal))?;
            // Measure the device again: the mean of the rates before and after brackets the drift
            // of a shared machine.
            let after = match back.first_mut() {
                Some(device) => rate(device.as_mut(), seconds, GPU_CHUNK, Some(cpu_reference.mhs))?.mhs,
                None => devices[0].mhs,
            };
            let bench_mhs = (devices[0].mhs + after) / 2.0;
            let efficiency = summary.mhs / bench_mhs;
            if !json {
                println!(
                    "mining through the embedded pool: {:.2} MH/s, {:.1}% of bench ({:.2} before, {:.2} after); new job to device p50 {} ms, p99 {} ms",
                    summary.mhs,
                    efficiency * 100.0,
                    devices[0].mhs,
                    after,
                    summary.job_switch_p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
                    summary.job_switch_p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
                );
            }
            Some(MiningRun { summary, efficiency, bench_after_mhs: after, job_interval_s: job_interval.as_secs_f64() })
        }
        _ => None,
    };
    if json {
        println!("{}", serde_json::to_string(&Report { devices, cpu_reference, mining })?);
    }
    Ok(())
}
