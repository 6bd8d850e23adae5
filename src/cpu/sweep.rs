//! The reference sweeper: sha2's compression function (SHA-NI where the CPU has it) from the
//! header's midstate, one thread. It is the yardstick of `bench` and the `cpu` device.

use crate::device::{DeviceInfo, Reopen, SweepError, Sweeper};
use crate::work::sha256::{Midstate, header_tail_block, sha256d_from_midstate};
use crate::work::target::{candidate_mask, passes_filter};
use crate::work::{Candidate, NonceRange, Work};

pub struct CpuSweeper {
    info: DeviceInfo,
    queued: std::collections::VecDeque<(Work, NonceRange)>,
}

impl CpuSweeper {
    pub fn new() -> Self {
        CpuSweeper {
            info: DeviceInfo {
                name: "CPU reference (sha2, 1 thread)".into(),
                backend: "cpu".into(),
                vendor: String::new(),
                device_type: "Cpu".into(),
                driver: format!("sha2 on {}", std::env::consts::ARCH),
                pci: None,
            },
            queued: Default::default(),
        }
    }
}

impl Default for CpuSweeper {
    fn default() -> Self {
        Self::new()
    }
}

impl Sweeper for CpuSweeper {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// About 30 ms of one core.
    fn preferred_chunk(&self) -> u64 {
        1 << 18
    }

    fn queue(&mut self, work: &Work, range: NonceRange) -> Result<(), SweepError> {
        self.queued.push_back((work.clone(), range));
        Ok(())
    }

    fn next_result(&mut self) -> Result<Option<(NonceRange, Vec<Candidate>)>, SweepError> {
        Ok(self.queued.pop_front().map(|(work, range)| (range, sweep(&work, range))))
    }

    fn reopener(&self) -> Option<std::sync::Arc<dyn Reopen>> {
        Some(std::sync::Arc::new(Fresh))
    }
}

/// The CPU sweeper holds no driver state: a new one is the same device.
struct Fresh;

impl Reopen for Fresh {
    fn reopen(&self) -> Result<Box<dyn Sweeper>, SweepError> {
        Ok(Box::new(CpuSweeper::new()))
    }
}

/// Candidates of `range` in every version of `work`, by the same rule as the kernel
/// (`candidate_mask`), in nonce order.
pub fn sweep(work: &Work, range: NonceRange) -> Vec<Candidate> {
    let midstates: Vec<Midstate> =
        (0..work.versions().len()).map(|i| Midstate::of_header(&work.header_bytes(i))).collect();
    // Versions share the second block.
    let mut tail = header_tail_block(&work.header_bytes(0));
    let mask = candidate_mask(&work.target);
    let mut candidates = Vec::new();
    for nonce in range.iter() {
        tail[12..16].copy_from_slice(&nonce.to_le_bytes());
        for (version, midstate) in midstates.iter().enumerate() {
            if passes_filter(&sha256d_from_midstate(midstate, &tail), mask) {
                candidates.push(Candidate { nonce, version: version as u32 });
            }
        }
    }
    candidates
}
