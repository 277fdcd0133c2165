//! The command line as a user meets it.

use std::process::{Command, Output};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(root())
        .env_remove("TOLLGATE_CONFIG")
        .args(args)
        .output()
        .expect("run tollgate")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn check_accepts_the_examples() {
    for ex in ["examples/router.toml", "examples/hypervisor.toml"] {
        let o = tollgate(&["check", "-c", ex]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(text(&o.stdout).contains("valid"));
    }
}

#[test]
fn check_reports_all_ten_mistakes_and_exits_1() {
    let f = "crates/policy/tests/fixtures/invalid/ten-mistakes.toml";
    let o = tollgate(&["check", "-c", f]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(err.matches(": error: ").count(), 10, "{err}");
    assert!(
        err.contains("ten-mistakes.toml:3:8: error: unknown mode `switch`"),
        "{err}"
    );
    let o = tollgate(&["check", "--json", "-c", f]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 10);
    assert_eq!(v["diagnostics"][0]["line"], 3);
    assert_eq!(v["diagnostics"][0]["column"], 8);
}

#[test]
fn config_comes_from_the_environment_too() {
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(root())
        .env("TOLLGATE_CONFIG", "examples/router.toml")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn a_missing_policy_says_what_to_do() {
    let o = tollgate(&["check", "-c", "/nonexistent/tollgate.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot read the policy") && err.contains("hint"),
        "{err}"
    );
}

#[test]
fn plan_offline_prints_every_format() {
    let ex = "examples/router.toml";
    let t = tollgate(&["plan", "--offline", "-c", ex]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t.stderr));
    assert!(text(&t.stdout).contains("Create:") && text(&t.stdout).contains("Switch:"));
    let tc = text(&tollgate(&["plan", "--offline", "--format", "tc", "-c", ex]).stdout);
    assert!(
        tc.contains("qdisc add dev tg-down root handle 1: htb default ffff"),
        "{tc}"
    );
    let nft = text(&tollgate(&["plan", "--offline", "--format", "nft", "-c", ex]).stdout);
    assert!(nft.starts_with("table netdev tollgate {"), "{nft}");
    let json = tollgate(&["plan", "--offline", "--format", "json", "-c", ex]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["plan"]["classes"].as_array().unwrap().len() > 10);
    assert!(v["provenance"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["serves"]["tenant"] == 1));
}

#[test]
fn live_plan_names_interfaces_this_host_lacks() {
    // Read-only: the live plan observes the kernel and compiles against it;
    // this host has no `wan0`, so nothing can be planned, let alone changed.
    let o = tollgate(&["plan", "--host", "x.toml", "-c", "examples/router.toml"]);
    // A mistake in the arguments: exit 1, like every invalid input.
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--offline"));
}

#[test]
fn plan_with_host_facts_reports_a_missing_interface() {
    let facts = std::env::temp_dir().join(format!("facts-{}.toml", std::process::id()));
    std::fs::write(&facts, "interfaces = [\"lan0\"]\n").unwrap();
    let o = tollgate(&[
        "plan",
        "--offline",
        "--host",
        facts.to_str().unwrap(),
        "-c",
        "examples/router.toml",
    ]);
    let _ = std::fs::remove_file(&facts);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("`wan0` does not exist"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn explain_lists_a_tenants_objects_by_name_or_id() {
    let by_name = text(&tollgate(&["explain", "alice", "-c", "examples/router.toml"]).stdout);
    let by_id = text(&tollgate(&["explain", "1", "-c", "examples/router.toml"]).stdout);
    assert_eq!(by_name, by_id);
    assert!(
        by_name.contains("realm international") && by_name.contains("band interactive"),
        "{by_name}"
    );
    let o = tollgate(&["explain", "nobody", "-c", "examples/router.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("hint"));
}

#[test]
fn every_subcommand_has_examples_in_its_help() {
    for sub in ["check", "plan", "explain"] {
        let o = tollgate(&[sub, "--help"]);
        assert!(
            text(&o.stdout).contains("Examples:"),
            "{sub} --help has no examples"
        );
    }
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `tollgate plan | head -1`: the pipe closes after one line. The plan
    // must be long enough to overflow the pipe's buffer, so the write
    // really fails; the router example's plan in tc form is.
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(root())
        .args([
            "plan",
            "--offline",
            "--format",
            "json",
            "-c",
            "examples/router.toml",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}

/// A folder with the router example and a prefix list, for the file tests.
fn policy_dir(tag: &str, prefix_files: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root().join("examples/router.toml"))
        .unwrap()
        .replace(
            "prefix_files = [\"national.txt\"]",
            &format!("prefix_files = {prefix_files}"),
        );
    std::fs::write(dir.join("policy.toml"), text).unwrap();
    dir
}

#[test]
fn prefix_files_that_are_not_files_in_the_folder_are_refused_quickly_and_never_echoed() {
    // Issue 12, item 11: a FIFO, a device, a path out of the folder.
    let dir = policy_dir(
        "files",
        "[\"fifo.txt\", \"/dev/zero\", \"../../../../etc/shadow\"]",
    );
    assert!(Command::new("mkfifo")
        .arg(dir.join("fifo.txt"))
        .status()
        .unwrap()
        .success());
    let start = std::time::Instant::now();
    let o = tollgate(&["check", "-c", dir.join("policy.toml").to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "check blocked"
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("fifo.txt") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(err.contains("/dev/zero"), "{err}");
    assert!(err.contains("shadow") && err.contains("outside"), "{err}");
    assert!(!err.contains("root:"), "{err}");
}

#[test]
fn a_policy_that_is_not_utf8_is_an_invalid_policy_with_its_place() {
    // Issue 12, item 12: exit 1 like every invalid policy, line:col given.
    let f = std::env::temp_dir().join(format!("tg-latin1-{}.toml", std::process::id()));
    std::fs::write(&f, b"[site]\nmode = \"router\"\n# caf\xe9\n").unwrap();
    let o = tollgate(&["check", "-c", f.to_str().unwrap()]);
    let _ = std::fs::remove_file(&f);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains(":3:6:") && err.contains("UTF-8"), "{err}");
}

#[test]
fn a_huge_duration_is_refused_not_a_panic() {
    // Issue 12, item 15.
    let o = tollgate(&[
        "apply",
        "--every",
        "100000000000000000000000s",
        "-c",
        "examples/router.toml",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a mistake in the arguments is invalid input"
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("longer than") && !err.contains("panicked"),
        "{err}"
    );
}
