#![no_main]
//! Any bytes as the flow collector's saved templates file, loaded into a
//! worker's decoder under small limits (see
//! `flow_collector::saved::fuzz_saved_states`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flow_collector::saved::fuzz_saved_states(data));
