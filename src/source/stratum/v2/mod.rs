//! Stratum V2 beside v1: the protocol as a state machine without I/O (`session`, over SRI's
//! `channels_sv2` client channels) and the client's Noise handshake (`transport`). The wire
//! itself is `crate::wire::stratum_v2`.

pub mod session;
pub mod transport;
mod wire;

pub use crate::wire::stratum_v2::{AuthorityKey, Message};
