//! Stratum v1: the wire format (`codec`), the protocol as a state machine without I/O
//! (`session`), the pool list and the choice of the next connection (`failover`), TLS as pool
//! users expect it (`tls`), and the driver that does the I/O (`client`).

pub mod client;
pub mod codec;
pub mod failover;
pub mod session;
pub mod tls;

pub use failover::PoolConfig;
pub use session::ShareOutcome;
