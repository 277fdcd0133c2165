//! Any bytes as a policy file: loading and rendering every diagnostic must
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let loaded = policy::load_str("fuzz.toml", &text);
    for d in &loaded.diagnostics {
        let _ = d.render(&loaded.sources);
        let _ = d.to_record(&loaded.sources);
    }
    let _ = loaded.render();
});
