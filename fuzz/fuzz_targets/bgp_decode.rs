//! Fuzz target: `bgp::fuzzing::decode_message` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bgp::fuzzing::decode_message(data);
});
