#![no_main]
//! Any bytes as a saved flow decoder state (see `flow_wire::fuzzing::state`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flow_wire::fuzzing::state(data));
