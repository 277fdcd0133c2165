#![no_main]
//! Any bytes, split into length-prefixed datagrams, decoded and attributed
//! by one tally (see `flows::fuzzing::attribute`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flows::fuzzing::attribute(data));
