//! AMD and Intel GPUs on Linux: the DRM card's hwmon files in sysfs, as the kernel documents
//! them (Documentation/gpu/amdgpu/thermal.rst; Documentation/ABI/testing/
//! sysfs-driver-intel-i915-hwmon and -xe-hwmon; Documentation/hwmon/sysfs-interface.rst):
//! power in µW (`power1_average` on older amdgpu, `power1_input` on newer), energy in µJ
//! (`energy1_input`, i915 and xe, which give no power: it comes from energy differences),
//! temperatures in m°C (`temp1_input`, amdgpu's edge; xe has no temp1 and starts at
//! `temp2_input`, the package), the core clock in Hz (`freq1_input`, amdgpu's sclk),
//! the fan as a PWM duty 0–255 (`pwm1`), the power cap in µW (`power1_cap`, `power1_max`).
//! amdgpu's `gpu_busy_percent` and i915's `gt_cur_freq_mhz` sit beside, outside hwmon.

use std::path::{Path, PathBuf};

use super::{Energy, Sensor, entries, number};
use crate::device::PciId;
use crate::device::Reading;

pub struct Hwmon {
    /// /sys/class/drm/cardN
    card: PathBuf,
    /// /sys/class/drm/cardN/device/hwmon/hwmonM
    hwmon: PathBuf,
    /// The hwmon's `name`: amdgpu, i915, xe.
    driver: String,
    energy: Energy,
}

/// Reads a PCI id file ("0x1002").
fn id(path: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    u16::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

/// The card's PCI slot, from its `device/uevent` (`PCI_SLOT_NAME=0000:03:00.0`).
fn slot(card: &Path) -> Option<String> {
    let uevent = std::fs::read_to_string(card.join("device/uevent")).ok()?;
    uevent.lines().find_map(|l| l.strip_prefix("PCI_SLOT_NAME=")).and_then(crate::device::pci_slot)
}

/// The hwmon of the DRM card with these ids under `sys`, in this slot where the adapter's is
/// known; none when no card matches, or several alike do and no slot tells them apart.
pub fn open(pci: &PciId, sys: &Path) -> Option<Box<dyn super::Sensor>> {
    find(pci, sys).map(|h| Box::new(h) as Box<dyn super::Sensor>)
}

pub fn find(pci: &PciId, sys: &Path) -> Option<Hwmon> {
    let cards: Vec<PathBuf> = entries(&sys.join("class/drm"), "card")
        .into_iter()
        // card0-DP-1 and the like are connectors, not cards.
        .filter(|c| c.file_name().is_some_and(|n| !n.to_string_lossy().contains('-')))
        .filter(|c| {
            id(&c.join("device/vendor")) == Some(pci.vendor) && id(&c.join("device/device")) == Some(pci.device)
        })
        .filter(|c| pci.bus.is_none() || slot(c) == pci.bus)
        .collect();
    if cards.len() > 1 {
        tracing::info!(
            "{} cards are {:04x}:{:04x} and the driver gives no PCI slot: which is which adapter cannot be told, so none reports power",
            cards.len(),
            pci.vendor,
            pci.device
        );
        return None;
    }
    let card = cards.into_iter().next()?;
    let hwmon = entries(&card.join("device/hwmon"), "hwmon").into_iter().next()?;
    let driver = std::fs::read_to_string(hwmon.join("name")).map(|n| n.trim().to_string()).unwrap_or_default();
    Some(Hwmon { card, hwmon, driver, energy: Energy::default() })
}

impl Hwmon {
    /// A reading at `seconds` (a monotonic clock), for power from energy differences.
    pub fn read_at(&mut self, seconds: f64) -> Reading {
        let hw = |file: &str| number(&self.hwmon.join(file));
        let energy_j = hw("energy1_input").map(|uj| uj * 1e-6);
        let measured = hw("power1_average").or_else(|| hw("power1_input")).map(|uw| uw * 1e-6);
        let from_energy = energy_j.and_then(|j| self.energy.power(j, seconds));
        Reading {
            power_w: measured.or(from_energy),
            energy_j,
            temp_c: hw("temp1_input").or_else(|| hw("temp2_input")).map(|mc| mc / 1e3),
            core_mhz: hw("freq1_input")
                .map(|hz| hz / 1e6)
                .or_else(|| number(&self.card.join("gt_cur_freq_mhz")))
                .or_else(|| number(&self.card.join("device/tile0/gt0/freq0/cur_freq"))),
            fan_percent: hw("pwm1").map(|duty| duty / 255.0 * 100.0),
            power_limit_w: hw("power1_cap").or_else(|| hw("power1_max")).map(|uw| uw * 1e-6),
            activity_percent: number(&self.card.join("device/gpu_busy_percent")),
            throttle: None,
        }
    }
}

impl Sensor for Hwmon {
    fn name(&self) -> String {
        let card = self.card.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("hwmon {} ({card})", self.driver)
    }

    fn read(&mut self) -> Reading {
        self.read_at(super::now())
    }
}
