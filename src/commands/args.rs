//! What several subcommands take alike: the device to sweep on and the kernel's shape
//! (`DeviceArgs`, `KernelArgs`), a mining run's devices, journal and API (`RunArgs`), and the
//! parsers of values clap cannot check by type.

use std::time::Duration;

use super::DeviceOptions;
use crate::device::DeviceSelector;
use crate::gpu::shape::{self, ShapeRequest};
use crate::gpu::tune;
use crate::listen::{ListenOptions, Listener};
use crate::miner::Budget;
use crate::run::HttpOptions;
use crate::sensor::TempLimits;
use crate::work::Difficulty;

#[derive(clap::Args, Clone)]
pub struct DeviceArgs {
    /// Device to use: an index from `wgminer devices`, part of an adapter's name, `auto` (the
    /// fastest kind of adapter found) or `cpu` (the sha2 reference sweeper, one thread)
    #[arg(short, long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceSelector,

    #[command(flatten)]
    pub kernel: KernelArgs,
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// Device to mine on; repeat for several (see `wgminer devices`). `browser`: browser pages
    /// that open /device of --http-listen sweep with their WebGPU (alone: no local device)
    #[arg(short, long, default_value = "auto", value_name = "DEVICE")]
    pub device: Vec<DeviceSelector>,
    /// With -d browser: browser pages that may sweep at once
    #[arg(long, default_value_t = crate::browser::DEFAULT_MAX_DEVICES, value_name = "N", value_parser = browser_devices)]
    pub browser_devices: usize,
    /// Seconds between status lines
    #[arg(long, default_value_t = 5, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub status_every: u64,
    /// File where shares that could not be sent are appended, one JSON line each
    #[arg(long, default_value = "wgminer-journal.jsonl", value_name = "PATH")]
    pub journal: std::path::PathBuf,
    /// The journal's size at most, in MiB: past it, shares that cannot be sent are counted as
    /// unjournaled (said once, and in /metrics), not written, so a pool cannot fill the disk
    #[arg(long, default_value_t = 64, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
    pub journal_max_mb: u64,
    /// Serve cgminer's monitoring API (read-only) on this address; 127.0.0.1:4028 when given
    /// without a value
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::api::DEFAULT_LISTEN)]
    pub api_listen: Option<String>,
    /// Who may use the API: addresses or networks (10.0.0.0/8), comma-separated; W: in front
    /// allows switchpool, enablepool, disablepool and quit (e.g. W:127.0.0.1)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub api_allow: Vec<crate::listen::AllowRule>,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Pause a device whose temperature reaches this (°C) until it cools to --temp-target, as
    /// cgminer's --temp-cutoff; where its sensor reports one (see `wgminer devices`)
    #[arg(long, value_name = "C", value_parser = temperature)]
    pub temp_cutoff: Option<f64>,
    /// The temperature (°C) a paused device resumes at [default: --temp-cutoff less 10]
    #[arg(long, value_name = "C", value_parser = temperature, requires = "temp_cutoff")]
    pub temp_target: Option<f64>,
    /// Share of the wall time each device sweeps, in percent (1-100): it rests after each
    /// piece in proportion to the piece's time, so that the fan stays quiet and the desktop
    /// usable. One value for every device, or one per -d (--duty 50,100)
    #[arg(long, value_name = "PERCENT", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=100))]
    pub duty: Vec<u32>,
    /// Hold each device's average power at or under this many watts, by setting its duty
    /// every few seconds from its sensor (see `wgminer devices`; a device whose power is not
    /// reported refuses it). One value for every device, or one per -d
    #[arg(long, value_name = "WATTS", value_delimiter = ',', value_parser = watts)]
    pub power_limit: Vec<f64>,
    #[command(flatten)]
    pub kernel: KernelArgs,
}

impl RunArgs {
    /// Opens the local devices (every one named but `browser`); a `--power-limit` on a device
    /// whose sensor reads no power is refused here, before mining.
    pub fn open(&self) -> anyhow::Result<Vec<Box<dyn crate::device::Sweeper>>> {
        let budgets = self.budgets()?;
        let devices: Vec<_> =
            self.local().map(|d| super::open_device(d, &self.kernel.options())).collect::<Result<_, _>>()?;
        crate::miner::check_power_limits(&devices, &budgets, std::path::Path::new(crate::sensor::SYS))?;
        Ok(devices)
    }

    /// The devices of this machine, in order: every one named but `browser`.
    fn local(&self) -> impl Iterator<Item = &DeviceSelector> {
        self.device.iter().filter(|d| **d != DeviceSelector::Browser)
    }

    /// How many browser pages may sweep at once, with -d browser.
    pub fn browser(&self) -> Option<usize> {
        self.device.contains(&DeviceSelector::Browser).then_some(self.browser_devices)
    }

    /// Each local device's duty and power limit, from one value for all or one value per device.
    pub fn budgets(&self) -> anyhow::Result<Vec<Budget>> {
        let n = self.local().count();
        let duty = per_device("--duty", &self.duty, n)?;
        let power = per_device("--power-limit", &self.power_limit, n)?;
        Ok((0..n)
            .map(|i| Budget { duty_percent: duty.get(i).copied().unwrap_or(100), power_limit_w: power.get(i).copied() })
            .collect())
    }

    pub fn options(&self, seconds: Option<f64>) -> anyhow::Result<crate::run::MineOptions> {
        // The parser took only positive numbers.
        let duration = seconds.map(Duration::from_secs_f64);
        let api = ListenOptions::from_flags(Listener::Api, self.api_listen.as_deref(), &self.api_allow)?;
        // Browser pages come through the HTTP server: -d browser serves it where not asked.
        let http = match (self.http.options()?, self.browser()) {
            (None, Some(_)) => Some(ListenOptions::new(Listener::Http, crate::http::DEFAULT_LISTEN, Vec::new())?),
            (http, _) => http,
        };
        let browser_devices = self.browser();
        Ok(crate::run::MineOptions {
            duration,
            status_every: Duration::from_secs(self.status_every),
            api,
            http: http.map(|listen| HttpOptions { listen, pool_side: Vec::new(), browser_devices }),
            temp: self.temp_limits()?,
            budgets: self.budgets()?,
            until: None,
        })
    }

    fn temp_limits(&self) -> anyhow::Result<Option<TempLimits>> {
        let Some(cutoff) = self.temp_cutoff else { return Ok(None) };
        let target = self.temp_target.unwrap_or(cutoff - 10.0);
        if target >= cutoff {
            anyhow::bail!("--temp-target {target} must be below --temp-cutoff {cutoff}");
        }
        Ok(Some(TempLimits { cutoff, target }))
    }
}

#[derive(clap::Args, Clone)]
pub struct HttpArgs {
    /// Serve Prometheus metrics (/metrics), JSON (/api/v1/summary, devices, pools, events)
    /// and a live dashboard (/) on this address; 127.0.0.1:8080 when given without a value
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::http::DEFAULT_LISTEN)]
    pub http_listen: Option<String>,
    /// Who may reach --http-listen besides loopback: addresses or networks, comma-separated
    /// (--api-allow's syntax); required for an address beyond this machine
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub http_allow: Vec<crate::listen::AllowRule>,
    /// A host name browsers may reach --http-listen by (a name in your DNS or hosts file, or
    /// a reverse proxy's), comma-separated or repeated; its addresses and localhost always
    /// work. Requests for other names are refused (421), against DNS rebinding
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub http_allow_host: Vec<String>,
}

impl HttpArgs {
    pub fn options(&self) -> Result<Option<ListenOptions>, crate::listen::ListenError> {
        let listen = ListenOptions::from_flags(Listener::Http, self.http_listen.as_deref(), &self.http_allow)?;
        match listen {
            Some(listen) => listen.with_hosts(&self.http_allow_host).map(Some),
            None if !self.http_allow_host.is_empty() => Err(crate::listen::ListenError::HostWithoutListen),
            None => Ok(None),
        }
    }
}

#[derive(clap::Args, Clone)]
pub struct KernelArgs {
    /// Time each GPU dispatch should take; the dispatch size is tuned to it at start
    /// [default: 50, and 16 on an integrated GPU, whose screen stutters while a dispatch runs]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub dispatch_ms: Option<u64>,

    /// Invocations per workgroup (the kernel's @workgroup_size) [default: measured]
    ///
    /// On a device's first use wgminer measures a few shapes (64, 128, 256, 32 invocations ×
    /// 8, 4, 2, 1 versions × 64, 256, 16 nonces), about 200 ms each, and remembers the
    /// fastest for that adapter, driver and kernel in ~/.cache/wgminer/kernel-shapes.json. A
    /// value given here wins; the other dimensions are still measured unless given too.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workgroup_size: Option<u32>,

    /// Nonces each invocation tests [default: measured, see --workgroup-size]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub nonces_per_invocation: Option<u32>,

    /// Versions hashed with each nonce, K: 1, 2, 4 or 8 [default: measured, see --workgroup-size]
    ///
    /// Headers that differ only in BIP320's rolled version bits share their second SHA-256
    /// block, so the kernel computes each nonce's message schedule once for K versions (overt
    /// AsicBoost). Used where the pool grants version rolling (or over SV2, or solo); work
    /// without it is hashed one version at a time.
    #[arg(long, value_name = "K", value_parser = versions_per_nonce)]
    pub versions_per_nonce: Option<u32>,

    /// Measure the kernel's shape again instead of using the remembered one (after a driver
    /// update that the adapter's description does not show, or on a busy machine)
    #[arg(long)]
    pub retune: bool,
}

impl KernelArgs {
    pub fn options(&self) -> DeviceOptions {
        DeviceOptions {
            shape: ShapeRequest {
                workgroup_size: self.workgroup_size,
                nonces_per_invocation: self.nonces_per_invocation,
                versions_per_nonce: self.versions_per_nonce,
                retune: self.retune,
                cache: shape::default_cache_path(),
            },
            dispatch: Some(self.dispatch_ms.map_or(tune::DEFAULT_DISPATCH, Duration::from_millis)),
            integrated_dispatch: self.dispatch_ms.is_none().then_some(tune::INTEGRATED_DISPATCH),
        }
    }
}

fn browser_devices(s: &str) -> Result<usize, ValueError> {
    match s.parse() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(ValueError::BrowserDevices(s.to_string())),
    }
}

pub fn versions_per_nonce(s: &str) -> Result<u32, ValueError> {
    match s.parse() {
        Ok(k) if crate::device::VERSIONS_PER_NONCE.contains(&k) => Ok(k),
        _ => Err(ValueError::VersionsPerNonce(s.to_string())),
    }
}

/// A command-line value that cannot be used, in words clap prints beside the option.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("expected a positive number up to 1e9, got `{0}`")]
    NotPositive(String),
    #[error("`{text}` is not a number: {reason}")]
    NotANumber { text: String, reason: String },
    #[error(transparent)]
    Difficulty(#[from] crate::work::target::DifficultyError),
    #[error("unknown network `{0}`: use main, test, testnet4, signet or regtest")]
    Network(String),
    #[error("expected a temperature in °C from 0 to 150, got `{0}`")]
    Temperature(String),
    #[error("expected 1, 2, 4 or 8 versions per nonce, got `{0}`")]
    VersionsPerNonce(String),
    #[error("expected 1 to 64 browser devices, got `{0}`")]
    BrowserDevices(String),
    #[error("expected a power in watts above 0 and at most 10000, got `{0}`")]
    Watts(String),
}

/// A number above zero (seconds, minutes), and at most 1e9: a `Duration` made of it cannot
/// overflow, even counted in minutes.
pub fn positive_number(s: &str) -> Result<f64, ValueError> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1e9 => Ok(v),
        _ => Err(ValueError::NotPositive(s.to_string())),
    }
}

pub fn parse_u64(s: &str) -> Result<u64, ValueError> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| ValueError::NotANumber { text: s.to_string(), reason: e.to_string() })
}

pub fn parse_difficulty(s: &str) -> Result<Difficulty, ValueError> {
    let value: f64 = s.parse().map_err(|e: std::num::ParseFloatError| ValueError::NotANumber {
        text: s.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Difficulty::new(value)?)
}

/// A temperature in °C that a sensor can report.
pub fn temperature(s: &str) -> Result<f64, ValueError> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=150.0).contains(&t) => Ok(t),
        _ => Err(ValueError::Temperature(s.to_string())),
    }
}

/// One value for every device, or one for each.
fn per_device<T: Copy>(flag: &str, values: &[T], devices: usize) -> anyhow::Result<Vec<T>> {
    match values.len() {
        0 => Ok(Vec::new()),
        1 => Ok(vec![values[0]; devices]),
        n if n == devices => Ok(values.to_vec()),
        n => anyhow::bail!("{flag} gives {n} values for {devices} device(s): give one for all, or one per -d"),
    }
}

/// A power in watts a device can be held under: above 0, at most 10 kW.
pub fn watts(s: &str) -> Result<f64, ValueError> {
    match s.trim().parse::<f64>() {
        Ok(w) if w > 0.0 && w <= 10_000.0 => Ok(w),
        _ => Err(ValueError::Watts(s.to_string())),
    }
}

pub fn parse_network(s: &str) -> Result<bitcoin::Network, ValueError> {
    crate::source::gbt::client::network_from_chain(s).ok_or_else(|| ValueError::Network(s.to_string()))
}
