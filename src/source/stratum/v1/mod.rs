//! Stratum v1: newline-delimited JSON-RPC (`codec`, shared with the embedded pool), the
//! connection over TCP or TLS (`transport`), and the protocol as a state machine without I/O
//! (`session`).

pub mod codec;
pub mod session;
pub mod transport;
