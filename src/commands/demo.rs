//! `wgminer demo`: the embedded pool on loopback and the miner against it, for a bounded
//! time. No account, no network.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

use super::mine::{MineOptions, Source, Summary, mine, print_summary};
use crate::device::Sweeper;
use crate::pool::{EmbeddedPool, PoolOptions};
use crate::source::stratum::PoolConfig;

/// Runs the demo and prints its summary; an error when no share was accepted.
pub fn run(
    devices: Vec<Box<dyn Sweeper>>,
    options: &MineOptions,
    pool: PoolOptions,
    journal: PathBuf,
) -> anyhow::Result<Summary> {
    let (summary, _) = super::runtime()?.block_on(demo(devices, options, pool, journal))?;
    print_summary(&summary);
    if summary.accepted == 0 {
        anyhow::bail!("no share was accepted");
    }
    Ok(summary)
}

/// The embedded pool and the miner in one process; returns the summary and the devices.
pub async fn demo(
    devices: Vec<Box<dyn Sweeper>>,
    options: &MineOptions,
    pool_options: PoolOptions,
    journal: PathBuf,
) -> anyhow::Result<(Summary, Vec<Box<dyn Sweeper>>)> {
    let pool = EmbeddedPool::start("127.0.0.1:0", pool_options).await?;
    tracing::info!("embedded pool listening on {}", pool.addr);
    let config = PoolConfig {
        url: format!("stratum+tcp://{}", pool.addr),
        user: "demo".into(),
        pass: "x".into(),
        journal,
        trust: Default::default(),
        suggest_difficulty: None,
        channel: Default::default(),
    };
    let (summary, devices) = mine(Source::Pools(vec![config]), devices, options).await;
    println!(
        "pool side: {} accepted, {} rejected",
        pool.stats.accepted.load(Relaxed),
        pool.stats.rejected.load(Relaxed)
    );
    pool.shutdown();
    Ok((summary, devices))
}
