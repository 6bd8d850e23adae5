//! The GPU side: adapters on every backend wgpu reaches, the sweep pipeline around
//! `shaders/sha256d.wgsl`, and the auto-tuner that sizes its dispatches.

pub mod adapter;
mod fault;
pub mod kernel;
pub mod ops;
pub mod shape;
pub mod sweep;
pub mod tune;

pub use adapter::{GpuError, list_adapters, select_adapter};
pub use sweep::{GpuOptions, GpuSweeper};
