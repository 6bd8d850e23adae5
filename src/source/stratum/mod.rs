//! Pool protocols, laid out as the architecture: `core` (what every protocol shares: the
//! `Protocol` trait, actions, close reasons, share outcomes), one folder a protocol (`v1`,
//! `v2`: wire format, transport, session as a state machine without I/O, and the `Wire` that
//! opens it), pool URLs and settings (`pool_url`), the choice of the next connection
//! (`failover`, policy only), TLS as pool users expect it (`tls`), and
//! the one driver that does the I/O for every protocol (`driver`).

pub mod core;
pub mod driver;
pub mod failover;
pub mod pool_url;
pub mod tls;
pub mod v1;
pub mod v2;

pub use core::{Rejection, ShareOutcome};
pub use pool_url::PoolConfig;
