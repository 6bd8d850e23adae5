//! The pool list and the choice of the next connection, sans I/O: cgminer's failover-only
//! strategy. Pools are in priority order; when one fails the next enabled one is tried at
//! once, and after a whole round the wait grows (1 s doubling to 60 s, with jitter). A
//! `client.reconnect` is followed once, to the same host only, with the scheme, TLS settings
//! and certificate checks of the pool it came from.

use std::path::PathBuf;
use std::time::Duration;

use super::tls::Trust;
use super::v2::AuthorityKey;
use super::v2::session::ChannelKind;
use crate::wire::stratum_v1::Redirect;
use crate::wire::stratum_v2::key::KeyError;
use crate::work::{Difficulty, PoolId};

/// While mining on a backup pool, the first pool is tried this often; once it answers, the
/// miner returns to it.
pub const FAILBACK_PROBE: Duration = Duration::from_secs(5);

/// A `client.reconnect` wait is honoured up to this long.
pub const MAX_REDIRECT_WAIT: Duration = Duration::from_secs(300);

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `stratum+tcp://host:port`, `stratum+ssl://host:port` or `host:port`.
    pub url: String,
    pub user: String,
    pub pass: String,
    /// Where shares that could not be sent are written, one JSON line each.
    pub journal: PathBuf,
    /// What the pool's TLS certificate is checked against.
    pub trust: Trust,
    /// Sent as `mining.suggest_difficulty` after authorizing (cgminer's --suggest-diff); for
    /// Stratum V2, the channel's maximum target.
    pub suggest_difficulty: Option<Difficulty>,
    /// The channel to open on a Stratum V2 pool.
    pub channel: ChannelKind,
}

/// Where to connect: host, port, and whether to speak TLS (v1) or Stratum V2 with the pool's
/// authority key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub authority: Option<AuthorityKey>,
}

impl Endpoint {
    /// `host:port` to connect to.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A pool URL that cannot be used, and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error(
        "pool URL scheme `{0}` is not supported (use stratum+tcp://, stratum+ssl://, stratum+tls:// or stratum2+tcp://)"
    )]
    Scheme(String),
    #[error("Stratum V2 pool URL `{0}` needs the pool's authority key: stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY")]
    NoKey(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("pool URL `{url}` has a bad port `{port}`")]
    Port { url: String, port: String },
    #[error("pool URL `{0}` needs a host and a port, such as stratum+tcp://pool.example:3333")]
    NoHost(String),
}

/// The URL scheme of a Stratum V2 pool, as the SV2 specification writes it.
const V2_SCHEME: &str = "stratum2+tcp";

impl PoolConfig {
    /// Whether the URL names a Stratum V2 pool.
    pub fn is_v2(&self) -> bool {
        self.url.split_once("://").is_some_and(|(scheme, _)| scheme == V2_SCHEME)
    }

    /// The URL read: `stratum+tcp://HOST:PORT`, `stratum+ssl://…`, or, as the SV2
    /// specification writes it, `stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY`.
    pub fn endpoint(&self) -> Result<Endpoint, UrlError> {
        let (tls, v2, rest) = match self.url.split_once("://") {
            Some(("stratum+tcp" | "tcp", rest)) => (false, false, rest),
            Some(("stratum+ssl" | "stratum+tls" | "ssl" | "tls", rest)) => (true, false, rest),
            Some((V2_SCHEME, rest)) => (false, true, rest),
            Some((scheme, _)) => return Err(UrlError::Scheme(scheme.to_string())),
            None => (false, false, self.url.as_str()),
        };
        let (rest, authority) = if v2 {
            match rest.split_once('/') {
                Some((address, key)) if !key.trim_end_matches('/').is_empty() => {
                    (address, Some(key.trim_end_matches('/').parse::<AuthorityKey>()?))
                }
                _ => return Err(UrlError::NoKey(self.url.clone())),
            }
        } else {
            (rest.trim_end_matches('/'), None)
        };
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => match port.parse::<u16>() {
                Ok(port) => Ok(Endpoint { host: host.trim_matches(['[', ']']).to_string(), port, tls, authority }),
                Err(_) => Err(UrlError::Port { url: self.url.clone(), port: port.to_string() }),
            },
            _ => Err(UrlError::NoHost(self.url.clone())),
        }
    }
}

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
    enabled: Vec<bool>,
    /// The pool to mine on whenever it answers (the first, or the one switched to).
    preferred: PoolId,
    /// A switch asked for and not made yet.
    requested: Option<PoolId>,
    backoff: Duration,
    /// Where the next connection to this pool goes instead of its URL, once.
    redirect: Option<(PoolId, Endpoint)>,
}

impl Failover {
    /// The policy for `pools` pools, all enabled, the first preferred.
    pub fn new(pools: usize) -> Failover {
        Failover {
            enabled: vec![true; pools.max(1)],
            preferred: PoolId(0),
            requested: None,
            backoff: MIN_BACKOFF,
            redirect: None,
        }
    }

    pub fn preferred(&self) -> PoolId {
        self.preferred
    }

    /// Which pools are enabled, in priority order.
    pub fn enabled(&self) -> &[bool] {
        &self.enabled
    }

    /// Carries out a command; the pool's index is checked here. Returns the pool it names.
    pub fn control(&mut self, command: PoolCommand) -> Result<PoolId, PoolControlError> {
        let (PoolCommand::Switch(pool) | PoolCommand::Enable(pool) | PoolCommand::Disable(pool)) = command;
        if pool.0 >= self.enabled.len() {
            return Err(PoolControlError::NoSuchPool(pool.0, self.enabled.len() - 1));
        }
        match command {
            PoolCommand::Switch(_) if !self.enabled[pool.0] => return Err(PoolControlError::Disabled(pool.0)),
            PoolCommand::Switch(_) => {
                self.preferred = pool;
                self.requested = Some(pool);
            }
            PoolCommand::Enable(_) => self.enabled[pool.0] = true,
            PoolCommand::Disable(_) if self.enabled.iter().enumerate().all(|(i, e)| i == pool.0 || !e) => {
                return Err(PoolControlError::LastEnabled(pool.0));
            }
            PoolCommand::Disable(_) => self.enabled[pool.0] = false,
        }
        Ok(pool)
    }

    /// Where the miner should be instead of `active`, if anywhere: the pool just switched to,
    /// or the next enabled one when `active` was disabled.
    pub fn wanted(&mut self, active: PoolId) -> Option<PoolId> {
        if let Some(requested) = self.requested.take() {
            if requested != active && self.enabled[requested.0] {
                return Some(requested);
            }
        }
        (!self.enabled.get(active.0).copied().unwrap_or(true)).then(|| self.next_enabled(active))
    }

    /// The pool after `pool`, in priority order, that is enabled (`pool` itself when it is the
    /// only one).
    pub fn next_enabled(&self, pool: PoolId) -> PoolId {
        let n = self.enabled.len();
        (1..=n).map(|k| (pool.0 + k) % n).find(|&i| self.enabled[i]).map_or(pool, PoolId)
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
            let host = redirect.host.as_deref().unwrap_or_default();
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
            journal: PathBuf::from("j"),
            trust: Trust::default(),
            suggest_difficulty: None,
            channel: ChannelKind::Extended,
        }
    }

    /// The SV2 specification's URL form, with the authority key of SRI's example configs.
    #[test]
    fn stratum_v2_urls_carry_the_authority_key() {
        let key = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
        let endpoint = config(&format!("stratum2+tcp://127.0.0.1:34254/{key}")).endpoint().unwrap();
        assert_eq!((endpoint.host.as_str(), endpoint.port, endpoint.tls), ("127.0.0.1", 34254, false));
        assert_eq!(endpoint.authority.unwrap().to_string(), key);
        let missing = config("stratum2+tcp://127.0.0.1:34254").endpoint().unwrap_err();
        assert!(matches!(missing, UrlError::NoKey(_)), "{missing}");
        let wrong =
            config("stratum2+tcp://127.0.0.1:34254/9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH7").endpoint();
        assert!(matches!(wrong, Err(UrlError::Key(KeyError::Public { .. }))), "{wrong:?}");
    }

    #[test]
    fn urls_name_scheme_host_and_port() {
        let endpoint = |url: &str| config(url).endpoint();
        assert_eq!(
            endpoint("stratum+ssl://pool.example:4443").unwrap(),
            Endpoint { host: "pool.example".into(), port: 4443, tls: true, authority: None }
        );
        assert_eq!(endpoint("[::1]:3333").unwrap().address(), "[::1]:3333");
        assert_eq!(
            endpoint("127.0.0.1:3333").unwrap(),
            Endpoint { host: "127.0.0.1".into(), port: 3333, tls: false, authority: None }
        );
        assert_eq!(endpoint("http://pool:1"), Err(UrlError::Scheme("http".into())));
        assert!(endpoint("http://pool:1").unwrap_err().to_string().contains("not supported"));
        assert!(matches!(endpoint("stratum+tcp://pool"), Err(UrlError::NoHost(_))));
        assert!(matches!(endpoint("stratum+tcp://pool:99999"), Err(UrlError::Port { .. })));
    }

    #[test]
    fn failover_in_order_then_backoff_doubling_to_a_minute() {
        let (p0, p1) = (PoolId(0), PoolId(1));
        let mut f = Failover::new(2);
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
        assert_eq!(Failover::new(1).failed(p0, 0.0), Attempt { pool: p0, after: MIN_BACKOFF });
    }

    /// A TLS pool's redirect keeps TLS (the old client rewrote it to stratum+tcp://), is used
    /// once, and a redirect to another host is not followed.
    #[test]
    fn redirects_keep_tls_and_last_one_connection() {
        let p0 = PoolId(0);
        let pool = config("stratum+ssl://pool.example:4443");
        let current = pool.endpoint().unwrap();
        let mut f = Failover::new(1);
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
        assert_eq!(f.endpoint(p0, &pool).unwrap(), current);
    }

    /// A wait is said, capped, and spent on a backup pool when there is one.
    #[test]
    fn a_redirect_wait_is_capped_and_fails_over() {
        let pool = config("stratum+tcp://pool0:3333");
        let current = pool.endpoint().unwrap();
        let long = Redirect { wait: 86_400, ..Redirect::default() };
        let (attempt, notice) = Failover::new(1).redirected(PoolId(0), &current, &long);
        assert_eq!(attempt, Attempt { pool: PoolId(0), after: MAX_REDIRECT_WAIT });
        assert!(notice.unwrap().contains("wait 300 s"));
        let (attempt, notice) = Failover::new(2).redirected(PoolId(0), &current, &long);
        assert_eq!(attempt, Attempt { pool: PoolId(1), after: Duration::ZERO });
        assert!(notice.unwrap().contains("mining on pool 1 meanwhile"));
    }

    /// The API's commands, as cgminer answers them: a switch is made once and remembered as
    /// the pool to return to; disabling the pool in use moves on; the last enabled pool stays.
    #[test]
    fn commands_change_the_choice_and_nothing_else_does() {
        let (p0, p1) = (PoolId(0), PoolId(1));
        let mut f = Failover::new(2);
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
        assert_eq!(f.enabled(), &[true, true]);
    }
}
