//! NVIDIA cards: NVML, the library the driver installs (libnvidia-ml), loaded at run time by
//! `nvml-wrapper`; without the driver there is no NVML and no sensor, never a failure. NVML
//! gives power in mW, energy since the driver loaded in mJ (Volta and later), the core
//! temperature, the graphics clock, the fan, the enforced power limit, the utilisation and the
//! reasons the clocks are held back.

use std::sync::{Arc, OnceLock};

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};

use super::{Energy, Sensor};
use crate::device::PciId;
use crate::device::Reading;

pub const NVIDIA: u16 = 0x10de;

/// What NVML reads of one card, as NVML gives it; a fake stands in for it in tests.
pub trait NvmlDevice: Send {
    fn power_mw(&self) -> Option<u32>;
    fn energy_mj(&self) -> Option<u64>;
    fn temp_c(&self) -> Option<u32>;
    fn graphics_mhz(&self) -> Option<u32>;
    fn fan_percent(&self) -> Option<u32>;
    fn power_limit_mw(&self) -> Option<u32>;
    fn utilization_percent(&self) -> Option<u32>;
    /// The throttle reasons' names, none when the clocks run free.
    fn throttle(&self) -> Option<Vec<String>>;
}

/// An NVML card as a sensor.
pub struct NvmlSensor<D> {
    device: D,
    energy: Energy,
}

impl<D: NvmlDevice> NvmlSensor<D> {
    pub fn new(device: D) -> Self {
        NvmlSensor { device, energy: Energy::default() }
    }

    pub fn read_at(&mut self, seconds: f64) -> Reading {
        let d = &self.device;
        let energy_j = d.energy_mj().map(|mj| mj as f64 * 1e-3);
        let from_energy = energy_j.and_then(|j| self.energy.power(j, seconds));
        let throttle = d.throttle().filter(|r| !r.is_empty()).map(|r| r.join(","));
        Reading {
            power_w: d.power_mw().map(|mw| f64::from(mw) * 1e-3).or(from_energy),
            energy_j,
            temp_c: d.temp_c().map(f64::from),
            core_mhz: d.graphics_mhz().map(f64::from),
            fan_percent: d.fan_percent().map(f64::from),
            power_limit_w: d.power_limit_mw().map(|mw| f64::from(mw) * 1e-3),
            activity_percent: d.utilization_percent().map(f64::from),
            throttle,
        }
    }
}

impl<D: NvmlDevice> Sensor for NvmlSensor<D> {
    fn name(&self) -> String {
        "NVML".into()
    }

    fn read(&mut self) -> Reading {
        self.read_at(super::now())
    }
}

/// A card by its index in NVML's order, looked up at each read (a `Device` borrows the library).
struct Card {
    nvml: Arc<Nvml>,
    index: u32,
}

impl Card {
    fn with<T>(
        &self,
        f: impl FnOnce(&nvml_wrapper::Device<'_>) -> Result<T, nvml_wrapper::error::NvmlError>,
    ) -> Option<T> {
        self.nvml.device_by_index(self.index).ok().and_then(|d| f(&d).ok())
    }
}

impl NvmlDevice for Card {
    fn power_mw(&self) -> Option<u32> {
        self.with(|d| d.power_usage())
    }
    fn energy_mj(&self) -> Option<u64> {
        self.with(|d| d.total_energy_consumption())
    }
    fn temp_c(&self) -> Option<u32> {
        self.with(|d| d.temperature(TemperatureSensor::Gpu))
    }
    fn graphics_mhz(&self) -> Option<u32> {
        self.with(|d| d.clock_info(Clock::Graphics))
    }
    fn fan_percent(&self) -> Option<u32> {
        self.with(|d| d.fan_speed(0))
    }
    fn power_limit_mw(&self) -> Option<u32> {
        self.with(|d| d.enforced_power_limit())
    }
    fn utilization_percent(&self) -> Option<u32> {
        self.with(|d| d.utilization_rates()).map(|u| u.gpu)
    }
    fn throttle(&self) -> Option<Vec<String>> {
        let reasons = self.with(|d| d.current_throttle_reasons())?;
        // Idle is not held back.
        Some(reasons.iter_names().map(|(name, _)| name.to_string()).filter(|n| n != "GPU_IDLE").collect())
    }
}

/// NVML, loaded once per process; `None` where the driver is not installed.
fn library() -> Option<Arc<Nvml>> {
    static NVML: OnceLock<Option<Arc<Nvml>>> = OnceLock::new();
    NVML.get_or_init(|| Nvml::init().ok().map(Arc::new)).clone()
}

/// The NVML card with these PCI ids, in this slot where it is known; none without NVML, or
/// when several are alike and no slot tells them apart.
pub fn open(pci: &PciId) -> Option<Box<dyn Sensor>> {
    let nvml = library()?;
    let wanted = (u32::from(pci.device) << 16) | u32::from(pci.vendor);
    let matches = |p: nvml_wrapper::struct_wrappers::device::PciInfo| {
        p.pci_device_id == wanted
            && pci.bus.as_ref().is_none_or(|bus| crate::device::pci_slot(&p.bus_id).as_ref() == Some(bus))
    };
    let matching: Vec<u32> = (0..nvml.device_count().ok()?)
        .filter(|&i| nvml.device_by_index(i).and_then(|d| d.pci_info()).is_ok_and(matches))
        .collect();
    match matching[..] {
        [index] => Some(Box::new(NvmlSensor::new(Card { nvml, index }))),
        _ => None,
    }
}
