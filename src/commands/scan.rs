//! `wgminer scan`: sweep a nonce range of one header and print every verified hit as a JSON
//! line, then a summary line. The range is swept in chunks so that hits appear as they are found.

use std::io::Write;
use std::time::Instant;

use serde_json::json;

use crate::cpu;
use crate::device::Sweeper;
use crate::work::{NonceRange, Work};

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
            let line = json!({"type": "hit", "nonce": hit.nonce, "nonce_hex": format!("{:08x}", hit.nonce), "hash": hit.hash.to_string()});
            writeln!(out, "{line}")?;
        }
        for error in &verified.hw_errors {
            eprintln!(
                "hardware error: {} reported nonce {:#010x}, whose hash {} does not meet the target",
                device.info().name,
                error.nonce,
                error.hash
            );
        }
        out.flush()?;
        hits += verified.hits.len();
        hw_errors += verified.hw_errors.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = json!({
        "type": "summary",
        "hashes": range.count,
        "hits": hits,
        "seconds": seconds,
        "mhs": range.count as f64 / seconds / 1e6,
        "hw_errors": hw_errors,
        "device": device.info(),
    });
    writeln!(out, "{summary}")?;
    Ok(())
}
