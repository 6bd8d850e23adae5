//! `wgminer solo`: check the node (network, address, reachability), then mine on its
//! templates.

use std::path::PathBuf;
use std::time::Duration;

use super::mine::{MineOptions, Source, Summary, mine, print_summary};
use crate::device::Sweeper;
use crate::source::gbt::client::{self, SoloConfig};
use crate::source::gbt::rpc::Node;

pub struct Solo {
    pub node: Node,
    /// The network the node must be on; `None` takes the node's.
    pub network: Option<bitcoin::Network>,
    pub address: String,
    pub found_blocks: PathBuf,
    pub poll: Duration,
}

/// Opens the devices (`open`) only once the node has answered, so that a wrong password or
/// network is reported before any device start-up.
pub fn run(
    solo: Solo,
    open: impl FnOnce() -> anyhow::Result<Vec<Box<dyn Sweeper>>>,
    options: &MineOptions,
) -> anyhow::Result<Option<Summary>> {
    let runtime = super::runtime()?;
    // --seconds bounds the whole run, the wait for a node that is down or slow included.
    let deadline = options.duration;
    let connected = runtime.block_on(async {
        tokio::select! {
            r = client::connect(&solo.node, solo.network, &solo.address) => Some(r),
            _ = super::stop_signal() => None,
            _ = async { tokio::time::sleep(deadline.unwrap_or_default()).await }, if deadline.is_some() => {
                tracing::warn!("stopping: the node did not answer within --seconds");
                None
            }
        }
    });
    let Some(connected) = connected else { return Ok(None) };
    let (network, payout) = connected?;
    tracing::info!("node on {}; paying {}", network.to_core_arg(), solo.address);
    let config = SoloConfig { node: solo.node, payout, journal: solo.found_blocks, poll: solo.poll };
    let devices = open()?;
    let (summary, _) = runtime.block_on(mine(Source::Node(config), devices, options));
    print_summary(&summary);
    Ok(Some(summary))
}
