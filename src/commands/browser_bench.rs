//! `wgminer bench --browser`: serves `/device`, and benchmarks the GPU of each page that presses
//! Start into a `bench --json` record, so that `report` puts laptops beside native devices.
//!
//! The page is a device like any other here: it measures its shape in the tuner's order and
//! says hello; then, through the same pieces as mining, it must find the known nonce of every
//! real block `selftest` checks (a wrong or missing one fails its bench), and its rate is
//! measured as `bench` measures a native device's (`device::measure_rate`). The record is built
//! here, in `bench --json`'s schema, with backend "WebGPU", the adapter, the browser as driver
//! and the shape; the CPU reference is this machine's.

use std::sync::Arc;

use super::record::{KernelSettings, KernelShape, Measured, Rate, Report};
use crate::browser::BrowserHost;
use crate::browser::sweeper::DEPTH;
use crate::cpu::CpuSweeper;
use crate::device::{Sweeper, measure_rate};
use crate::listen::ListenOptions;
use crate::work::DeviceId;

/// Nonces around each real block's nonce that the page sweeps: a few seconds on a software
/// adapter, a blink on a GPU.
const WINDOW: u64 = 1 << 14;

/// Serves the page until `pages` records were written (to stdout, one JSON line each, as
/// `bench --json` writes); a page that fails its checks is said on stderr and not counted.
pub fn run(listen: ListenOptions, seconds: f64, runs: usize, pages: usize) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let (records_tx, mut records) = tokio::sync::mpsc::unbounded_channel();
        let attach = Arc::new(move |page: Box<dyn Sweeper>| {
            let records = records_tx.clone();
            std::thread::spawn(move || {
                let _ = records.send(bench_page(page, seconds, runs));
            });
            Some(DeviceId(0))
        });
        let host = Arc::new(BrowserHost::benching(crate::browser::DEFAULT_MAX_DEVICES, attach));
        let site = crate::http::Site { mode: crate::http::Mode::Pools, stats: Arc::default(), pool_side: Vec::new() };
        let addr = crate::http::start_with(listen, site, Some(host)).await?;
        println!("browser bench: open http://{addr}/device and press Start");
        let mut written = 0;
        while written < pages {
            let Some(record) = records.recv().await else { break };
            match record {
                Ok(report) => {
                    println!("{}", serde_json::to_string(&report)?);
                    written += 1;
                }
                Err(e) => eprintln!("a page's bench failed: {e:#}"),
            }
        }
        anyhow::Ok(())
    })
}

/// A page's checks, then its rate: its record.
fn bench_page(mut page: Box<dyn Sweeper>, seconds: f64, runs: usize) -> anyhow::Result<Report> {
    let name = page.info().name.clone();
    for (height, ok, detail) in super::selftest::real_blocks(page.as_mut(), WINDOW)? {
        eprintln!("{name}: {}  block {height:<7} {detail}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            anyhow::bail!("{name} missed the nonce of block {height}: {detail}");
        }
    }
    let piece = page.preferred_chunk() / (DEPTH as u64 + 1);
    let mut rates = Vec::new();
    for _ in 0..runs.max(1) {
        let (hashes, secs) = measure_rate(page.as_mut(), seconds, piece)?;
        rates.push(hashes as f64 / secs / 1e6);
    }
    let (cpu_hashes, cpu_secs) = measure_rate(&mut CpuSweeper::new(), seconds, 1 << 18)?;
    let cpu = Measured::new(vec![cpu_hashes as f64 / cpu_secs / 1e6]);
    let mhs = Measured::new(rates);
    let ops = crate::gpu::ops::per_header(crate::gpu::kernel::SOURCE, "sweep", page.versions_per_nonce())?;
    let rate = Rate {
        device: page.info().clone(),
        ratio_to_cpu: if cpu.median > 0.0 { mhs.median / cpu.median } else { 0.0 },
        kernel: page.kernel_shape().map(|(shape, origin)| KernelShape { shape, origin }),
        ops_per_hash: Some(ops.fused),
        gops: Some(mhs.median * ops.fused / 1e3),
        mhs,
        sustained: None,
        sensor: "not reported".into(),
        power: None,
    };
    let cpu_reference = Rate {
        device: CpuSweeper::new().info().clone(),
        ratio_to_cpu: 1.0,
        mhs: cpu,
        kernel: None,
        ops_per_hash: None,
        gops: None,
        sustained: None,
        sensor: "not reported".into(),
        power: None,
    };
    report(rate, cpu_reference, seconds, runs)
}

fn report(device: Rate, cpu_reference: Rate, seconds: f64, runs: usize) -> anyhow::Result<Report> {
    let ops = crate::gpu::ops::per_header(crate::gpu::kernel::SOURCE, "sweep", 1)?;
    Ok(Report {
        wgminer: env!("CARGO_PKG_VERSION").into(),
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        // The page's machine is known only by its browser's user agent (the device's driver).
        os: "browser".into(),
        arch: "WebGPU".into(),
        host_cpu: None,
        runs: runs.max(1),
        seconds_per_run: seconds,
        kernel: KernelSettings {
            workgroup_size: None,
            nonces_per_invocation: None,
            dispatch_ms: Some(crate::gpu::tune::DEFAULT_DISPATCH.as_millis() as u64),
            ops_per_nonce: Some(ops),
        },
        devices: vec![device],
        cpu_reference,
        mining: None,
        mining_sv2: None,
    })
}
