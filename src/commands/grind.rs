//! `wgminer grind HEADER`: a drop-in for Bitcoin Core's `bitcoin-util grind`, which
//! `contrib/signet/miner` runs through `--grind-cmd` to solve each signed signet block. The same
//! argument (the 80-byte header in hex), the same output (the header with a nonce whose hash
//! meets the header's own nBits, hex, on stdout) and the same failures, on stderr with exit
//! status 1: "Must specify block header to grind", "Could not decode block header", "Could not
//! satisfy difficulty target". As bitcoin-util does (src/bitcoin-util.cpp, `Grind`), only the
//! nonce changes: when none of the 2^32 nonces is enough, it fails, and the caller (the signet
//! miner) moves the time and asks again.

use std::process::ExitCode;

use super::args::DeviceArgs;
use crate::cpu;
use crate::device::Sweeper;
use crate::work::{Header, NonceRange, Target, Work};

/// Nonces per dispatch round: a fraction of a second on a GPU, a few on lavapipe.
const CHUNK: u64 = 1 << 26;

/// What `grind` says when it fails, word for word bitcoin-util's.
pub const NO_HEADER: &str = "Must specify block header to grind";
pub const UNDECODABLE: &str = "Could not decode block header";
pub const UNSATISFIABLE: &str = "Could not satisfy difficulty target";

/// The header with the lowest nonce that meets its nBits, or `None` when no nonce does (or
/// nBits is negative, overflowing or zero, which bitcoin-util cannot satisfy either). Every hit
/// is verified on the CPU before it counts.
pub fn grind(device: &mut dyn Sweeper, header: Header) -> anyhow::Result<Option<Header>> {
    // bitcoin-util gives up at once on a zero, negative or overflowing target.
    let work = match Work::block(header) {
        Ok(work) if work.target != Target::ZERO => work,
        _ => return Ok(None),
    };
    let mut rest = NonceRange::FULL_RANGE;
    while rest.count > 0 {
        let (chunk, tail) = rest.split_at(CHUNK);
        rest = tail;
        let candidates = device.sweep(&work, chunk)?;
        let verified = cpu::verify(&work, chunk, &candidates);
        for error in &verified.hw_errors {
            tracing::warn!("hardware error: {} reported {error}", device.info().name);
        }
        if let Some(hit) = verified.hits.first() {
            return Ok(Some(Header { nonce: hit.nonce, ..header }));
        }
    }
    Ok(None)
}

/// The arguments of `wgminer grind` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    /// The 80-byte block header, as 160 hex digits in wire order
    #[arg(value_name = "HEX", num_args = 0..)]
    pub header: Vec<String>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl Args {
    /// bitcoin-util's words and exit status 1 for its failures.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let fail = |message: &str| {
            eprintln!("{message}");
            Ok(ExitCode::FAILURE)
        };
        let [hex] = &self.header[..] else { return fail(NO_HEADER) };
        let Ok(header) = crate::work::header_from_hex(hex) else { return fail(UNDECODABLE) };
        let mut sweeper = super::open_device(&self.device.device, &self.device.kernel.options())?;
        match grind(sweeper.as_mut(), header)? {
            Some(solved) => {
                let bytes = crate::work::header_bytes(&solved);
                println!("{}", bitcoin::hex::DisplayHex::to_lower_hex_string(&bytes[..]));
                Ok(ExitCode::SUCCESS)
            }
            None => fail(UNSATISFIABLE),
        }
    }
}
