//! SRI's real software, installed from crates.io by `.ci/run`: `pool_sv2` 0.7.0 and
//! `translator_sv2` 0.6.0, each run as a child process on loopback with SRI's example config
//! (`config-examples/` of each crate) cut down to the test's addresses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The authority key pair of SRI's example configs (`pool-config-local-sv2-tp-example.toml`,
/// and the translator's `authority_pubkey` for a local pool).
pub const AUTHORITY_PUBLIC: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
pub const AUTHORITY_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

/// How `.ci/run` installs them, for the message of a test that finds one missing.
const INSTALL: &str = "apt-get install capnproto libcapnp-dev && cargo install pool_sv2 --version 0.7.0 --locked --no-default-features && cargo install translator_sv2 --version 0.6.0 --locked --no-default-features";

/// `$WGMINER_<NAME>`, then cargo's bin directory, then `PATH`.
fn binary(name: &str) -> PathBuf {
    let candidates = [
        std::env::var_os(format!("WGMINER_{}", name.to_uppercase())).map(PathBuf::from),
        std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin").join(name)),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin").join(name)),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return found;
    }
    if Command::new(name).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return PathBuf::from(name);
    }
    panic!(
        "SRI's {name} is not installed: `{INSTALL}` (.ci/run does this), or point WGMINER_{} at the binary",
        name.to_uppercase()
    );
}

/// A running SRI process, killed when dropped; its stdout and stderr go to `log`.
pub struct Process {
    child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `name --config FILE` in a directory of its own and waits (bounded) until it listens
/// on `port`.
fn start(name: &str, config: &str, port: u16) -> Process {
    let dir = std::env::temp_dir().join(format!("wgminer-{name}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, config).unwrap();
    let log = dir.join("log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(binary(name))
        .arg("--config")
        .arg(&config_file)
        .current_dir(&dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
    let process = Process { child, log };
    wait_listening(name, port, &process.log);
    process
}

fn wait_listening(name: &str, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{name} did not listen on {port} within 30 s; see {}", log.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `pool_sv2` on `port`, taking templates from `tp`, every share answered
/// (`share_batch_size = 1`; SRI's examples batch 10).
pub fn start_pool(tp: SocketAddr, port: u16) -> Process {
    let config = format!(
        r#"authority_public_key = "{AUTHORITY_PUBLIC}"
authority_secret_key = "{AUTHORITY_SECRET}"
cert_validity_sec = 3600
listen_address = "127.0.0.1:{port}"
coinbase_reward_script = "addr(tb1qa0sm0hxzj0x25rh8gw5xlzwlsfvvyz8u96w3p8)"
server_id = 1
pool_signature = "wgminer test"
shares_per_minute = 60.0
share_batch_size = 1

[template_provider_type.Sv2Tp]
address = "{tp}"
"#
    );
    start("pool_sv2", &config, port)
}

/// `translator_sv2` listening for Stratum v1 miners on `port`, with one SV2 upstream. From
/// `config-examples/testnet4/tproxy-config-local-pool-example.toml`: one aggregated channel,
/// 4-byte extranonce2 for the miners, the worker-hashrate extension offered; vardiff off, so
/// the miners' difficulty is the upstream channel's and every share they find goes up.
pub fn start_translator(upstream: SocketAddr, authority: &str, port: u16, miner_hash_rate: f64) -> Process {
    let config = format!(
        r#"downstream_address = "127.0.0.1"
downstream_port = {port}
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
verify_payout = false
aggregate_channels = true
supported_extensions = [0x0002]

[downstream_difficulty_config]
min_individual_miner_hashrate = {miner_hash_rate:.1}
shares_per_minute = 60.0
enable_vardiff = false
job_keepalive_interval_secs = 60

[[upstreams]]
address = "{}"
port = {}
authority_pubkey = "{authority}"
user_identity = "wgminer-test"
"#,
        upstream.ip(),
        upstream.port()
    );
    start("translator_sv2", &config, port)
}

/// The sum of `new_submits_accepted_count` over the `SubmitSharesSuccess` messages a log shows
/// (mining_sv2's `Display`, which translator_sv2 logs at info for each one it receives:
/// `sv2/channel_manager/mining_message_handler.rs`, `handle_submit_shares_success`).
pub fn accepted_upstream(log: &str) -> u64 {
    const FIELD: &str = "new_submits_accepted_count=";
    log.lines()
        .filter(|line| line.contains("SubmitSharesSuccess("))
        .filter_map(|line| {
            let rest = &line[line.find(FIELD)? + FIELD.len()..];
            rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()
        })
        .sum()
}
