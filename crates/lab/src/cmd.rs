//! Running the lab's commands (`ip`, `sh`, `iperf3`) and finding and
//! removing its namespaces.

use super::{LabError, NETNS_PREFIX};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Debian package that provides a program, for "install it" hints.
pub(super) fn package_of(tool: &str) -> &'static str {
    match tool {
        "ip" => "iproute2",
        "iperf3" => "iperf3",
        "timeout" | "sh" => "coreutils",
        _ => "the package that provides it",
    }
}

/// Runs a command and returns its standard output, or an error that quotes
/// the command line and what it printed.
pub(super) fn run<S: AsRef<str>>(argv: &[S]) -> Result<String, LabError> {
    let argv: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    let Some((program, args)) = argv.split_first() else {
        return Ok(String::new());
    };
    tracing::debug!(command = %argv.join(" "), "lab");
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| spawn_error(program, &argv, &e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: argv.join(" "),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        })
    }
}

/// The error for a program that could not be started: missing, or not allowed.
pub(super) fn spawn_error(program: &str, argv: &[&str], e: &std::io::Error) -> LabError {
    if e.kind() == std::io::ErrorKind::NotFound {
        LabError::MissingTool {
            tool: program.to_string(),
            package: package_of(program).to_string(),
        }
    } else {
        LabError::Command {
            command: argv.join(" "),
            output: e.to_string(),
        }
    }
}

/// Every namespace whose name starts with [`NETNS_PREFIX`], sorted.
pub(super) fn lab_namespaces() -> Result<Vec<String>, LabError> {
    let list = run(&["ip", "netns", "list"])?;
    let mut names: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// The processes living in a namespace.
fn pids(ns: &str) -> Result<Vec<u32>, LabError> {
    let out = run(&["ip", "netns", "pids", ns])?;
    Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Sends a signal to processes by id. The shell's built-in `kill` is used
/// because it is always there (procps may not be) and needs no unsafe code.
pub(super) fn kill(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let script = format!("kill -{signal} {} 2>/dev/null; true", list.join(" "));
    let _ = run(&["sh", "-c", &script]);
}

/// Stops every process in a namespace (politely, then not), then deletes
/// it. A namespace with processes left would outlive `ip netns del`.
pub(super) fn delete_namespace(ns: &str) -> Result<(), LabError> {
    let mut left = pids(ns)?;
    kill(&left, "TERM");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = pids(ns)?;
    }
    kill(&left, "KILL");
    run(&["ip", "netns", "del", ns]).map(drop)
}
