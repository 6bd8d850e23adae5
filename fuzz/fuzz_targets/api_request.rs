#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wgminer::fuzzing::api_request(data));
