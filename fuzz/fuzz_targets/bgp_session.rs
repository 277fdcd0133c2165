//! Fuzz target: `bgp::fuzzing::session` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bgp::fuzzing::session(data));
