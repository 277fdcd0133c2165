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
fn plan_with_host_facts_needs_offline() {
    // A mistake in the arguments: the live plan observes the kernel, so
    // facts from a file make sense only with --offline. Exit 1, like
    // every invalid input, naming the option.
    let o = tollgate(&["plan", "--host", "x.toml", "-c", "examples/router.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--offline"));
}

#[test]
fn live_plan_names_interfaces_this_host_lacks() {
    // Issue 12, item 20: this test once checked only the argument rule
    // above. Now `plan` reads a real kernel: a namespace with `lan0` but
    // no `wan0`, the router example's uplink.
    if !testkit::root("live_plan_names_interfaces_this_host_lacks") {
        return;
    }
    let ns = testkit::Netns::new("plan");
    ns.sh("ip link add lan0 type bridge && ip link set lan0 up");
    let plan = |format: &str| {
        tollgate(&[
            "--netns",
            &ns.0,
            "plan",
            "--format",
            format,
            "-c",
            "examples/router.toml",
        ])
    };
    let o = plan("text");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("`wan0` does not exist"), "{err}");
    assert!(!err.contains("`lan0` does not exist"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Read-only: the namespace still has nothing of tollgate's.
    let links = ns.sh("ip -o link show");
    assert!(!links.contains("tg-"), "{links}");

    // With the uplink there, the same command plans.
    ns.sh("ip link add wan0 type veth peer name wan0-peer && ip link set wan0 up");
    let o = plan("text");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
    assert!(text(&o.stdout).contains("Create:"), "{}", text(&o.stdout));
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

/// The subcommands `tollgate <path> --help` lists under "Commands:"
/// (clap's own `help` left out).
fn subcommands(path: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let o = tollgate(&args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
    let help = text(&o.stdout);
    let Some(list) = help.split("\nCommands:\n").nth(1) else {
        return Vec::new();
    };
    list.lines()
        .take_while(|l| !l.is_empty())
        // A name line is indented by two; a wrapped description by more.
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path of the binary, `[]` (tollgate itself) first, found
/// by walking its help.
fn every_command() -> Vec<Vec<String>> {
    let mut all = vec![Vec::new()];
    let mut i = 0;
    while i < all.len() {
        let path = all[i].clone();
        for sub in subcommands(&path) {
            let mut p = path.clone();
            p.push(sub);
            all.push(p);
        }
        i += 1;
    }
    all
}

/// The invocations in a help text's "Examples:" section: each line that
/// starts with `tollgate`, cut at its description (two spaces), a pipe, a
/// redirection, a comment or `&&` (whose right side is another example).
fn examples(help: &str) -> Vec<Vec<String>> {
    let Some(section) = help.split("\nExamples:\n").nth(1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in section.lines().take_while(|l| !l.is_empty()) {
        for part in line.trim().split("&&") {
            let part = part.trim();
            let Some(rest) = part.strip_prefix("tollgate ") else {
                continue;
            };
            let cut = ["  ", " | ", " > ", " #"]
                .iter()
                .filter_map(|sep| rest.find(sep))
                .min()
                .unwrap_or(rest.len());
            out.push(rest[..cut].split_whitespace().map(str::to_string).collect());
        }
    }
    out
}

#[test]
fn every_subcommand_has_examples_in_its_help() {
    // Issue 12, item 20: this once looked at 3 of 18 subcommands. Now the
    // list comes from the binary itself, nested subcommands included.
    let all = every_command();
    let names: Vec<String> = all.iter().map(|p| p.join(" ")).collect();
    for known in [
        "check",
        "down",
        "token",
        "token revoke",
        "lab traffic",
        "hook vif",
    ] {
        assert!(
            names.iter().any(|n| n == known),
            "{known} not found in {names:?}"
        );
    }
    assert!(all.len() >= 30, "{names:?}");
    let mut missing = Vec::new();
    let mut checked = 0;
    for path in &all {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = text(&tollgate(&args).stdout);
        let found = examples(&help);
        if found.is_empty() {
            missing.push(format!("tollgate {}", path.join(" ")));
            continue;
        }
        // Each example is a real invocation: the binary accepts its
        // subcommands, options and values (checked by asking for the help
        // at its end, which clap gives only once everything before it
        // parsed; nothing is run).
        for ex in found {
            let mut args: Vec<&str> = ex.iter().map(String::as_str).collect();
            args.push("--help");
            let o = tollgate(&args);
            assert_eq!(
                o.status.code(),
                Some(0),
                "the example `tollgate {}` in `tollgate {} --help` is not a valid invocation: {}",
                ex.join(" "),
                path.join(" "),
                text(&o.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        missing.is_empty(),
        "these have no Examples section in their help: {missing:?}"
    );
    eprintln!("{} commands, {checked} examples checked", all.len());
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
