//! The subcommands behind `main.rs`. Each takes parsed arguments, does its job through the
//! library and writes to stdout; errors go back to `main` to be printed once.

pub mod args;
pub mod bench;
pub mod browser_bench;
pub mod completions;
pub mod config;
pub mod demo;
pub mod devices;
pub mod grind;
pub mod man;
pub mod mine;
pub mod pool;
pub mod record;
pub mod report;
pub mod scan;
pub mod selftest;
pub mod solo;

use std::time::Duration;

use crate::device::{DeviceSelector, Sweeper};
use crate::gpu::shape::{Shape, ShapeRequest};
use crate::gpu::{GpuOptions, GpuSweeper, select_adapter, tune};

/// How to open devices: the kernel's shape and the dispatch time the tuner aims at.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub shape: ShapeRequest,
    /// Tune the batch to this dispatch time; `None` keeps the default batch.
    pub dispatch: Option<Duration>,
    /// The dispatch time on an integrated GPU, where the user gave none (`tune::INTEGRATED_DISPATCH`).
    pub integrated_dispatch: Option<Duration>,
}

/// The default shape, not measured, and dispatches tuned to 50 ms.
impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            shape: ShapeRequest::fixed(Shape::DEFAULT),
            dispatch: Some(tune::DEFAULT_DISPATCH),
            integrated_dispatch: Some(tune::INTEGRATED_DISPATCH),
        }
    }
}

/// The runtime for the network side: two workers, as many as the machines CI runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Opens the device a selector names: the CPU reference sweeper, or a GPU, its shape chosen
/// and its dispatches sized.
pub fn open_device(selector: &DeviceSelector, options: &DeviceOptions) -> anyhow::Result<Box<dyn Sweeper>> {
    match selector {
        DeviceSelector::Cpu => return Ok(Box::new(crate::cpu::CpuSweeper::new())),
        DeviceSelector::Browser => {
            anyhow::bail!("`browser` is not a device of this machine: mine, solo and demo take -d browser")
        }
        _ => {}
    }
    let adapter = select_adapter(selector)?;
    let dispatch = match adapter.get_info().device_type {
        wgpu::DeviceType::IntegratedGpu => options.integrated_dispatch.or(options.dispatch),
        _ => options.dispatch,
    };
    let known = tune::known_shape(&adapter, &options.shape);
    let shape = known.map_or(Shape::DEFAULT, |(shape, _)| shape);
    let mut gpu = GpuSweeper::open(adapter, GpuOptions { shape, ..GpuOptions::default() })?;
    match known {
        Some((shape, origin)) => gpu.set_shape(shape, origin)?,
        None => tune::measure_shape(&mut gpu, &options.shape)?,
    }
    if let Some(target) = dispatch {
        tune::tune(&mut gpu, target)?;
    }
    Ok(Box::new(gpu))
}
