//! `wgminer solo`: check the node (network, address, reachability), then mine on its
//! templates.

use std::process::ExitCode;

use super::args::RunArgs;
use crate::source::gbt::rpc::Auth;
use std::path::PathBuf;
use std::time::Duration;

use super::mine::print_summary;
use crate::device::Sweeper;
use crate::http::Mode;
use crate::miner::Source;
use crate::run::{MineOptions, Summary, Watchers, mine_watched};
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
/// network is reported before any device start-up. The HTTP server and the API start first:
/// they show the node's state while it is awaited.
pub fn run(
    solo: Solo,
    open: impl FnOnce() -> anyhow::Result<Vec<Box<dyn Sweeper>>>,
    options: &MineOptions,
) -> anyhow::Result<Option<Summary>> {
    let runtime = super::runtime()?;
    let started = tokio::time::Instant::now();
    let mut watchers = runtime.block_on(Watchers::start(options, Mode::Solo));
    let connected = runtime.block_on(await_node(&solo, options, &mut watchers, started));
    let Some(connected) = connected else { return Ok(None) };
    let (network, payout) = connected?;
    tracing::info!("node on {}; paying {}", network.to_core_arg(), solo.address);
    let config = SoloConfig { node: solo.node, payout, journal: solo.found_blocks, poll: solo.poll };
    let devices = open()?;
    // --seconds bounds the whole run: the wait for the node and the devices' start count.
    let mut options = options.clone();
    options.duration = options.duration.map(|d| d.saturating_sub(started.elapsed()));
    let (summary, _) = runtime.block_on(mine_watched(Some(watchers), Source::Node(config), devices, &options));
    print_summary(&summary);
    Ok(Some(summary))
}

/// Waits for the node to answer, until the run's deadline, Ctrl-C or the API's `quit`
/// (`None`). Every wait on the node ends with them: its calls run on threads that are left
/// behind, never waited for.
async fn await_node(
    solo: &Solo,
    options: &MineOptions,
    watchers: &mut Watchers,
    started: tokio::time::Instant,
) -> Option<Result<(bitcoin::Network, bitcoin::ScriptBuf), client::SetupError>> {
    let deadline = options.duration.map(|d| started + d);
    let stats = watchers.stats.clone();
    tokio::select! {
        r = client::connect(&solo.node, solo.network, &solo.address, &stats) => Some(r),
        name = crate::run::stop_signal() => {
            tracing::info!("stopping ({name})");
            None
        }
        _ = watchers.quit() => {
            tracing::info!("stopping (API quit)");
            None
        }
        _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
            tracing::warn!("stopping: the node did not answer within --seconds");
            None
        }
    }
}

/// The arguments of `wgminer solo` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// The node's RPC endpoint, e.g. http://127.0.0.1:18443 (regtest's default port)
    #[arg(long, value_name = "URL")]
    pub rpc_url: String,
    /// RPC user (the node's -rpcuser)
    #[arg(long, value_name = "USER", requires = "rpc_password", conflicts_with = "rpc_cookie")]
    pub rpc_user: Option<String>,
    /// RPC password (the node's -rpcpassword)
    #[arg(long, value_name = "PASS", requires = "rpc_user")]
    pub rpc_password: Option<String>,
    /// The node's cookie file instead of a user and password (DATADIR/regtest/.cookie, …)
    #[arg(long, value_name = "PATH")]
    pub rpc_cookie: Option<std::path::PathBuf>,
    /// Address the block reward is paid to (P2PKH, P2SH, P2WPKH, P2WSH or P2TR of the node's network)
    #[arg(long, value_name = "ADDR")]
    pub address: String,
    /// Network the node must be on: main, test, testnet4, signet or regtest (default: the node's)
    #[arg(long, value_name = "NET", value_parser = super::args::parse_network)]
    pub network: Option<bitcoin::Network>,
    /// File where every block found is appended (JSON lines with height, hash and hex)
    #[arg(long, default_value = "wgminer-blocks.jsonl", value_name = "PATH")]
    pub found_blocks: std::path::PathBuf,
    /// Seconds between fresh templates (besides longpoll)
    #[arg(long, default_value_t = 5, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll: u64,
    /// Stop after this many seconds (default: until Ctrl-C)
    #[arg(long, value_name = "S", value_parser = super::args::positive_number)]
    pub seconds: Option<f64>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let options = self.run.options(self.seconds)?;
        let auth = match (self.rpc_user, self.rpc_password, self.rpc_cookie) {
            (Some(user), Some(password), None) => Auth::UserPass { user, password },
            (None, None, Some(path)) => Auth::Cookie(path),
            _ => anyhow::bail!("give --rpc-user and --rpc-password, or --rpc-cookie (the node's .cookie file)"),
        };
        let solo = Solo {
            node: Node { url: self.rpc_url, auth },
            network: self.network,
            address: self.address,
            found_blocks: self.found_blocks,
            poll: std::time::Duration::from_secs(self.poll),
        };
        let devices = &self.run;
        run(solo, || devices.open(), &options)?;
        Ok(ExitCode::SUCCESS)
    }
}
