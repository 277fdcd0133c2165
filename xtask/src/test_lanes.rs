//! The workspace's tests in two lanes, so that CI stays under 20 minutes.
//!
//! Most of the tests' wall time is the kernel tests waiting on traffic,
//! peers and timers (a CI run spent about 15 of its 21 minutes in tests,
//! with a core idle). The crates in [`PURE`] have tests that need no root,
//! no namespace and no fixed port, and measure no rate (one starts a real
//! peer: `api`'s `tests/flows.rs`, a private clickhouse-server on random
//! ports on loopback, which only waits and answers): they
//! run beside the others, at a lower priority, so that a rate a kernel test
//! measures keeps the CPU it had. Once they are done, the same lane runs
//! the few kernel tests in [`WAITING`], which mostly wait.
//!
//! Everything is built once (`cargo test --workspace --no-run`), and the
//! test executables that build reports are run directly, each in its
//! package's folder as cargo runs them. Asking cargo for a subset of the
//! packages instead (`-p …`, `--exclude …`) resolves features for that
//! subset, which rebuilt 62 crates in a first try. The doc-tests run in the
//! pure lane through `cargo test --workspace --doc`, which builds nothing
//! new.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Crates whose tests are pure (see the module's documentation). A crate
/// whose tests start needing the kernel or a peer must leave this list.
const PURE: &[&str] = &[
    "accounting",
    "api",
    "bgp",
    "billing",
    "bpf-classify",
    "compiler",
    "dashboard",
    "engine",
    "flow-wire",
    "flows",
    "guard",
    "latency",
    "libreqos",
    "net-types",
    "nft-netlink",
    "packet-wire",
    "plan",
    "policy",
    "prefix-map",
    "query",
    "routes",
    "settings",
    "tc-netlink",
];

/// Kernel tests that run in the second lane too, after the pure ones: they
/// spend their time waiting on daemons' slots, restarts and API answers,
/// or count exact bytes rather than measuring a rate, and share nothing
/// with the tests beside them (their namespaces are named by process id,
/// their state lives in their own folders, their fixed ports are inside
/// their own namespaces). Together about 300 s that the kernel lane no
/// longer waits for (a CI run took 20 min 15 s with only the first two,
/// 19 min 11 s before the dashboard's browser and the package's dpkg
/// joined them: the kernel lane took 910 s, this one 430 s).
const WAITING: &[(&str, &str)] = &[
    ("tollgate", "tests/agents.rs"),
    ("tollgate", "tests/agents_under_load.rs"),
    ("tollgate", "tests/agents_clickhouse.rs"),
    ("tollgate", "tests/clickhouse_outage.rs"),
    ("tollgate", "tests/crash.rs"),
    ("tollgate", "tests/accounting.rs"),
    ("tollgate", "tests/api.rs"),
    ("tollgate", "tests/dashboard.rs"),
    ("tollgate", "tests/package.rs"),
];

/// Which lane runs `b`: the second lane ("beside") takes the pure crates'
/// tests and the waiting kernel tests.
fn beside(b: &TestBinary) -> bool {
    PURE.contains(&b.package()) || WAITING.contains(&(b.package(), b.what.as_str()))
}

/// One test executable, as cargo built it.
struct TestBinary {
    /// The package's folder (its manifest's), where the test runs.
    dir: PathBuf,
    /// What cargo would print: `tests/x.rs` or `unittests src/lib.rs`.
    what: String,
    executable: PathBuf,
}

impl TestBinary {
    fn package(&self) -> &str {
        self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }
}

/// Builds every test and lists the executables, by package and target.
fn build(root: &Path) -> Result<Vec<TestBinary>, String> {
    eprintln!("$ cargo test --workspace --no-run --message-format=json-render-diagnostics");
    let out = Command::new("cargo")
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the tests failed ({})", out.status));
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" || v["profile"]["test"] != true {
            continue;
        }
        let (Some(exe), Some(manifest)) = (v["executable"].as_str(), v["manifest_path"].as_str())
        else {
            continue;
        };
        let Some(dir) = Path::new(manifest).parent() else {
            continue;
        };
        let src = v["target"]["src_path"].as_str().unwrap_or("");
        let relative = Path::new(src)
            .strip_prefix(dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| src.to_string());
        let kinds = v["target"]["kind"].to_string();
        let what = if kinds.contains("\"test\"") {
            relative
        } else {
            format!("unittests {relative}")
        };
        found.push(TestBinary {
            dir: dir.to_path_buf(),
            what,
            executable: PathBuf::from(exe),
        });
    }
    // Cargo's own order (by package, then target), not the build's.
    found.sort_by(|a, b| (a.package(), &a.what).cmp(&(b.package(), &b.what)));
    Ok(found)
}

/// Runs `binaries` one after the other, printing to `out`; the failures.
fn lane(binaries: &[&TestBinary], nice: bool, out: &mut dyn FnMut(&str) -> Stdio) -> Vec<String> {
    let mut failed = Vec::new();
    for b in binaries {
        let exe = b.executable.display().to_string();
        let mut cmd = if nice {
            let mut c = Command::new("nice");
            c.args(["-n", "10", &exe]);
            c
        } else {
            Command::new(&exe)
        };
        let header = format!("     Running {} ({})\n", b.what, exe);
        let stdout = out(&header);
        let stderr = out("");
        let started = std::time::Instant::now();
        let status = cmd
            .current_dir(&b.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status();
        // The executable's whole wall time (its own `finished in` leaves
        // out start-up and teardown), so that the lanes can be balanced.
        let _ = out(&format!(
            "     took {:.1} s: {} {}\n",
            started.elapsed().as_secs_f64(),
            b.package(),
            b.what
        ));
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => failed.push(format!("{} {} ({s})", b.package(), b.what)),
            Err(e) => failed.push(format!("{} {}: cannot run: {e}", b.package(), b.what)),
        }
    }
    failed
}

/// Builds every test, then runs the pure crates' tests, the doc-tests, the
/// waiting kernel tests and last `cargo <lint>` (clippy, at nice 19: it
/// takes the CPU the kernel tests leave while they wait, instead of two
/// minutes of its own before them) beside the kernel lane, their output
/// kept in `target/ci-pure-tests.log` and printed after. Both lanes run
/// to the end; an error names every failure.
pub fn run(root: &Path, lint: &[&str]) -> Result<(), String> {
    let binaries = build(root)?;
    let (beside_lane, kernel): (Vec<&TestBinary>, Vec<&TestBinary>) =
        binaries.iter().partition(|b| beside(b));
    // The pure tests first: the waiting ones then overlap the kernel lane's
    // later minutes instead of its start.
    let (pure, waiting): (Vec<&TestBinary>, Vec<&TestBinary>) = beside_lane
        .into_iter()
        .partition(|b| PURE.contains(&b.package()));
    let log_path = root.join("target/ci-pure-tests.log");
    eprintln!(
        "running {} test executables of the pure crates, the doc-tests and {} waiting kernel tests beside the other {} (their output: {})",
        pure.len(),
        waiting.len(),
        kernel.len(),
        log_path.display()
    );
    let started = std::time::Instant::now();
    let failed = std::thread::scope(|s| {
        let pure_lane = s.spawn(|| -> Result<Vec<String>, String> {
            let log = std::fs::File::create(&log_path)
                .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
            let mut out = |header: &str| -> Stdio {
                let mut f = log.try_clone().expect("a log file handle");
                let _ = f.write_all(header.as_bytes());
                Stdio::from(f)
            };
            let mut failed = lane(&pure, true, &mut out);
            let doc = Command::new("nice")
                .args(["-n", "10", "cargo", "test", "--workspace", "--doc"])
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(out("   Doc-tests (cargo test --workspace --doc)\n"))
                .stderr(out(""))
                .status();
            match doc {
                Ok(s) if s.success() => {}
                Ok(s) => failed.push(format!("the doc-tests ({s})")),
                Err(e) => failed.push(format!("the doc-tests: cannot run cargo: {e}")),
            }
            failed.extend(lane(&waiting, true, &mut out));
            let header = format!("   Lint (cargo {})\n", lint.join(" "));
            let linted = Command::new("nice")
                .args(["-n", "19", "cargo"])
                .args(lint)
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(out(&header))
                .stderr(out(""))
                .status();
            match linted {
                Ok(s) if s.success() => {}
                Ok(s) => failed.push(format!("cargo {} ({s})", lint.join(" "))),
                Err(e) => failed.push(format!("cargo {}: cannot run cargo: {e}", lint.join(" "))),
            }
            let _ = out(&format!(
                "the lane beside took {:.0} s\n",
                started.elapsed().as_secs_f64()
            ));
            Ok(failed)
        });
        let mut out = |header: &str| -> Stdio {
            eprint!("{header}");
            Stdio::inherit()
        };
        let mut failed = lane(&kernel, false, &mut out);
        eprintln!(
            "the kernel lane took {:.0} s",
            started.elapsed().as_secs_f64()
        );
        match pure_lane.join() {
            Ok(Ok(f)) => failed.extend(f),
            Ok(Err(e)) => failed.push(e),
            Err(_) => failed.push("the pure lane's thread panicked".into()),
        }
        failed
    });
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    eprintln!("\n--- the pure crates' tests, the doc-tests, the waiting kernel tests and clippy (run beside the others) ---\n{text}");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("tests failed:\n  {}", failed.join("\n  ")))
    }
}

/// Builds every test and prints which lane each executable runs in
/// (`cargo xtask lanes`).
pub fn list(root: &Path) -> Result<(), String> {
    for b in build(root)? {
        let lane = if beside(&b) { "beside" } else { "kernel" };
        println!("{lane}\t{}\t{}", b.package(), b.what);
    }
    Ok(())
}
