//! nBits, targets and difficulty against every real mainnet header in the shared test data.

mod common;

use wgminer::work::target::{candidate_mask, target_from_compact};
use wgminer::work::{Difficulty, header_bytes};

use common::mainnet_headers;

#[test]
fn every_real_header_decodes_meets_its_target_and_re_encodes() {
    for block in mainnet_headers() {
        let h = &block.header;
        assert_eq!(h.block_hash(), block.hash, "block {}", block.height);
        let target = target_from_compact(h.bits).unwrap();
        assert!(target.is_met_by(block.hash), "block {} misses its own target", block.height);
        assert_eq!(target.to_compact_lossy(), h.bits, "block {}", block.height);
        // Mainnet targets sit below difficulty 1, whose top 32 bits are zero: the kernel's
        // filter wants all 32 bits zero, as exact as a comparison.
        assert_eq!(candidate_mask(&target), 0xffff_ffff, "block {}", block.height);
        let difficulty = Difficulty::from_target(&target).value();
        assert!(difficulty >= 1.0, "block {}: {difficulty}", block.height);
        // Difficulty back to a target agrees to double precision.
        let back = Difficulty::new(difficulty).unwrap().to_target();
        let ratio = Difficulty::from_target(&back).value() / difficulty;
        assert!((ratio - 1.0).abs() < 1e-12, "block {}: {ratio}", block.height);
        // The 80 bytes the kernel's host side hashes are the consensus bytes: their double
        // SHA-256 is the block's real hash.
        let hash = <bitcoin::hashes::sha256d::Hash as bitcoin::hashes::Hash>::hash(&header_bytes(h));
        assert_eq!(bitcoin::BlockHash::from_raw_hash(hash), block.hash, "block {}", block.height);
    }
}

#[test]
fn known_difficulties() {
    let headers = mainnet_headers();
    let at = |height: u32| {
        let b = headers.iter().find(|b| b.height == height).unwrap();
        Difficulty::from_target(&target_from_compact(b.header.bits).unwrap()).value()
    };
    assert_eq!(at(0), 1.0);
    // Block 33000, in the first period above 1: nBits 0x1d00d86a, difficulty 1.1828995343128408.
    assert!((at(33000) - 1.182_899_534_312_840_8).abs() < 1e-12, "{}", at(33000));
}
