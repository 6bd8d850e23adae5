//! Stratum v1: the line codec (`codec`) and the client session (`client`).

pub mod client;
pub mod codec;

pub use client::{PoolConfig, ShareOutcome};
