//! `/metrics`: the counters in Prometheus' exposition, written by prometheus-client. Counters and
//! gauges, the devices' sensor readings among them, are read from `Stats` at each scrape (the
//! numbers the events moved, no second bookkeeping); the two histograms, which `Stats` has no
//! use for, observe the same events (`Metrics::observe`, from the live task). Names follow
//! Prometheus' conventions: `_total` counters, base units (seconds, watts, celsius, hertz), and
//! labels (`device`, `pool`, `outcome`) rather than names.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{Site, redact};
use crate::stats::{Counts, Event};

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    site: Site,
    latency: Histograms,
    switch: Histograms,
}

impl Metrics {
    pub fn new(site: &Site) -> Metrics {
        // Round trips of a loopback pool (~1 ms) to a far one timing out (~8 s).
        let latency: Histograms = Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14)));
        // A switch waits for up to a dispatch (50 ms by default) on a GPU; longer on the CPU.
        let switch: Histograms = Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14)));
        let mut registry = Registry::default();
        // A rotate counted as one operation, as GPUs run it (see `gpu::ops`).
        let ops = crate::gpu::ops::per_header(crate::gpu::kernel::SOURCE, "sweep", 1).map(|ops| ops.fused);
        let ops = ops.map_or_else(|_| "unknown".to_string(), |n| n.to_string());
        registry.register_collector(Box::new(Counters { site: site.clone(), ops }));
        registry.register_with_unit(
            "wgminer_pool_submit_latency",
            "Time from a share's submission to the pool's (or node's) answer",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register_with_unit(
            "wgminer_job_switch",
            "Time from a new job's arrival to a device's first dispatch of it",
            Unit::Seconds,
            switch.clone(),
        );
        Metrics { inner: Arc::new(Inner { registry, site: site.clone(), latency, switch }) }
    }

    /// Feeds the histograms.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::Answer { pool, latency } => {
                let url = self.inner.site.stats.pools().entries.get(pool.0).map(|p| redact(&p.url)).unwrap_or_default();
                self.inner.latency.get_or_create(&vec![("pool", url)]).observe(latency.as_secs_f64());
            }
            Event::JobSwitch { device, latency } => {
                self.inner.switch.get_or_create(&vec![("device", device.0.to_string())]).observe(latency.as_secs_f64());
            }
            _ => {}
        }
    }

    /// The exposition and its content type: OpenMetrics 1.0, or Prometheus' text 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> Result<(&'static str, String), std::fmt::Error> {
        let mut text = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
            Ok(("application/openmetrics-text; version=1.0.0; charset=utf-8", text))
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry)?;
            Ok(("text/plain; version=0.0.4; charset=utf-8", text))
        }
    }
}

/// Reads the counters at each scrape.
#[derive(Clone)]
struct Counters {
    site: Site,
    /// The kernel's operations per nonce, for the build info.
    ops: String,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counters")
    }
}

/// A share's ends, as `outcome` labels.
fn outcomes(c: &Counts) -> [(&'static str, u64); 5] {
    [
        ("accepted", c.accepted),
        ("rejected", c.rejected),
        ("stale", c.stale),
        ("journaled", c.journaled),
        ("unjournaled", c.unjournaled),
    ]
}

/// Where the collector writes: a family at a time.
struct Out<'a, 'e> {
    encoder: &'a mut DescriptorEncoder<'e>,
}

impl Out<'_, '_> {
    /// One metric family: its descriptor, then a sample per label set.
    fn write<V>(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        kind: MetricType,
        samples: impl IntoIterator<Item = (Labels, V)>,
    ) -> Result<(), std::fmt::Error>
    where
        V: Sample,
    {
        let mut metric = self.encoder.encode_descriptor(name, help, unit, kind)?;
        for (labels, value) in samples {
            value.encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A value as a counter, a gauge or an info metric.
trait Sample {
    fn encode(self, encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error>;
}

struct Count(u64);
struct Level(f64);
struct Info;

impl Sample for Count {
    fn encode(self, mut e: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        e.encode_counter::<NoLabelSet, u64, u64>(&self.0, None)
    }
}

impl Sample for Level {
    fn encode(self, mut e: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        e.encode_gauge(&self.0)
    }
}

impl Sample for Info {
    fn encode(self, mut e: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        e.encode_info(&none())
    }
}

fn none() -> Labels {
    Vec::new()
}

impl Collector for Counters {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut out = Out { encoder: &mut encoder };
        self.process(&mut out)?;
        self.devices(&mut out)?;
        self.sensors(&mut out)?;
        self.pools(&mut out)?;
        self.solo_and_pool_side(&mut out)
    }
}

impl Counters {
    fn process(&self, out: &mut Out) -> Result<(), std::fmt::Error> {
        let stats = &self.site.stats;
        let started = crate::stats::unix_time().saturating_sub(stats.uptime().as_secs());
        let build =
            vec![("version", env!("CARGO_PKG_VERSION").to_string()), ("kernel_ops_per_nonce", self.ops.clone())];
        out.write(
            "wgminer_build",
            "wgminer's version and its kernel's operations per nonce",
            None,
            MetricType::Info,
            [(build, Info)],
        )?;
        out.write(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch",
            None,
            MetricType::Gauge,
            [(none(), Level(started as f64))],
        )?;
        out.write(
            "wgminer_best_share_difficulty",
            "The best share's difficulty so far",
            None,
            MetricType::Gauge,
            [(none(), Level(stats.best_share()))],
        )
    }

    fn devices(&self, out: &mut Out) -> Result<(), std::fmt::Error> {
        let devices = self.site.stats.devices();
        let id = |i: usize| vec![("device", i.to_string())];
        let info = devices.iter().enumerate().map(|(i, d)| {
            let mut labels = id(i);
            labels.extend([("name", d.info.name.clone()), ("backend", d.info.backend.clone())]);
            (labels, Info)
        });
        out.write("wgminer_device", "A device mining, by its index", None, MetricType::Info, info)?;
        let per = |f: fn(&crate::stats::DeviceStats) -> u64| {
            devices.iter().enumerate().map(move |(i, d)| (id(i), Count(f(d)))).collect::<Vec<_>>()
        };
        out.write(
            "wgminer_hashes",
            "Nonces swept (rate() gives the hash rate)",
            None,
            MetricType::Counter,
            per(|d| d.hashes()),
        )?;
        out.write(
            "wgminer_hardware_errors",
            "Device results the CPU did not confirm (never submitted)",
            None,
            MetricType::Counter,
            per(|d| d.hw_errors()),
        )?;
        out.write(
            "wgminer_shares_found",
            "Shares a device found and the CPU verified",
            None,
            MetricType::Counter,
            per(|d| d.counts().found),
        )?;
        let ends = devices.iter().enumerate().flat_map(|(i, d)| {
            outcomes(&d.counts()).map(|(outcome, n)| {
                let mut labels = id(i);
                labels.push(("outcome", outcome.to_string()));
                (labels, Count(n))
            })
        });
        out.write("wgminer_shares", "What became of each device's shares", None, MetricType::Counter, ends)
    }

    /// What the devices' sensors read last, for the devices that have one and what it gives.
    fn sensors(&self, out: &mut Out) -> Result<(), std::fmt::Error> {
        let readings: Vec<(Labels, crate::device::Reading)> = self
            .site
            .stats
            .devices()
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((vec![("device", i.to_string())], d.sensor()?)))
            .collect();
        let gauge = |f: fn(&crate::device::Reading) -> Option<f64>| {
            readings.iter().filter_map(move |(labels, r)| Some((labels.clone(), Level(f(r)?)))).collect::<Vec<_>>()
        };
        let watts = Some(&Unit::Other("watts".into()));
        out.write(
            "wgminer_device_power",
            "Power the device draws, by its sensor",
            watts,
            MetricType::Gauge,
            gauge(|r| r.power_w),
        )?;
        let celsius = Some(&Unit::Celsius);
        out.write(
            "wgminer_device_temperature",
            "The device's temperature",
            celsius,
            MetricType::Gauge,
            gauge(|r| r.temp_c),
        )?;
        let hertz = Some(&Unit::Other("hertz".into()));
        out.write(
            "wgminer_device_core_clock",
            "The device's core clock",
            hertz,
            MetricType::Gauge,
            gauge(|r| r.core_mhz.map(|m| m * 1e6)),
        )?;
        out.write(
            "wgminer_device_fan_ratio",
            "The device's fan, 0 to 1",
            None,
            MetricType::Gauge,
            gauge(|r| r.fan_percent.map(|p| p / 100.0)),
        )?;
        let paused = self
            .site
            .stats
            .devices()
            .iter()
            .enumerate()
            .map(|(i, d)| (vec![("device", i.to_string())], Level(f64::from(u8::from(d.paused())))))
            .collect::<Vec<_>>();
        out.write(
            "wgminer_device_paused",
            "1 while the temperature guard holds the device",
            None,
            MetricType::Gauge,
            paused,
        )?;
        self.lives(out)
    }

    /// Each device's state in its life (1 for the state it is in, 0 for the others, as a
    /// Prometheus state set), how many are alive, and each one's duty.
    fn lives(&self, out: &mut Out) -> Result<(), std::fmt::Error> {
        let devices = self.site.stats.devices();
        let states = devices
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                let now = d.status().name();
                let names = crate::stats::DeviceState::ALL.map(|s| s.name());
                names.into_iter().chain(["paused"]).map(move |name| {
                    (
                        vec![("device", i.to_string()), ("state", name.to_string())],
                        Level(f64::from(u8::from(name == now))),
                    )
                })
            })
            .collect::<Vec<_>>();
        out.write(
            "wgminer_device_state",
            "1 for the state each device is in: starting, alive, paused, sick, dead or gone",
            None,
            MetricType::Gauge,
            states,
        )?;
        let alive = vec![(Vec::new(), Level(self.site.stats.alive() as f64))];
        out.write("wgminer_devices_alive", "Devices alive (a paused one too)", None, MetricType::Gauge, alive)?;
        let duty = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (vec![("device", i.to_string())], Level(d.duty())))
            .collect::<Vec<_>>();
        out.write(
            "wgminer_device_duty_ratio",
            "The share of the time the device sweeps, 0 to 1 (--duty, --power-limit)",
            None,
            MetricType::Gauge,
            duty,
        )
    }

    fn pools(&self, out: &mut Out) -> Result<(), std::fmt::Error> {
        let pools = self.site.stats.pools();
        let label = |url: &str| vec![("pool", redact(url))];
        let each = |f: &dyn Fn(usize, &crate::stats::PoolView) -> f64| {
            pools.entries.iter().enumerate().map(|(i, p)| (label(&p.url), Level(f(i, p)))).collect::<Vec<_>>()
        };
        let info = pools.entries.iter().map(|p| {
            let mut labels = label(&p.url);
            labels.extend([("protocol", super::protocol(&p.url).to_string()), ("user", p.user.clone())]);
            (labels, Info)
        });
        out.write("wgminer_pool", "A pool (or node) in priority order", None, MetricType::Info, info)?;
        out.write(
            "wgminer_pool_up",
            "1 while the pool sends work",
            None,
            MetricType::Gauge,
            each(&|_, p| f64::from(u8::from(p.alive))),
        )?;
        let active = pools.active.0;
        out.write(
            "wgminer_pool_active",
            "1 for the pool in use",
            None,
            MetricType::Gauge,
            each(&|i, _| f64::from(u8::from(i == active))),
        )?;
        out.write(
            "wgminer_pool_difficulty",
            "The share difficulty the pool asks for",
            None,
            MetricType::Gauge,
            each(&|_, p| p.difficulty),
        )?;
        let jobs = pools.entries.iter().map(|p| (label(&p.url), Count(p.jobs)));
        out.write("wgminer_pool_jobs", "Jobs (or templates) received", None, MetricType::Counter, jobs)?;
        let ends = pools.entries.iter().flat_map(|p| {
            outcomes(&p.shares).map(|(outcome, n)| {
                let mut labels = label(&p.url);
                labels.push(("outcome", outcome.to_string()));
                (labels, Count(n))
            })
        });
        out.write(
            "wgminer_pool_shares",
            "What became of the shares found on each pool's work",
            None,
            MetricType::Counter,
            ends,
        )
    }

    fn solo_and_pool_side(&self, out: &mut Out) -> Result<(), std::fmt::Error> {
        let stats = &self.site.stats;
        out.write(
            "wgminer_templates",
            "Block templates taken from the node (solo)",
            None,
            MetricType::Counter,
            [(none(), Count(stats.templates()))],
        )?;
        out.write(
            "wgminer_blocks",
            "Blocks found (solo)",
            None,
            MetricType::Counter,
            [(none(), Count(stats.blocks()))],
        )?;
        let difficulty = stats.network_difficulty();
        if difficulty > 0.0 {
            out.write(
                "wgminer_network_difficulty",
                "The network's difficulty (solo)",
                None,
                MetricType::Gauge,
                [(none(), Level(difficulty))],
            )?;
        }
        if self.site.pool_side.is_empty() {
            return Ok(());
        }
        let side = &self.site.pool_side;
        let shares = side.iter().flat_map(|(protocol, p)| {
            [("accepted", p.accepted.load(Relaxed)), ("rejected", p.rejected.load(Relaxed))].map(|(outcome, n)| {
                (vec![("protocol", protocol.to_string()), ("outcome", outcome.to_string())], Count(n))
            })
        });
        out.write(
            "wgminer_pool_server_shares",
            "Shares the embedded pool answered",
            None,
            MetricType::Counter,
            shares,
        )?;
        let connections = side
            .iter()
            .map(|(protocol, p)| (vec![("protocol", protocol.to_string())], Count(p.connections.load(Relaxed))));
        out.write(
            "wgminer_pool_server_connections",
            "Miners that connected to the embedded pool",
            None,
            MetricType::Counter,
            connections,
        )
    }
}
