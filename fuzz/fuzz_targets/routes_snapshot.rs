//! Fuzz target: `routes::fuzzing::snapshot` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| routes::fuzzing::snapshot(data));
