//! Fuzz target: `routes::fuzzing::import` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| routes::fuzzing::import(data));
