//! Replays every input under `tests/fuzz_regressions/` through the same steps
//! as the `policy_parse` fuzz target (`fuzz/fuzz_targets/policy_parse.rs`):
//! load the bytes as a policy, then render every diagnostic both ways.
//!
//! The folder holds the fuzz seed policies (`seed-*.toml`, `broken-*.toml`)
//! and every crashing input the fuzzer ever found, minimised, under a short
//! name saying what it broke. A file added there is a test: nothing else to
//! write. See `fuzz/README.md`.
//!
//! `FUZZ_REGRESSIONS_DIR=/some/folder` replays another folder instead, for
//! example a whole fuzz corpus (`fuzz/corpus/policy_parse`) under the test
//! profile's overflow checks.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs() -> Vec<PathBuf> {
    let dir = match std::env::var_os("FUZZ_REGRESSIONS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions"),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// What the fuzz target does, plus checks on what it throws away.
fn replay(name: &str, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let loaded = policy::load_str(name, &text);
    for d in &loaded.diagnostics {
        let rendered = d.render(&loaded.sources);
        assert!(
            rendered.contains(&d.message),
            "rendered diagnostic lacks its message: {rendered:?}"
        );
        let record = d.to_record(&loaded.sources);
        assert_eq!(record.message, d.message);
        if d.span.is_some() {
            assert_eq!(record.file.as_deref(), Some(name));
            assert!(record.line.is_some_and(|l| l >= 1), "{record:?}");
            assert!(record.column.is_some_and(|c| c >= 1), "{record:?}");
        }
    }
    let _ = loaded.render();
    if loaded.policy.is_some() {
        assert!(!loaded.has_errors(), "a policy came back despite errors");
    }
}

#[test]
fn fuzz_regressions_load_without_panicking() {
    let files = inputs();
    assert!(
        !files.is_empty(),
        "tests/fuzz_regressions/ is empty: it should at least hold the seeds"
    );
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read input");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if catch_unwind(AssertUnwindSafe(|| replay(&name, &data))).is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs panicked (messages above): {failed:?}",
        failed.len(),
        files.len()
    );
}
