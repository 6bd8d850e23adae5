//! `wgminer selftest`: real mainnet headers through the device; each must give back its real
//! nonce and hash, and an easy target must give exactly the CPU reference's candidates.

use std::process::ExitCode;

use super::args::DeviceArgs;
use crate::cpu;
use crate::device::Sweeper;
use crate::work::{BlockHash, NonceRange, Target, Work, header_from_hex};

struct Case {
    height: u32,
    header: &'static str,
    hash: &'static str,
    /// The window swept: wrapping past 0xffffffff in two cases.
    start: u32,
    count: u64,
}

const CASES: &[Case] = &[
    Case {
        height: 0,
        header: "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c",
        hash: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        start: 0x7c2b_0000,
        count: 1 << 20,
    },
    Case {
        height: 2500,
        header: "01000000ff34e3060b87c88984de12878bde550112ae4bff4e93dd3ce22cdc36000000000330eb8110843b290eeff9b3b59419eae7ca16ec93eac402fb02bac5a15bbac0b1838449ffff001db4205000",
        hash: "00000000d84724559f1691d916b2ed63a44884d495d155197647ce7667116b16",
        start: 0xffc0_0000,
        count: 0x00a0_0000,
    },
    Case {
        height: 125552,
        header: "0100000081cd02ab7e569e8bcd9317e2fe99f2de44d49ab2b8851ba4a308000000000000e320b6c2fffc8d750423db8b1eb942ae710e951ed797f7affc8892b0f1fc122bc7f5d74df2b9441a42a14695",
        hash: "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d",
        start: 0x9546_0000,
        count: 1 << 20,
    },
    Case {
        height: 277647,
        header: "0200000053e679859867227ce7365a95043041ec3946be2fab2668c80000000000000000c306afc96d3c0258c1952b53c660455e700451635d771fbe235cb08e2931ac36feccc0520ca303195d03ba96",
        hash: "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8",
        start: 0x96b9_0000,
        count: 1 << 20,
    },
    Case {
        height: 702861,
        header: "04e0ff3f5f3b2119529dc4013ff0f427a457bed706e7b5b8dec30900000000000000000022906797f7ab258c0f896c35b2d6725c0554f579af99754b241aec8c76727d4091a45561ebd00e17e3d6da41",
        hash: "000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae",
        start: 0x41da_0000,
        count: 1 << 20,
    },
    Case {
        height: 825100,
        header: "0080e52e93a62bde91b51adf58b19b88df29391948224dbd724300000000000000000000fd5a8c3e32bc7552fe488fcb1959dbf8db4c11f2309f93fd2f2114653cb455650a349e6569d80317716cdaff",
        hash: "00000000000000000000b66aedd4e94bd28c170014e8dcefbf7547dffd1182a6",
        start: 0xffd0_0000,
        count: 0x0040_0000,
    },
    Case {
        height: 881423,
        header: "0060592ee3c96a8a70ca15fe215e99f84ab64c43e1b5d2c43b540100000000000000000076f63a35f1b8b5016d3eb0cce2eebbdf58bf8fbea4e870c8f770346bdfcf622d69c19a678a9a021702fb05ff",
        hash: "0000000000000000000269d52c24ea451225613aab095d90d771d4e29aa96cdd",
        start: 0xff05_0000,
        count: 1 << 20,
    },
    Case {
        height: 910000,
        header: "00a0572be06d4f01a2ed2228dec965539cc8b96512ccde7d2824010000000000000000006f28c30dc748f6b1430fb2b9a5a94b5b34a5df6e318c6cc5c310a1a35b432b59a3ab9d68b32c021719d103e9",
        hash: "0000000000000000000108970acb9522ffd516eae17acddcb1bd16469194a821",
        start: 0xe903_0000,
        count: 1 << 20,
    },
];

/// Nonces of the easy-target case: every one is a candidate, 32 times the candidate buffer.
const OVERFLOW_COUNT: u64 = 1 << 17;

/// Runs every case, printing PASS or FAIL for each; the result is the number of failures.
pub fn run(device: &mut dyn Sweeper) -> anyhow::Result<usize> {
    println!("selftest on {}", device.info());
    let mut failed = 0;
    for case in CASES {
        let (ok, detail) = real_block(device, case, None)?;
        println!("{}  block {:<7} {detail}", if ok { "PASS" } else { "FAIL" }, case.height);
        failed += usize::from(!ok);
    }
    let (ok, detail) = easy_target(device)?;
    println!("{}  overflow      {detail}", if ok { "PASS" } else { "FAIL" });
    failed += usize::from(!ok);
    let total = CASES.len() + 1;
    println!("{} passed, {failed} failed", total - failed);
    Ok(failed)
}

/// Every real block through `device`, each in a window of `window` nonces around its nonce: the
/// height, whether it passed and what was found. For a slow device (a browser's).
pub fn real_blocks(device: &mut dyn Sweeper, window: u64) -> anyhow::Result<Vec<(u32, bool, String)>> {
    CASES.iter().map(|case| real_block(device, case, Some(window)).map(|(ok, d)| (case.height, ok, d))).collect()
}

/// A real block's known nonce in its window, or in `window` nonces around it.
fn real_block(device: &mut dyn Sweeper, case: &Case, window: Option<u64>) -> anyhow::Result<(bool, String)> {
    let header = header_from_hex(case.header)?;
    let expected: BlockHash = case.hash.parse()?;
    let work = Work::block(header)?;
    let (start, count) = match window {
        Some(n) => (header.nonce.wrapping_sub((n / 2) as u32), n),
        None => (case.start, case.count),
    };
    let range = NonceRange::new(start, count).map_err(anyhow::Error::msg)?;
    let candidates = device.sweep(&work, range)?;
    let verified = cpu::verify(&work, range, &candidates);
    let found: Vec<String> = verified.hits.iter().map(|h| format!("{:#010x}", h.nonce)).collect();
    let ok = verified.hits.len() == 1
        && verified.hits[0].nonce == header.nonce
        && verified.hits[0].hash == expected
        && verified.hw_errors.is_empty();
    let detail = format!(
        "window {range}: nonce {:#010x} expected, found [{}], hash {}, hw errors {}",
        header.nonce,
        found.join(", "),
        verified.hits.first().map_or("-".to_string(), |h| h.hash.to_string()),
        verified.hw_errors.len()
    );
    Ok((ok, detail))
}

fn easy_target(device: &mut dyn Sweeper) -> anyhow::Result<(bool, String)> {
    let header = header_from_hex(CASES[0].header)?;
    let work = Work::new(header, Target::from_be_bytes([0xff; 32]));
    let range = NonceRange::new(0xffff_0000, OVERFLOW_COUNT).map_err(anyhow::Error::msg)?;
    let mut got = device.sweep(&work, range)?;
    got.sort_unstable();
    let mut want = cpu::sweep::sweep(&work, range);
    want.sort_unstable();
    let verified = cpu::verify(&work, range, &got);
    let ok = got == want && verified.hits.len() as u64 == OVERFLOW_COUNT && verified.hw_errors.is_empty();
    Ok((ok, format!("window {range}, every nonce a hit: {} found, {} expected", got.len(), want.len())))
}

/// The arguments of `wgminer selftest` (its help is on `main.rs`'s subcommand).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl Args {
    /// Exits 1 when any case fails.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut sweeper = super::open_device(&self.device.device, &self.device.kernel.options())?;
        Ok(if run(sweeper.as_mut())? > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}
