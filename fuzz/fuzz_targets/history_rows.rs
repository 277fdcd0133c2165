//! Fuzz target: `history::fuzzing::rows` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| history::fuzzing::rows(data));
