//! `wgminer devices`: what wgpu finds, with the index `--device` takes.

use serde::Serialize;

use crate::cpu::CpuSweeper;
use crate::device::{DeviceInfo, Sweeper};
use crate::gpu::adapter::{INSTALL_HINT, describe, list_adapters, supports_compute};

#[derive(Serialize)]
struct Row {
    index: String,
    #[serde(flatten)]
    info: DeviceInfo,
    compute: bool,
}

pub fn run(json: bool) -> anyhow::Result<()> {
    let mut rows: Vec<Row> = list_adapters()
        .iter()
        .enumerate()
        .map(|(i, a)| Row { index: i.to_string(), info: describe(&a.get_info()), compute: supports_compute(a) })
        .collect();
    let gpus = rows.len();
    rows.push(Row { index: "cpu".into(), info: CpuSweeper::new().info().clone(), compute: true });
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    println!("{:<5} {:<40} {:<8} {:<8} {:<13} driver", "index", "name", "backend", "vendor", "type");
    for row in &rows {
        let i = &row.info;
        let name = if row.compute { i.name.clone() } else { format!("{} (no compute)", i.name) };
        println!("{:<5} {:<40} {:<8} {:<8} {:<13} {}", row.index, name, i.backend, i.vendor, i.device_type, i.driver);
    }
    if gpus == 0 {
        eprintln!("no GPU adapter found; {INSTALL_HINT}");
    }
    Ok(())
}
