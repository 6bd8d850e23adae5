//! What every sweeping device offers, GPU or CPU: take one `Work` and a nonce range, return the
//! candidate nonces. Devices know nothing of pools or nodes, and nothing they return counts
//! before `cpu::verify` has re-hashed it.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use crate::work::{Candidate, NonceRange, Work};

/// Describes a device as `wgminer devices` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub backend: String,
    pub vendor: String,
    pub device_type: String,
    pub driver: String,
    /// A PCI device's vendor and device ids, which its sensor is found by (none for the CPU
    /// and for software adapters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci: Option<PciId>,
}

/// What a device's sensor could tell at one moment; each field only where the hardware gives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Watts, as the hardware averages them, or from two energy readings.
    pub power_w: Option<f64>,
    /// Joules since some fixed moment (a counter; its differences are what mean something).
    pub energy_j: Option<f64>,
    pub temp_c: Option<f64>,
    pub core_mhz: Option<f64>,
    pub fan_percent: Option<f64>,
    pub power_limit_w: Option<f64>,
    /// Percent of time busy, where the driver counts it.
    pub activity_percent: Option<f64>,
    /// Why the clocks are held back (NVML's throttle reasons), where given.
    pub throttle: Option<String>,
}

/// PCI vendor and device ids, as sysfs and NVML give them, and the slot where the driver says
/// (Vulkan's VK_EXT_pci_bus_info), which tells identical cards apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciId {
    pub vendor: u16,
    pub device: u16,
    /// `domain:bus:device.function`, as sysfs writes it: `0000:03:00.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
}

impl PciId {
    pub fn new(vendor: u16, device: u16) -> PciId {
        PciId { vendor, device, bus: None }
    }
}

/// A PCI slot in sysfs' spelling, whatever the width of its domain (NVML writes eight digits,
/// sysfs and Vulkan four): `00000000:01:00.0` → `0000:01:00.0`; `None` when it is not one.
pub fn pci_slot(text: &str) -> Option<String> {
    let (domain, rest) = text.trim().rsplit_once(':').and_then(|(head, function)| {
        let (domain, bus) = head.split_once(':')?;
        Some((domain, (bus, function)))
    })?;
    let (bus, slot) = rest;
    let (device, function) = slot.split_once('.')?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    Some(format!("{:04x}:{:02x}:{:02x}.{:x}", hex(domain)?, hex(bus)?, hex(device)?, hex(function)?))
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.name, self.backend)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

/// A GPU kernel's shape: invocations per workgroup × nonces per invocation, and K, the versions
/// hashed with each nonce (tuned per device by `gpu::shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub workgroup_size: u32,
    pub nonces_per_invocation: u32,
    /// 1, 2, 4 or 8; records written before it was measured held 1.
    #[serde(default = "one")]
    pub versions_per_nonce: u32,
}

fn one() -> u32 {
    1
}

/// The values K may take: a power of two, so that K versions tile the rolled bits' space.
pub const VERSIONS_PER_NONCE: [u32; 4] = [1, 2, 4, 8];

impl Shape {
    pub const DEFAULT: Shape = Shape { workgroup_size: 64, nonces_per_invocation: 64, versions_per_nonce: 8 };

    /// Nonces one workgroup sweeps.
    pub fn per_group(&self) -> u32 {
        self.workgroup_size * self.nonces_per_invocation
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}, K={}", self.workgroup_size, self.nonces_per_invocation, self.versions_per_nonce)
    }
}

/// Where a device's shape came from, for the log and `bench --json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum Origin {
    CommandLine,
    Cache,
    Measured { shapes: usize, seconds: f64 },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => write!(f, "from the command line"),
            Origin::Cache => write!(f, "remembered"),
            Origin::Measured { shapes, seconds } => write!(f, "best of {shapes} measured in {seconds:.1} s"),
        }
    }
}

/// A device failed while sweeping: lost, out of memory, hung, a driver error, or gone.
#[derive(Debug, thiserror::Error)]
#[error("{device}: {message}")]
pub struct SweepError {
    pub device: String,
    pub message: String,
    pub fault: Fault,
}

/// What kind of failure a `SweepError` is: it decides whether the device is opened again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The driver refused a call: validation, out of memory, an internal error.
    Driver,
    /// The device was lost (a driver reset, `VK_ERROR_DEVICE_LOST`, an unplugged eGPU).
    Lost,
    /// A piece did not come back in time: the watchdog gave up on it.
    Hung,
    /// The device left for good (a browser tab closed, Stop pressed): never opened again.
    Gone,
}

impl SweepError {
    /// A driver error: the device is sick and is opened again.
    pub fn new(device: impl Into<String>, message: impl ToString) -> SweepError {
        SweepError { device: device.into(), message: message.to_string(), fault: Fault::Driver }
    }

    /// The device was lost and is opened again.
    pub fn lost(device: impl Into<String>, message: impl ToString) -> SweepError {
        SweepError { fault: Fault::Lost, ..SweepError::new(device, message) }
    }

    /// The device left for good.
    pub fn gone(device: impl Into<String>, message: impl ToString) -> SweepError {
        SweepError { fault: Fault::Gone, ..SweepError::new(device, message) }
    }
}

/// Opens a device again after it failed: a new wgpu `Device` on the same adapter, a new CPU
/// sweeper. Called on a thread of its own, since a driver may hang here too.
pub trait Reopen: Send + Sync {
    fn reopen(&self) -> Result<Box<dyn Sweeper>, SweepError>;
}

/// A device that sweeps nonces. Work streams through it: `queue` up to `depth()` pieces of
/// about `preferred_chunk()` nonces each, then take results back in order with `next_result`,
/// queueing the next piece (of whatever job is newest) as each one comes back. A new job thus
/// waits for at most the piece that is running.
pub trait Sweeper: Send {
    fn info(&self) -> &DeviceInfo;

    /// A GPU's kernel shape and where it came from; `None` for the CPU.
    fn kernel_shape(&self) -> Option<(Shape, Origin)> {
        None
    }

    /// Nonces per queued piece: one dispatch on a GPU.
    fn preferred_chunk(&self) -> u64;

    /// The nonces a device sweeps as one step (a GPU's workgroup): a piece cut to a multiple
    /// of it leaves no last step part-filled, which costs a full one's time.
    fn granule(&self) -> u64 {
        1
    }

    /// Versions of a header this device hashes with each nonce at its best (K): the scheduler
    /// gives it work of that many where the source allows rolling them.
    fn versions_per_nonce(&self) -> u32 {
        1
    }

    /// Pieces to keep queued so that the device never idles.
    fn depth(&self) -> usize {
        1
    }

    /// Queues a sweep of `range` of `work`; at most `depth()` pieces may be waiting.
    fn queue(&mut self, work: &Work, range: NonceRange) -> Result<(), SweepError>;

    /// The oldest queued piece's range and candidates: every nonce and version of it whose
    /// hash passes `work::target::candidate_mask`, in any order, none missing. `None` when
    /// nothing is queued. The caller verifies each candidate.
    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError>;

    /// How to open this device again after it failed; `None` for a device that cannot be
    /// (a browser tab: it comes back by attaching again).
    fn reopener(&self) -> Option<std::sync::Arc<dyn Reopen>> {
        None
    }

    /// Sweeps a whole range (up to 2^32 nonces), keeping the device fed, and returns every
    /// candidate.
    fn sweep(&mut self, work: &Work, range: NonceRange) -> Result<Vec<Candidate>, SweepError> {
        let chunk = self.preferred_chunk().max(1);
        let mut rest = range;
        let mut queued = 0;
        let mut out = Vec::new();
        loop {
            while queued < self.depth() && rest.count > 0 {
                let (piece, tail) = rest.split_at(chunk);
                rest = tail;
                self.queue(work, piece)?;
                queued += 1;
            }
            match self.next_result()? {
                Some((_, candidates)) => {
                    queued -= 1;
                    out.extend(candidates);
                }
                None => return Ok(out),
            }
        }
    }
}

/// How much of the wall time a device may sweep, from three sources: the user's `--duty`, the
/// power limit's loop, and the temperature guard's pause. The lowest wins; the scheduler reads
/// it before each piece and the sensor sampler writes it.
#[derive(Debug)]
pub struct Throttle {
    /// The user's share, in thousandths: fixed at start.
    duty: u32,
    /// The power loop's share, in thousandths (1000 without a limit).
    power_duty: AtomicU32,
    paused: AtomicBool,
}

impl Throttle {
    /// A device that sweeps `percent` of the time (1–100).
    pub fn new(percent: u32) -> Throttle {
        Throttle { duty: percent.clamp(1, 100) * 10, power_duty: AtomicU32::new(1000), paused: AtomicBool::new(false) }
    }

    /// The share of the time to sweep, 0.001 to 1: the least of the user's and the power loop's.
    pub fn duty(&self) -> f64 {
        f64::from(self.duty.min(self.power_duty.load(Relaxed))) / 1000.0
    }

    /// The power loop's share, 0.001 to 1.
    pub fn set_power_duty(&self, duty: f64) {
        self.power_duty.store((duty.clamp(0.001, 1.0) * 1000.0).round() as u32, Relaxed);
    }

    /// Whether the temperature guard holds the device.
    pub fn paused(&self) -> bool {
        self.paused.load(Relaxed)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Relaxed);
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(100)
    }
}

/// How the user names a device on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The best adapter: discrete before integrated before software, native APIs before GL.
    Auto,
    /// The sha2 reference sweeper on one CPU thread.
    Cpu,
    /// The adapter at this position in `wgminer devices`.
    Index(usize),
    /// The first adapter whose name contains this text, case-insensitively.
    Name(String),
    /// No local device: browser pages that open `/device` (`browser::BrowserSweeper`).
    Browser,
}

/// A `--device` that names nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("empty device name: give an index from `wgminer devices`, a name, `auto`, `cpu` or `browser`")]
pub struct EmptySelector;

impl FromStr for DeviceSelector {
    type Err = EmptySelector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s {
            "" => return Err(EmptySelector),
            "auto" => DeviceSelector::Auto,
            "cpu" => DeviceSelector::Cpu,
            "browser" => DeviceSelector::Browser,
            _ => match s.parse::<usize>() {
                Ok(i) => DeviceSelector::Index(i),
                Err(_) => DeviceSelector::Name(s.to_string()),
            },
        })
    }
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSelector::Auto => write!(f, "auto"),
            DeviceSelector::Cpu => write!(f, "cpu"),
            DeviceSelector::Index(i) => write!(f, "{i}"),
            DeviceSelector::Name(n) => write!(f, "{n}"),
            DeviceSelector::Browser => write!(f, "browser"),
        }
    }
}

/// Work that no hash meets, in `versions` rolled versions: for measuring.
pub fn idle_work(versions: u32) -> Work {
    let header = crate::work::header_from_hex(&"00".repeat(80)).expect("80 zero bytes");
    let versions: Vec<u32> = (0..versions).map(|k| 0x2000_0000 | k << 13).collect();
    Work::with_versions(header, crate::work::Target::ZERO, &versions)
}

/// Hashes of a device over about `seconds`, and the seconds they took, sweeping a work nothing
/// meets so that the figure is pure hashing: its `versions_per_nonce` versions, each header
/// counted. Pieces of `chunk` nonces stream through the device's queue (kept full, as the
/// miner keeps it) until the time is up; what is queued then finishes and counts.
pub fn measure_rate(sweeper: &mut dyn Sweeper, seconds: f64, chunk: u64) -> Result<(u64, f64), SweepError> {
    let mut work = idle_work(sweeper.versions_per_nonce());
    let chunk = chunk.clamp(1, 1 << 32);
    let started = std::time::Instant::now();
    let (mut hashes, mut queued, mut next) = (0u64, 0usize, 0u64);
    loop {
        while queued < sweeper.depth().max(1) && (hashes + next == 0 || started.elapsed().as_secs_f64() < seconds) {
            if next >= 1 << 32 {
                work.header.time += 1; // a fresh header for the next lap of the nonce space
                next = 0;
            }
            let range = NonceRange::new(next as u32, chunk.min((1 << 32) - next)).expect("within 2^32");
            sweeper.queue(&work, range)?;
            next += range.count;
            queued += 1;
        }
        let Some((range, _)) = sweeper.next_result()? else { break };
        hashes += work.hashes(range);
        queued -= 1;
    }
    Ok((hashes, started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        assert_eq!("auto".parse(), Ok(DeviceSelector::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceSelector::Cpu));
        assert_eq!("browser".parse(), Ok(DeviceSelector::Browser));
        assert_eq!("2".parse(), Ok(DeviceSelector::Index(2)));
        assert_eq!("llvmpipe".parse(), Ok(DeviceSelector::Name("llvmpipe".into())));
        assert!(" ".parse::<DeviceSelector>().is_err());
    }
}
