//! The pool list and the choice of the next connection, sans I/O: cgminer's failover-only
//! strategy. Pools are in priority order; when one fails the next enabled one is tried at
//! once, and after a whole round the wait grows (1 s doubling to 60 s, with jitter). A
//! `client.reconnect` is followed once, to the same host only, with the scheme, TLS settings
//! and certificate checks of the pool it came from.

use std::time::Duration;

use super::pool_url::{Endpoint, PoolConfig, UrlError};
use crate::wire::stratum_v1::Redirect;
use crate::work::PoolId;

/// While mining on a backup pool, the first pool is tried this often; once it answers, the
/// miner returns to it.
pub const FAILBACK_PROBE: Duration = Duration::from_secs(5);

/// A `client.reconnect` wait is honoured up to this long.
pub const MAX_REDIRECT_WAIT: Duration = Duration::from_secs(300);

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The next connection: which pool, and after how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub pool: PoolId,
    pub after: Duration,
}

/// What the API may ask of the pool choice (cgminer's switchpool / enablepool / disablepool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolCommand {
    Switch(PoolId),
    Enable(PoolId),
    Disable(PoolId),
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

/// The one place that chooses the next pool: after a failure, a redirect, or a command.
#[derive(Debug)]
pub struct Failover {
    /// The pools in priority order, as the counters' view handed out their ids, and whether
    /// each is enabled.
    pools: Vec<(PoolId, bool)>,
    /// The pool to mine on whenever it answers (the first, or the one switched to).
    preferred: PoolId,
    /// A switch asked for and not made yet.
    requested: Option<PoolId>,
    backoff: Duration,
    /// Where the next connection to this pool goes instead of its URL, once.
    redirect: Option<(PoolId, Endpoint)>,
}

impl Failover {
    /// The policy for `pools`, in priority order, all enabled, the first preferred.
    pub fn new(pools: impl IntoIterator<Item = PoolId>) -> Failover {
        let pools: Vec<(PoolId, bool)> = pools.into_iter().map(|pool| (pool, true)).collect();
        Failover {
            preferred: pools.first().map(|(pool, _)| *pool).unwrap_or_default(),
            pools,
            requested: None,
            backoff: MIN_BACKOFF,
            redirect: None,
        }
    }

    pub fn preferred(&self) -> PoolId {
        self.preferred
    }

    /// Which pools are enabled, in priority order.
    pub fn enabled(&self) -> Vec<bool> {
        self.pools.iter().map(|(_, enabled)| *enabled).collect()
    }

    fn place(&self, pool: PoolId) -> Option<usize> {
        self.pools.iter().position(|(p, _)| *p == pool)
    }

    fn is_enabled(&self, pool: PoolId) -> bool {
        self.place(pool).is_some_and(|i| self.pools[i].1)
    }

    /// Carries out a command; the pool's id is checked here. Returns the pool it names.
    pub fn control(&mut self, command: PoolCommand) -> Result<PoolId, PoolControlError> {
        let (PoolCommand::Switch(pool) | PoolCommand::Enable(pool) | PoolCommand::Disable(pool)) = command;
        let Some(i) = self.place(pool) else {
            return Err(PoolControlError::NoSuchPool(pool.0, self.pools.len().saturating_sub(1)));
        };
        match command {
            PoolCommand::Switch(_) if !self.pools[i].1 => return Err(PoolControlError::Disabled(pool.0)),
            PoolCommand::Switch(_) => {
                self.preferred = pool;
                self.requested = Some(pool);
            }
            PoolCommand::Enable(_) => self.pools[i].1 = true,
            PoolCommand::Disable(_) if self.pools.iter().all(|(p, e)| *p == pool || !e) => {
                return Err(PoolControlError::LastEnabled(pool.0));
            }
            PoolCommand::Disable(_) => self.pools[i].1 = false,
        }
        Ok(pool)
    }

    /// Where the miner should be instead of `active`, if anywhere: the pool just switched to,
    /// or the next enabled one when `active` was disabled.
    pub fn wanted(&mut self, active: PoolId) -> Option<PoolId> {
        if let Some(requested) = self.requested.take() {
            if requested != active && self.is_enabled(requested) {
                return Some(requested);
            }
        }
        (self.place(active).is_some() && !self.is_enabled(active)).then(|| self.next_enabled(active))
    }

    /// The pool after `pool`, in priority order, that is enabled (`pool` itself when it is the
    /// only one).
    pub fn next_enabled(&self, pool: PoolId) -> PoolId {
        let (n, start) = (self.pools.len(), self.place(pool).unwrap_or(0));
        (1..=n).map(|k| self.pools[(start + k) % n]).find(|(_, enabled)| *enabled).map_or(pool, |(p, _)| p)
    }

    /// Where the next connection to `pool` goes: a redirect once, else its URL.
    pub fn endpoint(&mut self, pool: PoolId, config: &PoolConfig) -> Result<Endpoint, UrlError> {
        match self.redirect.take() {
            Some((p, endpoint)) if p == pool => Ok(endpoint),
            _ => config.endpoint(),
        }
    }

    /// The pool worked (it sent a job): the next failure starts the backoff afresh.
    pub fn worked(&mut self) {
        self.backoff = MIN_BACKOFF;
    }

    /// `pool` failed. `jitter` in [0, 1) spreads reconnects of many miners.
    pub fn failed(&mut self, pool: PoolId, jitter: f64) -> Attempt {
        let next = self.next_enabled(pool);
        if next != pool && next != self.preferred {
            return Attempt { pool: next, after: Duration::ZERO }; // back off only after a whole round
        }
        let after = self.backoff.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 4.0);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Attempt { pool: next, after }
    }

    /// The pool sent `client.reconnect`. Another host is not followed (a pool's word is no
    /// reason to send the worker's password elsewhere); a port on the same host is, once,
    /// with the same scheme and certificate checks. A wait is spent on the next pool when
    /// there is one. Returns the attempt and what to tell the user.
    pub fn redirected(&mut self, pool: PoolId, current: &Endpoint, redirect: &Redirect) -> (Attempt, Option<String>) {
        if redirect.host.as_ref().is_some_and(|h| *h != current.host) {
            // The pool's words, escaped: a newline in them would forge a log line.
            let host = crate::logging::printable(redirect.host.as_deref().unwrap_or_default());
            let notice = format!("pool {pool} asked to reconnect to {host}; only its own host is followed");
            return (Attempt { pool, after: MIN_BACKOFF }, Some(notice));
        }
        if let Some(port) = redirect.port {
            self.redirect = Some((pool, Endpoint { port, ..current.clone() }));
        }
        let wait = Duration::from_secs(redirect.wait).min(MAX_REDIRECT_WAIT);
        let next = self.next_enabled(pool);
        if wait.is_zero() {
            // A second at least: a pool that redirects every connection at once gets no loop.
            (Attempt { pool, after: MIN_BACKOFF }, None)
        } else if next != pool {
            let notice = format!(
                "pool {pool} asked to wait {} s before reconnecting; mining on pool {next} meanwhile",
                wait.as_secs()
            );
            (Attempt { pool: next, after: Duration::ZERO }, Some(notice))
        } else {
            (
                Attempt { pool, after: wait },
                Some(format!("pool {pool} asked to wait {} s before reconnecting", wait.as_secs())),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> PoolConfig {
        PoolConfig {
            url: url.into(),
            user: "u".into(),
            pass: "x".into(),
            journal: std::path::PathBuf::from("j"),
            journal_max: crate::source::stratum::pool_url::DEFAULT_JOURNAL_MAX,
            trust: Default::default(),
            suggest_difficulty: None,
            channel: Default::default(),
        }
    }

    #[test]
    fn failover_in_order_then_backoff_doubling_to_a_minute() {
        let (p0, p1) = (PoolId(0), PoolId(1));
        let mut f = Failover::new([PoolId(0), PoolId(1)]);
        assert_eq!(f.failed(p0, 0.0), Attempt { pool: p1, after: Duration::ZERO });
        // The round is over when the next is the preferred pool again.
        assert_eq!(f.failed(p1, 0.0), Attempt { pool: p0, after: Duration::from_secs(1) });
        assert_eq!(f.failed(p0, 0.0).pool, p1);
        assert_eq!(f.failed(p1, 0.5), Attempt { pool: p0, after: Duration::from_millis(2250) });
        for _ in 0..10 {
            f.failed(p1, 0.0);
        }
        assert_eq!(f.failed(p1, 0.0).after, MAX_BACKOFF);
        f.worked();
        assert_eq!(f.failed(p1, 0.0).after, MIN_BACKOFF);
        // One pool: back off on it.
        assert_eq!(Failover::new([PoolId(0)]).failed(p0, 0.0), Attempt { pool: p0, after: MIN_BACKOFF });
    }

    /// A TLS pool's redirect keeps TLS (the old client rewrote it to stratum+tcp://), is used
    /// once, and a redirect to another host is not followed.
    #[test]
    fn redirects_keep_tls_and_last_one_connection() {
        let p0 = PoolId(0);
        let pool = config("stratum+ssl://pool.example:4443");
        let current = pool.endpoint().unwrap();
        let mut f = Failover::new([PoolId(0)]);
        let to = Redirect { host: Some("pool.example".into()), port: Some(4444), wait: 0 };
        assert_eq!(f.redirected(p0, &current, &to), (Attempt { pool: p0, after: MIN_BACKOFF }, None));
        assert_eq!(
            f.endpoint(p0, &pool).unwrap(),
            Endpoint { host: "pool.example".into(), port: 4444, tls: true, authority: None }
        );
        assert_eq!(f.endpoint(p0, &pool).unwrap(), current, "the configured URL again after one try");
        let elsewhere = Redirect { host: Some("evil.example".into()), port: Some(80), wait: 0 };
        let (attempt, notice) = f.redirected(p0, &current, &elsewhere);
        assert_eq!(attempt.pool, p0);
        assert!(notice.unwrap().contains("only its own host"));
        // The pool's words are escaped: a newline in its host would forge a log line.
        let forged = Redirect { host: Some("evil.example\n[ERROR] forged".into()), port: None, wait: 0 };
        let notice = f.redirected(p0, &current, &forged).1.unwrap();
        assert!(notice.contains(r"evil.example\n[ERROR]") && !notice.contains('\n'), "{notice}");
        assert_eq!(f.endpoint(p0, &pool).unwrap(), current);
    }

    /// A wait is said, capped, and spent on a backup pool when there is one.
    #[test]
    fn a_redirect_wait_is_capped_and_fails_over() {
        let pool = config("stratum+tcp://pool0:3333");
        let current = pool.endpoint().unwrap();
        let long = Redirect { wait: 86_400, ..Redirect::default() };
        let (attempt, notice) = Failover::new([PoolId(0)]).redirected(PoolId(0), &current, &long);
        assert_eq!(attempt, Attempt { pool: PoolId(0), after: MAX_REDIRECT_WAIT });
        assert!(notice.unwrap().contains("wait 300 s"));
        let (attempt, notice) = Failover::new([PoolId(0), PoolId(1)]).redirected(PoolId(0), &current, &long);
        assert_eq!(attempt, Attempt { pool: PoolId(1), after: Duration::ZERO });
        assert!(notice.unwrap().contains("mining on pool 1 meanwhile"));
    }

    /// The policy knows pools by the ids it was given, whatever they are (the counters' view
    /// hands them out), in the order given.
    #[test]
    fn pools_are_known_by_the_ids_handed_out() {
        let (a, b, c) = (PoolId(3), PoolId(5), PoolId(4));
        let mut f = Failover::new([a, b, c]);
        assert_eq!((f.preferred(), f.next_enabled(a), f.next_enabled(b), f.next_enabled(c)), (a, b, c, a));
        assert_eq!(f.control(PoolCommand::Disable(b)), Ok(b));
        assert_eq!((f.next_enabled(a), f.enabled()), (c, vec![true, false, true]));
        assert_eq!(f.control(PoolCommand::Switch(PoolId(0))), Err(PoolControlError::NoSuchPool(0, 2)));
        assert_eq!(f.failed(a, 0.0), Attempt { pool: c, after: Duration::ZERO });
    }

    /// The API's commands, as cgminer answers them: a switch is made once and remembered as
    /// the pool to return to; disabling the pool in use moves on; the last enabled pool stays.
    #[test]
    fn commands_change_the_choice_and_nothing_else_does() {
        let (p0, p1) = (PoolId(0), PoolId(1));
        let mut f = Failover::new([PoolId(0), PoolId(1)]);
        assert_eq!(f.wanted(p0), None);
        assert_eq!(f.control(PoolCommand::Switch(PoolId(7))), Err(PoolControlError::NoSuchPool(7, 1)));
        assert_eq!(f.control(PoolCommand::Switch(p1)), Ok(p1));
        assert_eq!((f.wanted(p0), f.wanted(p0), f.preferred()), (Some(p1), None, p1));
        assert_eq!(f.control(PoolCommand::Disable(p1)), Ok(p1));
        assert_eq!(f.wanted(p1), Some(p0));
        assert_eq!(f.control(PoolCommand::Disable(p0)), Err(PoolControlError::LastEnabled(0)));
        assert_eq!(f.control(PoolCommand::Switch(p1)), Err(PoolControlError::Disabled(1)));
        assert_eq!(f.failed(p0, 0.0).pool, p0, "a disabled pool is not failed over to");
        assert_eq!(f.control(PoolCommand::Enable(p1)), Ok(p1));
        assert_eq!(f.enabled(), [true, true]);
    }
}
