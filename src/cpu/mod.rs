//! The CPU side of every sweep: the sha2 reference sweeper (also the `cpu` device) and the
//! verifier that re-hashes every candidate a device reports.

pub mod sweep;
pub mod verify;

pub use sweep::CpuSweeper;
pub use verify::{HardwareError, Verified, verify};
