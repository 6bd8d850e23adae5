//! A pool as the user names it: its URL read into where to connect (`Endpoint`), the worker
//! name and password a URL may carry (`user:password@`, as many pools' setup pages and other
//! miners write it), and the rest of a pool's settings (`PoolConfig`). The one place pool
//! URLs are parsed; what it keeps for showing (`PoolConfig::url`) never holds a password.

use std::path::PathBuf;

use super::tls::Trust;
use crate::wire::stratum_v2::AuthorityKey;
use crate::wire::stratum_v2::key::KeyError;
use crate::work::Difficulty;

/// The journal's size at most unless `--journal-max-mb` says otherwise: a pool that sets a
/// tiny difficulty and never answers must not fill the disk.
pub const DEFAULT_JOURNAL_MAX: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `stratum+tcp://host:port`, `stratum+ssl://host:port` or `host:port`; a
    /// `user:password@` in it is taken out by `PoolUrl::parse` before it is kept here.
    pub url: String,
    pub user: String,
    pub pass: String,
    /// Where shares that could not be sent are written, one JSON line each.
    pub journal: PathBuf,
    /// The journal's size at most, in bytes; shares past it are counted as unjournaled.
    pub journal_max: u64,
    /// What the pool's TLS certificate is checked against.
    pub trust: Trust,
    /// Sent as `mining.suggest_difficulty` after authorizing (cgminer's --suggest-diff); for
    /// Stratum V2, the channel's maximum target.
    pub suggest_difficulty: Option<Difficulty>,
    /// The channel to open on a Stratum V2 pool.
    pub channel: ChannelKind,
}

/// Which kind of channel to open on a Stratum V2 pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ChannelKind {
    /// Coinbase prefix and suffix from the pool, the extranonce rolled here (as in v1).
    #[default]
    Extended,
    /// Header-only mining: the pool sends the merkle root; version bits and ntime are rolled.
    Standard,
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

/// A pool URL that cannot be used, and how to write it. The URL each names is the one shown,
/// without its password.
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
    #[error("pool URL `{0}` has a bad %-escape in its user or password")]
    Escape(String),
}

/// The URL scheme of a Stratum V2 pool, as the SV2 specification writes it.
const V2_SCHEME: &str = "stratum2+tcp";

/// A pool URL read: where to connect, the URL as it may be shown, and the worker name and
/// password it carried, if any.
#[derive(Clone, PartialEq, Eq)]
pub struct PoolUrl {
    pub endpoint: Endpoint,
    /// The URL without `user:password@`: what logs, answers and the journal say.
    pub shown: String,
    pub user: Option<String>,
    pub pass: Option<String>,
}

// By hand, so that no `{:?}` of it ever prints the password.
impl std::fmt::Debug for PoolUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolUrl")
            .field("endpoint", &self.endpoint)
            .field("shown", &self.shown)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "…"))
            .finish()
    }
}

impl PoolUrl {
    /// `stratum+tcp://HOST:PORT`, `stratum+ssl://…`, or, as the SV2 specification writes it,
    /// `stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY`; each may carry `USER[:PASSWORD]@` before
    /// the host, %-escaped where it holds `@`, `:` or `/` (RFC 3986's userinfo).
    pub fn parse(url: &str) -> Result<PoolUrl, UrlError> {
        let (shown, userinfo) = split_userinfo(url);
        let (user, pass) = match userinfo {
            Some(info) => {
                let (user, pass) = info.split_once(':').map_or((info, None), |(u, p)| (u, Some(p)));
                let decode = |s: &str| percent_decode(s).ok_or_else(|| UrlError::Escape(shown.clone()));
                (Some(decode(user)?), pass.map(decode).transpose()?)
            }
            None => (None, None),
        };
        let (scheme, rest) = match shown.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, shown.as_str()),
        };
        let endpoint = endpoint(scheme, rest, &shown)?;
        Ok(PoolUrl { endpoint, user: user.filter(|u| !u.is_empty()), pass, shown })
    }
}

impl PoolUrl {
    /// `url` as it may be shown: without `user:password@`, usable or not.
    pub fn shown(url: &str) -> String {
        split_userinfo(url).0
    }
}

/// The URL without its userinfo, and the userinfo. It ends at the last `@` before the path:
/// a password may hold a raw `@`.
fn split_userinfo(url: &str) -> (String, Option<&str>) {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (userinfo, rest) = match rest[..authority_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let shown = match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest.to_string(),
    };
    (shown, userinfo)
}

/// Where `scheme://rest` (the userinfo gone) connects to; errors name `shown`.
fn endpoint(scheme: Option<&str>, rest: &str, shown: &str) -> Result<Endpoint, UrlError> {
    let (tls, v2) = match scheme {
        Some("stratum+tcp" | "tcp") | None => (false, false),
        Some("stratum+ssl" | "stratum+tls" | "ssl" | "tls") => (true, false),
        Some(V2_SCHEME) => (false, true),
        Some(scheme) => return Err(UrlError::Scheme(crate::logging::printable(scheme))),
    };
    let (rest, authority) = if v2 {
        match rest.split_once('/') {
            Some((address, key)) if !key.trim_end_matches('/').is_empty() => {
                (address, Some(key.trim_end_matches('/').parse::<AuthorityKey>()?))
            }
            _ => return Err(UrlError::NoKey(shown.to_string())),
        }
    } else {
        (rest.trim_end_matches('/'), None)
    };
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => match port.parse::<u16>() {
            Ok(port) => Ok(Endpoint { host: host.trim_matches(['[', ']']).to_string(), port, tls, authority }),
            Err(_) => Err(UrlError::Port { url: shown.to_string(), port: port.to_string() }),
        },
        _ => Err(UrlError::NoHost(shown.to_string())),
    }
}

/// A URL with the password of its `user:password@`, if any, masked (for `wgminer config`).
pub fn masked(url: &str) -> String {
    match split_userinfo(url) {
        (shown, Some(info)) if info.contains(':') => {
            let user = info.split_once(':').map_or(info, |(u, _)| u);
            match shown.split_once("://") {
                Some((scheme, rest)) => format!("{scheme}://{user}:********@{rest}"),
                None => format!("{user}:********@{shown}"),
            }
        }
        _ => url.to_string(),
    }
}

/// RFC 3986's %XX escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let (bytes, mut out, mut i) = (s.as_bytes(), Vec::with_capacity(s.len()), 0);
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl PoolConfig {
    /// Whether the URL names a Stratum V2 pool.
    pub fn is_v2(&self) -> bool {
        self.url.split_once("://").is_some_and(|(scheme, _)| scheme == V2_SCHEME)
    }

    /// Where the URL connects to.
    pub fn endpoint(&self) -> Result<Endpoint, UrlError> {
        PoolUrl::parse(&self.url).map(|url| url.endpoint)
    }

    /// The same pool with a `user:password@` of its URL taken out: into `user` and `pass`
    /// where they are empty, else dropped (what the command line gave wins). A caller that
    /// builds configs by hand gets the same treatment from the driver, so that no URL that
    /// is shown ever holds a password.
    pub fn without_url_credentials(mut self) -> PoolConfig {
        match PoolUrl::parse(&self.url) {
            Ok(url) => {
                if self.user.is_empty() {
                    self.user = url.user.unwrap_or_default();
                }
                if self.pass.is_empty() {
                    self.pass = url.pass.unwrap_or_default();
                }
                self.url = url.shown;
            }
            // Unusable, and still not to be shown with its password.
            Err(_) => self.url = split_userinfo(&self.url).0,
        }
        self
    }
}

#[cfg(test)]
mod tests;
