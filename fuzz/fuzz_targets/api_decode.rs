#![no_main]
//! Any bytes as the API's query strings and JSON bodies (see
//! `api::fuzzing::decode`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| api::fuzzing::decode(data));
