#![no_main]
//! Any bytes as a sequence of observations, manual commands and restarts
//! driven through the DDoS detector and its ladder (see
//! `guard::fuzzing::detect` for what must hold).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    guard::fuzzing::detect(data);
});
