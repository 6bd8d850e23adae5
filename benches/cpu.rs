//! The CPU side of a sweep: what the host does per work unit (midstate, kernel parameters) and
//! per candidate (verification, target comparison), and the reference sweeper itself.
//! GPU speed is measured by `wgminer bench`, on the device at hand.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use wgminer::cpu;
use wgminer::gpu::kernel::KernelParams;
use wgminer::work::sha256::Midstate;
use wgminer::work::{Candidate, Difficulty, NonceRange, Work, header_from_hex};

const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

fn benches(c: &mut Criterion) {
    let header = header_from_hex(GENESIS).unwrap();
    let work = Work::block(header).unwrap();
    let bytes = work.header_bytes(0);

    c.bench_function("midstate", |b| b.iter(|| Midstate::of_header(black_box(&bytes))));
    c.bench_function("kernel_params", |b| b.iter(|| KernelParams::new(black_box(&work))));

    let range = NonceRange::new(header.nonce, 1).unwrap();
    c.bench_function("verify_one_candidate", |b| {
        b.iter(|| cpu::verify(black_box(&work), range, black_box(&[Candidate::first(header.nonce)])))
    });

    let hash = header.block_hash();
    let share = Difficulty::new(1024.0).unwrap().to_target();
    c.bench_function("target_is_met_by", |b| b.iter(|| black_box(&share).is_met_by(black_box(hash))));
    c.bench_function("difficulty_to_target", |b| b.iter(|| Difficulty::new(black_box(0.001)).unwrap().to_target()));

    let mut group = c.benchmark_group("reference_sweep");
    let count = 1 << 14;
    group.throughput(Throughput::Elements(count));
    let range = NonceRange::new(0, count).unwrap();
    group.bench_function("sha2_one_thread", |b| b.iter(|| cpu::sweep::sweep(black_box(&work), range)));
    group.finish();

    // A config file of 80,000 keys: linear in its size (it took 19 s when each key's line was
    // found by scanning from the top).
    let big: String = (0..80_000).map(|i| format!("key{i} = {i}\n")).collect();
    let mut group = c.benchmark_group("config_file");
    group.sample_size(10);
    group.bench_function("parse_80000_keys", |b| {
        b.iter(|| wgminer::config::ConfigFile::parse(std::path::Path::new("big.toml"), black_box(&big)))
    });
    group.finish();
}

criterion_group!(cpu_side, benches);
criterion_main!(cpu_side);
