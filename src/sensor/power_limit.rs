//! `--power-limit`: a closed loop from a device's measured power to its duty. Every few
//! readings it scales the duty by the ratio of the aim (a little under the limit) to the mean
//! power since its last change. A device's power is about `idle + k × duty`, so this step
//! moves towards the aim by a fraction `idle / aim` of the distance each time, from one side:
//! it settles without overshoot or oscillation, faster the less the device draws at rest.

/// Readings averaged before each change of duty; the first after a change is skipped, since
/// it may hold power from before it.
const READINGS: usize = 3;
/// The power aimed at, as a share of the limit: readings scatter, and the loop stays under.
const AIM: f64 = 0.95;
/// The least duty: a device whose idle power alone exceeds the limit still answers its pieces.
pub const MIN_DUTY: f64 = 0.01;

#[derive(Debug, Clone)]
pub struct PowerLoop {
    limit_w: f64,
    duty: f64,
    readings: Vec<f64>,
    skip: bool,
}

impl PowerLoop {
    pub fn new(limit_w: f64) -> PowerLoop {
        PowerLoop { limit_w, duty: 1.0, readings: Vec::new(), skip: false }
    }

    pub fn limit_w(&self) -> f64 {
        self.limit_w
    }

    /// Takes one power reading; the new duty when it is time to change it.
    pub fn observe(&mut self, watts: f64) -> Option<f64> {
        if !watts.is_finite() || watts < 0.0 {
            return None;
        }
        if std::mem::take(&mut self.skip) {
            return None;
        }
        self.readings.push(watts);
        if self.readings.len() < READINGS {
            return None;
        }
        let mean = self.readings.drain(..).sum::<f64>() / READINGS as f64;
        let aim = self.limit_w * AIM;
        let next = if mean <= 0.0 { 1.0 } else { (self.duty * aim / mean).clamp(MIN_DUTY, 1.0) };
        // Changes of under 1 % are noise: keeping the duty keeps the rate steady.
        if (next - self.duty).abs() < 0.01 * self.duty {
            return None;
        }
        self.duty = next;
        self.skip = true;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device drawing `idle + full × duty` watts, read once a second: from full duty, the
    /// loop brings it at or under the limit within 15 readings and keeps it within 10 % of it,
    /// each step from above (no oscillation).
    #[test]
    fn the_loop_settles_under_the_limit_without_oscillating() {
        for (idle, full, limit) in [(5.0, 40.0, 20.0), (2.0, 100.0, 15.0), (30.0, 120.0, 60.0), (10.0, 20.0, 50.0)] {
            let mut control = PowerLoop::new(limit);
            let mut duty: f64 = 1.0;
            let mut powers = Vec::new();
            for _ in 0..60 {
                let watts = idle + full * duty;
                powers.push(watts);
                if let Some(next) = control.observe(watts) {
                    assert!(next <= duty || watts < limit * AIM, "the duty only falls while over the aim");
                    duty = next;
                }
            }
            let settled = &powers[15..];
            let max_power = idle + full;
            if max_power <= limit {
                assert!(settled.iter().all(|&p| p == max_power), "under the limit at full duty: left alone");
                continue;
            }
            assert!(settled.iter().all(|&p| p <= limit), "{idle} {full} {limit}: {settled:?}");
            assert!(settled.iter().all(|&p| p >= 0.9 * limit), "{idle} {full} {limit}: {settled:?}");
        }
    }

    #[test]
    fn an_idle_power_over_the_limit_floors_the_duty() {
        let mut control = PowerLoop::new(10.0);
        let mut duty = 1.0;
        for _ in 0..100 {
            if let Some(next) = control.observe(20.0 + 50.0 * duty) {
                duty = next;
            }
        }
        assert_eq!(duty, MIN_DUTY);
        assert_eq!(control.observe(f64::NAN), None);
    }
}
