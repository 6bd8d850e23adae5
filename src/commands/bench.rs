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

pub fn run(selectors: &[DeviceSelector], seconds: f64, options: &DeviceOptions, json: bool) -> anyhow::Result<()> {
    let cpu_reference = rate(&mut CpuSweeper::new(), seconds, CPU_CHUNK, None)?;
    if !json {
        println!("{:<56} {:>10.2} MH/s", cpu_reference.device.name, cpu_reference.mhs);
    }
    let mut devices = Vec::new();
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
    }
    if json {
        println!("{}", serde_json::to_string(&Report { devices, cpu_reference })?);
    }
    Ok(())
}
