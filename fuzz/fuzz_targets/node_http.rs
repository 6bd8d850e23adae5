#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wgminer::fuzzing::node_http(data));
