//! `wgminer scan`: sweep a nonce range of one header and print every verified hit as a JSON
//! line, then a summary line. The range is swept in chunks so that hits appear as they are found.

use std::process::ExitCode;

use super::args::DeviceArgs;
use std::io::Write;
use std::time::Instant;

use serde_json::json;

use crate::cpu;
use crate::device::Sweeper;
use crate::work::{MAX_VERSIONS, NonceRange, Work};

/// Nonces per chunk: a few seconds on lavapipe, a fraction of one on a real GPU.
const CHUNK: u64 = 1 << 26;

pub fn run(device: &mut dyn Sweeper, work: &Work, range: NonceRange) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let (mut hits, mut hw_errors) = (0usize, 0usize);
    let mut rest = range;
    while rest.count > 0 {
        let (chunk, tail) = rest.split_at(CHUNK);
        rest = tail;
        let candidates = device.sweep(work, chunk)?;
        let verified = cpu::verify(work, chunk, &candidates);
        for hit in &verified.hits {
            let line = json!({"type": "hit", "nonce": hit.nonce, "nonce_hex": format!("{:08x}", hit.nonce), "version_hex": format!("{:08x}", hit.version), "hash": hit.hash.to_string()});
            writeln!(out, "{line}")?;
        }
        for error in &verified.hw_errors {
            eprintln!("hardware error: {} reported {error}", device.info().name);
        }
        out.flush()?;
        hits += verified.hits.len();
        hw_errors += verified.hw_errors.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = json!({
        "type": "summary",
        "hashes": work.hashes(range),
        "hits": hits,
        "seconds": seconds,
        "mhs": work.hashes(range) as f64 / seconds / 1e6,
        "hw_errors": hw_errors,
        "device": device.info(),
    });
    writeln!(out, "{summary}")?;
    Ok(())
}

fn parse_version(s: &str) -> Result<u32, crate::work::HexError> {
    crate::work::hex_u32(s.trim_start_matches("0x"))
}

/// The arguments of `wgminer scan` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// The 80-byte block header, as 160 hex digits in wire order
    #[arg(long, value_name = "HEX")]
    pub header: String,
    /// First nonce (decimal, or hex with 0x)
    #[arg(long, default_value = "0", value_parser = super::args::parse_u64, value_name = "N")]
    pub start: u64,
    /// Number of nonces, up to 4294967296 (the whole space); the range wraps past 0xffffffff
    #[arg(long, default_value = "4294967296", value_parser = super::args::parse_u64, value_name = "N")]
    pub count: u64,
    /// Target as 64 hex digits, most significant first (as block explorers print hashes)
    #[arg(long, value_name = "HEX", conflicts_with = "difficulty")]
    pub target: Option<String>,
    /// Pool difficulty of the target (1 = 0x00000000ffff0000…; fractions allowed)
    #[arg(long, value_name = "D")]
    pub difficulty: Option<f64>,
    /// Versions to hash with each nonce instead of the header's own, up to 8, as 8 hex digits
    /// each (a pool's rolled versions: 20000000,20002000,…)
    #[arg(long, value_name = "HEX,…", value_delimiter = ',', num_args = 1.., value_parser = parse_version)]
    pub versions: Vec<u32>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (work, range) = self.work()?;
        let mut sweeper = super::open_device(&self.device.device, &self.device.kernel.options())?;
        run(sweeper.as_mut(), &work, range)?;
        Ok(ExitCode::SUCCESS)
    }

    /// The header and nonce range to sweep, and the target: --target, --difficulty or the
    /// header's own nBits.
    fn work(&self) -> anyhow::Result<(Work, NonceRange)> {
        let header = crate::work::header_from_hex(&self.header)?;
        let start = self.start;
        let start = u32::try_from(start).map_err(|_| anyhow::anyhow!("--start {start} is past 0xffffffff"))?;
        let range = NonceRange::new(start, self.count)?;
        let work = match (&self.target, self.difficulty) {
            (Some(hex), _) => Work::new(
                header,
                crate::work::Target::from_unprefixed_hex(hex.trim_start_matches("0x"))
                    .map_err(|e| anyhow::anyhow!("--target must be 64 hex digits: {e}"))?,
            ),
            (None, Some(d)) => Work::new(header, crate::work::Difficulty::new(d)?.to_target()),
            (None, None) => Work::block(header)?,
        };
        if self.versions.len() > MAX_VERSIONS {
            anyhow::bail!("--versions takes at most {MAX_VERSIONS} versions, got {}", self.versions.len());
        }
        Ok((Work::with_versions(work.header, work.target, &self.versions), range))
    }
}
