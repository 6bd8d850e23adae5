//! What every pool protocol shares, whatever it sends on the wire: the `Protocol` trait each
//! session implements (sans I/O: messages, shares and ticks in, `Action`s out), the actions,
//! the reasons a connection closes, what became of a share, the limits both honour, and the
//! `Wire` that opens a protocol's transport. The driver (`super::driver`) knows protocols
//! only through this file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::pool_url::{Endpoint, PoolConfig, UrlError};
use super::tls::TlsError;
use crate::source::{Share, SourceWork};
use crate::wire::Outbox;
pub use crate::wire::TransportError;
use crate::wire::stratum_v1::Redirect;
use crate::work::{Difficulty, HashRate, PoolId};

pub const USER_AGENT: &str = concat!("wgminer/", env!("CARGO_PKG_VERSION"));

/// A pool with no job (v1) or no message (V2) for this long is taken as silent and left.
pub const SILENCE: Duration = Duration::from_secs(90);

/// How long a pool has to finish the opening exchange (v1's subscribe, V2's channel), and
/// how soon after an unanswered optional request a closed connection is blamed on it.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Shares sent and unanswered at most; more wait until the pool catches up.
pub const MAX_IN_FLIGHT: usize = 256;

/// Shares waiting to be sent at most; past this the oldest go to the journal.
pub const MAX_UNSENT: usize = 4096;

/// A pool protocol as a state machine without I/O. The driver opens the transport, hands in
/// what arrives, the shares found and a tick a second, and carries out the actions returned.
/// Adding a protocol means a folder with a session implementing this and a transport.
pub trait Protocol {
    /// What goes on the wire to the pool.
    type Out;
    /// What the transport reads from the pool (a v1 line, a decoded V2 frame).
    type In;
    /// What one connection needs to know of its pool.
    type Login;

    /// The login for a connection to `config` at `endpoint`, with the devices' rate now.
    fn login(config: &PoolConfig, endpoint: &Endpoint, hash_rate: HashRate) -> Self::Login;
    /// A connection to `pool` is open: the opening messages.
    fn connected(&mut self, pool: PoolId, login: Self::Login, now: Instant) -> Vec<Action<Self::Out>>;
    /// Something the pool sent.
    fn received(&mut self, message: Self::In, now: Instant) -> Vec<Action<Self::Out>>;
    /// The transport ended (`error` when reading failed rather than the pool closing).
    fn closed(&mut self, error: Option<String>, now: Instant) -> Vec<Action<Self::Out>>;
    /// A share a device found and the CPU verified.
    fn share(&mut self, share: Share, now: Instant) -> Vec<Action<Self::Out>>;
    /// The clock moved on (once a second), with the devices' measured rate.
    fn tick(&mut self, now: Instant, hash_rate: HashRate) -> Vec<Action<Self::Out>>;
    /// The connection is gone, closed by either side: what only it could send is released.
    fn disconnected(&mut self) -> Vec<Action<Self::Out>>;
    /// The miner stops: every share still held goes to the journal.
    fn stop(&mut self) -> Vec<Action<Self::Out>>;
    /// Shares the session still holds: unsent and unanswered.
    fn held(&self) -> usize;
}

/// What arrives from a pool, read on a task of the transport's own; `Err` ends it.
pub type Incoming<T> = mpsc::Receiver<Result<T, TransportError>>;

/// A protocol's I/O: how the driver opens its transport over a TCP connection. Each
/// protocol's folder implements it beside its session.
pub trait Wire: Protocol + Sized {
    type Writer: Outbox<Self::Out> + Send;

    fn open(
        tcp: TcpStream,
        endpoint: &Endpoint,
        config: &PoolConfig,
    ) -> impl Future<Output = Result<(Incoming<Self::In>, Self::Writer), ConnectError>> + Send;
}

/// A share sent and not yet answered, and when it went.
pub(crate) struct Pending {
    pub share: Share,
    pub sent: Instant,
}

/// What became of a share a source was given.
#[derive(Debug, Clone, PartialEq)]
pub enum ShareOutcome {
    Accepted,
    Rejected(Rejection),
    Stale(String),
    Journaled(String),
    /// Neither sent nor written: the journal failed or is full (the reason says which).
    Unjournaled(String),
}

/// A pool's refusal of a share, in any protocol: the pool's own code (v1's number, V2's
/// error code) and the words that go with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (code {code})")]
pub struct Rejection {
    pub code: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Rejection {
        Rejection { code: code.into(), reason: reason.into() }
    }
}

/// What the driver should do next; `M` is what goes on the wire, the rest is the same for
/// every protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<M> {
    Send(M),
    /// New work for the scheduler, and the share difficulty it carries.
    Publish {
        work: Arc<SourceWork>,
        difficulty: Difficulty,
    },
    /// A share's fate is known; `latency` is its submit's round trip when the pool answered.
    Answered {
        share: Share,
        outcome: ShareOutcome,
        latency: Option<Duration>,
    },
    /// Write the share to the journal: it cannot be sent.
    Journal {
        share: Share,
        reason: String,
    },
    /// Something the user should read once, in words a user understands.
    Notice(String),
    /// Text the pool sent for its users, its control characters escaped.
    PoolMessage(String),
    /// End this connection.
    Close(Close),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    pub reason: String,
    pub then: Then,
}

impl Close {
    /// The pool failed: fail over, or back off before trying it again.
    pub fn fail(reason: impl Into<String>) -> Close {
        Close { reason: reason.into(), then: Then::Fail }
    }
}

/// What follows a closed connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    /// The pool failed: fail over, or back off before trying it again.
    Fail,
    /// Connect to the same pool again at once (it taught us something about itself).
    Retry,
    /// The pool asked for a new connection, perhaps elsewhere on its host (v1's
    /// `client.reconnect`).
    Redirect(Redirect),
}

/// The actions of a failed connection.
pub fn fail<M>(reason: impl Into<String>) -> Vec<Action<M>> {
    vec![Action::Close(Close::fail(reason))]
}

/// Why a connection to a pool could not be opened: what the log and the API say, and what
/// a caller can tell apart (a refused port from a certificate nobody trusts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    BadUrl(#[from] UrlError),
    #[error("connect to {address}: refused (is the pool up, and is this its port?)")]
    Refused { address: String },
    #[error("connect to {address} timed out")]
    TimedOut { address: String },
    /// TCP connected, and the pool then said nothing (or too little) for its handshake.
    #[error(
        "{address} took the connection but did not finish the {handshake} handshake in {seconds} s; is this its {handshake} port?"
    )]
    HandshakeTimedOut { address: String, handshake: &'static str, seconds: u64 },
    #[error("connect to {address}: {reason}")]
    Network { address: String, reason: String },
    #[error(transparent)]
    TlsConfig(#[from] TlsError),
    #[error(
        "TLS with {address}: the pool's certificate is not trusted ({reason}); see --ca-file and --pool-cert-sha256"
    )]
    TlsTrust { address: String, reason: String },
    #[error("TLS with {address}: {reason}")]
    Tls { address: String, reason: String },
    #[error("Noise handshake with {address}: the pool did not prove authority key {key}; is it the pool's key?")]
    AuthorityKey { address: String, key: String },
    #[error("Noise handshake with {address}: {reason}; does the pool speak Stratum V2?")]
    Handshake { address: String, reason: String },
}

impl ConnectError {
    /// A failed TCP connect, by what the system said.
    pub fn io(address: String, error: &std::io::Error) -> ConnectError {
        match error.kind() {
            std::io::ErrorKind::ConnectionRefused => ConnectError::Refused { address },
            std::io::ErrorKind::TimedOut => ConnectError::TimedOut { address },
            _ => ConnectError::Network { address, reason: error.to_string() },
        }
    }
}
