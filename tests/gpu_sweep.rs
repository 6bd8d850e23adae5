//! The kernel on a real adapter (lavapipe in CI): the real nonce of every mainnet header in the
//! shared test data, windows that wrap past 0xffffffff, and exactly the CPU reference's
//! candidates on easy targets, including the path where candidates overflow the buffer.

mod common;

use wgminer::cpu;
use wgminer::device::Sweeper;
use wgminer::gpu::sweep::CANDIDATE_CAPACITY;
use wgminer::work::{Candidate, Header, NonceRange, Target, Work, header_from_hex};

use common::{gpu, mainnet_headers};

/// A target whose most significant 32 bits are `top` and the rest all ones.
fn target_with_top(top: u32) -> Target {
    let mut le = [0xff; 32];
    le[28..].copy_from_slice(&top.to_le_bytes());
    Target::from_le_bytes(le)
}

/// Sweeps on the GPU and returns the verified hits' nonces; fails on any hardware error.
fn gpu_hits(work: &Work, range: NonceRange) -> Vec<u32> {
    let candidates = gpu().sweep(work, range).unwrap();
    let verified = cpu::verify(work, range, &candidates);
    assert!(verified.hw_errors.is_empty(), "hardware errors: {:?}", verified.hw_errors);
    verified.hits.iter().map(|h| h.nonce).collect()
}

#[test]
fn every_mainnet_header_yields_its_real_nonce_and_hash() {
    let headers = mainnet_headers();
    assert_eq!(headers.len(), 242);
    for block in &headers {
        let work = Work::block(block.header).unwrap();
        // A 64 Ki window placed differently around each nonce.
        let before = (block.height.wrapping_mul(2_654_435_761) >> 16) & 0xffff;
        let range = NonceRange::new(block.header.nonce.wrapping_sub(before), 1 << 16).unwrap();
        let candidates = gpu().sweep(&work, range).unwrap();
        let verified = cpu::verify(&work, range, &candidates);
        assert_eq!(verified.hits.len(), 1, "block {}: {verified:?}", block.height);
        assert_eq!(verified.hits[0].nonce, block.header.nonce, "block {}", block.height);
        assert_eq!(verified.hits[0].hash, block.hash, "block {}", block.height);
        assert!(verified.hw_errors.is_empty());
    }
}

#[test]
fn windows_that_wrap_past_the_last_nonce() {
    let headers = mainnet_headers();
    let block = |height: u32| headers.iter().find(|b| b.height == height).unwrap();
    // Nonce 0x005020b4, window 0xffc00000..0x00600000; nonce 0xffda6c71, window ..0x00100000.
    for (height, start, count) in [(2500, 0xffc0_0000, 0x00a0_0000), (825_100, 0xffd0_0000, 0x0040_0000)] {
        let b = block(height);
        let work = Work::block(b.header).unwrap();
        let range = NonceRange::new(start, count).unwrap();
        assert_eq!(gpu_hits(&work, range), [b.header.nonce], "block {height}");
    }
}

fn random_header(seed: u64) -> Header {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let bytes: Vec<u8> = (0..80)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    bitcoin::consensus::deserialize(&bytes).unwrap()
}

/// GPU and CPU reference return the same candidate set: sorted, compared whole.
fn assert_same_candidates(work: &Work, range: NonceRange) -> usize {
    let mut got = gpu().sweep(work, range).unwrap();
    got.sort_unstable();
    let mut want = cpu::sweep::sweep(work, range);
    want.sort_unstable();
    assert_eq!(got.len(), want.len(), "candidate counts differ on {range}");
    assert_eq!(got, want, "candidate sets differ on {range}");
    got.len()
}

#[test]
fn gpu_and_cpu_agree_on_random_headers_with_easy_targets() {
    let mut total = 0;
    for seed in 0..16 {
        let work = Work::new(random_header(seed), target_with_top(0x00ff_ffff));
        let range = NonceRange::new((seed as u32).wrapping_mul(0x1234_5678), 1 << 16).unwrap();
        total += assert_same_candidates(&work, range);
    }
    // About one nonce in 256 passes: thousands of candidates in all.
    assert!(total > 3000, "{total}");
}

#[test]
fn overflowing_the_candidate_buffer_loses_nothing() {
    // One in four nonces, then every nonce, is a candidate: each 64 Ki dispatch of the test
    // GPU overflows the buffer several times over and is swept again in parts.
    for (seed, top, count) in [(100, 0x3fff_ffff, 1 << 17), (101, u32::MAX, 3 << 16)] {
        let work = Work::new(random_header(seed), target_with_top(top));
        let range = NonceRange::new(0xffff_8000, count).unwrap();
        let n = assert_same_candidates(&work, range);
        assert!(n > 4 * CANDIDATE_CAPACITY as usize, "{n}");
    }
    let work = Work::new(random_header(102), Target::from_be_bytes([0xff; 32]));
    let range = NonceRange::new(7, 100_000).unwrap();
    assert_eq!(gpu_hits(&work, range), range.iter().collect::<Vec<_>>());
}

#[test]
fn a_range_smaller_than_one_invocation_and_a_single_nonce() {
    let genesis = &mainnet_headers()[0];
    let work = Work::block(genesis.header).unwrap();
    assert_eq!(gpu_hits(&work, NonceRange::new(genesis.header.nonce, 1).unwrap()), [genesis.header.nonce]);
    assert!(gpu_hits(&work, NonceRange::new(genesis.header.nonce.wrapping_add(1), 63).unwrap()).is_empty());
}

/// `versions` rolled versions under BIP320's mask, from `base`'s rolled bits up.
fn rolled(base: u32, versions: u32) -> Vec<u32> {
    (0..versions).map(|k| base.wrapping_add(k << 13)).collect()
}

/// Headers that differ only in their version share the kernel's schedule of each nonce (overt
/// AsicBoost): every version index still finds exactly the CPU reference's candidates, for
/// every number of versions up to the kernel's eight.
#[test]
fn hits_at_every_version_index_match_the_cpu_reference() {
    for versions in 1..=8u32 {
        let mut header = random_header(200 + u64::from(versions));
        header.version = bitcoin::block::Version::from_consensus(0x2000_0000);
        let work = Work::with_versions(header, target_with_top(0x00ff_ffff), &rolled(0x2000_0000, versions));
        let range = NonceRange::new(0xffff_c000, 1 << 15).unwrap();
        assert_same_candidates(&work, range);
        let mut found: Vec<u32> = gpu().sweep(&work, range).unwrap().iter().map(|c| c.version).collect();
        found.sort_unstable();
        found.dedup();
        assert_eq!(found, (0..versions).collect::<Vec<_>>(), "{versions} versions");
    }
}

/// The header of block 881,423, as the chain has it.
pub const BLOCK_881423: &str = "0060592ee3c96a8a70ca15fe215e99f84ab64c43e1b5d2c43b540100000000000000000076f63a35f1b8b5016d3eb0cce2eebbdf58bf8fbea4e870c8f770346bdfcf622d69c19a678a9a021702fb05ff";

/// Block 881,423 was mined with rolled version bits (0x2e596000 under 0x1fffe000): swept in a
/// unit of four versions, as a pool's job is, its nonce is found at its version's index.
#[test]
fn a_real_version_rolled_block_is_found_at_its_version_index() {
    let header = header_from_hex(BLOCK_881423).unwrap();
    let own = header.version.to_consensus() as u32;
    assert_eq!(own, 0x2e59_6000);
    let versions = rolled(own - (3 << 13), 4); // the real one last
    let work = Work::with_versions(header, Work::block(header).unwrap().target, &versions);
    let range = NonceRange::new(header.nonce.wrapping_sub(0x8000), 1 << 16).unwrap();
    let candidates = gpu().sweep(&work, range).unwrap();
    let verified = cpu::verify(&work, range, &candidates);
    assert!(verified.hw_errors.is_empty(), "{verified:?}");
    assert_eq!(verified.hits.len(), 1, "{verified:?}");
    let hit = verified.hits[0];
    let hash = "0000000000000000000269d52c24ea451225613aab095d90d771d4e29aa96cdd";
    assert_eq!((hit.nonce, hit.version, hit.hash.to_string().as_str()), (0xff05_fb02, own, hash));
    assert!(candidates.contains(&Candidate { nonce: header.nonce, version: 3 }));
}

/// Eight versions of every nonce a candidate: each dispatch overflows the buffer eight times
/// faster than one version would, and the re-sweep's parts shrink by eight to hold theirs.
#[test]
fn overflow_with_several_versions_loses_nothing() {
    let mut header = random_header(300);
    header.version = bitcoin::block::Version::from_consensus(0x2000_0000);
    let work = Work::with_versions(header, Target::from_be_bytes([0xff; 32]), &rolled(0x2000_0000, 8));
    let range = NonceRange::new(0xffff_f000, 1 << 14).unwrap();
    let n = assert_same_candidates(&work, range);
    assert_eq!(n, 8 << 14);
}
