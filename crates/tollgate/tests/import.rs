//! `tollgate import libreqos` as a user runs it: what is written where,
//! the exit codes, the report on stderr and as JSON, and that what it
//! writes passes `tollgate check`. The mapping itself is tested in
//! `crates/libreqos`; the fixtures are that crate's.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../libreqos/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .expect("run tollgate")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tg-import-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_policy_goes_to_a_file_and_passes_check() {
    let dir = scratch("ok");
    let out = dir.join("policy.toml");
    let o = tollgate(&[
        "import",
        "libreqos",
        &fixture("full.csv"),
        &fixture("network.json"),
        "-o",
        out.to_str().unwrap(),
        "--uplink",
        "wan0",
        "--lan",
        "lan0",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("imported 5 of 5 rows: 4 tenants (5 devices) on 3 plans under 3 parents"),
        "{err}"
    );
    assert!(
        err.contains("full.csv:8: warning: 1 row asks for sqm `cake`"),
        "{err}"
    );
    let policy = std::fs::read_to_string(&out).unwrap();
    assert!(policy.contains("uplink = \"wan0\""), "{policy}");
    let check = tollgate(&["check", "-c", out.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("valid (4 tenants, 3 plans, 1 realms"));
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_an_output_file_the_policy_goes_to_stdout() {
    let o = tollgate(&[
        "import",
        "libreqos",
        &fixture("legacy13.csv"),
        "--capacity",
        "1gbit/500mbit",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let policy = text(&o.stdout);
    assert!(policy.contains("[[tenants]]\nid = 7\n"), "{policy}");
    assert!(
        policy.contains("capacity = { down = \"1gbit\", up = \"500mbit\" }"),
        "{policy}"
    );
    assert!(text(&o.stderr).contains("→ (standard output)"));
}

#[test]
fn rows_that_cannot_be_imported_write_nothing_and_exit_1_unless_skipped() {
    let dir = scratch("bad");
    let out = dir.join("policy.toml");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "import".to_string(),
            "libreqos".into(),
            fixture("bad.csv"),
            fixture("bad-network.json"),
            "-o".into(),
            out.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let refuse = args(&[]);
    let o = tollgate(&refuse.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("bad.csv:4: error: IPv4 `192.0.2.5/30`: `192.0.2.5/30` has host bits set"),
        "{err}"
    );
    assert!(err.contains("13 of 14 rows cannot be imported"), "{err}");
    assert!(
        err.contains("hint: correct the rows above, or pass --skip-invalid"),
        "{err}"
    );
    assert!(!out.exists(), "nothing may be written");

    let skip = args(&["--skip-invalid", "--json"]);
    let o = tollgate(&skip.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
    assert_eq!(report["rows"], 14);
    assert_eq!(report["rows_skipped"], 13);
    assert_eq!(report["errors"], 13);
    assert_eq!(report["written"], out.display().to_string());
    let first = &report["diagnostics"][0];
    assert_eq!(
        (first["file"].as_str(), first["line"].as_u64()),
        (Some(fixture("bad.csv").as_str()), Some(3))
    );
    let policy = std::fs::read_to_string(&out).unwrap();
    assert!(policy.contains("# Left out (13):"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreadable_or_headerless_input_is_invalid_input() {
    let o = tollgate(&["import", "libreqos", "/nonexistent/ShapedDevices.csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("cannot read /nonexistent/ShapedDevices.csv"));
    let o = tollgate(&["import", "libreqos", &fixture("network.json")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("the header has no Circuit ID"),
        "{}",
        text(&o.stderr)
    );
    let o = tollgate(&["import", "libreqos", &fixture("full.csv"), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "--json needs -o: {}",
        text(&o.stderr)
    );
}
