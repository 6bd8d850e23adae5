//! Pool protocols. Stratum v1: the wire format (`codec`) and the protocol as a state machine
//! without I/O (`session`); Stratum V2 beside it (`v2`: the same shape over SRI's crates).
//! Shared by both: the pool list and the choice of the next connection (`failover`), TLS as
//! pool users expect it (`tls`, v1), and the driver that does the I/O (`client`).

pub mod client;
pub mod codec;
pub mod failover;
pub mod session;
pub mod tls;
pub mod v2;

pub use failover::PoolConfig;
pub use session::ShareOutcome;
