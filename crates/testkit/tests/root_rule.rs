//! The root-test rule end to end (issue 12, item 20): a test process that
//! is not root fails loudly unless `TOLLGATE_SKIP_ROOT_TESTS=1`, then it
//! says it skips; as root it runs. The probe (`src/bin/root_probe.rs`)
//! calls `testkit::root` as every root test does; as root, this test runs
//! it also as the unprivileged user `nobody` (uid 65534).

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Output};

const NOBODY: u32 = 65_534;

fn probe(as_nobody: bool, skip: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_root_probe"));
    cmd.env_remove(testkit::SKIP);
    if let Some(v) = skip {
        cmd.env(testkit::SKIP, v);
    }
    if as_nobody {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.output().expect("run the probe")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_test_without_root_fails_loudly_unless_asked_to_skip() {
    // As root, drop to nobody; otherwise this process is already not root.
    let drop_root = testkit::is_root();
    for skip in [None, Some("0"), Some("")] {
        let o = probe(drop_root, skip);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(101), "{skip:?}: a panic: {err}");
        assert!(
            err.contains("root_probe needs root") && err.contains("TOLLGATE_SKIP_ROOT_TESTS=1"),
            "{skip:?}: {err}"
        );
        assert!(o.stdout.is_empty(), "it went on: {}", text(&o.stdout));
    }
    let o = probe(drop_root, Some("1"));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("skipping root_probe: it needs root"),
        "the skip is said: {err}"
    );
    assert_eq!(text(&o.stdout), "skipped\n");
}

#[test]
fn a_test_as_root_runs_whatever_the_variable_says() {
    if !testkit::root("a_test_as_root_runs_whatever_the_variable_says") {
        return;
    }
    for skip in [None, Some("1")] {
        let o = probe(false, skip);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "ran\n", "{skip:?}");
    }
}
