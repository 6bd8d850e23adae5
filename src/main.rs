//! The command line, and nothing else: clap parses it (with the config file and the
//! environment layered under it), and each subcommand's arguments, which live with the
//! subcommand in `wgminer::commands`, run it.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use wgminer::commands;
use wgminer::config;

#[derive(Parser)]
#[command(
    name = "wgminer",
    version,
    about = "A portable GPU Bitcoin miner: one WGSL SHA-256d kernel on every GPU that wgpu reaches",
    long_about = "A portable GPU Bitcoin miner: one WGSL SHA-256d kernel on every GPU that wgpu \
reaches (Vulkan, Metal, DX12, GL). Every hit a GPU reports is hashed again on the CPU before it \
counts; a wrong one is a hardware error, counted and never submitted.\n\n\
Start with `wgminer demo` (the embedded pool: no account, no network), then `wgminer devices`, \
`wgminer selftest` and `wgminer bench`; `wgminer mine -o URL -u USER` mines on a pool.",
    after_help = "No GPU? On Debian or Ubuntu, `sudo apt-get install mesa-vulkan-drivers` gives lavapipe, \
a Vulkan driver that runs the kernel on the CPU."
)]
struct Cli {
    /// TOML file of options (their long names; pools as [[pool]] tables). The command line
    /// wins over the environment (WGMINER_<OPTION>), which wins over the file
    #[arg(long, global = true, value_name = "PATH", env = "WGMINER_CONFIG")]
    config: Option<std::path::PathBuf>,

    /// Least important events to log: error, warn, info, debug or trace
    #[arg(long, global = true, default_value = "info", value_name = "LEVEL", env = "WGMINER_LOG_LEVEL")]
    log_level: tracing::Level,

    /// Events as plain text or as JSON objects, one per line
    #[arg(long, global = true, value_enum, default_value = "text", env = "WGMINER_LOG_FORMAT")]
    log_format: wgminer::logging::LogFormat,

    /// Append events to this file instead of writing them to stderr
    #[arg(long, global = true, value_name = "PATH", env = "WGMINER_LOG_FILE")]
    log_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the adapters wgpu finds on every backend, with the index `--device` takes
    Devices(commands::devices::Args),
    /// Sweep real mainnet headers on a device: each must give back its real nonce and hash
    ///
    /// Eight blocks from 2009 to 2025 (the genesis block, windows that wrap past 0xffffffff,
    /// version-rolled headers), then a target so easy that every nonce is a hit, which must give
    /// exactly the CPU reference's set. Prints PASS or FAIL per case; exits 1 on any failure.
    Selftest(commands::selftest::Args),
    /// Sweep a nonce range of one header; print each verified hit as a JSON line
    ///
    /// One line per hit (`{"type":"hit","nonce":…,"nonce_hex":…,"hash":…}`), then a summary line
    /// with hashes, seconds, MH/s, hardware errors and the device. The target is the header's own
    /// nBits unless --target or --difficulty gives another.
    Scan(commands::scan::Args),
    /// Solve a block header on a device: a drop-in for Bitcoin Core's `bitcoin-util grind`
    ///
    /// Prints the header with a nonce whose hash meets the header's own nBits, as hex; only
    /// the nonce changes. Fails as bitcoin-util does, with its words and exit status 1. For
    /// signet operators: `contrib/signet/miner --grind-cmd="wgminer grind" …`.
    Grind(commands::grind::Args),
    /// Mine on Stratum v1 and Stratum V2 pools
    ///
    /// Several -o give pools in priority order, v1 and V2 mixed: when one is down or silent (no
    /// job for 90 s) the next takes over, and the miner returns to the first as soon as it
    /// answers again.
    /// Verified shares that cannot be sent (the pool away, the miner stopping) are written to
    /// the journal file, never dropped.
    Mine(commands::mine::Args),
    /// Mine solo on your own node through getblocktemplate: regtest, signet, testnet, testnet4, main
    ///
    /// wgminer builds the block itself (coinbase paying --address, witness commitment, merkle
    /// root) and submits it with submitblock. Fresh templates come by longpoll when the node
    /// offers it, and every --poll seconds. Every block found is appended to --found-blocks
    /// before it is submitted; while the node is unreachable it is retried until the tip moves on.
    Solo(commands::solo::Args),
    /// Run the embedded pool and mine against it for a while: no account, no network needed
    Demo(commands::demo::Args),
    /// Run the embedded pool alone, Stratum v1 and optionally V2 (for testing miners)
    Pool(commands::pool::Args),
    /// Merge `bench --json` records into a Markdown table and an SVG chart
    ///
    /// Each FILE holds one record per line (`wgminer bench --json >> results.jsonl` on each
    /// machine). The table goes to stdout, fastest device first; the chart to --svg.
    Report(commands::report::Args),
    /// Show the effective configuration of a command: file, environment and command line merged
    ///
    /// `wgminer --config wgminer.toml config --print mine -o URL` prints what `mine` would
    /// run with, as TOML, each value with where it came from; passwords masked.
    Config(commands::config::Args),
    /// Measure the hash rate of devices against the sha2 one-thread CPU reference
    Bench(commands::bench::Args),
    /// Print a completion script for your shell: bash, zsh, fish, elvish or powershell
    ///
    /// bash: `wgminer completions bash > ~/.local/share/bash-completion/completions/wgminer`;
    /// zsh: into a directory of your $fpath, as `_wgminer`; fish:
    /// `wgminer completions fish > ~/.config/fish/completions/wgminer.fish`.
    Completions(commands::completions::Args),
    /// Print the manual page (roff), or write a page per subcommand with --dir
    ///
    /// `wgminer man | man -l -` reads it; `wgminer man --dir /usr/local/share/man/man1` installs
    /// wgminer(1) and wgminer-mine(1), wgminer-solo(1), ….
    Man(commands::man::Args),
}

/// Parses `argv` with the config file merged in under the command line and environment.
/// `strict: false` tolerates missing required options (for `config --print`). Also returns
/// the options the file set.
fn parse_merged(argv: Vec<OsString>, strict: bool) -> anyhow::Result<(clap::ArgMatches, Vec<String>)> {
    let root = config::with_env(Cli::command());
    let first = match root.clone().ignore_errors(true).try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => e.exit(), // --help, --version
    };
    let mut argv = argv;
    let mut from_file = Vec::new();
    if let (Some(path), Some((name, matches))) = (first.get_one::<std::path::PathBuf>("config"), first.subcommand()) {
        if name != "config" {
            let file = config::ConfigFile::load(path)?;
            let sub = root.find_subcommand(name).expect("a parsed subcommand exists");
            let extra = file.arguments(&root, sub, matches)?;
            from_file = extra
                .iter()
                .filter_map(|a| a.to_str()?.strip_prefix("--")?.split('=').next().map(String::from))
                .collect();
            argv.extend(extra);
        }
    }
    let root = if strict { root } else { root.ignore_errors(true) };
    Ok((root.try_get_matches_from(&argv).unwrap_or_else(|e| e.exit()), from_file))
}

fn main() -> ExitCode {
    wgminer::gpu::adapter::prepare_driver_environment();
    let cli = parse_merged(std::env::args_os().collect(), true).and_then(|(m, _)| Ok(Cli::from_arg_matches(&m)?));
    match cli.and_then(run) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wgminer: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log = wgminer::logging::LogOptions { level: cli.log_level, format: cli.log_format, file: cli.log_file.clone() };
    wgminer::logging::init(&log)?;
    match cli.command {
        Command::Devices(args) => args.run(),
        Command::Selftest(args) => args.run(),
        Command::Scan(args) => args.run(),
        Command::Grind(args) => args.run(),
        Command::Mine(args) => args.run(),
        Command::Solo(args) => args.run(),
        Command::Demo(args) => args.run(),
        Command::Pool(args) => args.run(),
        Command::Report(args) => args.run(),
        Command::Bench(args) => args.run(),
        Command::Config(args) => args.run(&Cli::command(), cli.config.as_deref(), &|argv| parse_merged(argv, false)),
        Command::Completions(args) => args.run(Cli::command()),
        Command::Man(args) => args.run(config::with_env(Cli::command())),
    }
}
