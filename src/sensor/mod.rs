//! Power, energy, temperature and clocks of a device, where the platform tells them: NVML for
//! NVIDIA cards (`nvml.rs`), hwmon in sysfs for AMD and Intel GPUs on Linux (`hwmon.rs`), RAPL
//! through powercap for devices that run on the CPU (`powercap.rs`). A device is matched to
//! its sensor by PCI vendor and device id, never by its name; where nothing matches, or two
//! cards are alike so that the match would be a guess, the device has no sensor ("not
//! reported"), which is never a failure.
//!
//! Reads are blocking file or library calls: `Sampler` makes them on a thread of its own, once
//! a second, and reports each as an `Event::Sensor`, off the devices' hot path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::device::{DeviceInfo, Reading, Throttle};
use crate::stats::{Event, Stats};
use crate::work::DeviceId;

pub mod hwmon;
pub mod nvml;
pub mod power_limit;
pub mod powercap;

pub use power_limit::PowerLoop;

/// Where sysfs is mounted; tests point the readers at fixtures instead.
pub const SYS: &str = "/sys";

/// A device's sensor.
pub trait Sensor: Send {
    /// What it reads, for `wgminer devices` and the logs: "NVML", "hwmon amdgpu (card0)", …
    fn name(&self) -> String;
    fn read(&mut self) -> Reading;
}

/// Power from an energy counter: the difference of two readings over their time, a counter
/// that wrapped at `range` taken as having wrapped once (never a negative power), a counter
/// that went back without a known range skipped.
#[derive(Debug, Clone, Default)]
pub struct Energy {
    last: Option<(f64, f64)>,
    /// Joules at which the counter wraps to zero, where known.
    pub range: Option<f64>,
}

impl Energy {
    /// Takes a reading of `joules` at `seconds` (any fixed origin); the power since the last one.
    pub fn power(&mut self, joules: f64, seconds: f64) -> Option<f64> {
        let last = self.last.replace((joules, seconds));
        let (before, then) = last?;
        let elapsed = seconds - then;
        if elapsed <= 0.0 {
            return None;
        }
        let used = match joules - before {
            d if d >= 0.0 => d,
            d => self.range.map(|range| d + range).filter(|d| *d >= 0.0)?,
        };
        Some(used / elapsed)
    }
}

/// Reads `path` as one number, trimmed; `None` when missing, unreadable or not a number.
pub(crate) fn number(path: &Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Seconds on a monotonic clock, for energy differences.
pub(crate) fn now() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The sensor of a device, if this platform has one for it: NVML, then hwmon for a PCI GPU;
/// RAPL for a device that runs on the CPU (the `cpu` reference, lavapipe, llvmpipe).
pub fn for_device(info: &DeviceInfo, sys: &Path) -> Option<Box<dyn Sensor>> {
    match &info.pci {
        Some(pci) if pci.vendor == nvml::NVIDIA => nvml::open(pci).or_else(|| hwmon::open(pci, sys)),
        Some(pci) => hwmon::open(pci, sys),
        None if info.device_type == "Cpu" => powercap::open(sys),
        None => None,
    }
}

/// The sensor of a device on this machine (`for_device` on the real sysfs).
pub fn of(info: &DeviceInfo) -> Option<Box<dyn Sensor>> {
    for_device(info, Path::new(SYS))
}

/// The name of a device's sensor on this machine, or "not reported".
pub fn describe(info: &DeviceInfo) -> String {
    of(info).map_or_else(|| "not reported".to_string(), |s| s.name())
}

/// The temperature guard, as cgminer's `--temp-cutoff`: a device hotter than `cutoff` stops
/// taking work until it has cooled to `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TempLimits {
    pub cutoff: f64,
    pub target: f64,
}

impl TempLimits {
    /// Whether a device should be paused now, given whether it is and its temperature.
    pub fn paused(&self, paused: bool, temp_c: Option<f64>) -> bool {
        match temp_c {
            Some(t) if t >= self.cutoff => true,
            Some(t) if t <= self.target => false,
            // Between the two, or no reading: as it was.
            _ => paused,
        }
    }
}

/// One device to sample: its id, its sensor, its throttle (which the temperature guard
/// pauses and the power loop sets), and its power loop where it has a limit.
pub struct Watched {
    pub device: DeviceId,
    pub sensor: Box<dyn Sensor>,
    pub throttle: Arc<Throttle>,
    pub power: Option<PowerLoop>,
}

/// Whether a sensor gives power, directly or from an energy counter (whose first reading
/// gives none yet): what `--power-limit` needs.
pub fn reads_power(sensor: &mut dyn Sensor) -> bool {
    let reading = sensor.read();
    reading.power_w.is_some() || reading.energy_j.is_some()
}

/// Reads every sensor every `every` on a thread until `stop`, reports each reading, and pauses
/// or resumes devices by `limits`.
pub fn sample(
    mut watched: Vec<Watched>,
    limits: Option<TempLimits>,
    every: Duration,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Relaxed) && !watched.is_empty() {
            for w in &mut watched {
                let reading = w.sensor.read();
                if let Some(limits) = limits {
                    guard(w, limits, &reading, &stats);
                }
                if let (Some(control), Some(watts)) = (&mut w.power, reading.power_w) {
                    if let Some(duty) = control.observe(watts) {
                        w.throttle.set_power_duty(duty);
                        tracing::debug!("device {}: {watts:.1} W, duty now {:.0} %", w.device.0, duty * 100.0);
                        stats.record(Event::Duty { device: w.device, duty: w.throttle.duty() });
                    }
                }
                stats.record(Event::Sensor { device: w.device, reading });
            }
            // Sleep in short steps, so that a stop is seen soon.
            let until = Instant::now() + every;
            while Instant::now() < until && !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(every));
            }
        }
    })
}

/// The temperature guard's turn: pauses a device over the cutoff, lets it go on at the target.
fn guard(w: &Watched, limits: TempLimits, reading: &Reading, stats: &Stats) {
    let was = w.throttle.paused();
    let now = limits.paused(was, reading.temp_c);
    if now == was {
        return;
    }
    w.throttle.set_paused(now);
    let temp = reading.temp_c.map_or("-".into(), |t| format!("{t:.0}"));
    match now {
        true => tracing::warn!("device {}: {temp} °C, over --temp-cutoff: paused", w.device.0),
        false => tracing::info!("device {}: {temp} °C, down to --temp-target: mining again", w.device.0),
    }
    stats.record(Event::Paused { device: w.device, paused: now, temp_c: reading.temp_c });
}

/// A directory's entries whose names start with `prefix`, sorted (card0 before card1).
pub(crate) fn entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_from_energy_handles_wraps_and_resets() {
        let mut e = Energy { last: None, range: Some(1000.0) };
        assert_eq!(e.power(100.0, 0.0), None, "one reading is no power");
        assert_eq!(e.power(300.0, 2.0), Some(100.0));
        // Wrapped at 1000 J: 300 → 1000 → 0 → 100 is 800 J.
        assert_eq!(e.power(100.0, 4.0), Some(400.0));
        let mut unknown = Energy::default();
        unknown.power(500.0, 0.0);
        assert_eq!(unknown.power(100.0, 1.0), None, "went back without a known range: skipped, not negative");
        assert_eq!(unknown.power(150.0, 2.0), Some(50.0));
        assert_eq!(unknown.power(150.0, 2.0), None, "no time passed");
    }

    #[test]
    fn the_guard_pauses_above_the_cutoff_and_resumes_at_the_target() {
        let limits = TempLimits { cutoff: 90.0, target: 80.0 };
        assert!(!limits.paused(false, Some(85.0)));
        assert!(limits.paused(false, Some(90.0)));
        assert!(limits.paused(true, Some(85.0)), "between the two it stays paused");
        assert!(!limits.paused(true, Some(80.0)));
        assert!(limits.paused(true, None), "no reading changes nothing");
    }
}
