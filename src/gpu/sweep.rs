//! The sweep pipelines: one per count of versions the work has (the kernel's `VERSIONS`: the
//! shape's K where the source rolls versions, one where it does not), a ring of dispatch slots
//! so that the next dispatch is queued while the host reads the last one's candidates, and the
//! re-sweep that makes sure no candidate is lost when more arrive than the buffer holds.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;

use bytemuck::Zeroable;
use wgpu::util::DeviceExt;

use super::adapter::{GpuError, describe, supports_compute};
use super::fault::{Health, catch_driver_panic};
use super::kernel::{KernelParams, SOURCE};
use super::shape::{Origin, Shape};
use crate::device::{DeviceInfo, Reopen, SweepError, Sweeper};
use crate::work::{Candidate, NonceRange, Work};

/// Candidates one dispatch can return before the host re-sweeps its range in parts. At any
/// real share target a dispatch has a handful; only test targets come near this.
pub const CANDIDATE_CAPACITY: u32 = 4096;

/// A candidate as the shader writes it: the nonce, then the index of its version.
const CANDIDATE_WORDS: usize = 2;

/// Dispatches in flight: one running while the host reads the one before.
const SLOTS: usize = 2;

/// The most nonces in one dispatch: keeps `invocation * NONCES_PER_INVOCATION` in u32.
pub const MAX_BATCH: u32 = 1 << 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuOptions {
    pub shape: Shape,
    /// Nonces per dispatch; `tune::tune` sets it from a measured dispatch time.
    pub batch: u32,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { shape: Shape::DEFAULT, batch: 1 << 20 }
    }
}

struct Slot {
    params: wgpu::Buffer,
    candidates: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// A dispatch that has been submitted and whose candidates are being mapped for reading.
struct InFlight {
    slot: usize,
    range: NonceRange,
    submission: wgpu::SubmissionIndex,
    mapped: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

pub struct GpuSweeper {
    info: DeviceInfo,
    /// Kept to open a new device on it after this one fails.
    adapter: wgpu::Adapter,
    adapter_info: wgpu::AdapterInfo,
    /// What the driver reported through the device's callbacks.
    health: Health,
    max_invocations: u32,
    device: wgpu::Device,
    queue: wgpu::Queue,
    module: wgpu::ShaderModule,
    layout: wgpu::PipelineLayout,
    /// By `VERSIONS`, built when work of that many versions first comes.
    pipelines: HashMap<u32, wgpu::ComputePipeline>,
    slots: Vec<Slot>,
    options: GpuOptions,
    /// Where the shape in use came from.
    origin: Origin,
    max_groups_per_dimension: u32,
    submitted: usize,
    /// Dispatches submitted and not yet collected, oldest first, with their parameters (kept
    /// for a re-sweep).
    in_flight: VecDeque<(InFlight, KernelParams)>,
    /// Results collected early (while handling an overflow), oldest first.
    ready: VecDeque<(NonceRange, Vec<Candidate>)>,
}

const CANDIDATE_BYTES: u64 = 4 * (1 + CANDIDATE_WORDS as u64 * CANDIDATE_CAPACITY as u64);

impl Slot {
    /// One dispatch's buffers: its parameters, the candidates it writes and their readback.
    fn new(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, i: usize) -> Slot {
        let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(&KernelParams::zeroed()),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let candidates = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("candidates"),
            size: CANDIDATE_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: CANDIDATE_BYTES,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(if i == 0 { "slot 0" } else { "slot 1" }),
            layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: candidates.as_entire_binding() },
            ],
        });
        Slot { params, candidates, readback, bind_group }
    }
}

impl GpuSweeper {
    pub fn open(adapter: wgpu::Adapter, options: GpuOptions) -> Result<Self, GpuError> {
        let adapter_info = adapter.get_info();
        let info = describe(&adapter_info);
        if !supports_compute(&adapter) {
            return Err(GpuError::NoCompute { name: info.name });
        }
        let open_error = |message: String| GpuError::Open { name: info.name.clone(), message };
        let limits = adapter.limits();
        let max_invocations = max_invocations(&limits);
        check_shape(options.shape, max_invocations).map_err(|e| open_error(e.to_string()))?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgminer"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| open_error(e.to_string()))?;
        let health = Health::watch(&device);

        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sha256d.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SOURCE.into()),
        });
        let bind_group_layout = bind_group_layout(&device);
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("sweep"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let slots = (0..SLOTS).map(|i| Slot::new(&device, &bind_group_layout, i)).collect();
        let options = GpuOptions { batch: clamp_batch(options.batch, options.shape), ..options };
        let mut sweeper = GpuSweeper {
            info,
            adapter,
            adapter_info,
            health,
            max_invocations,
            device,
            queue,
            module,
            layout,
            pipelines: HashMap::new(),
            slots,
            options,
            origin: Origin::CommandLine,
            max_groups_per_dimension: limits.max_compute_workgroups_per_dimension,
            submitted: 0,
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
        };
        // The shape's own K is compiled now, so that opening a device pays for it, not its
        // first dispatch.
        sweeper.pipeline(options.shape.versions_per_nonce);
        Ok(sweeper)
    }

    pub fn options(&self) -> GpuOptions {
        self.options
    }

    pub fn set_batch(&mut self, batch: u32) {
        self.options.batch = clamp_batch(batch, self.options.shape);
    }

    /// The adapter as wgpu describes it (the shape cache's key).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter_info
    }

    /// The most invocations a workgroup may have on this adapter.
    pub fn max_invocations(&self) -> u32 {
        self.max_invocations
    }

    /// Sets the shape and where it came from, building its pipeline if the shape is another
    /// (only between sweeps).
    pub fn set_shape(&mut self, shape: Shape, origin: Origin) -> Result<(), SweepError> {
        if shape != self.options.shape {
            if !self.in_flight.is_empty() || !self.ready.is_empty() {
                return Err(self.error("the kernel's shape changes only on an idle device"));
            }
            check_shape(shape, self.max_invocations).map_err(|e| self.error(e))?;
            let old = self.options.shape;
            if (old.workgroup_size, old.nonces_per_invocation) != (shape.workgroup_size, shape.nonces_per_invocation) {
                self.pipelines.clear();
            }
            self.options = GpuOptions { shape, batch: clamp_batch(self.options.batch, shape) };
            self.pipeline(shape.versions_per_nonce);
        }
        self.origin = origin;
        Ok(())
    }

    /// The pipeline for work of `versions` versions, built now if it is the first such work.
    fn pipeline(&mut self, versions: u32) -> &wgpu::ComputePipeline {
        let (device, module, layout, shape) = (&self.device, &self.module, &self.layout, self.options.shape);
        self.pipelines.entry(versions).or_insert_with(|| {
            let started = std::time::Instant::now();
            let pipeline = build(device, module, layout, shape, versions);
            tracing::debug!("kernel built for {versions} versions a nonce in {:.0?}", started.elapsed());
            pipeline
        })
    }

    fn error(&self, message: impl ToString) -> SweepError {
        SweepError::new(self.info.name.clone(), message)
    }

    /// The driver's own report where it made one (a lost device explains a failed wait
    /// better than the wait's error), else `fallback`.
    fn fault(&self, fallback: impl ToString) -> SweepError {
        self.health.check(&self.info.name).err().unwrap_or_else(|| self.error(fallback))
    }

    /// Destroys the wgpu device under this sweeper, as a driver reset does: what follows
    /// fails as it would in the field. For the watchdog's tests on real drivers.
    pub fn destroy_device(&self) {
        self.device.destroy();
    }

    fn submit(&mut self, params: &KernelParams, range: NonceRange) -> InFlight {
        debug_assert!(range.count > 0 && range.count <= u64::from(MAX_BATCH));
        let slot_index = self.submitted % SLOTS;
        self.submitted += 1;
        let pipeline = self.pipeline(params.sweep.versions).clone();
        let slot = &self.slots[slot_index];
        let dispatch = params.dispatch(range.start, range.count as u32);
        self.queue.write_buffer(&slot.params, 0, bytemuck::bytes_of(&dispatch));
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.clear_buffer(&slot.candidates, 0, Some(4));
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &slot.bind_group, &[]);
            let (x, y) = grid(range.count as u32, self.options.shape.per_group(), self.max_groups_per_dimension);
            pass.dispatch_workgroups(x, y, 1);
        }
        encoder.copy_buffer_to_buffer(&slot.candidates, 0, &slot.readback, 0, CANDIDATE_BYTES);
        let submission = self.queue.submit([encoder.finish()]);
        let (tx, mapped) = mpsc::channel();
        slot.readback.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = tx.send(result);
        });
        InFlight { slot: slot_index, range, submission, mapped }
    }

    /// Waits for a dispatch; returns how many candidates it found and those that fit.
    fn collect(&self, flight: InFlight) -> Result<(u32, Vec<Candidate>), SweepError> {
        // A wait on a device already lost panics inside wgpu: say so without waiting.
        self.health.check(&self.info.name)?;
        let wait = wgpu::PollType::Wait { submission_index: Some(flight.submission), timeout: None };
        catch_driver_panic(|| self.device.poll(wait))
            .map_err(|panic| SweepError::lost(self.info.name.clone(), panic))?
            .map_err(|e| self.fault(e))?;
        flight
            .mapped
            .recv()
            .map_err(|_| self.fault("the driver dropped a buffer mapping"))?
            .map_err(|e| self.fault(e))?;
        self.health.check(&self.info.name)?;
        let readback = &self.slots[flight.slot].readback;
        let (count, candidates) = {
            let view = readback.get_mapped_range(..).map_err(|e| self.fault(e))?;
            let words: &[u32] = bytemuck::cast_slice(&view);
            let count = words[0];
            let fitted = &words[1..1 + CANDIDATE_WORDS * count.min(CANDIDATE_CAPACITY) as usize];
            let candidates = fitted.chunks_exact(CANDIDATE_WORDS).map(|c| Candidate { nonce: c[0], version: c[1] });
            (count, candidates.collect())
        };
        readback.unmap();
        Ok((count, candidates))
    }

    /// Sweeps a range that overflowed the candidate buffer again, in parts small enough that
    /// each holds its candidates; parts that still overflow split again. A part of at most
    /// `CANDIDATE_CAPACITY` headers (nonces × versions) cannot overflow, so this ends.
    fn resweep(
        &mut self,
        params: &KernelParams,
        range: NonceRange,
        found: u32,
        out: &mut Vec<Candidate>,
    ) -> Result<(), SweepError> {
        let safe = u64::from(CANDIDATE_CAPACITY / params.sweep.versions.max(1));
        let parts = u64::from(found).div_ceil(u64::from(CANDIDATE_CAPACITY / 2)).clamp(2, range.count.max(2));
        let part = range.count.div_ceil(parts);
        let mut rest = range;
        while rest.count > 0 {
            let (head, tail) = rest.split_at(part);
            rest = tail;
            let flight = self.submit(params, head);
            let (count, candidates) = self.collect(flight)?;
            // A part that cannot overflow yet says it did comes from a faulty driver: what it
            // read back goes to the verifier, which counts the wrong ones as hardware errors.
            if count > CANDIDATE_CAPACITY && head.count > safe {
                self.resweep(params, head, count, out)?;
            } else {
                out.extend(candidates);
            }
        }
        Ok(())
    }

    /// Runs one dispatch of `count` nonces (in K versions) against a target nothing meets and
    /// returns how long it took; the auto-tuner's probe, for an idle device.
    pub fn time_dispatch(&mut self, count: u32) -> Result<std::time::Duration, SweepError> {
        if !self.in_flight.is_empty() || !self.ready.is_empty() {
            return Err(self.error("time_dispatch needs an idle device"));
        }
        let params = KernelParams::new(&crate::device::idle_work(self.versions_per_nonce()));
        let started = std::time::Instant::now();
        let flight = self.submit(&params, NonceRange { start: 0, count: u64::from(count.max(1)) });
        self.collect(flight)?;
        Ok(started.elapsed())
    }
}

/// Workgroups for `count` nonces at `per_group` nonces each, folded into a second dimension
/// past the per-dimension limit (65,535 on most adapters). Surplus invocations exit at once.
pub fn grid(count: u32, per_group: u32, max_per_dimension: u32) -> (u32, u32) {
    let groups = u64::from(count).div_ceil(u64::from(per_group));
    let y = groups.div_ceil(u64::from(max_per_dimension));
    (groups.div_ceil(y.max(1)) as u32, y.max(1) as u32)
}

/// The threads a CPU adapter runs workgroups on: llvmpipe's `LP_NUM_THREADS` where set, else
/// one per core, as Mesa starts them.
fn cpu_adapter_threads() -> u64 {
    let set = std::env::var("LP_NUM_THREADS").ok().and_then(|v| v.trim().parse::<u64>().ok());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    set.unwrap_or(cores).max(1)
}

fn clamp_batch(batch: u32, shape: Shape) -> u32 {
    let granule = shape.per_group();
    batch.clamp(granule, MAX_BATCH) / granule * granule
}

/// The most invocations a workgroup may have on an adapter with these limits.
pub fn max_invocations(limits: &wgpu::Limits) -> u32 {
    limits.max_compute_invocations_per_workgroup.min(limits.max_compute_workgroup_size_x)
}

/// A kernel shape the adapter cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "workgroup size {} / {} nonces per invocation / {} versions per nonce is outside the adapter's limits (at most {max_invocations} invocations) or the kernel's (1, 2, 4 or 8 versions)",
    shape.workgroup_size,
    shape.nonces_per_invocation,
    shape.versions_per_nonce
)]
pub struct ShapeError {
    pub shape: Shape,
    pub max_invocations: u32,
}

fn check_shape(shape: Shape, max_invocations: u32) -> Result<(), ShapeError> {
    let Shape { workgroup_size, nonces_per_invocation, versions_per_nonce } = shape;
    if workgroup_size == 0
        || workgroup_size > max_invocations
        || nonces_per_invocation == 0
        || !crate::device::VERSIONS_PER_NONCE.contains(&versions_per_nonce)
    {
        return Err(ShapeError { shape, max_invocations });
    }
    Ok(())
}

/// The layout every pipeline shares, so that one set of dispatch slots serves them all: the
/// parameters' uniform and the candidates' storage.
fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("sweep"),
        entries: &[
            entry(0, wgpu::BufferBindingType::Uniform),
            entry(1, wgpu::BufferBindingType::Storage { read_only: false }),
        ],
    })
}

/// The pipeline for one shape and count of versions (its constants are the shader's
/// overrides).
fn build(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    layout: &wgpu::PipelineLayout,
    shape: Shape,
    versions: u32,
) -> wgpu::ComputePipeline {
    let constants = [
        ("WORKGROUP_SIZE", f64::from(shape.workgroup_size)),
        ("NONCES_PER_INVOCATION", f64::from(shape.nonces_per_invocation)),
        ("VERSIONS", f64::from(versions)),
    ];
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("sweep"),
        layout: Some(layout),
        module,
        entry_point: Some("sweep"),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    })
}

impl Sweeper for GpuSweeper {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn kernel_shape(&self) -> Option<(Shape, Origin)> {
        Some((self.options.shape, self.origin))
    }

    /// One dispatch.
    fn preferred_chunk(&self) -> u64 {
        u64::from(self.options.batch)
    }

    /// Whole workgroups, and on a CPU adapter (llvmpipe, WARP, SwiftShader) as many as it has
    /// threads, one per core: a piece of 19 workgroups on lavapipe's two threads runs as long
    /// as one of 20 with a core idle for the last, which cost mining at K = 8 (the short pieces
    /// of a dispatch a third as long as `bench`'s, at an eighth of the nonces) 3 % of the rate.
    fn granule(&self) -> u64 {
        let threads = match self.adapter_info.device_type {
            wgpu::DeviceType::Cpu => cpu_adapter_threads(),
            _ => 1,
        };
        u64::from(self.options.shape.per_group()) * threads
    }

    fn versions_per_nonce(&self) -> u32 {
        self.options.shape.versions_per_nonce
    }

    /// Both slots of the ring: one dispatch runs while the host reads the other.
    fn depth(&self) -> usize {
        SLOTS
    }

    fn queue(&mut self, work: &Work, range: NonceRange) -> Result<(), SweepError> {
        if self.in_flight.len() >= SLOTS {
            return Err(self.error("queue called with every slot busy"));
        }
        if range.count == 0 || range.count > u64::from(MAX_BATCH) {
            return Err(self.error(format!("a dispatch holds 1 to {MAX_BATCH} nonces, asked for {}", range.count)));
        }
        // A submit to a lost device only calls the error handler: look before adding more.
        self.health.check(&self.info.name)?;
        let params = KernelParams::new(work);
        let flight = self.submit(&params, range);
        self.in_flight.push_back((flight, params));
        Ok(())
    }

    fn reopener(&self) -> Option<std::sync::Arc<dyn Reopen>> {
        let (shape, origin) = (self.options, self.origin);
        Some(std::sync::Arc::new(SameAdapter { adapter: self.adapter.clone(), options: shape, origin }))
    }

    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        if let Some(ready) = self.ready.pop_front() {
            return Ok(Some(ready));
        }
        let Some((flight, params)) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        let range = flight.range;
        let (count, candidates) = self.collect(flight)?;
        if count <= CANDIDATE_CAPACITY {
            return Ok(Some((range, candidates)));
        }
        // Overflow: finish what is in flight first, so that the re-sweeps have the ring to
        // themselves, and keep those results for the calls that follow.
        let mut later = Vec::new();
        while let Some((flight, params)) = self.in_flight.pop_front() {
            let range = flight.range;
            let (count, candidates) = self.collect(flight)?;
            later.push((params, range, count, candidates));
        }
        let mut out = Vec::new();
        self.resweep(&params, range, count, &mut out)?;
        for (params, range, count, candidates) in later {
            let candidates = if count > CANDIDATE_CAPACITY {
                let mut again = Vec::new();
                self.resweep(&params, range, count, &mut again)?;
                again
            } else {
                candidates
            };
            self.ready.push_back((range, candidates));
        }
        Ok(Some((range, out)))
    }
}

/// A new device on the adapter of one that failed, in the shape and dispatch size it had
/// (measured once: a driver reset changes neither).
struct SameAdapter {
    adapter: wgpu::Adapter,
    options: GpuOptions,
    origin: Origin,
}

impl Reopen for SameAdapter {
    fn reopen(&self) -> Result<Box<dyn Sweeper>, SweepError> {
        let name = describe(&self.adapter.get_info()).name;
        let mut gpu =
            GpuSweeper::open(self.adapter.clone(), self.options).map_err(|e| SweepError::new(name, e.to_string()))?;
        gpu.set_shape(self.options.shape, self.origin)?;
        Ok(Box::new(gpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_stays_within_the_per_dimension_limit() {
        assert_eq!(grid(1, 4096, 65535), (1, 1));
        assert_eq!(grid(4096 * 65535, 4096, 65535), (65535, 1));
        assert_eq!(grid(4096 * 65535 + 1, 4096, 65535), (32768, 2));
        // The largest batch with 64 invocations of 64 nonces per workgroup.
        let (x, y) = grid(MAX_BATCH, 64 * 64, 65535);
        let covered = u64::from(x) * u64::from(y) * 64 * 64;
        assert!(x <= 65535 && covered >= u64::from(MAX_BATCH));
        // Every nonce offset of the grid fits the kernel's u32 arithmetic.
        assert!(covered <= 1 << 32);
    }
}
