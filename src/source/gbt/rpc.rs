//! The node's JSON-RPC over HTTP, through rust-bitcoin's `jsonrpc` crate (its minreq
//! transport: Bitcoin SV's node answers getblocktemplate chunked), with every failure
//! sorted into what a user can act on: wrong credentials, a node still syncing, a node with
//! no peers, a node that is down, or a reply that makes no sense.
//!
//! Calls block; `detached` runs one on a thread of its own for async callers, who may then stop
//! waiting for it at any moment (a stop, the run's deadline). Each call opens its own
//! connection and, with a cookie, reads the cookie file anew, so a restarted node (new
//! cookie) is picked up without restarting the miner.

use std::path::PathBuf;
use std::time::Duration;

use jsonrpc::minreq_http::{self, MinreqHttpTransport};
use serde_json::Value;

/// How the miner proves itself to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    UserPass {
        user: String,
        password: String,
    },
    /// The `.cookie` file the node writes at start (`user:password`).
    Cookie(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub url: String,
    pub auth: Auth,
}

/// Bitcoin Core's RPC error codes that mean "not yet, try again".
pub mod code {
    pub const CLIENT_NOT_CONNECTED: i32 = -9;
    pub const CLIENT_IN_INITIAL_DOWNLOAD: i32 = -10;
    pub const IN_WARMUP: i32 = -28;
    pub const METHOD_NOT_FOUND: i32 = -32601;
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("the node refused the RPC credentials (HTTP 401): check --rpc-user/--rpc-password, or --rpc-cookie")]
    Unauthorized,
    #[error("cannot read the cookie file {path}: {reason} (is the node running, with this data directory?)")]
    Cookie { path: PathBuf, reason: String },
    #[error("cannot reach the node at {url}: {reason} (is it running, with -server and this -rpcport?)")]
    Down { url: String, reason: String },
    #[error("the node is still in initial block download; mining starts when it has caught up")]
    InitialDownload,
    #[error("the node has no peers (getblocktemplate needs a connected node: check its -connect/-addnode)")]
    NotConnected,
    #[error("the node is warming up: {0}")]
    WarmingUp(String),
    #[error("the node answered HTTP {0}")]
    Http(u16),
    #[error("the node does not know `{0}` (is this a Bitcoin node with the mining RPCs?)")]
    MethodNotFound(String),
    #[error("node error {code} from {method}: {message}")]
    Node { method: String, code: i32, message: String },
    #[error("unexpected reply to {method}: {reason}")]
    BadReply { method: String, reason: String },
}

impl RpcError {
    /// Whether waiting can fix it. Wrong credentials and unknown methods need the user.
    pub fn is_transient(&self) -> bool {
        !matches!(self, RpcError::Unauthorized | RpcError::MethodNotFound(_))
    }
}

impl Node {
    fn transport(&self, timeout: Duration) -> Result<MinreqHttpTransport, RpcError> {
        let builder = MinreqHttpTransport::builder()
            .timeout(timeout)
            .url(&self.url)
            .map_err(|e| RpcError::Down { url: self.url.clone(), reason: e.to_string() })?;
        Ok(match &self.auth {
            Auth::UserPass { user, password } => builder.basic_auth(user.clone(), Some(password.clone())),
            Auth::Cookie(path) => {
                let cookie = std::fs::read_to_string(path)
                    .map_err(|e| RpcError::Cookie { path: path.clone(), reason: e.to_string() })?;
                builder.cookie_auth(cookie.trim())
            }
        }
        .build())
    }

    /// Calls `method` with positional `params`; waits at most `timeout` for the answer.
    pub fn call(&self, method: &str, params: &[Value], timeout: Duration) -> Result<Value, RpcError> {
        let client = jsonrpc::Client::with_transport(self.transport(timeout)?);
        let args = jsonrpc::try_arg(params)
            .map_err(|e| RpcError::BadReply { method: method.into(), reason: e.to_string() })?;
        client.call::<Value>(method, Some(&args)).map_err(|e| self.classify(method, e))
    }

    /// `call` on a thread of its own, waited for at most `timeout`: dropping the future (a stop,
    /// the run's deadline) leaves the thread to end at the call's own timeout. Tokio's blocking
    /// pool would not do: a runtime waits for its blocking tasks before it shuts down, so a
    /// node answering a byte a second held `solo --seconds 20` for 30 s.
    pub async fn call_detached(&self, method: &str, params: Vec<Value>, timeout: Duration) -> Result<Value, RpcError> {
        let (node, name) = (self.clone(), method.to_string());
        // minreq counts its timeout in whole seconds.
        let whole = Duration::from_secs(timeout.as_secs_f64().ceil().max(1.0) as u64);
        let called = detached(move || node.call(&name, &params, whole));
        match tokio::time::timeout(timeout, called).await {
            Ok(Some(reply)) => reply,
            Ok(None) => Err(RpcError::BadReply { method: method.into(), reason: "the call's thread failed".into() }),
            Err(_) => Err(RpcError::Down { url: self.url.clone(), reason: format!("no answer within {timeout:?}") }),
        }
    }

    fn classify(&self, method: &str, e: jsonrpc::Error) -> RpcError {
        match e {
            jsonrpc::Error::Rpc(r) => match r.code {
                code::CLIENT_IN_INITIAL_DOWNLOAD => RpcError::InitialDownload,
                code::CLIENT_NOT_CONNECTED => RpcError::NotConnected,
                code::IN_WARMUP => RpcError::WarmingUp(r.message),
                code::METHOD_NOT_FOUND => RpcError::MethodNotFound(method.into()),
                code => RpcError::Node { method: method.into(), code, message: r.message },
            },
            jsonrpc::Error::Transport(t) => match t.downcast_ref::<minreq_http::Error>() {
                Some(minreq_http::Error::Http(h)) if h.status_code == 401 => RpcError::Unauthorized,
                Some(minreq_http::Error::Http(h)) => RpcError::Http(h.status_code as u16),
                Some(minreq_http::Error::Minreq(jsonrpc::minreq::Error::IoError(io))) => {
                    RpcError::Down { url: self.url.clone(), reason: io.to_string() }
                }
                _ => RpcError::BadReply { method: method.into(), reason: t.to_string() },
            },
            other => RpcError::BadReply { method: method.into(), reason: other.to_string() },
        }
    }
}

/// Runs `f` on a thread of its own and waits for its result (`None`: the thread could not be
/// started, or panicked). Dropping the future leaves the thread behind, never waited for.
pub async fn detached<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("wgminer-node".into()).spawn(move || {
        let _ = tx.send(f());
    });
    spawned.ok()?;
    rx.await.ok()
}
