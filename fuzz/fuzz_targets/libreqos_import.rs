//! Fuzz target: `libreqos::fuzzing::import_bytes` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| libreqos::fuzzing::import_bytes(data));
