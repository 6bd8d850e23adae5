#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wgminer::fuzzing::browser_frame(data));
