#![no_main]
//! Any bytes, split into length-prefixed datagrams, through one flow
//! decoder (see `flow_wire::fuzzing::decode`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flow_wire::fuzzing::decode(data));
