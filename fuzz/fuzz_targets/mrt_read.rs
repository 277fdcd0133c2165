//! Fuzz target: `bgp::fuzzing::mrt` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bgp::fuzzing::mrt(data);
});
