//! `wgminer demo`: the embedded pool on loopback and the miner against it, for a bounded
//! time. No account, no network.

use std::process::ExitCode;

use super::args::RunArgs;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

use super::mine::print_summary;
use crate::device::{DeviceSelector, Sweeper};
use crate::gpu::adapter::GpuError;
use crate::listen::{ListenOptions, Listener};
use crate::miner::Source;
use crate::pool::sv2::Sv2Pool;
use crate::pool::{EmbeddedPool, PoolOptions, PoolStats};
use crate::run::{HttpOptions, MineOptions, Summary, mine};
use crate::source::stratum::PoolConfig;
use crate::source::stratum::v2::session::ChannelKind;
use crate::wire::stratum_v2::key::AuthorityPair;

/// What the demo says, first and in its summary, when it mines on the CPU for want of an adapter.
const ON_THE_CPU: &str = "no GPU adapter found: mining on the CPU reference device (`-d cpu`, one thread); \
for lavapipe, which runs the GPU kernel on every core of the CPU, `sudo apt-get install mesa-vulkan-drivers`, \
or install your GPU's driver";

/// Runs the demo and prints its summary (and `note`, when given, under it); an error when no
/// share was accepted.
pub fn run(
    devices: Vec<Box<dyn Sweeper>>,
    options: &MineOptions,
    pool: PoolOptions,
    journal: PathBuf,
    sv2: Option<ChannelKind>,
    note: Option<&str>,
) -> anyhow::Result<Summary> {
    let (summary, _) = super::runtime()?.block_on(demo(devices, options, pool, journal, sv2))?;
    print_summary(&summary);
    if let Some(note) = note {
        println!("{note}");
    }
    if summary.accepted == 0 {
        anyhow::bail!("no share was accepted");
    }
    Ok(summary)
}

/// The embedded pool and the miner in one process, over Stratum v1 or, with `sv2`, over
/// Stratum V2 on that kind of channel; returns the summary and the devices.
pub async fn demo(
    devices: Vec<Box<dyn Sweeper>>,
    options: &MineOptions,
    pool_options: PoolOptions,
    journal: PathBuf,
    sv2: Option<ChannelKind>,
) -> anyhow::Result<(Summary, Vec<Box<dyn Sweeper>>)> {
    // Either pool stops when dropped at the end of this function.
    let (url, stats, _v1, _v2) = match sv2 {
        None => {
            let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await?;
            tracing::info!("embedded pool listening on {}", pool.addr);
            (format!("stratum+tcp://{}", pool.addr), pool.stats.clone(), Some(pool), None)
        }
        Some(_) => {
            let pool = Sv2Pool::start("127.0.0.1:0", AuthorityPair::generate(), pool_options).await?;
            tracing::info!("embedded Stratum V2 pool listening on {}", pool.url());
            (pool.url(), pool.stats.clone(), None, Some(pool))
        }
    };
    let config = PoolConfig {
        url,
        user: "demo".into(),
        pass: "x".into(),
        journal,
        journal_max: crate::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
        trust: Default::default(),
        suggest_difficulty: None,
        channel: sv2.unwrap_or_default(),
    };
    // The dashboard shows the pool's side too.
    let mut options = options.clone();
    if let Some(http) = &mut options.http {
        http.pool_side = vec![(if sv2.is_some() { "stratum v2" } else { "stratum v1" }, stats.clone())];
    }
    let (summary, devices) = mine(Source::Pools(vec![config]), devices, &options).await;
    print_pool_side(&stats);
    Ok((summary, devices))
}

fn print_pool_side(stats: &PoolStats) {
    println!("pool side: {} accepted, {} rejected", stats.accepted.load(Relaxed), stats.rejected.load(Relaxed));
}

/// The arguments of `wgminer demo` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// How long to mine
    #[arg(long, default_value_t = 30.0, value_name = "S", value_parser = super::args::positive_number)]
    pub seconds: f64,
    /// Stop as soon as this many shares were accepted (--seconds still bounds the run): a
    /// quick check that a device and the whole path work
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shares: Option<u64>,
    /// Starting share difficulty (vardiff moves it towards a share every 2 s)
    #[arg(long, default_value = "0.001", value_name = "D", value_parser = super::args::parse_difficulty)]
    pub difficulty: crate::work::Difficulty,
    /// Mine over Stratum V2 (Noise, binary messages) instead of v1, on this kind of channel
    #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "extended")]
    pub sv2: Option<ChannelKind>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut options = self.run.options(Some(self.seconds))?;
        // The demo is for looking at: its dashboard is on unless asked elsewhere.
        if options.http.is_none() {
            let listen = ListenOptions::new(Listener::Http, "127.0.0.1:0", Vec::new())?;
            options.http = Some(HttpOptions { listen, pool_side: Vec::new(), browser_devices: self.run.browser() });
        }
        if let Some(shares) = self.shares {
            options.until = Some(crate::run::accepted_shares(shares));
        }
        let pool = PoolOptions { difficulty: self.difficulty, ..Default::default() };
        crate::source::check_journal(&self.run.journal)?;
        let (devices, note) = self.devices()?;
        run(devices, &options, pool, self.run.journal.clone(), self.sv2, note)?;
        Ok(ExitCode::SUCCESS)
    }

    /// The devices asked for; where that is `auto` and the machine shows no adapter at all,
    /// the CPU reference device, said first, with the note for the summary. `mine` and `solo`
    /// refuse instead: a pool or a node is no place to find out that a driver is missing.
    fn devices(&self) -> anyhow::Result<(Devices, Option<&'static str>)> {
        match self.run.open() {
            Err(e) if self.run.device == [DeviceSelector::Auto] && no_adapter(&e) => {
                println!("{ON_THE_CPU}");
                Ok((vec![Box::new(crate::cpu::CpuSweeper::new())], Some(ON_THE_CPU)))
            }
            opened => Ok((opened?, None)),
        }
    }
}

type Devices = Vec<Box<dyn Sweeper>>;

fn no_adapter(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref::<GpuError>(), Some(GpuError::NoAdapter { .. }))
}
