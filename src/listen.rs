//! Who may reach a monitoring listener: cgminer's API (`--api-listen`) and the HTTP server
//! (`--http-listen`) take the same addresses and the same allow lists, checked here once.
//!
//! Loopback by default; any other address needs an allow list (`--api-allow`,
//! `--http-allow`), in cgminer's syntax: addresses or networks, `W:` in front for the API's
//! privileged commands.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::admission::{Admission, Limits, Ticket};

/// One entry of an allow list: an address or network, `W:` in front for privileged access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    pub write: bool,
    pub network: IpAddr,
    pub prefix: u8,
}

/// Which listener a setting is for, to name its flags in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Api,
    Http,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Listener::Api => "api",
            Listener::Http => "http",
        })
    }
}

/// Listener settings that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenError {
    #[error("bad prefix length in `{0}`")]
    Prefix(String),
    #[error("`{0}` is not an address, W:address or address/bits")]
    Address(String),
    #[error("prefix length {prefix} is too long in `{rule}`")]
    PrefixTooLong { prefix: u8, rule: String },
    #[error("--{listener}-listen `{text}` is not an address:port such as 127.0.0.1:{}", default_port(*.listener))]
    Listen { listener: Listener, text: String },
    #[error(
        "--{listener}-listen {addr} reaches beyond this machine: name who may connect with --{listener}-allow (e.g. 192.168.1.0/24)"
    )]
    NoAllowList { listener: Listener, addr: SocketAddr },
    #[error("--{0}-allow needs --{0}-listen")]
    AllowWithoutListen(Listener),
    #[error("--http-allow-host `{0}` is not a host name (letters, digits, dots and dashes, no port)")]
    HostName(String),
    #[error("--http-allow-host needs --http-listen")]
    HostWithoutListen,
}

fn default_port(listener: Listener) -> u16 {
    match listener {
        Listener::Api => 4028,
        Listener::Http => 8080,
    }
}

impl FromStr for AllowRule {
    type Err = ListenError;

    fn from_str(s: &str) -> Result<Self, ListenError> {
        let (write, rest) = match s.trim().split_once(':') {
            Some(("W" | "w", rest)) => (true, rest),
            Some(("R" | "r", rest)) => (false, rest),
            _ => (false, s.trim()),
        };
        let (ip, prefix) = match rest.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits.parse::<u8>().map_err(|_| ListenError::Prefix(s.to_string()))?)),
            None => (rest, None),
        };
        let network: IpAddr = ip.parse().map_err(|_| ListenError::Address(s.to_string()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(ListenError::PrefixTooLong { prefix, rule: s.to_string() });
        }
        Ok(AllowRule { write, network, prefix })
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = if self.write { "W:" } else { "" };
        write!(f, "{w}{}/{}", self.network, self.prefix)
    }
}

impl AllowRule {
    fn matches(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (bytes, rest) = (bits / 8, bits % 8);
    a[..bytes] == b[..bytes] && (rest == 0 || (a[bytes] ^ b[bytes]) >> (8 - rest) == 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub listen: SocketAddr,
    pub allow: Vec<AllowRule>,
    /// HTTP only: names a browser may reach the server by besides its addresses and
    /// `localhost` (`--http-allow-host`), lower-case.
    pub hosts: Vec<String>,
}

impl ListenOptions {
    /// Checks that a non-loopback listener comes with an allow list.
    pub fn new(listener: Listener, listen: &str, allow: Vec<AllowRule>) -> Result<Self, ListenError> {
        let listen: SocketAddr =
            listen.parse().map_err(|_| ListenError::Listen { listener, text: listen.to_string() })?;
        if !listen.ip().is_loopback() && allow.is_empty() {
            return Err(ListenError::NoAllowList { listener, addr: listen });
        }
        Ok(ListenOptions { listen, allow, hosts: Vec::new() })
    }

    /// These settings with `hosts` as the names the HTTP server answers for besides its
    /// addresses; each must be a bare host name.
    pub fn with_hosts(mut self, hosts: &[String]) -> Result<Self, ListenError> {
        for host in hosts {
            let name = host.trim();
            let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !valid {
                // Only the start of a value that may be huge.
                let shown: String = host.chars().take(64).collect();
                return Err(ListenError::HostName(crate::logging::printable(&shown)));
            }
            self.hosts.push(name.to_ascii_lowercase());
        }
        Ok(self)
    }

    /// The settings of a `--X-listen [ADDR]` and `--X-allow LIST` pair: none without an address,
    /// and an allow list without one is a mistake.
    pub fn from_flags(
        listener: Listener,
        listen: Option<&str>,
        allow: &[AllowRule],
    ) -> Result<Option<Self>, ListenError> {
        match listen {
            Some(listen) => ListenOptions::new(listener, listen, allow.to_vec()).map(Some),
            None if !allow.is_empty() => Err(ListenError::AllowWithoutListen(listener)),
            None => Ok(None),
        }
    }

    /// What `ip` may do: without an allow list, loopback reads; with one, what it says.
    pub fn access(&self, ip: IpAddr) -> Option<Access> {
        if self.allow.is_empty() {
            return ip.is_loopback().then_some(Access::Read);
        }
        let rules: Vec<&AllowRule> = self.allow.iter().filter(|r| r.matches(ip)).collect();
        if rules.iter().any(|r| r.write) {
            Some(Access::Write)
        } else if rules.is_empty() {
            None
        } else {
            Some(Access::Read)
        }
    }
}

/// Accepts on `listener` until the runtime ends. A peer `options` does not allow is closed at
/// once, as cgminer drops it; the others are admitted within `limits` (`crate::admission`: past
/// them the oldest connection still waiting to be served makes room, and only when every one
/// is being served is a newcomer closed), so that clients cannot take the descriptors the miner
/// needs (its pool connections, its journal) nor lock out real requests. Each admitted
/// connection is served by `serve` on a task of its own, with its ticket.
pub async fn accept_allowed<F, Fut>(listener: TcpListener, options: ListenOptions, limits: Limits, serve: F)
where
    F: Fn(TcpStream, Access, Ticket) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admission = Admission::new(limits);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors, say: wait rather than spin on the error.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(access) = options.access(peer.ip()) else { continue };
        admission.serve(peer.ip(), |ticket| serve(stream, access, ticket));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_rules_parse_and_match() {
        let rule: AllowRule = "W:192.168.1.0/24".parse().unwrap();
        assert!(rule.write);
        assert!(rule.matches("192.168.1.77".parse().unwrap()));
        assert!(!rule.matches("192.168.2.1".parse().unwrap()));
        assert!(rule.matches("::ffff:192.168.1.9".parse().unwrap()));
        let one: AllowRule = "127.0.0.1".parse().unwrap();
        assert_eq!((one.write, one.prefix), (false, 32));
        assert!("W:300.1.1.1".parse::<AllowRule>().is_err());
        assert!("10.0.0.0/33".parse::<AllowRule>().is_err());
        assert!("::1/129".parse::<AllowRule>().is_err());

        let options = ListenOptions::new(Listener::Api, "127.0.0.1:4028", vec![]).unwrap();
        assert_eq!(options.access("127.0.0.1".parse().unwrap()), Some(Access::Read));
        assert_eq!(options.access("10.0.0.1".parse().unwrap()), None);
        let allow = vec!["W:127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let options = ListenOptions::new(Listener::Api, "0.0.0.0:4028", allow).unwrap();
        assert_eq!(options.access("127.0.0.1".parse().unwrap()), Some(Access::Write));
        assert_eq!(options.access("10.1.2.3".parse().unwrap()), Some(Access::Read));
        assert_eq!(options.access("192.168.0.1".parse().unwrap()), None);
        let open = |listener| ListenOptions::new(listener, "0.0.0.0:80", vec![]).unwrap_err().to_string();
        assert!(open(Listener::Api).contains("--api-allow"), "{}", open(Listener::Api));
        assert!(open(Listener::Http).contains("--http-allow"), "{}", open(Listener::Http));
        let allow: Vec<AllowRule> = vec!["10.0.0.0/8".parse().unwrap()];
        let lone = ListenOptions::from_flags(Listener::Api, None, &allow).unwrap_err().to_string();
        assert_eq!(lone, "--api-allow needs --api-listen");
        assert!(ListenOptions::from_flags(Listener::Http, None, &[]).unwrap().is_none());
        assert!(ListenOptions::from_flags(Listener::Http, Some("0.0.0.0:80"), &allow).unwrap().is_some());
        let bad = ListenOptions::new(Listener::Http, "localhost", vec![]).unwrap_err().to_string();
        assert_eq!(bad, "--http-listen `localhost` is not an address:port such as 127.0.0.1:8080");
    }

    #[test]
    fn allowed_host_names_are_bare_names() {
        let http = || ListenOptions::new(Listener::Http, "127.0.0.1:8080", vec![]).unwrap();
        let names = ["Miner.LAN".to_string(), " rig-7.example.org ".into()];
        assert_eq!(http().with_hosts(&names).unwrap().hosts, ["miner.lan", "rig-7.example.org"]);
        for bad in ["miner.lan:8080", "http://miner.lan", "", "a b", "miner.lan/", "*.lan"] {
            let error = http().with_hosts(&[bad.to_string()]).unwrap_err().to_string();
            assert!(error.starts_with(&format!("--http-allow-host `{}` is not a host name", bad)), "{error}");
        }
        let huge = "x".repeat(100_000) + ":1";
        assert!(http().with_hosts(&[huge]).unwrap_err().to_string().len() < 200, "a huge value is cut");
    }
}
