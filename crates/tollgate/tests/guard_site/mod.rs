//! The three namespaces the guard's tests flood through, and the notify
//! script they all give the ladder (`guard.rs`, `guard_run.rs`,
//! `guard_flows.rs`):
//!
//! ```text
//! attacker 198.51.100.2 ──veth── router 198.51.100.1 | 203.0.113.1 ──veth── victims (203.0.113.x/24)
//!          atk0                        <uplink>        <lan>                 vic0
//! ```
//!
//! The router forwards; the victims route back through it. Namespaces are
//! removed on drop, also when a test fails. Each test file uses part of
//! this.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use testkit::{sh, Netns, Process};

pub struct Site {
    pub atk: Netns,
    pub rtr: Netns,
    pub vic: Netns,
}

impl Site {
    /// Namespaces `<prefix>a`, `<prefix>r` and `<prefix>v`; the router's
    /// interfaces are named `uplink` (towards the attacker) and `lan`;
    /// every address of `victims` is on the victim's `vic0`.
    pub fn build(prefix: &str, uplink: &str, lan: &str, victims: &[&str]) -> Site {
        let s = Site {
            atk: Netns::new(&format!("{prefix}a")),
            rtr: Netns::new(&format!("{prefix}r")),
            vic: Netns::new(&format!("{prefix}v")),
        };
        let (a, r, v) = (&s.atk.0, &s.rtr.0, &s.vic.0);
        let addresses: String = victims
            .iter()
            .map(|ip| format!("ip -n {v} addr add {ip}/24 dev vic0\n"))
            .collect();
        sh(&format!(
            "set -e
ip link add atk0 netns {a} type veth peer name {uplink} netns {r}
ip link add {lan} netns {r} type veth peer name vic0 netns {v}
ip -n {a} addr add 198.51.100.2/24 dev atk0; ip -n {a} link set atk0 up
ip -n {r} addr add 198.51.100.1/24 dev {uplink}; ip -n {r} link set {uplink} up
ip -n {r} addr add 203.0.113.1/24 dev {lan}; ip -n {r} link set {lan} up
{addresses}ip -n {v} link set vic0 up
ip -n {a} route add default via 198.51.100.1
ip -n {v} route add default via 203.0.113.1
ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1"
        ));
        s
    }
}

/// Writes `notify.sh` into `dir`: it appends `ARGS <its arguments>` to
/// `notify.log` there (FastNetMon's arguments: IP DIRECTION PPS
/// ban|unban), and the JSON report from stdin too if `keep_report`.
pub fn notify_script(dir: &Path, keep_report: bool) -> PathBuf {
    let script = dir.join("notify.sh");
    let log = dir.join("notify.log");
    let report = if keep_report {
        format!("cat >> {}", log.display())
    } else {
        "cat > /dev/null".to_string()
    };
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"ARGS $*\" >> {}\n{report}\n",
            log.display()
        ),
    )
    .unwrap();
    sh(&format!("chmod +x {}", script.display()));
    script
}

/// `tollgate run` in the router with `dir`'s `policy.toml`, its own state
/// folder and an empty accounting file, reading every second; its log
/// appended to `dir/daemon.log` (a restarted daemon adds to it).
pub fn daemon(rtr: &Netns, dir: &Path) -> Process {
    daemon_recording(rtr, dir, None)
}

/// [`daemon`], recording its inputs to `record` if given (`--record`).
pub fn daemon_recording(rtr: &Netns, dir: &Path, record: Option<&Path>) -> Process {
    testkit::tollgate_run(env!("CARGO_BIN_EXE_tollgate"), rtr, dir, record)
}
