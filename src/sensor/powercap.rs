//! Devices that run on the CPU (the `cpu` reference, lavapipe, llvmpipe): the package energy of
//! RAPL through Linux's powercap (Documentation/power/powercap/powercap.rst): each top-level
//! zone `intel-rapl:N` (AMD's RAPL has the same name) counts `energy_uj` up to
//! `max_energy_range_uj` and wraps. The power is the whole package's, other work on the CPU
//! included: what a bench on an idle machine can hold against a GPU's.

use std::path::{Path, PathBuf};

use super::{Energy, Sensor, entries, number};
use crate::device::Reading;

pub struct Rapl {
    /// Each package's zone and its counter.
    zones: Vec<(PathBuf, Energy)>,
}

/// The RAPL package zones under `sys`, if any is readable (reading `energy_uj` needs root on
/// kernels since 5.10).
pub fn open(sys: &Path) -> Option<Box<dyn Sensor>> {
    find(sys).map(|r| Box::new(r) as Box<dyn Sensor>)
}

pub fn find(sys: &Path) -> Option<Rapl> {
    let zones: Vec<(PathBuf, Energy)> = entries(&sys.join("class/powercap"), "intel-rapl:")
        .into_iter()
        // intel-rapl:0:1 and the like are parts (cores, uncore, dram) of a package.
        .filter(|z| z.file_name().is_some_and(|n| n.to_string_lossy().matches(':').count() == 1))
        .filter(|z| number(&z.join("energy_uj")).is_some())
        .map(|z| {
            let range = number(&z.join("max_energy_range_uj")).map(|uj| uj * 1e-6);
            (z, Energy { range, ..Default::default() })
        })
        .collect();
    (!zones.is_empty()).then_some(Rapl { zones })
}

impl Rapl {
    /// A reading at `seconds` (a monotonic clock).
    pub fn read_at(&mut self, seconds: f64) -> Reading {
        let mut energy = 0.0;
        let mut power = Some(0.0);
        for (zone, counter) in &mut self.zones {
            match number(&zone.join("energy_uj")).map(|uj| uj * 1e-6) {
                Some(joules) => {
                    energy += joules;
                    power = power.zip(counter.power(joules, seconds)).map(|(sum, p)| sum + p);
                }
                None => power = None,
            }
        }
        // Several packages wrap each at its own time: their sum is no counter.
        let energy_j = (self.zones.len() == 1).then_some(energy);
        Reading { power_w: power, energy_j, ..Default::default() }
    }
}

impl Sensor for Rapl {
    fn name(&self) -> String {
        format!("RAPL package energy ({} zone{})", self.zones.len(), if self.zones.len() == 1 { "" } else { "s" })
    }

    fn read(&mut self) -> Reading {
        self.read_at(super::now())
    }
}
