//! `--http-listen`: watching a running wgminer over HTTP. `/metrics` for Prometheus, `/api/v1/…`
//! JSON, and `/`, a live dashboard served from the binary (its assets are embedded; uPlot is
//! vendored from npm, see `assets/vendor/README.md`).
//!
//! Everything here reads `Stats`, which the events moved (`metrics`, `json`), or follows the
//! events themselves (`live`): nothing is counted twice. Read-only, as the cgminer API's
//! reading side: loopback unless an allow list names others (`crate::listen`), a bounded number
//! of connections, each with a deadline for its request head and a life span, bounded request
//! heads, and no secret in any answer (no password, no RPC credentials in URLs, no key's secret
//! half).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::admission::Ticket;
use crate::listen::{self, ListenOptions};
use crate::pool::PoolStats;
use crate::stats::Stats;

mod assets;
pub mod device;
pub mod guard;
mod held;
pub mod json;
mod live;
mod metrics;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Connections at once, so that clients cannot take the descriptors the miner needs (its pool
/// connections, its journal). Past them the oldest connection with no request being answered
/// makes room (`crate::admission`): idle and dripping clients cannot lock out real requests.
pub const MAX_CONNECTIONS: usize = 64;

/// Connections at once from one address (a browser opens six or so).
pub const MAX_PER_ADDRESS: usize = 32;

/// `HEAD_TIMEOUT` while more than half the connections are taken.
pub const HURRIED_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

const LIMITS: crate::admission::Limits = crate::admission::Limits {
    max: MAX_CONNECTIONS,
    per_peer: MAX_PER_ADDRESS,
    patience: HEAD_TIMEOUT,
    hurried: HURRIED_HEAD_TIMEOUT,
};

/// Live streams (`/api/v1/stream`) at once, fewer than the connections so that a crowd of
/// open dashboards leaves room for scrapes.
pub const MAX_STREAMS: usize = 16;

/// Time to send a request's head, and to start the next one on a kept-alive connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a connection lives. A dashboard's stream reconnects by itself after it: HTML's
/// server-sent events reestablish a connection that closes, "gracefully or unexpectedly".
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// A request's head (line and headers) past this is refused (hyper answers 431 or closes).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a run is, as the dashboard and `wgminer_build_info` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `mine`: Stratum pools.
    Pools,
    /// `solo`: a node's getblocktemplate.
    Solo,
    /// `demo`: the embedded pool and the miner in one process.
    Demo,
    /// `pool`: the embedded pool alone.
    Pool,
}

/// What is watched: the miner's counters, its devices, and in `demo` and `pool` the
/// embedded pool's side.
#[derive(Clone)]
pub struct Site {
    pub mode: Mode,
    pub stats: Arc<Stats>,
    /// The embedded pool's counters, by the protocol it serves.
    pub pool_side: Vec<(&'static str, Arc<PoolStats>)>,
}

struct Server {
    site: Site,
    live: live::Live,
    metrics: metrics::Metrics,
    streams: Arc<Semaphore>,
    /// Browser pages that sweep for this run (`-d browser`), or send bench records.
    browser: Option<Arc<crate::browser::BrowserHost>>,
}

/// Starts serving `site`; returns the address it listens on. It serves until the runtime ends.
pub async fn start(options: ListenOptions, site: Site) -> std::io::Result<SocketAddr> {
    start_with(options, site, None).await
}

/// Starts serving `site`, and with `browser`, taking browser pages on `/api/v1/device`.
pub async fn start_with(
    options: ListenOptions,
    site: Site,
    browser: Option<Arc<crate::browser::BrowserHost>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let metrics = metrics::Metrics::new(&site);
    let live = live::Live::start(site.clone(), metrics.clone());
    let server = Arc::new(Server { site, live, metrics, streams: Arc::new(Semaphore::new(MAX_STREAMS)), browser });
    // Over the whole router, built: every route is behind it, those added later included.
    let guard = Arc::new(guard::Guard::new(addr, &options.hosts));
    let router = router(server).layer(axum::middleware::from_fn_with_state(guard, guard::check));
    let router = router.layer(axum::middleware::from_fn(held::held));
    tokio::spawn(listen::accept_allowed(listener, options, LIMITS, move |stream, _, ticket| {
        serve(stream, router.clone(), ticket)
    }));
    Ok(addr)
}

fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page("index.html") }))
        .route(
            "/{*file}",
            get(|axum::extract::Path(file): axum::extract::Path<String>| async move { assets::page(&file) }),
        )
        .route("/device", get(|| async { assets::page("device.html") }))
        .route(
            "/api/v1/device",
            get(|State(s): State<Arc<Server>>, ws: axum::extract::ws::WebSocketUpgrade| async move {
                device::upgrade(s.browser.clone(), ws).await
            }),
        )
        .route("/metrics", get(scrape))
        .route(
            "/api/v1/summary",
            get(|State(s): State<Arc<Server>>| async move { json_reply(&json::summary(&s.site)) }),
        )
        .route(
            "/api/v1/devices",
            get(|State(s): State<Arc<Server>>| async move { json_reply(&json::devices(&s.site)) }),
        )
        .route("/api/v1/pools", get(|State(s): State<Arc<Server>>| async move { json_reply(&json::pools(&s.site)) }))
        .route("/api/v1/events", get(|State(s): State<Arc<Server>>| async move { json_reply(&s.live.recent()) }))
        .route("/api/v1/history", get(|State(s): State<Arc<Server>>| async move { json_reply(&s.live.history()) }))
        .route("/api/v1/stream", get(stream))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(server)
}

/// One connection, by hyper: bounded heads, a deadline for each (shorter when the server is
/// busy), a bounded life. A client that shuts its writing side once it has sent the request
/// (`printf 'GET /metrics …' | nc`, as cgminer's API is scripted) still gets its answer: hyper
/// would otherwise close at that EOF. Each request carries the connection's ticket (an
/// `Arc<Ticket>` extension), which `held` holds while it is answered. A WebSocket upgrade
/// (`/api/v1/device`) hands the connection over to its own task, which the browser devices'
/// cap bounds; the life span bounds the HTTP part.
async fn serve(stream: TcpStream, router: Router, ticket: Ticket) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(ticket.patience)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(64)
        .half_close(true);
    let (router, ticket) = (TowerToHyperService::new(router), Arc::new(ticket));
    let service = hyper::service::service_fn(move |mut request: axum::http::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ticket.clone());
        hyper::service::Service::call(&router, request)
    });
    let connection = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
}

/// `/metrics`, in OpenMetrics when the scraper asks for it (Prometheus does), else in
/// Prometheus' text format 0.0.4 (curl, promtool).
async fn scrape(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    match server.metrics.encode(openmetrics) {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be written\n").into_response(),
    }
}

/// `/api/v1/stream`: server-sent events, a `sample` every two seconds and each notable event
/// as it happens; refused with 503 past `MAX_STREAMS`.
async fn stream(State(server): State<Arc<Server>>) -> Response {
    let Ok(slot) = server.streams.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live streams\n").into_response();
    };
    server.live.stream(slot).into_response()
}

fn json_reply<T: serde::Serialize>(value: &T) -> Response {
    let mut response = axum::Json(value).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A URL as it may be shown: without `user:password@`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The protocol a source speaks, from its URL's scheme.
pub fn protocol(url: &str) -> &'static str {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("stratum+tcp") => "stratum v1",
        Some("stratum+ssl" | "stratum+tls") => "stratum v1 (TLS)",
        Some("stratum2+tcp") => "stratum v2",
        Some("http" | "https") => "getblocktemplate",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(super::redact("http://user:secret@127.0.0.1:18443"), "http://127.0.0.1:18443");
        assert_eq!(super::redact("http://u:p@node/wallet/x@y"), "http://node/wallet/x@y");
        assert_eq!(super::redact("stratum+tcp://pool:3333"), "stratum+tcp://pool:3333");
        assert_eq!(super::redact("no scheme"), "no scheme");
    }
}
