//! The pool table: every source the miner may take work from (pools in priority order, or a
//! node), what each is doing, and which one is in use. The API reads and changes it
//! (cgminer's switchpool / enablepool / disablepool); the Stratum client follows it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::SystemTime;

use crate::stats::{Counts, ShareEvent};
use crate::work::{Difficulty, PoolId};

/// What the API shows of each pool and may change: its counters, the pool in use, and which
/// pools are enabled and preferred (cgminer's switchpool / enablepool / disablepool).
#[derive(Debug)]
pub struct PoolTable {
    entries: Mutex<Vec<PoolEntry>>,
    active: AtomicUsize,
    preferred: AtomicUsize,
    /// A switch the API asked for and the client has not made yet (`usize::MAX`: none).
    requested: AtomicUsize,
    /// Woken when the API changes what the client should mine on.
    pub changed: tokio::sync::Notify,
}

impl Default for PoolTable {
    fn default() -> Self {
        PoolTable {
            entries: Mutex::default(),
            active: AtomicUsize::new(0),
            preferred: AtomicUsize::new(0),
            requested: AtomicUsize::new(usize::MAX),
            changed: tokio::sync::Notify::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PoolEntry {
    pub url: String,
    pub user: String,
    pub enabled: bool,
    pub alive: bool,
    pub jobs: u64,
    /// What became of the shares found on this pool's work.
    pub shares: Counts,
    pub difficulty: f64,
    pub last_share: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolControlError {
    #[error("Invalid pool id {0} - range is 0 - {1}")]
    NoSuchPool(usize, usize),
    #[error("cannot disable the last enabled pool {0}")]
    LastEnabled(usize),
    #[error("pool {0} is disabled: enable it first")]
    Disabled(usize),
}

impl PoolTable {
    pub fn register(&self, url: &str, user: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.push(PoolEntry { url: url.into(), user: user.into(), enabled: true, ..Default::default() });
    }

    /// Every pool's state, and the index of the one in use.
    pub fn snapshot(&self) -> (Vec<PoolEntry>, usize) {
        (self.entries.lock().unwrap_or_else(|p| p.into_inner()).clone(), self.active.load(Relaxed))
    }

    fn update(&self, pool: PoolId, f: impl FnOnce(&mut PoolEntry)) {
        if let Some(entry) = self.entries.lock().unwrap_or_else(|p| p.into_inner()).get_mut(pool.0) {
            f(entry);
        }
    }

    /// A share's step, for the pool whose work it was found on (`Stats::record`'s part).
    pub(crate) fn count(&self, pool: PoolId, event: ShareEvent) {
        self.update(pool, |p| {
            let counter = match event {
                ShareEvent::Found => &mut p.shares.found,
                ShareEvent::Accepted => &mut p.shares.accepted,
                ShareEvent::Rejected => &mut p.shares.rejected,
                ShareEvent::Stale => &mut p.shares.stale,
                ShareEvent::Journaled => &mut p.shares.journaled,
                ShareEvent::Unjournaled => &mut p.shares.unjournaled,
            };
            *counter += 1;
            if matches!(event, ShareEvent::Accepted | ShareEvent::Rejected | ShareEvent::Stale) {
                p.last_share = Some(SystemTime::now());
            }
        });
    }

    /// New work from `pool`: it is alive, at this difficulty.
    pub(crate) fn job(&self, pool: PoolId, difficulty: Difficulty) {
        self.update(pool, |p| {
            p.alive = true;
            p.jobs += 1;
            p.difficulty = difficulty.value();
        });
    }

    /// The connection to `pool` failed.
    pub(crate) fn down(&self, pool: PoolId) {
        self.update(pool, |p| p.alive = false);
    }

    pub fn set_active(&self, index: usize) {
        self.active.store(index, Relaxed);
    }

    pub fn preferred(&self) -> usize {
        self.preferred.load(Relaxed)
    }

    fn check(&self, index: usize) -> Result<std::sync::MutexGuard<'_, Vec<PoolEntry>>, PoolControlError> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if index >= entries.len() {
            return Err(PoolControlError::NoSuchPool(index, entries.len().saturating_sub(1)));
        }
        Ok(entries)
    }

    /// Makes `index` the pool to mine on, and to return to after a failover.
    pub fn switch(&self, index: usize) -> Result<String, PoolControlError> {
        let entries = self.check(index)?;
        if !entries[index].enabled {
            return Err(PoolControlError::Disabled(index));
        }
        self.preferred.store(index, Relaxed);
        self.requested.store(index, Relaxed);
        self.changed.notify_one();
        Ok(entries[index].url.clone())
    }

    pub fn enable(&self, index: usize, enabled: bool) -> Result<String, PoolControlError> {
        let mut entries = self.check(index)?;
        if !enabled && entries.iter().enumerate().all(|(i, e)| i == index || !e.enabled) {
            return Err(PoolControlError::LastEnabled(index));
        }
        entries[index].enabled = enabled;
        self.changed.notify_one();
        Ok(entries[index].url.clone())
    }

    /// The pool after `index`, in priority order, that is enabled (`index` itself when it is
    /// the only one).
    pub fn next_enabled(&self, index: usize) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let n = entries.len().max(1);
        (1..=n).map(|k| (index + k) % n).find(|&i| entries.get(i).is_none_or(|e| e.enabled)).unwrap_or(index)
    }

    /// Where the client should be instead of `active`, if anywhere: the pool the API just
    /// switched to, or the next enabled one when `active` was disabled.
    pub fn wanted(&self, active: usize) -> Option<usize> {
        let requested = self.requested.swap(usize::MAX, Relaxed);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let enabled = |i: usize| entries.get(i).is_none_or(|e| e.enabled);
        if requested != usize::MAX && requested != active && enabled(requested) {
            return Some(requested);
        }
        if !enabled(active) {
            drop(entries);
            return Some(self.next_enabled(active));
        }
        None
    }
}
