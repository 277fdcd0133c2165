//! The fuzz target's entry (`fuzz/fuzz_targets/libreqos_import.rs`).

use crate::{import, Options, Severity, Source};

/// Imports any bytes: up to the first NUL byte they are ShapedDevices.csv,
/// after it network.json (none without a NUL). Must hold: no panic; the
/// policy written always passes `tollgate check`'s parse and validation
/// (an importer fault panics here); every diagnostic's line lies inside
/// its file; rows skipped never exceed rows read; a policy comes back
/// exactly when it compiles and some circuit was imported.
pub fn import_bytes(data: &[u8]) {
    let (devices, network) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let out = import(
        Source {
            name: "ShapedDevices.csv",
            bytes: devices,
        },
        network.map(|bytes| Source {
            name: "network.json",
            bytes,
        }),
        &Options::default(),
        &mut |_| {},
    );
    let r = &out.report;
    assert!(
        !r.importer_fault,
        "the imported policy does not pass check: {:?}",
        r.diagnostics
    );
    assert!(r.rows_skipped <= r.rows, "{r:?}");
    for d in &r.diagnostics {
        // Line ends as the CSV reader counts them: LF, CR LF, or a lone CR.
        let lines = |b: &[u8]| {
            b.iter()
                .enumerate()
                .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')))
                .count()
                + 1
        };
        let bound = match d.file.as_str() {
            "ShapedDevices.csv" => lines(devices),
            "network.json" => network.map_or(0, lines),
            // The policy's own lines, from the check.
            _ => usize::MAX,
        };
        if let Some(l) = d.line {
            assert!(l >= 1 && l <= bound, "line {l} outside {}: {d}", d.file);
        }
    }
    if out.policy.is_some() {
        assert!(r.tenants > 0);
        assert!(!r
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error && d.file == "policy.toml"));
    }
}
