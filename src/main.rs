//! The command line: parses arguments and hands them to `wgminer::commands`.

use std::process::ExitCode;
use std::time::Duration;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use wgminer::commands::mine::Source;
use wgminer::commands::{self, DeviceOptions};
use wgminer::config;
use wgminer::device::DeviceSelector;
use wgminer::gpu::shape::{self, ShapeRequest};
use wgminer::pool::PoolOptions;
use wgminer::source::gbt::rpc::{Auth, Node};
use wgminer::source::stratum::PoolConfig;
use wgminer::source::stratum::tls::Trust;
use wgminer::source::stratum::v2::key::AuthorityPair;
use wgminer::source::stratum::v2::session::ChannelKind;
use wgminer::work::{Difficulty, NonceRange, Target, Work, header_from_hex};

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

#[derive(clap::Args, Clone)]
struct DeviceArgs {
    /// Device to use: an index from `wgminer devices`, part of an adapter's name, `auto` (the
    /// fastest kind of adapter found) or `cpu` (the sha2 reference sweeper, one thread)
    #[arg(short, long, default_value = "auto", value_name = "DEVICE")]
    device: DeviceSelector,

    #[command(flatten)]
    kernel: KernelArgs,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Device to mine on; repeat for several (see `wgminer devices`)
    #[arg(short, long, default_value = "auto", value_name = "DEVICE")]
    device: Vec<DeviceSelector>,
    /// Seconds between status lines
    #[arg(long, default_value_t = 5, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    status_every: u64,
    /// File where shares that could not be sent are appended, one JSON line each
    #[arg(long, default_value = "wgminer-journal.jsonl", value_name = "PATH")]
    journal: std::path::PathBuf,
    /// Serve cgminer's monitoring API (read-only) on this address; 127.0.0.1:4028 when given
    /// without a value
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = wgminer::api::DEFAULT_LISTEN)]
    api_listen: Option<String>,
    /// Who may use the API: addresses or networks (10.0.0.0/8), comma-separated; W: in front
    /// allows switchpool, enablepool, disablepool and quit (e.g. W:127.0.0.1)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    api_allow: Vec<wgminer::api::AllowRule>,
    #[command(flatten)]
    kernel: KernelArgs,
}

impl RunArgs {
    fn open(&self) -> anyhow::Result<Vec<Box<dyn wgminer::device::Sweeper>>> {
        self.device.iter().map(|d| commands::open_device(d, &self.kernel.options())).collect()
    }

    fn options(&self, seconds: Option<f64>) -> anyhow::Result<commands::mine::MineOptions> {
        // The parser took only positive numbers.
        let duration = seconds.map(Duration::from_secs_f64);
        let api = match &self.api_listen {
            Some(listen) => {
                Some(wgminer::api::ApiOptions::new(listen, self.api_allow.clone()).map_err(anyhow::Error::msg)?)
            }
            None if !self.api_allow.is_empty() => anyhow::bail!("--api-allow needs --api-listen"),
            None => None,
        };
        Ok(commands::mine::MineOptions {
            duration,
            status_every: Duration::from_secs(self.status_every),
            api,
            until: None,
        })
    }
}

#[derive(clap::Args, Clone)]
struct KernelArgs {
    /// Time each GPU dispatch should take; the dispatch size is tuned to it at start
    #[arg(long, default_value_t = 50, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    dispatch_ms: u64,

    /// Invocations per workgroup (the kernel's @workgroup_size) [default: measured]
    ///
    /// On a device's first use wgminer measures a few shapes (64, 128, 256, 32 invocations ×
    /// 64, 256, 16 nonces), about 100 ms each, and remembers the fastest for that adapter,
    /// driver and kernel in ~/.cache/wgminer/kernel-shapes.json. A value given here wins; the
    /// other dimension is still measured unless given too.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    workgroup_size: Option<u32>,

    /// Nonces each invocation tests [default: measured, see --workgroup-size]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    nonces_per_invocation: Option<u32>,

    /// Measure the kernel's shape again instead of using the remembered one (after a driver
    /// update that the adapter's description does not show, or on a busy machine)
    #[arg(long)]
    retune: bool,
}

impl KernelArgs {
    fn options(&self) -> DeviceOptions {
        DeviceOptions {
            shape: ShapeRequest {
                workgroup_size: self.workgroup_size,
                nonces_per_invocation: self.nonces_per_invocation,
                retune: self.retune,
                cache: shape::default_cache_path(),
            },
            dispatch: Some(Duration::from_millis(self.dispatch_ms)),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// List the adapters wgpu finds on every backend, with the index `--device` takes
    Devices {
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Sweep real mainnet headers on a device: each must give back its real nonce and hash
    ///
    /// Eight blocks from 2009 to 2025 (the genesis block, windows that wrap past 0xffffffff,
    /// version-rolled headers), then a target so easy that every nonce is a hit, which must give
    /// exactly the CPU reference's set. Prints PASS or FAIL per case; exits 1 on any failure.
    Selftest {
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Sweep a nonce range of one header; print each verified hit as a JSON line
    ///
    /// One line per hit (`{"type":"hit","nonce":…,"nonce_hex":…,"hash":…}`), then a summary line
    /// with hashes, seconds, MH/s, hardware errors and the device. The target is the header's own
    /// nBits unless --target or --difficulty gives another.
    Scan {
        /// The 80-byte block header, as 160 hex digits in wire order
        #[arg(long, value_name = "HEX")]
        header: String,
        /// First nonce (decimal, or hex with 0x)
        #[arg(long, default_value = "0", value_parser = parse_u64, value_name = "N")]
        start: u64,
        /// Number of nonces, up to 4294967296 (the whole space); the range wraps past 0xffffffff
        #[arg(long, default_value = "4294967296", value_parser = parse_u64, value_name = "N")]
        count: u64,
        /// Target as 64 hex digits, most significant first (as block explorers print hashes)
        #[arg(long, value_name = "HEX", conflicts_with = "difficulty")]
        target: Option<String>,
        /// Pool difficulty of the target (1 = 0x00000000ffff0000…; fractions allowed)
        #[arg(long, value_name = "D")]
        difficulty: Option<f64>,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Solve a block header on a device: a drop-in for Bitcoin Core's `bitcoin-util grind`
    ///
    /// Prints the header with a nonce whose hash meets the header's own nBits, as hex; only
    /// the nonce changes. Fails as bitcoin-util does, with its words and exit status 1. For
    /// signet operators: `contrib/signet/miner --grind-cmd="wgminer grind" …`.
    Grind {
        /// The 80-byte block header, as 160 hex digits in wire order
        #[arg(value_name = "HEX", num_args = 0..)]
        header: Vec<String>,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Mine on Stratum v1 and Stratum V2 pools
    ///
    /// Several -o give pools in priority order, v1 and V2 mixed: when one is down or silent (no
    /// job for 90 s) the next takes over, and the miner returns to the first as soon as it
    /// answers again.
    /// Verified shares that cannot be sent (the pool away, the miner stopping) are written to
    /// the journal file, never dropped.
    Mine {
        /// Pool URL: stratum+tcp://HOST:PORT, or stratum+ssl:// (stratum+tls://) for TLS, or
        /// stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY for Stratum V2 (the pool publishes its key)
        #[arg(short = 'o', long = "url", value_name = "URL", required = true)]
        urls: Vec<String>,
        /// Worker name, one for each -o (the last one serves the pools after it)
        #[arg(short, long, value_name = "USER", required = true)]
        user: Vec<String>,
        /// Worker password, one for each -o
        #[arg(short, long, default_value = "x", value_name = "PASS")]
        pass: Vec<String>,
        /// PEM file for stratum+ssl:// pools: CA certificates to trust besides the webpki roots,
        /// or the pool's own certificate (a self-signed `openssl req -x509` one too), which is
        /// then trusted as itself, still checked for host name and dates
        #[arg(long, value_name = "PATH")]
        ca_file: Option<std::path::PathBuf>,
        /// Take only the pool certificate with this SHA-256 fingerprint (64 hex digits, colons
        /// allowed: `openssl x509 -noout -fingerprint -sha256 -in pool.pem`)
        #[arg(long, value_name = "HEX", value_parser = wgminer::source::stratum::tls::parse_fingerprint)]
        pool_cert_sha256: Option<[u8; 32]>,
        /// Ask the pools for this share difficulty (mining.suggest_difficulty); on Stratum V2
        /// pools, the least difficulty the channel takes
        #[arg(long, value_name = "D", value_parser = parse_difficulty)]
        suggest_difficulty: Option<Difficulty>,
        /// The channel to open on Stratum V2 pools: extended (the extranonce rolled here, as in
        /// v1) or standard (header-only: version bits and ntime rolled)
        #[arg(long, value_name = "KIND", default_value = "extended")]
        sv2_channel: ChannelKind,
        /// Stop after this many seconds (default: until Ctrl-C)
        #[arg(long, value_name = "S", value_parser = positive_number)]
        seconds: Option<f64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Mine solo on your own node through getblocktemplate: regtest, signet, testnet, testnet4, main
    ///
    /// wgminer builds the block itself (coinbase paying --address, witness commitment, merkle
    /// root) and submits it with submitblock. Fresh templates come by longpoll when the node
    /// offers it, and every --poll seconds. Every block found is appended to --found-blocks
    /// before it is submitted; while the node is unreachable it is retried until the tip moves on.
    Solo {
        /// The node's RPC endpoint, e.g. http://127.0.0.1:18443 (regtest's default port)
        #[arg(long, value_name = "URL")]
        rpc_url: String,
        /// RPC user (the node's -rpcuser)
        #[arg(long, value_name = "USER", requires = "rpc_password", conflicts_with = "rpc_cookie")]
        rpc_user: Option<String>,
        /// RPC password (the node's -rpcpassword)
        #[arg(long, value_name = "PASS", requires = "rpc_user")]
        rpc_password: Option<String>,
        /// The node's cookie file instead of a user and password (DATADIR/regtest/.cookie, …)
        #[arg(long, value_name = "PATH")]
        rpc_cookie: Option<std::path::PathBuf>,
        /// Address the block reward is paid to (P2PKH, P2SH, P2WPKH, P2WSH or P2TR of the node's network)
        #[arg(long, value_name = "ADDR")]
        address: String,
        /// Network the node must be on: main, test, testnet4, signet or regtest (default: the node's)
        #[arg(long, value_name = "NET", value_parser = parse_network)]
        network: Option<bitcoin::Network>,
        /// File where every block found is appended (JSON lines with height, hash and hex)
        #[arg(long, default_value = "wgminer-blocks.jsonl", value_name = "PATH")]
        found_blocks: std::path::PathBuf,
        /// Seconds between fresh templates (besides longpoll)
        #[arg(long, default_value_t = 5, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
        poll: u64,
        /// Stop after this many seconds (default: until Ctrl-C)
        #[arg(long, value_name = "S", value_parser = positive_number)]
        seconds: Option<f64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run the embedded pool and mine against it for a while: no account, no network needed
    Demo {
        /// How long to mine
        #[arg(long, default_value_t = 30.0, value_name = "S", value_parser = positive_number)]
        seconds: f64,
        /// Starting share difficulty (vardiff moves it towards a share every 2 s)
        #[arg(long, default_value_t = 0.001, value_name = "D")]
        difficulty: f64,
        /// Mine over Stratum V2 (Noise, binary messages) instead of v1, on this kind of channel
        #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "extended")]
        sv2: Option<ChannelKind>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run the embedded pool alone, Stratum v1 and optionally V2 (for testing miners)
    Pool {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:3333", value_name = "ADDR")]
        listen: String,
        /// Starting share difficulty
        #[arg(long, default_value_t = 0.001, value_name = "D")]
        difficulty: f64,
        /// Seconds between new chain tips (clean jobs)
        #[arg(long, default_value_t = 30, value_name = "S")]
        job_interval: u64,
        /// Also serve Stratum V2 on this address (the URL with the authority key is printed)
        #[arg(long, value_name = "ADDR")]
        sv2_listen: Option<String>,
        /// File holding the Stratum V2 authority secret key, base58-check as SRI's configs write
        /// `authority_secret_key` (default: a new key for each start)
        #[arg(long, value_name = "PATH", requires = "sv2_listen")]
        sv2_authority_secret: Option<std::path::PathBuf>,
    },
    /// Merge `bench --json` records into a Markdown table and an SVG chart
    ///
    /// Each FILE holds one record per line (`wgminer bench --json >> results.jsonl` on each
    /// machine). The table goes to stdout, fastest device first; the chart to --svg.
    Report {
        /// Files of bench records
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
        /// Where to write the chart
        #[arg(long, default_value = "wgminer-report.svg", value_name = "PATH")]
        svg: std::path::PathBuf,
    },
    /// Show the effective configuration of a command: file, environment and command line merged
    ///
    /// `wgminer --config wgminer.toml config --print mine -o URL` prints what `mine` would
    /// run with, as TOML, each value with where it came from; passwords masked.
    Config {
        /// Print the configuration (the only action so far)
        #[arg(long)]
        print: bool,
        /// The command line to evaluate, as you would run it (default: mine)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        args: Vec<String>,
    },
    /// Measure the hash rate of devices against the sha2 one-thread CPU reference
    Bench {
        /// Seconds each measurement of each device (and the CPU reference) lasts
        #[arg(long, default_value_t = 10.0, value_name = "S", value_parser = positive_number)]
        seconds: f64,
        /// Measurements per device, interleaved; the median is reported, with the spread
        #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
        runs: u64,
        /// Device to measure; repeat for several (see `wgminer devices`)
        #[arg(short, long, default_value = "auto", value_name = "DEVICE")]
        device: Vec<DeviceSelector>,
        /// One JSON record instead of a table: device, vendor, backend, driver, OS, kernel
        /// settings, median MH/s with spread and the CPU reference (`wgminer report` merges them)
        #[arg(long)]
        json: bool,
        /// Then mine through the embedded pool on the first device for as long, and report the
        /// share of its bench rate kept while mining and how fast new jobs reach it
        #[arg(long)]
        mining: bool,
        /// With --mining: seconds between new chain tips (clean jobs)
        #[arg(long, default_value_t = 5, value_name = "S")]
        job_interval: u64,
        /// With --mining: mine over Stratum V2 too, right after v1, on this kind of channel
        #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "extended", requires = "mining")]
        sv2: Option<ChannelKind>,
        /// Then keep every device busy this many minutes (fractions allowed), sampling its rate
        /// every --sample seconds: a laptop's throttling shows as the last minute against the
        /// first; `--json` keeps the series and `wgminer report` draws it
        #[arg(long, value_name = "MINUTES", value_parser = positive_number)]
        sustained: Option<f64>,
        /// With --sustained: seconds per sample
        #[arg(long, default_value_t = 5.0, value_name = "S", value_parser = positive_number)]
        sample: f64,
        #[command(flatten)]
        kernel: KernelArgs,
    },
}

/// `grind`: bitcoin-util's words and exit status 1 for its failures.
fn grind(args: &[String], device: &DeviceArgs) -> anyhow::Result<ExitCode> {
    use commands::grind::{NO_HEADER, UNDECODABLE, UNSATISFIABLE};
    let fail = |message: &str| {
        eprintln!("{message}");
        Ok(ExitCode::FAILURE)
    };
    let [hex] = args else { return fail(NO_HEADER) };
    let Ok(header) = header_from_hex(hex) else { return fail(UNDECODABLE) };
    let mut sweeper = commands::open_device(&device.device, &device.kernel.options())?;
    match commands::grind::grind(sweeper.as_mut(), header)? {
        Some(solved) => {
            println!("{}", bitcoin::hex::DisplayHex::to_lower_hex_string(&wgminer::work::header_bytes(&solved)[..]));
            Ok(ExitCode::SUCCESS)
        }
        None => fail(UNSATISFIABLE),
    }
}

/// `config --print [COMMAND ARGS…]`: parses the command line given as the real one would be,
/// with the same config file.
fn print_config(print: bool, args: Vec<String>, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    if !print {
        anyhow::bail!("say what to do: `wgminer config --print [COMMAND ARGS…]`");
    }
    let mut argv: Vec<OsString> = vec!["wgminer".into()];
    if let Some(path) = file {
        argv.extend(["--config".into(), path.into()]);
    }
    argv.extend(if args.is_empty() { vec!["mine".to_string()] } else { args }.into_iter().map(OsString::from));
    let (matches, from_file) = parse_merged(argv, false)?;
    commands::config::print(&Cli::command(), &matches, &from_file, file)
}

/// The header and nonce range `scan` sweeps, and the target: --target, --difficulty or the
/// header's own nBits.
fn scan_work(
    header: &str,
    start: u64,
    count: u64,
    target: Option<String>,
    difficulty: Option<f64>,
) -> anyhow::Result<(Work, NonceRange)> {
    let header = header_from_hex(header)?;
    let start = u32::try_from(start).map_err(|_| anyhow::anyhow!("--start {start} is past 0xffffffff"))?;
    let range = NonceRange::new(start, count)?;
    let work = match (target, difficulty) {
        (Some(hex), _) => Work::new(
            header,
            Target::from_unprefixed_hex(hex.trim_start_matches("0x"))
                .map_err(|e| anyhow::anyhow!("--target must be 64 hex digits: {e}"))?,
        ),
        (None, Some(d)) => Work::new(header, Difficulty::new(d)?.to_target()),
        (None, None) => Work::block(header)?,
    };
    Ok((work, range))
}

/// The pools of `mine`: each -u/-p belongs to the -o in the same position; a pool without
/// one takes the last given.
fn pool_configs(
    urls: &[String],
    user: &[String],
    pass: &[String],
    trust: &Trust,
    suggest_difficulty: Option<Difficulty>,
    channel: ChannelKind,
    journal: &std::path::Path,
) -> anyhow::Result<Vec<PoolConfig>> {
    let pick = |v: &[String], i: usize| v.get(i).or(v.last()).cloned().unwrap_or_default();
    urls.iter()
        .enumerate()
        .map(|(i, url)| {
            let config = PoolConfig {
                url: url.clone(),
                user: pick(user, i),
                pass: pick(pass, i),
                journal: journal.to_path_buf(),
                trust: trust.clone(),
                suggest_difficulty,
                channel,
            };
            config.endpoint().map_err(anyhow::Error::msg).map(|_| config)
        })
        .collect()
}

/// A command-line value that cannot be used, in words clap prints beside the option.
#[derive(Debug, thiserror::Error)]
enum ValueError {
    #[error("expected a positive number up to 1e9, got `{0}`")]
    NotPositive(String),
    #[error("`{text}` is not a number: {reason}")]
    NotANumber { text: String, reason: String },
    #[error(transparent)]
    Difficulty(#[from] wgminer::work::target::DifficultyError),
    #[error("unknown network `{0}`: use main, test, testnet4, signet or regtest")]
    Network(String),
}

/// A number above zero (seconds, minutes), and at most 1e9: a `Duration` made of it cannot
/// overflow, even counted in minutes.
fn positive_number(s: &str) -> Result<f64, ValueError> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1e9 => Ok(v),
        _ => Err(ValueError::NotPositive(s.to_string())),
    }
}

fn parse_u64(s: &str) -> Result<u64, ValueError> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| ValueError::NotANumber { text: s.to_string(), reason: e.to_string() })
}

fn parse_difficulty(s: &str) -> Result<Difficulty, ValueError> {
    let value: f64 = s.parse().map_err(|e: std::num::ParseFloatError| ValueError::NotANumber {
        text: s.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Difficulty::new(value)?)
}

fn parse_network(s: &str) -> Result<bitcoin::Network, ValueError> {
    wgminer::source::gbt::client::network_from_chain(s).ok_or_else(|| ValueError::Network(s.to_string()))
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
    wgminer::gpu::adapter::widen_lavapipe_vectors();
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
        Command::Report { files, svg } => commands::report::run(&files, &svg)?,
        Command::Config { print, args } => print_config(print, args, cli.config.as_deref())?,
        Command::Devices { json } => commands::devices::run(json, shape::default_cache_path().as_deref())?,
        Command::Selftest { device } => {
            let mut sweeper = commands::open_device(&device.device, &device.kernel.options())?;
            if commands::selftest::run(sweeper.as_mut())? > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Scan { header, start, count, target, difficulty, device } => {
            let (work, range) = scan_work(&header, start, count, target, difficulty)?;
            let mut sweeper = commands::open_device(&device.device, &device.kernel.options())?;
            commands::scan::run(sweeper.as_mut(), &work, range)?;
        }
        Command::Grind { header, device } => return grind(&header, &device),
        Command::Mine {
            urls,
            user,
            pass,
            ca_file,
            pool_cert_sha256,
            suggest_difficulty,
            sv2_channel,
            seconds,
            run,
        } => {
            let options = run.options(seconds)?;
            let trust = Trust { ca_file, cert_sha256: pool_cert_sha256 };
            let pools = pool_configs(&urls, &user, &pass, &trust, suggest_difficulty, sv2_channel, &run.journal)?;
            wgminer::source::check_journal(&run.journal)?;
            commands::mine::run(Source::Pools(pools), run.open()?, &options)?;
        }
        Command::Solo {
            rpc_url,
            rpc_user,
            rpc_password,
            rpc_cookie,
            address,
            network,
            found_blocks,
            poll,
            seconds,
            run,
        } => {
            let options = run.options(seconds)?;
            let auth = match (rpc_user, rpc_password, rpc_cookie) {
                (Some(user), Some(password), None) => Auth::UserPass { user, password },
                (None, None, Some(path)) => Auth::Cookie(path),
                _ => anyhow::bail!("give --rpc-user and --rpc-password, or --rpc-cookie (the node's .cookie file)"),
            };
            let solo = commands::solo::Solo {
                node: Node { url: rpc_url, auth },
                network,
                address,
                found_blocks,
                poll: Duration::from_secs(poll),
            };
            commands::solo::run(solo, || run.open(), &options)?;
        }
        Command::Demo { seconds, difficulty, sv2, run } => {
            let options = run.options(Some(seconds))?;
            let pool = PoolOptions { difficulty: Difficulty::new(difficulty)?.value(), ..Default::default() };
            wgminer::source::check_journal(&run.journal)?;
            commands::demo::run(run.open()?, &options, pool, run.journal.clone(), sv2)?;
        }
        Command::Pool { listen, difficulty, job_interval, sv2_listen, sv2_authority_secret } => {
            let options = PoolOptions {
                difficulty: Difficulty::new(difficulty)?.value(),
                job_interval: Duration::from_secs(job_interval.max(1)),
                ..Default::default()
            };
            let keys = match &sv2_authority_secret {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("--sv2-authority-secret {}: {e}", path.display()))?;
                    AuthorityPair::parse_secret(&text)
                        .map_err(|e| anyhow::anyhow!("--sv2-authority-secret {}: {e}", path.display()))?
                }
                None => AuthorityPair::generate(),
            };
            commands::pool::run(&listen, sv2_listen.as_deref().map(|l| (l, keys)), options)?;
        }
        Command::Bench { seconds, runs, device, json, mining, job_interval, sv2, sustained, sample, kernel } => {
            let bench = commands::bench::BenchOptions {
                seconds,
                runs: runs as usize,
                json,
                mining: mining.then(|| Duration::from_secs(job_interval.max(1))),
                sustained: sustained.map(|minutes| Duration::from_secs_f64(minutes * 60.0)),
                sample: Duration::from_secs_f64(sample),
                sv2,
            };
            commands::bench::run(&device, &kernel.options(), &bench)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
