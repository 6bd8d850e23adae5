//! What the API shows of each source (pools in priority order, or a node): its counters, its
//! state, and which pool is in use, preferred and enabled. A view, changed only by the events
//! `Stats::record` takes; the choice of pool is the failover policy's
//! (`source::stratum::failover`), which reports it as `Event::PoolChoice`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{Counts, ShareEvent};
use crate::work::{Difficulty, PoolId};

#[derive(Debug, Default)]
pub struct PoolViews {
    inner: Mutex<Pools>,
}

/// Every pool's state, and which one is in use and preferred.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    pub entries: Vec<PoolView>,
    pub active: PoolId,
    pub preferred: PoolId,
}

#[derive(Debug, Clone, Default)]
pub struct PoolView {
    pub url: String,
    pub user: String,
    pub enabled: bool,
    pub alive: bool,
    pub jobs: u64,
    /// What became of the shares found on this pool's work.
    pub shares: Counts,
    pub difficulty: f64,
    pub last_share: Option<SystemTime>,
    /// Why the last connection failed, in the log's words.
    pub last_failure: Option<String>,
    /// Submissions answered, and their round trips added up.
    pub answers: u64,
    pub answer_time: Duration,
}

impl PoolView {
    /// The mean round trip of a submission, once one was answered.
    pub fn mean_latency(&self) -> Option<Duration> {
        (self.answers > 0).then(|| self.answer_time.div_f64(self.answers as f64))
    }
}

impl PoolViews {
    pub(super) fn register(&self, url: &str, user: &str) -> PoolId {
        let mut pools = self.lock();
        pools.entries.push(PoolView { url: url.into(), user: user.into(), enabled: true, ..Default::default() });
        PoolId(pools.entries.len() - 1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pools> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn snapshot(&self) -> Pools {
        self.lock().clone()
    }

    fn update(&self, pool: PoolId, f: impl FnOnce(&mut PoolView)) {
        if let Some(entry) = self.lock().entries.get_mut(pool.0) {
            f(entry);
        }
    }

    /// A share's step, for the pool whose work it was found on.
    pub(super) fn count(&self, pool: PoolId, event: ShareEvent) {
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
    pub(super) fn job(&self, pool: PoolId, difficulty: Difficulty) {
        self.update(pool, |p| {
            p.alive = true;
            p.jobs += 1;
            p.difficulty = difficulty.value();
        });
    }

    pub(super) fn answer(&self, pool: PoolId, latency: Duration) {
        self.update(pool, |p| {
            p.answers += 1;
            p.answer_time += latency;
        });
    }

    pub(super) fn down(&self, pool: PoolId, reason: &str) {
        self.update(pool, |p| {
            p.alive = false;
            p.last_failure = Some(reason.to_string());
        });
    }

    /// What the failover policy chose.
    pub(super) fn choice(&self, active: PoolId, preferred: PoolId, enabled: &[bool]) {
        let mut pools = self.lock();
        pools.active = active;
        pools.preferred = preferred;
        for (entry, enabled) in pools.entries.iter_mut().zip(enabled) {
            entry.enabled = *enabled;
        }
    }
}
