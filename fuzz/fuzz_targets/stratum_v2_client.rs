#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wgminer::fuzzing::stratum_v2_client(data));
