//! wgminer: a portable GPU Bitcoin miner. See ARCHITECTURE.md for the map.

pub mod admission;
pub mod api;
pub mod browser;
pub mod commands;
pub mod config;
pub mod cpu;
pub mod device;
pub mod fuzzing;
pub mod gpu;
pub mod http;
pub mod listen;
pub mod logging;
pub mod miner;
pub mod pool;
pub mod run;
pub mod scheduler;
pub mod sensor;
pub mod source;
pub mod stats;
pub mod wire;
pub mod work;
