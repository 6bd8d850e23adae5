//! Every input in `fuzz/corpus/` (the fuzzers' corpora, checked in) through the same entry
//! points the `cargo fuzz` targets call, on the stable toolchain: a regression any fuzzer once
//! found fails here without a fuzzer. See RELIABILITY.md for the runs.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 10] = [
    ("stratum_client", wgminer::fuzzing::stratum_client),
    ("stratum_pool", wgminer::fuzzing::stratum_pool),
    ("stratum_v2_client", wgminer::fuzzing::stratum_v2_client),
    ("stratum_v2_pool", wgminer::fuzzing::stratum_v2_pool),
    ("getblocktemplate", wgminer::fuzzing::getblocktemplate),
    ("node_reply", wgminer::fuzzing::node_reply),
    ("node_http", wgminer::fuzzing::node_http),
    ("config_file", wgminer::fuzzing::config_file),
    ("api_request", wgminer::fuzzing::api_request),
    ("browser_frame", wgminer::fuzzing::browser_frame),
];

#[test]
fn every_corpus_entry_replays_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(entries.len() >= 2, "{name}: the corpus has {} entries", entries.len());
        for path in entries {
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                panic!("{name}: {} panics", path.display());
            }
        }
    }
}
