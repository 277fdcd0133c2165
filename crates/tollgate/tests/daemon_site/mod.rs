//! A router in namespaces for the daemon's tests (`accounting.rs`,
//! `overage.rs`): an upstream holding 198.51.100.1 (realm `national`) and
//! 203.0.113.1 (`international`), the router (`wan0` toward the upstream, a
//! bridge `lan0` toward the tenants), one namespace per tenant k with
//! 100.64.k.2/24, IPv6 off everywhere so that every byte in a tenant's
//! classes is the test's own, and the daemon as a child process. Each test
//! file adds its own methods to `Site`.

// Shared by several test binaries, each using a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub const NATIONAL: &str = "198.51.100.1";
pub const INTERNATIONAL: &str = "203.0.113.1";
/// Bytes HTB counts per 1000-byte UDP datagram: 14 Ethernet + 20 IPv4 +
/// 8 UDP + 1000 payload.
pub const FRAME: u64 = 14 + 20 + 8 + 1000;

/// A router with one tenant, `t1` (100.64.1.0/24, plan `home`: 20 Mbit/s
/// rate, 50 ceil both ways), and two realms: `national` (198.51.100.0/24,
/// id 1) and `international` (the rest, id 2). The agents' and the
/// ClickHouse tests' policy, to which each adds its own sections.
pub const ONE_TENANT_POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "200mbit", up = "200mbit" }

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.home]
down = { rate = "20mbit", ceil = "50mbit" }
up = { rate = "20mbit", ceil = "50mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

/// The skew that puts a daemon started now 12 s before the first slot
/// boundary at least 60 s past `after` (in its skewed time), and the slot
/// that ends at that boundary: a slot closes without waiting for the wall
/// clock.
pub fn skew_before_boundary(after: i64) -> (i64, accounting::Slot) {
    let now = jiff::Timestamp::now().as_second();
    let boundary =
        accounting::Slot::containing(jiff::Timestamp::from_second(after + 60).unwrap()).next();
    (
        boundary.start().as_second() - 12 - now,
        accounting::Slot(boundary.0 - 1),
    )
}

/// Sends argv[3] datagrams of 1000 bytes from argv[1] to argv[2] port 9,
/// about 8 Mbit/s.
pub const SENDER: &str = "import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for i in range(int(sys.argv[3])):
    s.sendto(b'x' * 1000, (sys.argv[2], 9))
    if i % 10 == 9:
        time.sleep(0.01)
";

/// Drops the test's datagrams on arrival, before a socket lookup could
/// answer them with ICMP port unreachable.
const SINK: &str = "table ip tg_sink {
    chain input { type filter hook input priority 0; udp dport 9 drop; }
}";

pub fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `n` datagrams of [`SENDER`] to a site's first tenant
/// (100.64.1.2) from the national server.
pub fn send_to_tenant(site: &Site, n: u64) {
    let ok = Command::new("ip")
        .args(["netns", "exec", &site.upstream, "python3", "-c", SENDER])
        .args([NATIONAL, "100.64.1.2", &n.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "the sender failed");
}

/// Waits until `ok` holds, checking every 100 ms, for at most `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The namespaces and the test's folder, removed on drop.
pub struct Site {
    pub host: String,
    pub upstream: String,
    pub tenants: Vec<String>,
    pub dir: PathBuf,
}

impl Site {
    /// Builds the namespaces, named `<prefix>-<tag><pid>-*`, with `n`
    /// tenants.
    pub fn build(prefix: &str, tag: &str, n: u32) -> Site {
        let tag = format!("{prefix}-{tag}{}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Site {
            host: format!("{tag}-h"),
            upstream: format!("{tag}-u"),
            tenants: (1..=n).map(|k| format!("{tag}-t{k}")).collect(),
            dir,
        };
        let (h, u) = (&s.host, &s.upstream);
        let no_v6 = |ns: &str| {
            format!("ip netns add {ns}; ip -n {ns} link set lo up; ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n")
        };
        let mut script = format!("set -e\n{}{}", no_v6(h), no_v6(u));
        script.push_str(&format!(
            "ip link add wan0 netns {h} type veth peer name up0 netns {u}
            ip -n {h} addr add 192.0.2.1/30 dev wan0; ip -n {u} addr add 192.0.2.2/30 dev up0
            ip -n {h} link set wan0 up; ip -n {u} link set up0 up
            ip -n {u} addr add {NATIONAL}/24 dev lo; ip -n {u} addr add {INTERNATIONAL}/24 dev lo
            ip -n {u} route add 100.64.0.0/16 via 192.0.2.1
            ip -n {h} route add default via 192.0.2.2
            ip -n {h} link add lan0 type bridge; ip -n {h} link set lan0 up
            ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
            "
        ));
        for (k, t) in s.tenants.iter().enumerate() {
            let k = k + 1;
            script.push_str(&no_v6(t));
            script.push_str(&format!(
                "ip link add lp{k} netns {h} type veth peer name eth0 netns {t}
                ip -n {h} link set lp{k} master lan0 up
                ip -n {h} addr add 100.64.{k}.1/24 dev lan0
                ip -n {t} addr add 100.64.{k}.2/24 dev eth0; ip -n {t} link set eth0 up
                ip -n {t} route add default via 100.64.{k}.1
                "
            ));
        }
        // `s` exists before the script runs, so a failing script still
        // cleans up.
        sh(&script);
        for ns in s.tenants.iter().chain([u]) {
            sh(&format!("ip netns exec {ns} nft -f - <<'EOF'\n{SINK}\nEOF"));
        }
        s
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir.join("policy.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Starts `tollgate run` in the router, reading and reconciling every
    /// second (plus `extra` arguments), with its log in the test's folder,
    /// and waits (at most 20 s) for its first round to build the classes.
    pub fn start_daemon(&self, accounting: &std::path::Path, extra: &[&str]) -> Daemon {
        self.start_daemon_env(accounting, extra, &[])
    }

    /// [`Site::start_daemon`] with more environment variables (such as
    /// `TOLLGATE_CLOCK_SKEW`).
    pub fn start_daemon_env(
        &self,
        accounting: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut args = vec!["--interval", "1s", "--reconcile", "1s"];
        args.extend_from_slice(extra);
        self.start_daemon_args(accounting, &args, env)
    }

    /// `tollgate run ARGS` in the site with `env` (a daemon with a faster
    /// clock passes its own intervals), once its classes are there.
    pub fn start_daemon_args(
        &self,
        accounting: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let log = self.dir.join("daemon.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--netns", &self.host, "run"])
            .args(args)
            .env("TOLLGATE_CONFIG", self.policy_path())
            .env("TOLLGATE_STATE_DIR", self.state_dir())
            .env("TOLLGATE_ACCOUNTING", accounting)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        let d = Daemon { child, log };
        let host = self.host.clone();
        wait_for("the daemon's classes", Duration::from_secs(20), || {
            Command::new("ip")
                .args([
                    "netns", "exec", &host, "tc", "class", "show", "dev", "tg-up",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("class htb"))
        });
        d
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for ns in self.tenants.iter().chain([&self.host, &self.upstream]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running daemon; killed on drop if a test failed before stopping it.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} failed");
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, and the exit status (within 15 s).
    pub fn stop(mut self) -> ExitStatus {
        self.signal("-TERM");
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the daemon ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
