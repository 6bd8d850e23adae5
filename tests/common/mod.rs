//! Shared by the integration tests: the real mainnet headers and one GPU per test binary.
#![allow(dead_code)]

pub mod http;
pub mod node;
pub mod sri;
pub mod template_provider;

use std::sync::{Mutex, MutexGuard, OnceLock};

use wgminer::device::DeviceSelector;
use wgminer::gpu::{GpuOptions, GpuSweeper, select_adapter};
use wgminer::work::{BlockHash, Header, header_from_hex};

pub struct MainnetHeader {
    pub height: u32,
    pub hash: BlockHash,
    pub header: Header,
}

/// `tests/data/mainnet_headers.tsv`, a copy of `../shared/testdata/mainnet_headers.tsv`.
pub fn mainnet_headers() -> Vec<MainnetHeader> {
    let text = include_str!("../data/mainnet_headers.tsv");
    text.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 7, "{line}");
            MainnetHeader {
                height: cols[1].parse().unwrap(),
                hash: cols[2].parse().unwrap(),
                header: header_from_hex(cols[3]).unwrap(),
            }
        })
        .collect()
}

/// The GPU every test in this binary shares: opening one compiles the kernel, which takes a
/// few seconds on lavapipe. A missing adapter fails the test with what to install.
pub fn gpu() -> MutexGuard<'static, GpuSweeper> {
    static GPU: OnceLock<Mutex<GpuSweeper>> = OnceLock::new();
    GPU.get_or_init(|| Mutex::new(open_gpu())).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The default adapter (lavapipe in CI) in the default shape (`Shape::DEFAULT`: eight versions
/// per nonce), with small dispatches so that tests exercise many of them, and the ring of slots.
#[allow(dead_code)] // not every test binary opens one of its own
pub fn open_gpu() -> GpuSweeper {
    let adapter = select_adapter(&DeviceSelector::Auto).unwrap_or_else(|e| panic!("{e}"));
    let options = GpuOptions { batch: 1 << 16, ..GpuOptions::default() };
    GpuSweeper::open(adapter, options).unwrap_or_else(|e| panic!("{e}"))
}
