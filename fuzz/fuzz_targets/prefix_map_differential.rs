//! The prefix map against a naive model, driven by arbitrary operations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| prefix_map::fuzzing::differential(data));
