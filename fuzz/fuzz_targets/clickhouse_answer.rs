//! Fuzz target: `history_clickhouse::fuzzing::answer` over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    history_clickhouse::fuzzing::answer(data);
});
