//! Sizes dispatches by measurement: long enough that launch overhead vanishes, short enough
//! that a new job reaches the device quickly (50 ms by default, as cgminer's intensity aims at).

use std::time::Duration;

use super::sweep::{GpuSweeper, MAX_BATCH};
use crate::device::SweepError;

pub const DEFAULT_DISPATCH: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuned {
    pub batch: u32,
    pub dispatch: Duration,
}

/// Grows the dispatch until it takes a quarter of `target`, then scales it to `target`.
pub fn tune(sweeper: &mut GpuSweeper, target: Duration) -> Result<Tuned, SweepError> {
    let options = sweeper.options();
    let granule = options.workgroup_size * options.nonces_per_invocation;
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
