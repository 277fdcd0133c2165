//! Fuzz target: `accounting::fuzzing::state` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| accounting::fuzzing::state(data));
