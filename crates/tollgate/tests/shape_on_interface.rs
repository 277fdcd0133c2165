//! `[site] shape_on = "interface"`: the HTB trees on the LAN's and the
//! uplink's own root qdiscs instead of tollgate's IFBs, applied by
//! `tollgate apply` itself, with real traffic: caps per tenant and realm
//! in both directions, borrowing up to a parent's ceil, the interactive
//! band's class carrying exactly the pings (eBPF and nftables
//! classifiers); and ownership: an operator's root qdisc refused (by
//! `apply` and by the daemon) and left as it is, a partial apply and a hand-deleted root converging, a move
//! back to the IFBs, and `down` leaving the kernel's default qdisc and
//! the operator's own clsact filter.
//!
//! Namespaces `tgdirect-*` (suffixed with the process id): an upstream
//! holding a national (198.51.100.1) and an international (203.0.113.1)
//! address, the router (`wan0` toward the upstream, a bridge `lan0` toward
//! the tenants), and one namespace per tenant k with 100.64.k.2/24. Rates
//! are iperf3's TCP payload; a full ceil shows as about 95.6% of it.
//! Needs root, iproute2, nftables and iperf3. Namespaces and iperf3
//! servers are removed even when a test fails.

use std::process::{Command, Output};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const NATIONAL: &str = "198.51.100.1";
const INTERNATIONAL: &str = "203.0.113.1";

/// The namespaces of one test, removed (with the iperf3 servers in them)
/// on drop.
struct Site {
    host: String,
    upstream: String,
    tenants: Vec<String>,
    dir: std::path::PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        // The servers run in the upstream namespace only: ending its
        // processes by their namespace touches nobody else's.
        let _ = Command::new("bash")
            .args([
                "-c",
                &format!("ip netns pids {} | xargs -r kill", self.upstream),
            ])
            .status();
        for n in std::iter::once(&self.host)
            .chain(std::iter::once(&self.upstream))
            .chain(&self.tenants)
        {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "failed: {script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Site {
    fn new(tag: &str, n: u32) -> Site {
        let id = std::process::id();
        let base = format!("tgdirect-{tag}{id}");
        let s = Site {
            host: format!("{base}-h"),
            upstream: format!("{base}-u"),
            tenants: (1..=n).map(|k| format!("{base}-t{k}")).collect(),
            dir: std::env::temp_dir().join(&base),
        };
        std::fs::create_dir_all(s.dir.join("state")).unwrap();
        let (h, u) = (&s.host, &s.upstream);
        let mut script = format!(
            "set -e
            for n in {h} {u}; do ip netns add $n; ip -n $n link set lo up; done
            ip link add wan0 netns {h} type veth peer name up0 netns {u}
            ip -n {h} addr add 192.0.2.1/30 dev wan0; ip -n {u} addr add 192.0.2.2/30 dev up0
            ip -n {h} link set wan0 up; ip -n {u} link set up0 up
            ip -n {u} addr add {NATIONAL}/24 dev lo; ip -n {u} addr add {INTERNATIONAL}/24 dev lo
            ip -n {u} route add 100.64.0.0/16 via 192.0.2.1
            ip -n {h} route add 198.51.100.0/24 via 192.0.2.2; ip -n {h} route add 203.0.113.0/24 via 192.0.2.2
            ip -n {h} link add lan0 type bridge; ip -n {h} link set lan0 up
            ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
            "
        );
        for (k, t) in s.tenants.iter().enumerate() {
            let k = k + 1;
            script.push_str(&format!(
                "ip netns add {t}; ip -n {t} link set lo up
                ip link add lp{k} netns {h} type veth peer name eth0 netns {t}
                ip -n {h} link set lp{k} master lan0 up
                ip -n {h} addr add 100.64.{k}.1/24 dev lan0
                ip -n {t} addr add 100.64.{k}.2/24 dev eth0; ip -n {t} link set eth0 up
                ip -n {t} route add default via 100.64.{k}.1
                ip netns exec {u} iperf3 -s -D -B {NATIONAL} -p {}
                ip netns exec {u} iperf3 -s -D -B {INTERNATIONAL} -p {}
                ",
                5200 + k,
                5300 + k
            ));
        }
        // Built before the script runs, so a failing script still cleans up.
        sh(&script);
        sh("sleep 0.5");
        s
    }

    fn tollgate_output(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--netns", &self.host])
            .args(args)
            .arg("-c")
            .arg(self.dir.join("policy.toml"))
            .env("TOLLGATE_STATE_DIR", self.dir.join("state"))
            .envs(env.iter().copied())
            .output()
            .expect("run tollgate")
    }

    fn tollgate(&self, args: &[&str]) -> String {
        let o = self.tollgate_output(args, &[]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "tollgate {args:?} failed:\n{text}");
        text
    }

    /// Runs `tollgate run` until its log says `needle` (at most 20 s),
    /// stops it, and returns the log so far.
    fn daemon_until(&self, needle: &str) -> String {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "--netns",
                &self.host,
                "run",
                "--listen",
                "127.0.0.1:0",
                "-c",
            ])
            .arg(self.dir.join("policy.toml"))
            .env("TOLLGATE_STATE_DIR", self.dir.join("state"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tollgate run");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut log = String::new();
        while !log.contains(needle) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        // What the refusal printed after its first line.
        while let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            log.push_str(&line);
            log.push('\n');
        }
        assert!(
            log.contains(needle),
            "the daemon never said {needle:?}:\n{log}"
        );
        log
    }

    fn write(&self, policy: &str) {
        std::fs::write(self.dir.join("policy.toml"), policy).unwrap();
    }

    fn tc(&self, args: &str) -> String {
        sh(&format!("ip netns exec {} tc {args}", self.host))
    }

    /// TCP payload Mbit/s of tenant `k` against `server`, all at once for
    /// several tenants; `down` is the server sending.
    fn tcp(&self, flows: &[(u32, &str)], down: bool, secs: u32) -> Vec<f64> {
        let children: Vec<_> = flows
            .iter()
            .map(|(k, server)| {
                let port = if *server == NATIONAL { 5200 } else { 5300 } + k;
                Command::new("ip")
                    .args(["netns", "exec", &self.tenants[*k as usize - 1]])
                    .args(["timeout", "30", "iperf3", "-c", server, "-J", "-O", "1"])
                    .args(["-p", &port.to_string(), "-t", &(secs + 1).to_string()])
                    .args(if down { &["-R"][..] } else { &[][..] })
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start iperf3")
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().expect("iperf3 ends");
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
                    panic!(
                        "iperf3 printed no JSON ({e}):\n{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                });
                v["end"]["sum_received"]["bits_per_second"]
                    .as_f64()
                    .expect("a received rate")
                    / 1e6
            })
            .collect()
    }

    /// The packets a class on `dev` has sent, from its counters.
    fn class_packets(&self, dev: &str, class: &str) -> u64 {
        let out = self.tc(&format!("-s class show dev {dev} classid {class}"));
        out.split(" pkt")
            .next()
            .and_then(|s| s.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counters for class {class} on {dev}:\n{out}"))
    }
}

/// A measured rate must be within [low, high] of `want`.
fn within(report: &str, what: &str, got: f64, want: f64, low: f64, high: f64) {
    assert!(
        got >= want * low && got <= want * high,
        "{what}: {got:.2} Mbit/s, want {want} × [{low}, {high}]\n{report}"
    );
}

fn policy(classifier: &str, shape_on: &str) -> String {
    format!(
        r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "100mbit", up = "100mbit" }}
classifier = "{classifier}"
shape_on = "{shape_on}"

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[bands.interactive]
protocols = ["icmp"]

[[parents]]
name = "reseller"
id = 1
down = {{ rate = "4mbit", ceil = "12mbit" }}
up = {{ rate = "4mbit", ceil = "12mbit" }}

[plans.small]
down = {{ rate = "2mbit", ceil = "10mbit" }}
up = {{ rate = "2mbit", ceil = "10mbit" }}

[plans.small.realms.international]
down = {{ ceil = "3mbit" }}
up = {{ ceil = "3mbit" }}

[[tenants]]
id = 1
name = "t1"
plan = "small"
parent = "reseller"
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
name = "t2"
plan = "small"
parent = "reseller"
prefixes = ["100.64.2.0/24"]
"#
    )
}

/// The handle of tenant 1's class for `realm` in `direction`, from
/// `tollgate status --json`, and the device it is on.
fn realm_class(s: &Site, realm: &str, direction: &str) -> (String, String) {
    let status: serde_json::Value =
        serde_json::from_str(&s.tollgate(&["status", "--json", "--interval", "10ms"]))
            .expect("status --json");
    let row = status["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["tenant"] == 1 && c["direction"] == direction && c["realm"] == realm)
        .unwrap_or_else(|| panic!("no {realm} {direction} class of t1: {status}"));
    (
        row["device"].as_str().unwrap().to_string(),
        row["class"].as_str().unwrap().to_string(),
    )
}

/// The interactive band's class under a realm class `major:minor`.
fn band_class(realm_class: &str) -> String {
    let (major, minor) = realm_class.split_once(':').unwrap();
    let minor = u16::from_str_radix(minor, 16).unwrap() + 1;
    format!("{major}:{minor:x}")
}

/// Rates per tenant and realm in both directions, borrowing up to the
/// parent's ceil, and the interactive band, with the trees on the
/// interfaces; returns the report.
fn shape_and_measure(s: &Site, classifier: &str) -> String {
    s.write(&policy(classifier, "interface"));
    s.tollgate(&["apply"]);
    // The trees are on the interfaces themselves; no IFB, no redirect.
    let qdiscs = s.tc("qdisc show");
    assert!(qdiscs.contains("qdisc htb 1: dev lan0 root"), "{qdiscs}");
    assert!(qdiscs.contains("qdisc htb 1: dev wan0 root"), "{qdiscs}");
    assert!(!qdiscs.contains("tg-"), "{qdiscs}");
    assert!(
        !s.tc("filter show dev lan0 egress").contains("mirred"),
        "no redirect"
    );
    assert!(
        s.tollgate(&["plan"]).contains("nothing to do"),
        "observation reads the trees on the interfaces back as applied"
    );
    let mut report = format!("classifier {classifier}, shape_on = \"interface\"\n");
    let mut measured = Vec::new();
    for (what, server, down, ceil) in [
        ("national down", NATIONAL, true, 10.0),
        ("international down", INTERNATIONAL, true, 3.0),
        ("national up", NATIONAL, false, 10.0),
        ("international up", INTERNATIONAL, false, 3.0),
    ] {
        let got = s.tcp(&[(1, server)], down, 3)[0];
        report.push_str(&format!("t1 {what}: {got:.2} Mbit/s (ceil {ceil})\n"));
        measured.push((what, got, ceil));
    }
    let both = s.tcp(&[(1, NATIONAL), (2, NATIONAL)], true, 4);
    report.push_str(&format!(
        "t1 + t2 national down: {:.2} + {:.2} = {:.2} Mbit/s (parent ceil 12, rates 2)\n",
        both[0],
        both[1],
        both[0] + both[1]
    ));
    // The pings' echo replies leave through lan0 in t1's international
    // interactive band, their requests through wan0 in its upload one.
    let (down_dev, down_class) = realm_class(s, "international", "down");
    let (up_dev, up_class) = realm_class(s, "international", "up");
    assert_eq!((down_dev.as_str(), up_dev.as_str()), ("lan0", "wan0"));
    let (down_band, up_band) = (band_class(&down_class), band_class(&up_class));
    let before = (
        s.class_packets("lan0", &down_band),
        s.class_packets("wan0", &up_band),
    );
    sh(&format!(
        "ip netns exec {} ping -n -q -c 20 -i 0.02 -W 2 {INTERNATIONAL}",
        s.tenants[0]
    ));
    let after = (
        s.class_packets("lan0", &down_band),
        s.class_packets("wan0", &up_band),
    );
    report.push_str(&format!(
        "interactive band: {} replies through lan0 {down_band}, {} requests through wan0 {up_band}\n",
        after.0 - before.0,
        after.1 - before.1
    ));
    eprintln!("{report}");
    for (what, got, ceil) in measured {
        within(&report, what, got, ceil, 0.85, 1.03);
    }
    // Borrowing: each above its rate of 2, the sum held to the parent's 12.
    within(&report, "t1 + t2", both[0] + both[1], 12.0, 0.85, 1.03);
    for (k, got) in both.iter().enumerate() {
        assert!(*got >= 1.8, "t{} fell below its rate\n{report}", k + 1);
    }
    assert_eq!(after.0 - before.0, 20, "{report}");
    assert_eq!(after.1 - before.1, 20, "{report}");
    report
}

#[test]
fn interface_trees_shape_rates_realms_borrowing_and_bands_with_ebpf() {
    if !testkit::root("interface_trees_shape_rates_realms_borrowing_and_bands_with_ebpf") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Site::new("e", 2);
    shape_and_measure(&s, "ebpf");
    s.tollgate(&["down"]);
}

#[test]
fn interface_trees_shape_with_the_nftables_classifier_too() {
    if !testkit::root("interface_trees_shape_with_the_nftables_classifier_too") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Site::new("n", 2);
    shape_and_measure(&s, "nftables");
    // nftables' egress hook runs before tc's: no clsact is needed at all.
    assert!(!s.tc("qdisc show").contains("clsact"));
    s.tollgate(&["down"]);
}

#[test]
fn an_operators_root_qdisc_is_refused_and_down_restores_the_default() {
    if !testkit::root("an_operators_root_qdisc_is_refused_and_down_restores_the_default") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Site::new("o", 1);
    // The operator's: an unmarked HTB with tollgate's own handle on lan0
    // (the case a handle alone cannot tell apart), and a clsact with a
    // classic BPF filter (returns 0: no match) on wan0.
    sh(&format!(
        "set -e
        ip netns exec {h} tc qdisc add dev lan0 root handle 1: htb default 10
        ip netns exec {h} tc qdisc add dev wan0 clsact
        ip netns exec {h} tc filter add dev wan0 egress prio 100 handle 1 bpf bytecode '1,6 0 0 0'",
        h = s.host
    ));
    s.write(&policy("ebpf", "interface"));
    let o = s.tollgate_output(&["apply"], &[]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "refused as invalid input:\n{err}");
    for needle in [
        "`lan0`",
        "htb 1:",
        "tc qdisc del dev lan0 root",
        "shape_on = \"ifb\"",
        "nothing was changed",
    ] {
        assert!(err.contains(needle), "the refusal names {needle}:\n{err}");
    }
    let qdiscs = s.tc("qdisc show");
    assert!(
        qdiscs.contains("qdisc htb 1: dev lan0 root") && qdiscs.contains("default 0x10"),
        "the operator's qdisc is as it was:\n{qdiscs}"
    );
    assert!(
        !qdiscs.contains("dev wan0 root") || qdiscs.contains("noqueue 0: dev wan0 root"),
        "nothing was changed on wan0:\n{qdiscs}"
    );
    assert!(s.tc("class show dev lan0").is_empty(), "no class was added");
    // The daemon refuses the same policy in its first round and changes
    // nothing either.
    let log = s.daemon_until("cannot be compiled for this host");
    assert!(log.contains("htb 1:"), "{log}");
    assert!(s.tc("qdisc show dev lan0").contains("default 0x10"));
    assert!(s.tc("class show dev lan0").is_empty(), "no class was added");

    // The operator gives lan0 up. A first apply that fails one change is
    // partial (exit 3); the next converges, and then nothing is left to do.
    s.tc("qdisc del dev lan0 root");
    let o = s.tollgate_output(&["apply"], &[("TOLLGATE_FAIL_CHANGE", "0")]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    s.tollgate(&["apply"]);
    assert!(s.tollgate(&["plan"]).contains("nothing to do"));
    for dev in ["lan0", "wan0"] {
        let chains = s.tc(&format!("chain show dev {dev} parent 1:"));
        assert!(chains.contains("chain 122057831"), "{dev} marked: {chains}");
    }
    // A tree deleted by hand is drift like any other: one apply restores it.
    s.tc("qdisc del dev wan0 root");
    assert!(!s.tollgate(&["plan"]).contains("nothing to do"));
    s.tollgate(&["apply"]);
    assert!(s.tollgate(&["plan"]).contains("nothing to do"));
    assert!(s.tc("qdisc show dev wan0").contains("qdisc htb 1: root"));

    // Back to the IFBs: the trees move, the interfaces get their default
    // back, and the operator's filter stays.
    s.write(&policy("ebpf", "ifb"));
    s.tollgate(&["apply"]);
    assert!(s.tollgate(&["plan"]).contains("nothing to do"));
    let qdiscs = s.tc("qdisc show");
    assert!(qdiscs.contains("qdisc htb 1: dev tg-down root"), "{qdiscs}");
    assert!(
        qdiscs.contains("qdisc noqueue 0: dev lan0 root"),
        "{qdiscs}"
    );
    assert!(
        qdiscs.contains("qdisc noqueue 0: dev wan0 root"),
        "{qdiscs}"
    );

    // And to the interfaces again, then down: the kernel's default on both,
    // the operator's clsact and filter still there, tollgate's gone.
    s.write(&policy("ebpf", "interface"));
    s.tollgate(&["apply"]);
    assert!(s.tc("qdisc show dev lan0").contains("qdisc htb 1: root"));
    s.tollgate(&["down"]);
    let qdiscs = s.tc("qdisc show");
    assert!(
        qdiscs.contains("qdisc noqueue 0: dev lan0 root"),
        "{qdiscs}"
    );
    assert!(
        qdiscs.contains("qdisc noqueue 0: dev wan0 root"),
        "{qdiscs}"
    );
    assert!(!qdiscs.contains("htb"), "{qdiscs}");
    let filters = s.tc("filter show dev wan0 egress");
    assert!(filters.contains("pref 100 bpf"), "{filters}");
    assert!(!filters.contains("tg_up"), "{filters}");
}

#[test]
fn hypervisor_mode_refuses_shape_on_interface() {
    // Pure: `check` needs no kernel.
    let dir = std::env::temp_dir().join(format!("direct-hv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        r#"
[site]
mode = "hypervisor"
uplink = "eth0"
capacity = { down = "1gbit", up = "1gbit" }
classifier = "ebpf"
shape_on = "interface"

[plans.vm]
down = { rate = "100mbit", ceil = "200mbit" }
up = { rate = "100mbit", ceil = "200mbit" }

[[tenants]]
id = 1
name = "web-1"
plan = "vm"
interface = "vif1.0"
prefixes = ["192.0.2.10/32"]
"#,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("is for router mode"), "{text}");
    assert!(text.contains(":7:"), "names the line: {text}");
}
