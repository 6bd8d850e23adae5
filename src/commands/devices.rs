//! `wgminer devices`: what wgpu finds, with the index `--device` takes and the kernel shape
//! each adapter will run (remembered from its first use, or measured on the next).

use serde::Serialize;
use std::process::ExitCode;

use crate::cpu::CpuSweeper;
use crate::device::{DeviceInfo, Sweeper};
use crate::gpu::adapter::{INSTALL_HINT, describe, list_adapters, supports_compute};
use crate::gpu::kernel::SOURCE;
use crate::gpu::shape::{self, Shape};

#[derive(Serialize)]
struct Row {
    index: String,
    #[serde(flatten)]
    info: DeviceInfo,
    compute: bool,
    /// The remembered kernel shape; `None`: measured on first use (or the CPU, which has none).
    kernel_shape: Option<Shape>,
    /// Where its power and temperature come from, or "not reported".
    sensor: String,
}

/// `cache`: the kernel shape cache file, if the user has one.
pub fn run(json: bool, cache: Option<&std::path::Path>) -> anyhow::Result<()> {
    let remembered = match cache.map(shape::load) {
        Some(Ok(all)) => all,
        Some(Err(e)) => {
            tracing::warn!("the kernel shape cache is unreadable (shapes will be measured again): {e}");
            Default::default()
        }
        None => Default::default(),
    };
    let mut rows: Vec<Row> = list_adapters()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let info = a.get_info();
            let described = describe(&info);
            Row {
                index: i.to_string(),
                kernel_shape: remembered.get(&shape::cache_key(&info, SOURCE)).map(|e| e.shape),
                sensor: crate::sensor::describe(&described),
                info: described,
                compute: supports_compute(a),
            }
        })
        .collect();
    let gpus = rows.len();
    let cpu = CpuSweeper::new().info().clone();
    let sensor = crate::sensor::describe(&cpu);
    rows.push(Row { index: "cpu".into(), info: cpu, compute: true, kernel_shape: None, sensor });
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    println!(
        "{:<5} {:<40} {:<8} {:<8} {:<13} {:<10} {:<24} driver",
        "index", "name", "backend", "vendor", "type", "kernel", "sensor"
    );
    for row in &rows {
        let i = &row.info;
        let name = if row.compute { i.name.clone() } else { format!("{} (no compute)", i.name) };
        let kernel = match (row.kernel_shape, row.index.as_str()) {
            (Some(shape), _) => shape.to_string(),
            (None, "cpu") => "-".into(),
            (None, _) => "untuned".into(),
        };
        println!(
            "{:<5} {:<40} {:<8} {:<8} {:<13} {:<10} {:<24} {}",
            row.index, name, i.backend, i.vendor, i.device_type, kernel, row.sensor, i.driver
        );
    }
    if gpus == 0 {
        eprintln!("no GPU adapter found; {INSTALL_HINT}");
    }
    Ok(())
}

/// The arguments of `wgminer devices` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per line instead of a table
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        run(self.json, crate::gpu::shape::default_cache_path().as_deref())?;
        Ok(ExitCode::SUCCESS)
    }
}
