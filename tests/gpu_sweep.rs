//! The kernel on a real adapter (lavapipe in CI): real mainnet nonces, and exactly the CPU
//! reference's candidates on easy targets, the overflow path included.

mod common;

use wgminer::cpu;
use wgminer::device::Sweeper;
use wgminer::work::{Difficulty, NonceRange, Target, Work};

use common::{gpu, mainnet_headers};

#[test]
fn genesis_nonce_is_found() {
    let genesis = &mainnet_headers()[0];
    let work = Work::block(genesis.header).unwrap();
    let range = NonceRange::new(genesis.header.nonce.wrapping_sub(1000), 2000).unwrap();
    let candidates = gpu().sweep(&work, range).unwrap();
    let verified = cpu::verify(&work, range, &candidates);
    assert_eq!(verified.hits.len(), 1, "{verified:?}");
    assert_eq!(verified.hits[0].nonce, 0x7c2bac1d);
    assert_eq!(verified.hits[0].hash, genesis.hash);
    assert!(verified.hw_errors.is_empty());
}
