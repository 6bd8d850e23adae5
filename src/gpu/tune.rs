//! Tuning by measurement on the device itself: the kernel's shape (measured once, then
//! remembered, see `shape`), and the dispatch size: long enough that launch overhead vanishes,
//! short enough that a new job reaches the device quickly (50 ms by default, as cgminer's
//! intensity aims at).

use std::time::{Duration, Instant};

use super::kernel::SOURCE;
use super::shape::{self, Entry, Origin, Shape, ShapeRequest};
use super::sweep::{GpuSweeper, MAX_BATCH, max_invocations};
use crate::device::{SweepError, Sweeper, measure_rate};

pub const DEFAULT_DISPATCH: Duration = Duration::from_millis(50);

/// The dispatch time on an integrated GPU, unless the user gives one: the GPU also draws the
/// screen, which stutters for as long as a dispatch runs, and 16 ms is one frame at 60 Hz.
pub const INTEGRATED_DISPATCH: Duration = Duration::from_millis(16);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuned {
    pub batch: u32,
    pub dispatch: Duration,
}

/// Grows the dispatch until it takes a quarter of `target`, then scales it to `target`.
pub fn tune(sweeper: &mut GpuSweeper, target: Duration) -> Result<Tuned, SweepError> {
    let granule = sweeper.options().shape.per_group();
    let mut batch = granule.saturating_mul(16).min(MAX_BATCH);
    // The first dispatch pays for pipeline warm-up; it is not measured.
    sweeper.time_dispatch(batch)?;
    let measure = |sweeper: &mut GpuSweeper, batch: u32| -> Result<Duration, SweepError> {
        Ok(sweeper.time_dispatch(batch)?.min(sweeper.time_dispatch(batch)?))
    };
    let mut took = measure(sweeper, batch)?;
    while took * 4 < target && batch < MAX_BATCH {
        batch = batch.saturating_mul(4).min(MAX_BATCH);
        took = measure(sweeper, batch)?;
    }
    let scaled = (f64::from(batch) * target.as_secs_f64() / took.as_secs_f64().max(1e-6)).min(f64::from(MAX_BATCH));
    sweeper.set_batch(scaled as u32);
    let batch = sweeper.options().batch;
    let dispatch = measure(sweeper, batch)?;
    Ok(Tuned { batch, dispatch })
}

/// The dispatch time each candidate shape is tuned to, and how long its rate is then read.
const SHAPE_DISPATCH: Duration = Duration::from_millis(25);
const SHAPE_MEASURE: Duration = Duration::from_millis(150);

/// The shape the command line gives (every dimension), else the one remembered for this
/// adapter, driver and kernel if it agrees with a dimension given; `None`: measure it. Read
/// before the device opens, so that a known shape's pipeline is the only one compiled.
pub fn known_shape(adapter: &wgpu::Adapter, request: &ShapeRequest) -> Option<(Shape, Origin)> {
    if let Some(shape) = request.explicit() {
        return Some((shape, Origin::CommandLine));
    }
    let path = request.cache.as_ref().filter(|_| !request.retune)?;
    let all = shape::load(path)
        .inspect_err(|e| tracing::warn!("the kernel shape cache is unreadable, measuring again: {e}"))
        .ok()?;
    let entry = all.get(&shape::cache_key(&adapter.get_info(), SOURCE))?;
    let s = entry.shape;
    (request.fits(s) && s.workgroup_size <= max_invocations(&adapter.limits())).then_some((s, Origin::Cache))
}

/// Sets the kernel's shape to the fastest of a short search (a dimension given on the command
/// line is kept) and remembers it when every dimension was free.
pub fn measure_shape(sweeper: &mut GpuSweeper, request: &ShapeRequest) -> Result<(), SweepError> {
    let started = Instant::now();
    let budget = shape::budget_from_now(shape::BUDGET);
    let (best, mhs, shapes) = shape::search(request, sweeper.max_invocations(), budget, |candidate| {
        sweeper.set_shape(candidate, Origin::CommandLine)?; // the real origin once the search ends
        let tuned = tune(sweeper, SHAPE_DISPATCH)?;
        // Streamed as the miner runs it, not one dispatch timed alone (which flatters shapes
        // that happen to finish one dispatch early).
        let (hashes, seconds) = measure_rate(sweeper, SHAPE_MEASURE.as_secs_f64(), u64::from(tuned.batch))?;
        Ok::<_, SweepError>(hashes as f64 / seconds.max(1e-9) / 1e6)
    })?;
    let origin = Origin::Measured { shapes, seconds: started.elapsed().as_secs_f64() };
    sweeper.set_shape(best, origin)?;
    tracing::info!(device = %sweeper.info().name, "kernel shape {best}: {mhs:.2} MH/s, the best of {shapes} measured");
    // A search with a dimension held fixed answers another question; only a free one is kept.
    if let (Some(path), true) = (&request.cache, request.free()) {
        let key = shape::cache_key(sweeper.adapter_info(), SOURCE);
        let measured = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        if let Err(e) = shape::store(path, &key, Entry { shape: best, mhs, measured }) {
            tracing::warn!("could not remember the kernel shape: {e}");
        }
    }
    Ok(())
}
