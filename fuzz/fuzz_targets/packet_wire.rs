#![no_main]
//! Any bytes as captured frames, parsed and aggregated (see
//! `packet_wire::fuzzing::frames`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| packet_wire::fuzzing::frames(data));
