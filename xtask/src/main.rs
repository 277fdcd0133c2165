//! Repository chores, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI runs (`.ci/run` calls it): installs the Debian packages
//!   the namespace tests need, then fmt, clippy and every test.
//! - `demo`: the README's main job: check and plan the shipped examples.
//! - `tidy`: the architecture invariants (also run by `cargo test`).
//! - `bench`: the criterion/divan benchmarks, printed for BENCHMARKS.md.
//! - `fuzz [TARGET] [SECONDS]`: installs cargo-fuzz if needed and runs a target.
//! - `package [--debug]`: the Debian package, from a release (or debug)
//!   build, into `target/debian/` (`contrib/debian/build-deb` does the
//!   packing; the package test in `crates/tollgate/tests/package.rs` runs
//!   the same script on its own debug binary).

mod test_lanes;
mod tidy;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => demo(),
        Some("tidy") => {
            tidy::check(&root()).map(|n| println!("tidy: {n} files checked, all invariants hold"))
        }
        Some("bench") => run("cargo", &["bench", "--workspace"]),
        Some("lanes") => test_lanes::list(&root()),
        Some("package") => package(args.get(1).is_some_and(|a| a == "--debug")),
        Some("fuzz") => fuzz(
            args.get(1).map_or("policy_parse", String::as_str),
            args.get(2).map_or("60", String::as_str),
        ),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|demo|tidy|bench|lanes|fuzz [TARGET] [SECONDS]|package [--debug]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("$ {cmd} {}", args.join(" "));
    let status = Command::new(cmd)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{cmd} {}` failed ({status})", args.join(" ")))
    }
}

fn have(cmd: &str) -> bool {
    // A header stands for its -dev package: present when the file is.
    if cmd.ends_with(".h") {
        return std::path::Path::new(cmd).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian packages for the commands that are missing.
fn ensure_packages(wanted: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing);
    run("apt-get", &args)
}

/// `cargo clippy` as CI runs it: every target, every warning an error.
const CLIPPY: [&str; 6] = [
    "clippy",
    "--workspace",
    "--all-targets",
    "--",
    "-D",
    "warnings",
];

fn ci() -> Result<(), String> {
    // The namespace tests drive the real kernel through these tools.
    ensure_packages(&[
        ("ip", "iproute2"),
        ("tc", "iproute2"),
        ("nft", "nftables"),
        ("iperf3", "iperf3"),
        ("ping", "iputils-ping"),
        ("curl", "curl"),
        // Real flow exporters for the collector's tests.
        ("softflowd", "softflowd"),
        ("pmacctd", "pmacct"),
        // The flow tests hold the history's lock with the sqlite3 shell.
        ("sqlite3", "sqlite3"),
        // Real BGP speakers for the routes tests.
        ("bird", "bird2"),
        ("exabgp", "exabgp"),
        // A third speaker receiving tollgate's announcements (bgp_announce.rs).
        ("gobgpd", "gobgpd"),
        // tollgate/tests/state_files.rs: fsyncs and renames seen from
        // outside, and a terminal for the colour check.
        ("strace", "strace"),
        ("script", "bsdutils"),
        // The package test: building the .deb, a container of its own,
        // the unit's verification.
        ("dpkg-deb", "dpkg"),
        ("strip", "binutils"),
        ("objdump", "binutils"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("systemd-analyze", "systemd"),
        // Test certificates: the API's TLS (api.rs) and an agent shipping
        // over https to a central with its own CA (agents.rs).
        ("openssl", "openssl"),
        // tollgate/tests/memory.rs: peak memory of one-shot commands.
        ("/usr/bin/time", "time"),
        // A real browser for the dashboard's tests.
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        // packet-capture's namespace tests (hping3; crafted frames from
        // Python's packet sockets) and the DDoS benches' anchor.
        ("hping3", "hping3"),
        ("python3", "python3"),
        ("fastnetmon", "fastnetmon"),
        // crates/bpf-classify's build compiles the eBPF classifier (C) with
        // clang against libbpf's headers.
        ("clang", "clang"),
        ("/usr/include/bpf/bpf_helpers.h", "libbpf-dev"),
        // tollgate/tests/ebpf.rs deletes a map element by hand with it.
        ("bpftool", "bpftool"),
        // crates/history-clickhouse's tests start a real ClickHouse (18.16 in Debian 12).
        ("clickhouse-server", "clickhouse-server"),
        ("clickhouse-client", "clickhouse-client"),
    ])?;
    // The packages start BIRD, FastNetMon and ClickHouse as services; the tests and
    // benches start their own.
    let _ = Command::new("sh")
        .args([
            "-c",
            "command -v systemctl >/dev/null && { systemctl stop bird; systemctl stop fastnetmon; systemctl stop clickhouse-server; } 2>/dev/null; true",
        ])
        .status();
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    tidy::check(&root()).map(|n| eprintln!("tidy: {n} files checked"))?;
    let before = leftovers();
    let host_before = host_state();
    // Clippy runs in the second lane, at the lowest priority, while the
    // kernel tests mostly wait (see test_lanes::run).
    let tests = test_lanes::run(&root(), &CLIPPY);
    // No test may write the host's own tollgate files: each runs tollgate
    // with a state directory and a policy of its own.
    let host_after = host_state();
    if host_after != host_before {
        let changed: Vec<&String> = host_after
            .iter()
            .filter(|f| !host_before.contains(f))
            .chain(host_before.iter().filter(|f| !host_after.contains(f)))
            .collect();
        let list: Vec<&str> = changed.iter().map(|s| s.as_str()).collect();
        return tests.and(Err(format!(
            "the tests changed the host's tollgate files (a test ran tollgate without \
             --state-dir or TOLLGATE_STATE_DIR of its own):\n  {}",
            list.join("\n  ")
        )));
    }
    // Whatever the tests started must be gone with them: a daemon, an
    // exporter, a speaker, a namespace.
    let after = leftovers();
    let stray: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    if !stray.is_empty() {
        for p in &stray {
            if let Some(pid) = p
                .split_whitespace()
                .next()
                .filter(|s| s.chars().all(|c| c.is_ascii_digit()))
            {
                let _ = Command::new("kill").args(["-9", pid]).status();
            } else if let Some(ns) = p.strip_prefix("netns ") {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
        let list: Vec<&str> = stray.iter().map(|s| s.as_str()).collect();
        let found = format!(
            "the tests left these behind (now removed):\n  {}",
            list.join("\n  ")
        );
        return tests.and(Err(found));
    }
    tests
}

/// The host's own tollgate files (the default state directory and policy
/// folder), as `PATH SIZE MTIME` lines.
fn host_state() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["/var/lib/tollgate", "/etc/tollgate"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            out.push(format!("{dir} absent"));
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(format!("{} {} {mtime}", e.path().display(), m.len()));
        }
    }
    out.sort();
    out
}

/// Processes of the programs the tests start, and tollgate's test
/// namespaces, as `PID COMMAND` and `netns NAME` lines.
fn leftovers() -> Vec<String> {
    let mut out = Vec::new();
    let names = [
        "pmacctd",
        "softflowd",
        "bird",
        "exabgp",
        "gobgpd",
        "iperf3",
        "tollgate",
        "hping3",
        "fastnetmon",
        "clickhouse",
        "chromium",
        "chromedriver",
    ];
    if let Ok(o) = Command::new("ps")
        .args(["-eo", "pid=,comm=,args="])
        .output()
    {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let mut f = line.split_whitespace();
            let (Some(pid), Some(comm)) = (f.next(), f.next()) else {
                continue;
            };
            let args: Vec<&str> = f.collect();
            let hit = names.iter().any(|n| comm.starts_with(n))
                || args
                    .first()
                    .is_some_and(|a| names.iter().any(|n| a.ends_with(n)));
            if hit {
                out.push(format!("{pid} {}", args.join(" ")));
            }
        }
    }
    if let Ok(o) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some(name) = line
                .split_whitespace()
                .next()
                .filter(|n| n.starts_with("tg"))
            {
                out.push(format!("netns {name}"));
            }
        }
    }
    out
}

/// The README's main job: the lab. Builds namespaces, applies the router
/// example for real, runs the daemon in the lab's host while iperf3
/// measures every tenant × realm × direction, shows what the daemon
/// recorded (usage, realms, the bill), and removes the lab again, also when
/// a step fails.
fn demo() -> Result<(), String> {
    ensure_packages(&[
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("iperf3", "iperf3"),
        ("curl", "curl"),
        // The dashboard's screenshots.
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        // Building tollgate compiles its eBPF classifier (crates/bpf-classify).
        ("clang", "clang"),
        ("/usr/include/bpf/bpf_helpers.h", "libbpf-dev"),
    ])?;
    run(
        "cargo",
        &[
            "build",
            "--quiet",
            "--release",
            "-p",
            "tollgate",
            "--example",
            "dashboard_shots",
            "--bin",
            "tollgate",
        ],
    )?;
    let shots_bin = root().join("target/release/examples/dashboard_shots");
    let shots_bin = shots_bin.to_str().ok_or("non-UTF-8 path")?.to_string();
    let bin = root().join("target/release/tollgate");
    let bin = bin.to_str().ok_or("non-UTF-8 path")?;
    println!("\n=== the policy: examples/router.toml ===");
    run(bin, &["check", "-c", "examples/router.toml"])?;
    // A lab left over from an interrupted run would make `lab up` refuse.
    let _ = run(bin, &["lab", "down"]);
    println!("\n=== tollgate lab up: namespaces, then `tollgate apply` in the host ===");
    let mut daemon = None;
    let result = run(bin, &["lab", "up", "--tenants", "3"])
        .and_then(|()| {
            println!("\n=== tollgate status (in the lab host) ===");
            run(
                bin,
                &[
                    "--netns",
                    "tg-lab-host",
                    "status",
                    "--interval",
                    "200ms",
                    "-c",
                    "/run/tollgate-lab/policy.toml",
                ],
            )
        })
        .and_then(|()| {
            println!("\n=== tollgate run: the daemon, in the lab host, reading counters every second ===");
            let log = std::fs::File::create(format!("{LAB_STATE}.log")).map_err(|e| e.to_string())?;
            let child = std::process::Command::new(bin)
                .args(with_lab(&["run", "--interval", "1s", "--reconcile", "5s"]))
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("start the daemon: {e}"))?;
            println!("(its log: {LAB_STATE}.log)");
            daemon = Some(child);
            std::thread::sleep(std::time::Duration::from_secs(2));
            println!("\n=== tollgate lab traffic: real iperf3 flows through the shaper ===");
            run(bin, &["lab", "traffic", "--seconds", "3"])
        })
        .and_then(|()| {
            println!("\n=== the API: a token, then one call ===");
            let out = Command::new(bin)
                .args(with_lab(&["token", "add", "demo", "--scope", "admin", "--json"]))
                .output()
                .map_err(|e| format!("tollgate token add: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "tollgate token add failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let answer = String::from_utf8_lossy(&out.stdout);
            let token = answer
                .split("\"token\":\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .ok_or_else(|| format!("no token in {answer}"))?
                .to_string();
            println!("API:   http://127.0.0.1:9188/api/v1/ in the lab host (ip netns exec tg-lab-host …)");
            println!("token: {token}  (admin; `tollgate token list` and `token revoke demo`)");
            println!("OpenAPI document: http://127.0.0.1:9188/api/v1/openapi.json");
            let auth = format!("Authorization: Bearer {token}");
            println!("\n$ curl -H 'Authorization: Bearer …' 'http://127.0.0.1:9188/api/v1/tenants?sort=volume'");
            run(
                "ip",
                &[
                    "netns", "exec", "tg-lab-host", "curl", "-sS", "--fail-with-body", "-H", &auth,
                    "http://127.0.0.1:9188/api/v1/tenants?sort=volume",
                ],
            )?;
            println!();
            dashboard(&shots_bin, &token)
        })
        .and_then(|()| {
            // SIGTERM: the daemon reads the counters one last time and exits.
            let child = daemon.take().ok_or("the daemon is not running")?;
            run("kill", &["-TERM", &child.id().to_string()])?;
            let status = child.wait_with_output().map_err(|e| e.to_string())?.status;
            if !status.success() {
                return Err(format!("the daemon exited with {status}; see {LAB_STATE}.log"));
            }
            println!("\n=== what the daemon recorded: tollgate usage ===");
            run(bin, &with_lab(&["usage"]))?;
            println!("\n=== tollgate realms ===");
            run(bin, &with_lab(&["realms"]))?;
            println!("\n=== tollgate bill (the current period so far) ===");
            run(bin, &with_lab(&["bill"]))
        });
    if let Some(mut child) = daemon {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!("\n=== tollgate lab down ===");
    let down = run(bin, &["lab", "down"]);
    let _ = std::fs::remove_dir_all(LAB_STATE);
    result.and(down)
}

/// The dashboard on the lab's traffic: screenshots of the overview and one
/// tenant (headless Chromium inside the lab's host), its URL and a token;
/// from a terminal, it stays up (forwarded to this machine's
/// 127.0.0.1:9188) until Enter.
fn dashboard(shots_bin: &str, token: &str) -> Result<(), String> {
    println!("\n=== the dashboard: screenshots of the overview and of alice ===");
    let dir = root().join("target/demo-screenshots");
    let dir = dir.to_str().ok_or("non-UTF-8 path")?;
    run(
        shots_bin,
        &[
            "shots",
            "tg-lab-host",
            "http://127.0.0.1:9188",
            token,
            dir,
            "alice",
        ],
    )?;
    println!("screenshots: {dir}/overview.png, {dir}/tenant.png (not committed)");
    println!(
        "dashboard: http://127.0.0.1:9188/ in the lab host; sign in with the token above ({token})"
    );
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        println!("\nThe dashboard is up at http://127.0.0.1:9188/ on this machine too (forwarded into the lab).");
        println!("Open it, sign in with the token, and press Enter here to stop the lab.");
        run(shots_bin, &["forward", "tg-lab-host", "9188"])?;
    }
    Ok(())
}

/// Where the demo's daemon keeps its history.
const LAB_STATE: &str = "/run/tollgate-lab-state";

/// A tollgate command run in the lab's host, on the lab's policy and the
/// demo's history.
fn with_lab<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--netns", "tg-lab-host"];
    all.extend_from_slice(args);
    all.extend([
        "-c",
        "/run/tollgate-lab/policy.toml",
        "--state-dir",
        LAB_STATE,
    ]);
    all
}

/// Builds tollgate (release, or debug with `--debug`: quicker, larger)
/// and packs it into `target/debian/tollgate_VERSION_ARCH.deb`.
fn package(debug: bool) -> Result<(), String> {
    ensure_packages(&[
        ("dpkg-deb", "dpkg"),
        ("strip", "binutils"),
        ("objdump", "binutils"),
    ])?;
    let mut build = vec!["build", "-p", "tollgate"];
    if !debug {
        build.push("--release");
    }
    run("cargo", &build)?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let bin = target
        .join(if debug { "debug" } else { "release" })
        .join("tollgate");
    let out = target.join("debian");
    run(
        "bash",
        &[
            "contrib/debian/build-deb",
            bin.to_str().ok_or("non-UTF-8 path")?,
            out.to_str().ok_or("non-UTF-8 path")?,
        ],
    )
}

fn fuzz(target: &str, seconds: &str) -> Result<(), String> {
    if !have("cargo-fuzz") {
        run("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    let corpus = format!("fuzz/corpus/{target}");
    std::fs::create_dir_all(root().join(&corpus)).map_err(|e| e.to_string())?;
    let seeds = format!("fuzz/seeds/{target}");
    // -a: debug assertions, so the fuzzer sees the panics `cargo test` would.
    // -s none: the fuzzed crates have no unsafe code that touches memory
    // (prefix-map's only unsafe is a prefetch hint), so AddressSanitizer
    // finds nothing that bounds checks do not, and it cost 2–15 times the
    // executions a second (fuzz/README.md).
    let mut args = vec!["fuzz", "run", "-a", "-s", "none", target, corpus.as_str()];
    if root().join(&seeds).is_dir() {
        args.push(seeds.as_str());
    }
    let time = format!("-max_total_time={seconds}");
    args.extend([
        "--",
        time.as_str(),
        "-print_final_stats=1",
        "-rss_limit_mb=2048",
        "-timeout=10",
    ]);
    if target == "policy_parse" {
        args.push("-dict=fuzz/policy.dict");
    }
    eprintln!(
        "$ RUSTC_BOOTSTRAP=1 MALLOC_MMAP_THRESHOLD_=131072 cargo {}",
        args.join(" ")
    );
    // cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable
    // toolchain accept them.
    let status = Command::new("cargo")
        .args(&args)
        .env("RUSTC_BOOTSTRAP", "1")
        // glibc raises its mmap threshold after the first large free, and
        // then serves every later large zeroed allocation (a prefix map's
        // 16 MiB direct level, once per input) from the heap with a
        // memset; a fixed threshold keeps them lazily zeroed pages.
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .current_dir(root())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "fuzzing {target} failed ({status}); crashes are in fuzz/artifacts/{target}"
        ))
    }
}
