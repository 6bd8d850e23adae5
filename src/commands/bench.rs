//! `wgminer bench`: hash rate of each device, and of the sha2 one-thread CPU reference measured
//! in the same run, with the ratio between them.

use std::process::ExitCode;

use super::args::KernelArgs;
use std::time::{Duration, Instant};

use super::record::{
    Efficiency, KernelSettings, KernelShape, Measured, MiningRun, Rate, Report, SampleReading, Sustained, host_cpu,
    not_reported,
};
use super::{DeviceOptions, open_device};
use crate::cpu::CpuSweeper;
use crate::device::{DeviceInfo, DeviceSelector, Reading, Sweeper, measure_rate};
use crate::sensor::Sensor;
use crate::source::stratum::v2::session::ChannelKind;

/// MH/s of a device over about `seconds`, in pieces of one dispatch.
fn mhs(device: &mut dyn Sweeper, seconds: f64) -> anyhow::Result<f64> {
    Ok(measured(device, seconds, None)?.0)
}

/// MH/s over about `seconds`, and with a sensor its mean watts and its reading at the end:
/// the energy used over the time where the sensor counts energy, else the power it reads.
fn measured(
    device: &mut dyn Sweeper,
    seconds: f64,
    mut sensor: Option<&mut Box<dyn Sensor>>,
) -> anyhow::Result<(f64, Option<(f64, Reading)>)> {
    let chunk = device.preferred_chunk();
    let before = sensor.as_mut().and_then(|s| s.read().energy_j);
    let (hashes, secs) = measure_rate(device, seconds, chunk)?;
    let power = sensor.map(|s| s.read()).and_then(|after| {
        let watts = match (before, after.energy_j) {
            (Some(a), Some(b)) if b > a => Some((b - a) / secs),
            _ => after.power_w,
        };
        Some((watts?, after))
    });
    Ok((hashes as f64 / secs / 1e6, power))
}

/// What `bench` runs besides the rates.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Seconds per measurement, and measurements of each device.
    pub seconds: f64,
    pub runs: usize,
    pub json: bool,
    /// Then mine through the embedded pool for `seconds` on the first device, a new chain tip
    /// (clean jobs) this often, and compare its rate with the device's bench.
    pub mining: Option<Duration>,
    /// Then keep every device busy this long, sampling its rate every `sample`.
    pub sustained: Option<Duration>,
    pub sample: Duration,
    /// Mine over Stratum V2 too (after v1), on this kind of channel.
    pub sv2: Option<ChannelKind>,
    /// Measure each device once per K of this list.
    pub compare_k: Vec<u32>,
    /// Mine at this duty (percent of the time) with `mining`.
    pub duty: u32,
}

/// Measures each device and the CPU reference `runs` times, `seconds` each, interleaved so
/// that a shared machine's drift touches all of them alike; then what `bench` asks for.
pub fn run(selectors: &[DeviceSelector], options: &DeviceOptions, bench: &BenchOptions) -> anyhow::Result<()> {
    let BenchOptions { seconds, runs, json, mining, .. } = *bench;
    let mut opened = open_all(selectors, options, &bench.compare_k)?;
    let ops = crate::gpu::ops::per_header(crate::gpu::kernel::SOURCE, "sweep", 1)?;
    let (cpu_reference, mut devices) = measure_all(&mut opened, seconds, runs)?;
    if !json {
        print_rates(&cpu_reference, &devices)?;
    }
    if let Some(duration) = bench.sustained {
        for (rate, sustained) in devices.iter_mut().zip(sustain(&mut opened, duration, bench.sample)?) {
            if !json {
                print_sustained(&rate.device, &sustained);
            }
            rate.sustained = Some(sustained);
        }
    }
    let (mining, mining_sv2) = match mining {
        Some(job_interval) if !opened.is_empty() => {
            mine_both(opened.swap_remove(0), devices[0].mhs.median, seconds, job_interval, bench, options)?
        }
        _ => (None, None),
    };
    if json {
        let report = Report {
            wgminer: env!("CARGO_PKG_VERSION").into(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            host_cpu: host_cpu(),
            runs: runs.max(1),
            seconds_per_run: seconds,
            kernel: KernelSettings {
                workgroup_size: None,
                nonces_per_invocation: None,
                dispatch_ms: options.dispatch.map(|d| d.as_millis() as u64),
                ops_per_nonce: Some(ops),
            },
            devices,
            cpu_reference,
            mining,
            mining_sv2,
        };
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// `bench --mining`: the first device mining through the embedded pool over Stratum v1, and
/// over Stratum V2 when asked, beside its bench rate `before`.
fn mine_both(
    device: Box<dyn Sweeper>,
    before: f64,
    seconds: f64,
    job_interval: Duration,
    bench: &BenchOptions,
    options: &DeviceOptions,
) -> anyhow::Result<(Option<MiningRun>, Option<MiningRun>)> {
    let (run, device) = mine_once(device, before, seconds, job_interval, None, bench.duty)?;
    if !bench.json {
        print_mining(&run, before, options.dispatch, "Stratum v1");
    }
    let sv2 = match (bench.sv2, device) {
        (Some(kind), Some(device)) => {
            let (sv2, _) = mine_once(device, before, seconds, job_interval, Some(kind), bench.duty)?;
            if !bench.json {
                let over = format!("Stratum V2, {} channel", format!("{kind:?}").to_lowercase());
                print_mining(&sv2, before, options.dispatch, &over);
            }
            Some(sv2)
        }
        _ => None,
    };
    Ok((Some(run), sv2))
}

/// One device's sensor, and its runs: rates, and powers where the sensor gave one.
struct Runs {
    sensor: Option<Box<dyn Sensor>>,
    rates: Vec<f64>,
    powers: Vec<(f64, Reading)>,
}

/// Each device, once per K of `compare_k` (as if several devices: the A/B of sharing a nonce's
/// schedule, measured interleaved in one run), or once at its own K.
fn open_all(
    selectors: &[DeviceSelector],
    options: &DeviceOptions,
    compare_k: &[u32],
) -> anyhow::Result<Vec<Box<dyn Sweeper>>> {
    let each_k: Vec<Option<u32>> =
        if compare_k.is_empty() { vec![None] } else { compare_k.iter().copied().map(Some).collect() };
    let mut opened = Vec::new();
    for selector in selectors {
        for &k in &each_k {
            let mut options = options.clone();
            options.shape.versions_per_nonce = k.or(options.shape.versions_per_nonce);
            opened.push(open_device(selector, &options)?);
        }
    }
    Ok(opened)
}

/// A GPU kernel's operations per header hashed at the device's K (rotates as one).
fn ops_per_hash(device: &dyn Sweeper) -> anyhow::Result<Option<f64>> {
    if device.kernel_shape().is_none() {
        return Ok(None);
    }
    let ops = crate::gpu::ops::per_header(crate::gpu::kernel::SOURCE, "sweep", device.versions_per_nonce())?;
    Ok(Some(ops.fused))
}

/// `runs` interleaved measurements of the CPU reference and of each device.
fn measure_all(opened: &mut [Box<dyn Sweeper>], seconds: f64, runs: usize) -> anyhow::Result<(Rate, Vec<Rate>)> {
    let mut cpu = CpuSweeper::new();
    // The CPU reference first, then each device.
    let mut measuring: Vec<Runs> = std::iter::once(cpu.info())
        .chain(opened.iter().map(|d| d.info()))
        .map(|info| Runs { sensor: crate::sensor::of(info), rates: Vec::new(), powers: Vec::new() })
        .collect();
    for _ in 0..runs.max(1) {
        let devices = std::iter::once(&mut cpu as &mut dyn Sweeper).chain(opened.iter_mut().map(|d| d.as_mut()));
        for (device, runs) in devices.zip(&mut measuring) {
            let (rate, power) = measured(device, seconds, runs.sensor.as_mut())?;
            runs.rates.push(rate);
            runs.powers.extend(power);
        }
    }
    let mut rates = measuring.into_iter().map(|runs| {
        let mhs = Measured::new(runs.rates);
        let power = Efficiency::new(&runs.powers, mhs.median);
        (mhs, power, runs.sensor.map_or_else(not_reported, |s| s.name()))
    });
    let (cpu_mhs, power, sensor) = rates.next().expect("the CPU reference is measured");
    let cpu_reference = Rate {
        device: cpu.info().clone(),
        ratio_to_cpu: 1.0,
        mhs: cpu_mhs.clone(),
        kernel: None,
        ops_per_hash: None,
        gops: None,
        sustained: None,
        sensor,
        power,
    };
    let devices = opened
        .iter()
        .zip(rates)
        .map(|(device, (mhs, power, sensor))| {
            let kernel = device.kernel_shape().map(|(shape, origin)| KernelShape { shape, origin });
            let ops_per_hash = ops_per_hash(device.as_ref())?;
            Ok(Rate {
                device: device.info().clone(),
                ratio_to_cpu: mhs.median / cpu_mhs.median,
                gops: ops_per_hash.map(|ops| mhs.median * ops / 1e3),
                ops_per_hash,
                kernel,
                mhs,
                sustained: None,
                sensor,
                power,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((cpu_reference, devices))
}

fn print_rates(cpu_reference: &Rate, devices: &[Rate]) -> anyhow::Result<()> {
    let line = |r: &Rate| {
        let power = match &r.power {
            Some(p) => {
                let temp = p.peak_temp_c.map_or(String::new(), |t| format!(", {t:.0} °C peak"));
                format!(", {:.1} W, {:.3} MH/J ({:.1} J/GH){temp}", p.watts, p.mh_per_joule, p.joules_per_gh)
            }
            None => ", power not reported".into(),
        };
        format!(
            "{:<56} {:>10.2} MH/s  (median of {}, spread {:.1}%{power})",
            r.device.to_string(),
            r.mhs.median,
            r.mhs.runs.len(),
            r.mhs.spread_percent()
        )
    };
    println!("{}", line(cpu_reference));
    for d in devices {
        let kernel = match (&d.kernel, d.ops_per_hash, d.gops) {
            (Some(k), Some(ops), Some(gops)) => {
                format!(", kernel {} ({}), {ops:.0} ops/hash, {gops:.1} Gops/s", k.shape, k.origin)
            }
            _ => String::new(),
        };
        println!("{}  {:.2}x the CPU reference{kernel}", line(d), d.ratio_to_cpu);
    }
    let mut work = Vec::new();
    for k in crate::device::VERSIONS_PER_NONCE {
        let ops = crate::gpu::ops::per_header(crate::gpu::kernel::SOURCE, "sweep", k)?;
        work.push(format!("K={k} {:.0} ({:.0})", ops.fused, ops.split));
    }
    println!(
        "kernel work: integer operations per header hashed with rotates as one (as shift, shift, or), K versions a nonce: {}",
        work.join(", ")
    );
    Ok(())
}

/// Mines through the embedded pool (v1, or V2 on a `sv2` channel) on `device` for `seconds`,
/// then measures the device again: the mean of the rates before and after brackets the drift
/// of a shared machine. The device comes back for the next run.
fn mine_once(
    device: Box<dyn Sweeper>,
    before: f64,
    seconds: f64,
    job_interval: std::time::Duration,
    sv2: Option<ChannelKind>,
    duty_percent: u32,
) -> anyhow::Result<(MiningRun, Option<Box<dyn Sweeper>>)> {
    let pool = crate::pool::PoolOptions { job_interval, ..Default::default() };
    let run = crate::run::MineOptions {
        duration: Some(std::time::Duration::from_secs_f64(seconds)),
        status_every: std::time::Duration::from_secs(3600),
        api: None,
        http: None,
        temp: None,
        budgets: vec![crate::miner::Budget { duty_percent, power_limit_w: None }],
        until: None,
    };
    let journal = std::env::temp_dir().join("wgminer-bench-journal.jsonl");
    let (summary, mut back) = super::runtime()?.block_on(super::demo::demo(vec![device], &run, pool, journal, sv2))?;
    let after = match back.first_mut() {
        Some(device) => mhs(device.as_mut(), seconds)?,
        None => before,
    };
    let efficiency = summary.mhs / ((before + after) / 2.0);
    let job_interval_s = job_interval.as_secs_f64();
    let run = MiningRun { summary, efficiency, bench_after_mhs: after, job_interval_s, duty_percent };
    Ok((run, back.pop()))
}

fn print_sustained(device: &DeviceInfo, s: &Sustained) {
    let (low, high) = s.range();
    println!(
        "{device}: sustained {:.0} s, {} samples ({low:.2}–{high:.2} MH/s); first {:.0} s {:.2} MH/s, last {:.0} s {:.2} MH/s: {:.1}% of the first",
        s.samples.last().map_or(0.0, |x| x.0),
        s.samples.len(),
        s.window_s,
        s.first_window_mhs,
        s.window_s,
        s.last_window_mhs,
        s.last_to_first * 100.0
    );
    let range = |f: fn(&SampleReading) -> Option<f64>| {
        let values: Vec<f64> = s.readings.iter().filter_map(f).collect();
        Some((values.iter().copied().reduce(f64::min)?, values.iter().copied().reduce(f64::max)?))
    };
    if let (Some((w0, w1)), temps) = (range(|r| r.watts), range(|r| r.temp_c)) {
        let temps = temps.map_or(String::new(), |(t0, t1)| format!(", {t0:.0}–{t1:.0} °C"));
        let throttled = s.readings.iter().filter(|r| r.throttle.is_some()).count();
        println!("{device}: {w0:.1}–{w1:.1} W{temps}; {throttled} of {} samples throttled", s.readings.len());
    }
}

fn print_mining(run: &MiningRun, before: f64, dispatch: Option<std::time::Duration>, over: &str) {
    let s = &run.summary;
    println!(
        "mining through the embedded pool over {over}{}: {:.2} MH/s, {:.1}% of bench ({:.2} before, {:.2} after); new job to its first dispatch p50 {} ms, p99 {} ms (dispatch {})",
        if run.duty_percent < 100 { format!(" at --duty {}", run.duty_percent) } else { String::new() },
        s.mhs,
        run.efficiency * 100.0,
        before,
        run.bench_after_mhs,
        s.job_switch_p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
        s.job_switch_p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
        dispatch.map_or("untuned".into(), |d| format!("{} ms", d.as_millis())),
    );
}

/// `bench --sustained`: every device under load at once for `duration`, its rate sampled every
/// `sample` (each in its own thread, as they would run while mining).
pub fn sustain(
    opened: &mut [Box<dyn Sweeper>],
    duration: Duration,
    sample: Duration,
) -> anyhow::Result<Vec<Sustained>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = opened
            .iter_mut()
            .map(|device| {
                let mut sensor = crate::sensor::of(device.info());
                scope.spawn(move || -> anyhow::Result<Sustained> {
                    let started = Instant::now();
                    let (mut samples, mut readings) = (Vec::new(), Vec::new());
                    while started.elapsed() < duration {
                        let left = duration.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
                        let (mhs, power) = measured(device.as_mut(), sample.min(left).as_secs_f64(), sensor.as_mut())?;
                        let t = started.elapsed().as_secs_f64();
                        samples.push((t, mhs));
                        if let Some((watts, r)) = power {
                            let (temp_c, core_mhz, throttle) = (r.temp_c, r.core_mhz, r.throttle);
                            readings.push(SampleReading { t, watts: Some(watts), temp_c, core_mhz, throttle });
                        }
                    }
                    Ok(Sustained { readings, ..Sustained::new(samples) })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().map_err(|_| anyhow::anyhow!("a device thread panicked"))?).collect()
    })
}

/// The arguments of `wgminer bench` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// Seconds each measurement of each device (and the CPU reference) lasts
    #[arg(long, default_value_t = 10.0, value_name = "S", value_parser = super::args::positive_number)]
    pub seconds: f64,
    /// Measurements per device, interleaved; the median is reported, with the spread
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// Device to measure; repeat for several (see `wgminer devices`)
    #[arg(short, long, default_value = "auto", value_name = "DEVICE")]
    pub device: Vec<DeviceSelector>,
    /// One JSON record instead of a table: device, vendor, backend, driver, OS, kernel
    /// settings, median MH/s with spread and the CPU reference (`wgminer report` merges them)
    #[arg(long)]
    pub json: bool,
    /// Then mine through the embedded pool on the first device for as long, and report the
    /// share of its bench rate kept while mining and how fast new jobs reach it
    #[arg(long)]
    pub mining: bool,
    /// With --mining: seconds between new chain tips (clean jobs)
    #[arg(long, default_value_t = 5, value_name = "S")]
    pub job_interval: u64,
    /// With --mining: mine over Stratum V2 too, right after v1, on this kind of channel
    #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "extended", requires = "mining")]
    pub sv2: Option<ChannelKind>,
    /// Then keep every device busy this many minutes (fractions allowed), sampling its rate
    /// every --sample seconds: a laptop's throttling shows as the last minute against the
    /// first; `--json` keeps the series and `wgminer report` draws it
    #[arg(long, value_name = "MINUTES", value_parser = super::args::positive_number)]
    pub sustained: Option<f64>,
    /// With --sustained: seconds per sample
    #[arg(long, default_value_t = 5.0, value_name = "S", value_parser = super::args::positive_number)]
    pub sample: f64,
    /// Measure each device once per K in this list (of 1, 2, 4, 8 versions per nonce),
    /// interleaved in the same run as if separate devices: the A/B of sharing each nonce's
    /// schedule among K versions
    #[arg(long, value_name = "K,…", value_delimiter = ',', num_args = 1.., value_parser = super::args::versions_per_nonce)]
    pub compare_k: Vec<u32>,
    /// Benchmark browsers' GPUs instead: serve /device on this address (127.0.0.1:8080 when
    /// given without one); each page that presses Start is checked on real blocks, measured
    /// --runs times for --seconds, and its record written as --json writes one
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::http::DEFAULT_LISTEN)]
    pub browser: Option<String>,
    /// With --browser: stop after this many pages' records
    #[arg(long, default_value_t = 1, value_name = "N", requires = "browser", value_parser = clap::value_parser!(u64).range(1..))]
    pub pages: u64,
    /// With --mining: mine at this share of the time (1-100), to see that the rate kept is
    /// that share of the bench rate
    #[arg(long, value_name = "PERCENT", default_value_t = 100, requires = "mining", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub duty: u32,
    #[command(flatten)]
    pub kernel: KernelArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if let Some(addr) = &self.browser {
            let listen = crate::listen::ListenOptions::new(crate::listen::Listener::Http, addr, Vec::new())?;
            super::browser_bench::run(listen, self.seconds, self.runs as usize, self.pages as usize)?;
            return Ok(ExitCode::SUCCESS);
        }
        let bench = BenchOptions {
            seconds: self.seconds,
            runs: self.runs as usize,
            json: self.json,
            mining: self.mining.then(|| Duration::from_secs(self.job_interval.max(1))),
            sustained: self.sustained.map(|minutes| Duration::from_secs_f64(minutes * 60.0)),
            sample: Duration::from_secs_f64(self.sample),
            sv2: self.sv2,
            compare_k: self.compare_k,
            duty: self.duty,
        };
        run(&self.device, &self.kernel.options(), &bench)?;
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::Measured;

    #[test]
    fn sustained_compares_the_last_window_with_the_first() {
        // 8 minutes sampled every 30 s, slowing from 100 to 70 MH/s after minute 4.
        let samples: Vec<(f64, f64)> =
            (1..=16).map(|i| (f64::from(i) * 30.0, if i <= 8 { 100.0 } else { 70.0 })).collect();
        let s = super::Sustained::new(samples);
        assert_eq!((s.window_s, s.first_window_mhs, s.last_window_mhs), (60.0, 100.0, 70.0));
        assert!((s.last_to_first - 0.7).abs() < 1e-12);
        // A run shorter than four minutes compares quarters: 8 s, samples of 1 s.
        let s = super::Sustained::new((1..=8).map(|i| (f64::from(i), f64::from(i))).collect());
        assert_eq!((s.window_s, s.first_window_mhs, s.last_window_mhs), (2.0, 1.5, 7.5));
        assert_eq!(super::Sustained::new(Vec::new()).last_to_first, 0.0);
    }

    #[test]
    fn median_and_spread() {
        let m = Measured::new(vec![3.0, 1.0, 2.0]);
        assert_eq!((m.median, m.min, m.max), (2.0, 1.0, 3.0));
        assert_eq!(m.spread_percent(), 100.0);
        assert_eq!(Measured::new(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Measured::new(vec![]).spread_percent(), 0.0);
    }
}
