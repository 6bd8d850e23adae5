//! Stratum v1: the connection over TCP or TLS (`transport`) and the protocol as a state
//! machine without I/O (`session`). The wire itself is `crate::wire::stratum_v1`.

pub mod session;
pub mod transport;
mod wire;
