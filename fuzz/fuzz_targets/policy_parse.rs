//! Any bytes as a policy file, and as the prefix lists it names: loading and
//! rendering every diagnostic must never panic.
//!
//! The input is the policy's bytes, then optionally `\0\0` and the bytes
//! every prefix list reads as. Bytes that are not UTF-8 go in as they are
//! (`policy::load_bytes` reports them). A prefix-list name decides what the
//! read says: names with `fifo` are not regular files, names with `..` are
//! outside the folder, others read the second part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::ReadError;

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == [0, 0]);
    let (text, list) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b"192.0.2.0/24\n"[..]),
    };
    let loaded = policy::load_bytes("fuzz.toml", text, &mut |name| {
        if name.contains("fifo") {
            Err(ReadError::NotRegularFile)
        } else if name.contains("..") {
            Err(ReadError::OutsideAllowedFolders {
                allowed: vec!["/etc/tollgate".into()],
            })
        } else {
            Ok(list.to_vec())
        }
    });
    for d in &loaded.diagnostics {
        let _ = d.render(&loaded.sources);
        let _ = d.to_record(&loaded.sources);
    }
    let _ = loaded.render();
    let _ = net_types::parse_duration(&String::from_utf8_lossy(text));
});
