//! Which requests the HTTP server answers at all: one layer over the whole router, so that every
//! route, those added later included, is behind it.
//!
//! **DNS rebinding.** A page on `evil.example` whose name the attacker then points at 127.0.0.1
//! can read this server as if it were its own origin: the browser sends `Host: evil.example`.
//! The defence is the one NCC Group's Singularity wiki ("Preventing DNS Rebinding Attacks")
//! and the MCP SDKs' `hostHeaderValidation` give: answer only a `Host` this server is known by.
//! That is an IP literal (a page whose origin is an address was served by that address itself,
//! so no name was rebound; the listen address and 127.0.0.1/[::1] are such), `localhost`, each
//! with the listen port, or a name the user allows (`--http-allow-host`, any port: a reverse
//! proxy in front may use its own). Others get 421 Misdirected Request: RFC 9110 §15.5.20 is
//! exactly "a server that is not able to produce an authoritative response for the target
//! URI", which is what a request for another name is; 403 would say the resource exists and is
//! forbidden. A request without `Host` (HTTP/1.0 from a script) is answered: every browser sends
//! one (it is a forbidden header name, set by the user agent).
//!
//! **Origin.** WebSockets are not bound by the same-origin policy: a page on any origin may
//! open `ws://127.0.0.1:8080/…`, and the Fetch standard gives such a request (mode
//! "websocket") an `Origin` header, as it gives every cross-origin or non-GET request. So a
//! request that carries an `Origin` is answered only when that origin is this server as the
//! request named it (`http://` or `https://` and its `Host`), as gorilla/websocket's
//! `checkSameOrigin` and OWASP's Go-SCP WebSocket check do; otherwise 403 Forbidden (the host
//! is right, the caller is not). A client with no `Origin` (curl, Prometheus, scripts: not a
//! browser page) passes. This covers the server-sent stream and any WebSocket route alike.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What the guard knows: the address the server listens on and the names the user allows.
#[derive(Debug, Clone)]
pub struct Guard {
    pub listen: SocketAddr,
    /// Lower-case host names (`--http-allow-host`), without ports.
    pub hosts: Vec<String>,
}

impl Guard {
    pub fn new(listen: SocketAddr, hosts: &[String]) -> Guard {
        Guard { listen, hosts: hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect() }
    }
}

/// Whether a request naming `host` (its `Host` header, or the authority of an absolute-form
/// target) is for this server. `None`: no name given.
pub fn host_allowed(host: Option<&[u8]>, guard: &Guard) -> bool {
    let Some(host) = host else { return true };
    let Some((name, port)) = split_host(host) else { return false };
    if guard.hosts.iter().any(|h| h.as_bytes() == name.as_slice()) {
        return true;
    }
    let own_port = match port {
        Some(port) => port == guard.listen.port(),
        // A browser leaves out the scheme's default port.
        None => guard.listen.port() == 80,
    };
    own_port && (name == b"localhost" || is_ip_literal(&name))
}

/// Whether a request's `Origin` (`None`: none sent) is this server as the request's `host`
/// named it.
pub fn origin_allowed(origin: Option<&[u8]>, host: Option<&[u8]>) -> bool {
    let Some(origin) = origin else { return true };
    let Some(host) = host else { return false };
    let authority = origin.strip_prefix(b"http://").or_else(|| origin.strip_prefix(b"https://"));
    authority.is_some_and(|a| !a.is_empty() && a.eq_ignore_ascii_case(host))
}

/// `name[:port]` or `[v6][:port]`, the name lower-cased; `None` when it is not a host.
fn split_host(host: &[u8]) -> Option<(Vec<u8>, Option<u16>)> {
    let (name, port) = match host.iter().rposition(|&b| b == b':') {
        // A colon inside brackets is the address's own.
        Some(colon) if !host[colon..].contains(&b']') => (&host[..colon], Some(&host[colon + 1..])),
        _ => (host, None),
    };
    let port = match port {
        Some(digits) => Some(std::str::from_utf8(digits).ok().filter(|d| !d.is_empty())?.parse().ok()?),
        None => None,
    };
    let valid = |b: &u8| b.is_ascii_alphanumeric() || b"-._[]:".contains(b);
    (!name.is_empty() && name.iter().all(valid)).then(|| (name.to_ascii_lowercase(), port))
}

fn is_ip_literal(name: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(name) else { return false };
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => text.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()),
    }
}

/// The name a request is for: an absolute-form target's authority wins over `Host`
/// (RFC 9112 §3.2.2); two `Host` headers are no name this server has.
fn request_host(request: &Request) -> Result<Option<&[u8]>, ()> {
    if let Some(authority) = request.uri().authority() {
        return Ok(Some(authority.as_str().as_bytes()));
    }
    single(request.headers(), header::HOST)
}

fn single(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&[u8]>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v.as_bytes())),
        _ => Err(()),
    }
}

/// The layer: 421 for a name this server does not have, 403 for another origin.
pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let Ok(host) = request_host(&request) else {
        return (StatusCode::BAD_REQUEST, "more than one Host\n").into_response();
    };
    if !host_allowed(host, &guard) {
        return (StatusCode::MISDIRECTED_REQUEST, "this server does not answer for that host name\n").into_response();
    }
    let Ok(origin) = single(request.headers(), header::ORIGIN) else {
        return (StatusCode::FORBIDDEN, "more than one Origin\n").into_response();
    };
    if !origin_allowed(origin, host) {
        return (StatusCode::FORBIDDEN, "requests from other origins are not answered\n").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(listen: &str, hosts: &[&str]) -> Guard {
        Guard::new(listen.parse().unwrap(), &hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn hosts_this_server_has_and_no_others() {
        let g = guard("127.0.0.1:8080", &["Miner.lan"]);
        let ok: &[&[u8]] = &[
            b"127.0.0.1:8080",
            b"localhost:8080",
            b"LOCALHOST:8080",
            b"[::1]:8080",
            b"192.168.1.5:8080",
            b"miner.lan",
            b"miner.lan:443",
            b"MINER.LAN:8080",
        ];
        for host in ok {
            assert!(host_allowed(Some(host), &g), "{}", String::from_utf8_lossy(host));
        }
        let refused: &[&[u8]] = &[
            b"evil.example",
            b"evil.example:8080",
            b"127.0.0.1",
            b"127.0.0.1:8081",
            b"localhost",
            b"localhost:80",
            b"localhost.evil.example:8080",
            b"127.0.0.1.evil.example:8080",
            b"[::1]",
            b"::1:8080",
            b"1.2.3:8080",
            b"miner.lan.evil:8080",
            b"",
            b":8080",
            b"127.0.0.1:",
            b"127.0.0.1:99999",
            b"127.0.0.1:8080 ",
            b"127.0.0.1:8080\0",
            b"user@127.0.0.1:8080",
            b"[::1:8080",
        ];
        for host in refused {
            assert!(!host_allowed(Some(host), &g), "{}", String::from_utf8_lossy(host));
        }
        assert!(host_allowed(None, &g), "HTTP/1.0 without Host");
        let on_80 = guard("0.0.0.0:80", &[]);
        assert!(host_allowed(Some(b"localhost"), &on_80));
        assert!(host_allowed(Some(b"10.0.0.7"), &on_80));
        assert!(!host_allowed(Some(b"evil.example"), &on_80));
    }

    #[test]
    fn origins_must_be_this_server_as_named() {
        let host = Some(&b"127.0.0.1:8080"[..]);
        assert!(origin_allowed(None, host), "curl, Prometheus, scripts send none");
        assert!(origin_allowed(Some(b"http://127.0.0.1:8080"), host));
        assert!(origin_allowed(Some(b"https://127.0.0.1:8080"), host));
        assert!(origin_allowed(Some(b"http://LOCALHOST:8080"), Some(b"localhost:8080")));
        for origin in [
            &b"http://evil.example"[..],
            b"http://127.0.0.1:8081",
            b"http://127.0.0.1",
            b"null",
            b"ws://127.0.0.1:8080",
            b"http://127.0.0.1:8080/",
            b"http://",
            b"file://",
            b"http://127.0.0.1:8080.evil.example",
        ] {
            assert!(!origin_allowed(Some(origin), host), "{}", String::from_utf8_lossy(origin));
        }
        assert!(!origin_allowed(Some(b"http://127.0.0.1:8080"), None), "an origin needs a host to match");
    }
}
