//! The workspace's tests in two lanes, so that CI stays under 20 minutes.
//!
//! Most of the tests' wall time is the kernel tests waiting on traffic,
//! peers and timers (a CI run spends about 15 of its 20 minutes in tests
//! with a core idle). The crates below are pure: their tests need no root,
//! no namespace, no real peer and no fixed port, and measure no rate. They
//! run beside the others, at a lower priority, so a rate measured by a
//! kernel test keeps the CPU it had. Everything is built first, in one
//! cargo run, so the lanes only run tests.

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

/// Builds every test, then runs the pure crates' tests (output kept in
/// `target/ci-pure-tests.log` and printed after) beside the others.
/// Both lanes run to the end; the result is an error if either failed.
pub fn run(root: &std::path::Path) -> Result<(), String> {
    crate::run("cargo", &["test", "--workspace", "--no-run"])?;
    let log_path = root.join("target/ci-pure-tests.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut pure_args = vec!["-n", "10", "cargo", "test", "--no-fail-fast"];
    for p in PURE {
        pure_args.extend(["-p", p]);
    }
    eprintln!(
        "$ nice {} > {} (beside the next command)",
        pure_args.join(" "),
        log_path.display()
    );
    let mut pure = Command::new("nice")
        .args(&pure_args)
        .current_dir(root)
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run cargo test for the pure crates: {e}"))?;
    let mut rest = vec!["test", "--workspace", "--no-fail-fast"];
    for p in PURE {
        rest.extend(["--exclude", p]);
    }
    let kernel = crate::run("cargo", &rest);
    let status = pure.wait().map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    eprintln!("\n--- the pure crates' tests (run beside the others) ---\n{text}");
    let pure = if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the pure crates' tests failed ({status}); their output is above and in {}",
            log_path.display()
        ))
    };
    match (kernel, pure) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(a), Ok(())) | (Ok(()), Err(a)) => Err(a),
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
    }
}
