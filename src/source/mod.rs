//! Where jobs come from: a Stratum v1 or V2 pool (`stratum`) or a node's getblocktemplate (`gbt`).
//! Sources know nothing of devices; they publish `SourceWork` to the scheduler and take
//! verified `Share`s back.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::work::job::Job;
use crate::work::{BlockHash, DeviceId, Extranonce1, Extranonce2, JobId, NonceRange, PoolId, Target, VersionMask};

pub mod gbt;
pub mod stratum;

/// What the scheduler mines: the latest job, with the extranonce space and target that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceWork {
    /// The pool the work came from (for solo, the node), as the counters' view handed it out.
    pub source: PoolId,
    /// Increases with every new job; a device whose work is of an older generation moves on.
    pub generation: u64,
    pub job: Job,
    pub extranonce1: Extranonce1,
    pub extranonce2_size: usize,
    /// What a hit must meet: the pool's share target, or the block target when solo.
    pub target: Target,
    /// Version bits the pool lets the miner roll (BIP310); none when it does not.
    pub version_mask: VersionMask,
    /// The nonces each work unit may take: all of them, unless a node's `noncerange` says less.
    pub nonces: NonceRange,
    /// Seconds the miner may add to the job's ntime once its extranonce2 and version space is
    /// spent (header-only work has no extranonce2); 0 where the source keeps ntime itself.
    pub time_roll: u32,
    /// When the job arrived: the scheduler measures how soon devices move to it.
    pub received: Instant,
}

/// Appends JSON lines to a journal of found work and syncs them, so that what was found
/// survives the miner. One write and one sync for the whole batch.
pub fn append_to_journal(path: &Path, lines: &[serde_json::Value]) -> std::io::Result<()> {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    append_lines(path, text.as_bytes())
}

/// Appends lines already written out (each ending in a newline) and syncs them.
pub fn append_lines(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text)?;
    file.sync_data()
}

/// A journal that cannot take what the miner finds.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {0} is a directory; give a file")]
    Directory(std::path::PathBuf),
    // Not a `source`: the reason is said here once, not again by the error chain.
    #[error("journal {path} cannot be written: {error}")]
    Unwritable { path: std::path::PathBuf, error: std::io::Error },
}

/// Checks at start that the journal can be written: a directory or an unwritable path is an
/// error now, not a lost share later.
pub fn check_journal(path: &Path) -> Result<(), JournalError> {
    if path.is_dir() {
        return Err(JournalError::Directory(path.to_path_buf()));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|error| JournalError::Unwritable { path: path.to_path_buf(), error })
}

/// A hit the CPU has verified, on its way back to its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// The pool whose job this is (for solo, the node), as the counters' view handed it out.
    pub source: PoolId,
    pub job_id: JobId,
    pub extranonce1: Extranonce1,
    pub extranonce2: Extranonce2,
    pub time: u32,
    pub nonce: u32,
    /// The rolled version bits (the header's version within the mask), sent as submit's sixth
    /// parameter; `None` without version rolling.
    pub version_bits: Option<u32>,
    pub hash: BlockHash,
    /// The device that found it, which its outcome is counted to.
    pub device: DeviceId,
}
