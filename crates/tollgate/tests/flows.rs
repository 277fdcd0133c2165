//! The flow collector against real exporters in namespaces: what `tollgate
//! flows collect` records for tenants measured by flows must agree with the
//! kernel's own counters for the same traffic.
//!
//! The site is the daemon tests' router (`daemon_site`): tenants k behind a
//! bridge `lan0` with 100.64.k.2/24, an upstream holding 198.51.100.1
//! (`national`) and 203.0.113.1 (`international`). Here the router does not
//! shape: the tenants are `measured_by = "flows"`, an exporter on the
//! router watches `lan0`, and the collector listens on the router's
//! loopback. The truth is an nftables table in the router's forward hook
//! with one named counter per tenant × realm × direction: it counts IP
//! packets by their total length, which is what NetFlow and IPFIX count.
//!
//! The exporters' known limits, and how the tests allow for them:
//! - **softflowd** (v5, v9, IPFIX) captures with libpcap: if the capture
//!   buffer overflows it misses packets. The senders stay near 8 Mbit/s so
//!   nothing is missed, and the test then asks for exact equality. Flows
//!   are exported when they expire; `softflowctl expire-all` exports the
//!   rest before the collector stops. NetFlow v5 has 32-bit counters and
//!   IPv4 only, neither of which the test reaches.
//! - **pmacctd's sfprobe** (sFlow v5) samples packets and reports each
//!   sample's frame length, Ethernet header included (14 bytes more per
//!   packet than the IP length), as sFlow defines it. At a sampling rate of
//!   1 every packet is a sample, so the expected bytes are the counters'
//!   bytes plus 14 per packet, exactly.
//!
//! Needs root, iproute2, nftables, python3, and the Debian packages
//! softflowd and pmacct (installed if absent). Namespaces and processes
//! are removed even when a test fails; each wait is bounded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod daemon_site;
mod flows_loopback;

use daemon_site::{sh, wait_for, Daemon, Site, INTERNATIONAL, NATIONAL, SENDER};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// (tenant, realm, direction) → (bytes, packets).
type Totals = BTreeMap<(u64, u64, String), (u64, u64)>;

/// The traffic every test sends: tenant, server, realm, datagrams, download?
const TRAFFIC: [(u32, &str, u64, u64, bool); 5] = [
    (1, NATIONAL, 1, 600, true),
    (1, INTERNATIONAL, 2, 300, false),
    (2, NATIONAL, 1, 400, false),
    (2, INTERNATIONAL, 2, 500, true),
    (2, NATIONAL, 1, 200, true),
];

/// Tests never install packages: `cargo xtask ci` does.
fn install(binary: &str, package: &str) {
    testkit::need(binary, package);
}

fn policy(port: u16) -> String {
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.basic]
down = {{ rate = "10mbit", ceil = "100mbit" }}
up = {{ rate = "10mbit", ceil = "100mbit" }}

[flows]
listen = ["127.0.0.1:{port}"]
workers = 2

[[flows.exporters]]
address = "127.0.0.1"
name = "router-lo"

[[tenants]]
id = 1
name = "t1"
plan = "basic"
prefixes = ["100.64.1.0/24"]
measured_by = "flows"

[[tenants]]
id = 2
name = "t2"
plan = "basic"
prefixes = ["100.64.2.0/24"]
measured_by = "flows"
"#
    )
}

/// One named counter per tenant × realm × direction in the router's
/// forward hook.
fn truth_table() -> String {
    let mut counters = String::new();
    let mut rules = String::new();
    for k in 1..=2 {
        for (realm, net) in [(1, "198.51.100.0/24"), (2, "203.0.113.0/24")] {
            counters.push_str(&format!(
                "counter t{k}_{realm}_up {{}}\ncounter t{k}_{realm}_down {{}}\n"
            ));
            rules.push_str(&format!(
                "ip saddr 100.64.{k}.0/24 ip daddr {net} counter name t{k}_{realm}_up\n\
                 ip daddr 100.64.{k}.0/24 ip saddr {net} counter name t{k}_{realm}_down\n"
            ));
        }
    }
    format!(
        "table ip tg_truth {{\n{counters}chain count {{ type filter hook forward priority -300; policy accept;\n{rules}}}\n}}"
    )
}

struct FlowSite {
    site: Site,
    port: u16,
    /// A host on the bridge that is no tenant: see [`FlowSite::fill`].
    filler: String,
}

impl FlowSite {
    fn new(tag: &str) -> FlowSite {
        let site = Site::build("tgf", tag, 2);
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        std::fs::write(site.policy_path(), policy(port)).unwrap();
        std::fs::write(site.dir.join("accounting.toml"), "").unwrap();
        sh(&format!(
            "ip netns exec {} nft -f - <<'EOF'\n{}\nEOF",
            site.host,
            truth_table()
        ));
        let filler = format!("{}-fill", site.host);
        let s = FlowSite { site, port, filler };
        let (h, f) = (&s.site.host, &s.filler);
        sh(&format!(
            "set -e
            ip netns add {f}; ip -n {f} link set lo up
            ip netns exec {f} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
            ip link add lpf netns {h} type veth peer name eth0 netns {f}
            ip -n {h} link set lpf master lan0 up
            ip -n {h} addr add 192.0.2.129/25 dev lan0
            ip -n {f} addr add 192.0.2.130/25 dev eth0; ip -n {f} link set eth0 up
            ip netns exec {f} nft add table ip sink
            ip netns exec {f} nft add chain ip sink input '{{ type filter hook input priority 0; }}'
            ip netns exec {f} nft add rule ip sink input udp dport 9 drop
            ip -n {f} link set eth0 multicast off"
        ));
        // IGMP reports from the router's own lan0 address (inside tenant
        // 1's prefix) or from a tenant are real traffic of that tenant which
        // the forward hook does not see; the test's links need none.
        for ns in s.site.tenants.iter().chain([h, f]) {
            sh(&format!(
                "ip netns exec {ns} nft add table ip quiet
                ip netns exec {ns} nft add chain ip quiet out '{{ type filter hook output priority 0; }}'
                ip netns exec {ns} nft add rule ip quiet out ip protocol igmp drop"
            ));
        }
        s
    }

    /// libpcap without immediate mode (softflowd 1.1.0, pmacctd 1.7.7)
    /// hands captured packets to the exporter only when a buffer block
    /// fills, so a quiet link's last packets would wait for ever. Four MB
    /// from the router to a host that is no tenant push them through; the
    /// collector counts these records as "no tenant", and the router's
    /// forward-hook counters never see them.
    fn fill(&self) {
        sh(&format!(
            "ip netns exec {} python3 -c \"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3000): s.sendto(b'x' * 1400, ('192.0.2.130', 9))
\"",
            self.site.host
        ));
    }

    fn collector(&self) -> Daemon {
        let log = self.site.dir.join("collector.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "--netns",
                &self.site.host,
                "flows",
                "collect",
                "--interval",
                "1s",
            ])
            .env("TOLLGATE_CONFIG", self.site.policy_path())
            .env("TOLLGATE_STATE_DIR", self.site.state_dir())
            .env("TOLLGATE_ACCOUNTING", self.site.dir.join("accounting.toml"))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the collector");
        let d = Daemon { child, log };
        let status = self.site.state_dir().join("flows-status.json");
        wait_for(
            "the collector's status file",
            Duration::from_secs(15),
            || status.exists(),
        );
        d
    }

    fn tollgate(&self, args: &[&str]) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_CONFIG", self.site.policy_path())
            .env("TOLLGATE_STATE_DIR", self.site.state_dir())
            .env("TOLLGATE_ACCOUNTING", self.site.dir.join("accounting.toml"))
            .output()
            .expect("run tollgate");
        assert!(
            o.status.success(),
            "tollgate {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Sends the test's traffic, all flows at once, and waits for it.
    fn send(&self) {
        let children: Vec<Child> = TRAFFIC
            .iter()
            .map(|&(k, server, _, n, download)| {
                let tenant = format!("100.64.{k}.2");
                let (ns, from, to) = if download {
                    (&self.site.upstream, server, tenant.as_str())
                } else {
                    (&self.site.tenants[k as usize - 1], tenant.as_str(), server)
                };
                Command::new("ip")
                    .args(["netns", "exec", ns, "python3", "-c", SENDER, from, to])
                    .arg(n.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start a sender")
            })
            .collect();
        for mut c in children {
            let start = Instant::now();
            loop {
                if let Some(st) = c.try_wait().unwrap() {
                    assert!(st.success(), "a sender failed: {st}");
                    break;
                }
                if start.elapsed() > Duration::from_secs(60) {
                    let _ = c.kill();
                    panic!("a sender did not finish in 60 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The truth: the router's forward-hook counters.
    fn kernel(&self) -> Totals {
        let v: serde_json::Value = serde_json::from_str(&sh(&format!(
            "ip netns exec {} nft -j list counters table ip tg_truth",
            self.site.host
        )))
        .unwrap();
        let mut out = Totals::new();
        for item in v["nftables"].as_array().unwrap() {
            let Some(c) = item.get("counter") else {
                continue;
            };
            let name = c["name"].as_str().unwrap();
            let w: Vec<&str> = name.split('_').collect();
            let key = (
                w[0][1..].parse().unwrap(),
                w[1].parse().unwrap(),
                w[2].to_string(),
            );
            let v = (c["bytes"].as_u64().unwrap(), c["packets"].as_u64().unwrap());
            if v.1 > 0 {
                out.insert(key, v);
            }
        }
        out
    }

    fn reset_truth(&self) {
        sh(&format!(
            "ip netns exec {} nft reset counters table ip tg_truth >/dev/null",
            self.site.host
        ));
    }

    /// What the history holds, per tenant × realm × direction.
    fn recorded(&self) -> Totals {
        let v: serde_json::Value =
            serde_json::from_str(&self.tollgate(&["usage", "--json", "--since", "2000-01-01"]))
                .unwrap();
        let mut out = Totals::new();
        for t in v["tenants"].as_array().unwrap() {
            for r in t["totals"].as_array().unwrap() {
                let (tenant, realm) = (t["tenant"].as_u64().unwrap(), r["realm"].as_u64().unwrap());
                for dir in ["down", "up"] {
                    let b = r[format!("{dir}_bytes")].as_u64().unwrap();
                    let p = r[format!("{dir}_packets")].as_u64().unwrap();
                    if p > 0 {
                        out.insert((tenant, realm, dir.into()), (b, p));
                    }
                }
            }
        }
        out
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.tollgate(&["flows", "status", "--json"])).unwrap()
    }

    fn fresh_state(&self) {
        let _ = std::fs::remove_dir_all(self.site.state_dir());
    }

    fn ctl(&self, name: &str) -> PathBuf {
        self.site.dir.join(name)
    }
}

/// A background process in the router's namespace, killed on drop with
/// its whole process group (pmacctd's plugin processes included, which
/// outlived their parent before).
struct Exporter(#[allow(dead_code)] testkit::Process);

impl Drop for FlowSite {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.filler])
            .status();
    }
}

fn check_equal(version: &str, kernel: &Totals, recorded: &Totals) {
    eprintln!("{version}: kernel   {kernel:?}\n{version}: recorded {recorded:?}");
    assert_eq!(
        kernel.len(),
        TRAFFIC.len(),
        "{version}: the truth table saw other traffic"
    );
    assert_eq!(
        recorded, kernel,
        "{version}: recorded usage differs from the router's counters"
    );
}

#[test]
fn softflowd_v5_v9_and_ipfix_agree_with_the_kernel_counters() {
    if !testkit::root("softflowd_v5_v9_and_ipfix_agree_with_the_kernel_counters") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    install("softflowd", "softflowd");
    let s = FlowSite::new("s");
    for version in ["5", "9", "10"] {
        s.fresh_state();
        s.reset_truth();
        let collector = s.collector();
        let ctl = s.ctl(&format!("softflowd-{version}.ctl"));
        let exporter = Exporter(testkit::Process::spawn(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &s.site.host,
                    "softflowd",
                    "-d",
                    "-i",
                    "lan0",
                ])
                .args(["-n", &format!("127.0.0.1:{}", s.port), "-v", version])
                .arg("-c")
                .arg(&ctl)
                .args(["-t", "maxlife=300"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        wait_for(
            "softflowd's control socket",
            Duration::from_secs(10),
            || ctl.exists(),
        );
        // Let libpcap attach before the traffic starts.
        std::thread::sleep(Duration::from_millis(500));
        s.send();
        let kernel = s.kernel();
        s.fill();
        sh(&format!(
            "ip netns exec {} softflowctl -c {} expire-all >/dev/null",
            s.site.host,
            ctl.display()
        ));
        // Exported flows reach the collector within a receive timeout; the
        // status file shows when every datagram was taken.
        let want: u64 = TRAFFIC.iter().map(|t| t.3).sum();
        wait_for("the exported flows", Duration::from_secs(15), || {
            s.status()["totals"]["packets"].as_u64().unwrap_or(0) >= want
        });
        drop(exporter);
        assert!(collector.stop().success(), "the collector failed");
        let st = s.status();
        assert_eq!(st["running"], false);
        let e = &st["exporters"][0];
        assert_eq!(e["address"], "127.0.0.1");
        assert_eq!(e["malformed"], 0, "{st}");
        check_equal(&format!("softflowd -v {version}"), &kernel, &s.recorded());
    }
}

#[test]
fn pmacctd_sflow_agrees_with_the_kernel_counters() {
    if !testkit::root("pmacctd_sflow_agrees_with_the_kernel_counters") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    install("pmacctd", "pmacct");
    let s = FlowSite::new("p");
    s.fresh_state();
    s.reset_truth();
    let conf = s.ctl("pmacctd.conf");
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\npcap_interface: lan0\nplugins: sfprobe\nsfprobe_receiver: 127.0.0.1:{}\nsampling_rate: 1\nsfprobe_agentip: 127.0.0.1\n",
            s.port
        ),
    )
    .unwrap();
    let collector = s.collector();
    let exporter = Exporter(testkit::Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.site.host, "pmacctd", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    ));
    std::thread::sleep(Duration::from_secs(2));
    s.send();
    let kernel = s.kernel();
    s.fill();
    let want: u64 = TRAFFIC.iter().map(|t| t.3).sum();
    wait_for("the sFlow samples", Duration::from_secs(15), || {
        s.status()["totals"]["packets"].as_u64().unwrap_or(0) >= want
    });
    drop(exporter);
    assert!(collector.stop().success(), "the collector failed");
    let st = s.status();
    assert_eq!(st["exporters"][0]["malformed"], 0, "{st}");
    // sFlow reports frame lengths: 14 bytes of Ethernet header per packet
    // more than the IP lengths the router's counters saw.
    let framed: Totals = kernel
        .iter()
        .map(|(k, (b, p))| (k.clone(), (b + 14 * p, *p)))
        .collect();
    check_equal("pmacctd sfprobe", &framed, &s.recorded());
}

#[test]
fn refused_and_malformed_datagrams_are_counted_and_nothing_is_lost() {
    if !testkit::root("refused_and_malformed_datagrams_are_counted_and_nothing_is_lost") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = FlowSite::new("m");
    s.fresh_state();
    let mut collector = s.collector();
    // From the router's own lan address, which is not on the allowlist,
    // and garbage from the allowed loopback.
    let script = format!(
        "import socket
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(('100.64.1.1', 0))
for i in range(5): a.sendto(b'\\x00\\x09' + bytes(40), ('127.0.0.1', {port}))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3): b.sendto(b'\\x00\\x09\\x00\\x01' + bytes(3), ('127.0.0.1', {port}))
for i in range(2): b.sendto(b'\\x12\\x34' + bytes(30), ('127.0.0.1', {port}))
",
        port = s.port
    );
    sh(&format!(
        "ip netns exec {} python3 -c \"{}\"",
        s.site.host,
        script.replace('"', "\\\"")
    ));
    wait_for("the datagrams' counts", Duration::from_secs(10), || {
        let st = s.status();
        st["exporters"].as_array().is_some_and(|e| {
            e.iter()
                .map(|e| e["datagrams"].as_u64().unwrap_or(0))
                .sum::<u64>()
                >= 10
        })
    });
    assert!(collector.running(), "the collector died on bad input");
    let st = s.status();
    let by_addr = |a: &str| {
        st["exporters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["address"] == a)
            .cloned()
            .unwrap_or_else(|| panic!("no exporter {a} in {st}"))
    };
    let refused = by_addr("100.64.1.1");
    assert_eq!(refused["allowed"], false);
    assert_eq!(refused["datagrams"], 5);
    let lo = by_addr("127.0.0.1");
    assert_eq!(lo["malformed"], 5, "{lo}");
    assert!(
        lo["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("offset")),
        "{lo}"
    );
    let refused_total: u64 = st["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["refused"].as_u64().unwrap())
        .sum();
    assert_eq!(refused_total, 5);
    let text = s.tollgate(&["flows", "status"]);
    assert!(text.contains("NO"), "{text}");
    assert!(collector.stop().success());
}

/// Sends NetFlow v9 from the router's loopback: argv[1] the port, argv[2]
/// `template` to send the template first, argv[3] how many data datagrams,
/// each one record of 1000 bytes and 10 packets from argv[4] (default
/// 100.64.1.2, tenant 1) to 198.51.100.1 (up, national), timed now.
const V9: &str = "import socket, struct, sys, time
port, with_template, n = int(sys.argv[1]), sys.argv[2] == 'template', int(sys.argv[3])
src = sys.argv[4] if len(sys.argv) > 4 else '100.64.1.2'
to = sys.argv[5] if len(sys.argv) > 5 else '127.0.0.1'
s = socket.socket(socket.AF_INET6 if ':' in to else socket.AF_INET, socket.SOCK_DGRAM)
up = 100000
now = int(time.time())
def header(count, seq):
    return struct.pack('>HHIIII', 9, count, up, now, seq, 7)
fields = [(8, 4), (12, 4), (1, 4), (2, 4), (22, 4), (21, 4)]
if with_template:
    rec = struct.pack('>HH', 300, len(fields)) + b''.join(struct.pack('>HH', t, l) for t, l in fields)
    s.sendto(header(1, 0) + struct.pack('>HH', 0, 4 + len(rec)) + rec, (to, port))
    time.sleep(0.1)
for i in range(n):
    rec = socket.inet_aton(src) + socket.inet_aton('198.51.100.1') + struct.pack('>IIII', 1000, 10, up - 500, up - 100)
    s.sendto(header(1, i + 1) + struct.pack('>HH', 300, 4 + len(rec)) + rec, (to, port))
";

#[test]
fn templates_survive_a_collector_restart() {
    if !testkit::root("templates_survive_a_collector_restart") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = FlowSite::new("r");
    s.fresh_state();
    let send = |template: &str, n: u32| {
        sh(&format!(
            "ip netns exec {} python3 -c \"{}\" {} {template} {n}",
            s.site.host,
            V9.replace('"', "\\\""),
            s.port
        ));
    };
    let c = s.collector();
    send("template", 3);
    wait_for("the first records", Duration::from_secs(10), || {
        s.status()["totals"]["attributed"].as_u64() == Some(3)
    });
    assert!(c.stop().success());
    // A new process: the exporter sends data before re-sending templates,
    // as exporters do (they re-send every few minutes, or every N packets).
    let c = s.collector();
    send("data-only", 2);
    wait_for(
        "the records after the restart",
        Duration::from_secs(10),
        || s.status()["totals"]["attributed"].as_u64() == Some(2),
    );
    assert!(c.stop().success());
    let st = s.status();
    assert_eq!(st["exporters"][0]["unknown_template_records"], 0, "{st}");
    let recorded = s.recorded();
    assert_eq!(
        recorded.get(&(1, 1, "up".to_string())),
        Some(&(5000, 50)),
        "{recorded:?}"
    );
}

#[test]
fn the_daemon_shapes_kernel_tenants_and_collects_flows_for_the_others() {
    if !testkit::root("the_daemon_shapes_kernel_tenants_and_collects_flows_for_the_others") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = FlowSite::new("d");
    s.fresh_state();
    // Tenant 1 is shaped here; tenant 2 sits behind another router.
    let text = policy(s.port).replacen("measured_by = \"flows\"\n", "", 1);
    std::fs::write(s.site.policy_path(), text).unwrap();
    let daemon = s
        .site
        .start_daemon(&s.site.dir.join("accounting.toml"), &[]);
    let status = s.site.state_dir().join("flows-status.json");
    wait_for("the daemon's collector", Duration::from_secs(20), || {
        status.exists()
    });
    let send = |src: &str, n: u32| {
        sh(&format!(
            "ip netns exec {} python3 -c \"{}\" {} template {n} {src}",
            s.site.host,
            V9.replace('"', "\\\""),
            s.port
        ));
    };
    send("100.64.2.2", 4);
    send("100.64.1.2", 3);
    wait_for("the flow records", Duration::from_secs(15), || {
        let st = s.status();
        st["totals"]["attributed"].as_u64() == Some(4)
            && st["totals"]["kernel_measured"].as_u64() == Some(3)
    });
    // Tenant 1 is shaped: the daemon built the kernel's classes.
    let tc = sh(&format!(
        "ip netns exec {} tc class show dev tg-up",
        s.site.host
    ));
    assert!(tc.contains("class htb"), "{tc}");
    let st: serde_json::Value =
        serde_json::from_str(&s.tollgate(&["--netns", &s.site.host, "status", "--json"])).unwrap();
    assert_eq!(st["flows"]["totals"]["attributed"], 4, "{st}");
    assert!(daemon.stop().success(), "the daemon failed");
    let recorded = s.recorded();
    assert_eq!(
        recorded.get(&(2, 1, "up".to_string())),
        Some(&(4000, 40)),
        "{recorded:?}"
    );
    assert!(
        !recorded.contains_key(&(1, 1, "up".to_string())),
        "{recorded:?}"
    );
}

#[test]
fn an_ipv6_listener_takes_an_ipv6_exporter_and_keeps_ipv4_apart() {
    if !testkit::root("an_ipv6_listener_takes_an_ipv6_exporter_and_keeps_ipv4_apart") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = FlowSite::new("6");
    s.fresh_state();
    sh(&format!(
        "ip netns exec {} sysctl -qw net.ipv6.conf.lo.disable_ipv6=0",
        s.site.host
    ));
    // The same port on IPv4 and IPv6 loopback; only ::1 is an exporter.
    let text = policy(s.port)
        .replace(
            &format!("listen = [\"127.0.0.1:{}\"]", s.port),
            &format!("listen = [\"127.0.0.1:{0}\", \"[::1]:{0}\"]", s.port),
        )
        .replace("address = \"127.0.0.1\"", "address = \"::1\"");
    std::fs::write(s.site.policy_path(), text).unwrap();
    let c = s.collector();
    let send = |to: &str, n: u32| {
        sh(&format!(
            "ip netns exec {} python3 -c \"{}\" {} template {n} 100.64.1.2 {to}",
            s.site.host,
            V9.replace('"', "\\\""),
            s.port
        ));
    };
    send("::1", 2);
    send("127.0.0.1", 3);
    wait_for("both exporters' datagrams", Duration::from_secs(10), || {
        let st = s.status();
        let n = |a: &str| {
            st["exporters"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["address"] == a))
                .map_or(0, |e| e["datagrams"].as_u64().unwrap_or(0))
        };
        n("::1") == 3 && n("127.0.0.1") == 4
    });
    assert!(c.stop().success());
    let st = s.status();
    assert_eq!(st["totals"]["attributed"], 2, "{st}");
    assert_eq!(st["totals"]["refused"], 4, "{st}");
    assert_eq!(
        st["sockets"].as_array().unwrap().len(),
        4,
        "two workers per address: {st}"
    );
    assert_eq!(
        s.recorded().get(&(1, 1, "up".to_string())),
        Some(&(2000, 20))
    );
}

// ------------------------------------------------- on loopback, no root

use flows_loopback::{self as lo, Loop};

#[test]
fn a_sample_the_history_refuses_is_quarantined_and_later_commits_go_on() {
    // Issue 12, item 2: a sum the store refuses blocked every later commit
    // of the collector, and SIGTERM exited 1 losing what was pending.
    let mut l = Loop::new("refuse", "");
    let at = lo::in_slot_ms();
    let slot = accounting::Slot::containing_millis(at as i64);
    // Another writer already stored nearly the most one slot and key may
    // hold for tenant 1 → national in that slot: any flow added to it sums
    // past what the store accepts.
    let seeded = history::MAX_SAMPLE_BYTES - 100;
    {
        let mut store = history::SqliteStore::open(
            &l.path("history.sqlite"),
            &history::SqliteOptions::default(),
        )
        .unwrap();
        let key = accounting::UsageKey {
            tenant: net_types::TenantId(1),
            realm: net_types::RealmId(1),
            direction: accounting::Direction::Up,
            band: accounting::Band::Whole,
            source: accounting::Source::Flow,
        };
        let sample = accounting::Sample {
            slot,
            key,
            bytes: seeded,
            packets: 1,
        };
        let report = history::Store::add(
            &mut store,
            &history::AddBatch {
                writer: "seed",
                sequence: 1,
                samples: &[sample],
                coverage: &[],
                state: &[],
            },
        )
        .unwrap();
        assert!(report.refused.is_empty(), "the seed itself is stored");
    }
    let c = l.collector();
    l.send(&lo::ipfix_template(0));
    let first = [
        (lo::TENANT1, lo::NATIONAL, 1000, 1),
        (lo::TENANT2, lo::NATIONAL, 500, 5),
    ];
    l.send(&lo::ipfix_data(0, 0, at, &first));
    let key = |t: u64, r: u64| (t, r, "up".to_string());
    wait_for(
        "tenant 2's record beside the refused one",
        Duration::from_secs(10),
        || l.recorded().get(&key(2, 1)) == Some(&(500, 5)),
    );
    // Later commits go on.
    l.send(&lo::ipfix_data(
        0,
        2,
        at,
        &[(lo::TENANT2, lo::ABROAD, 700, 7)],
    ));
    wait_for("a later record", Duration::from_secs(10), || {
        l.recorded().get(&key(2, 2)) == Some(&(700, 7))
    });
    let exit = c.stop();
    assert!(exit.success(), "SIGTERM must exit 0: {exit}");
    let recorded = l.recorded();
    assert_eq!(recorded.get(&key(1, 1)), Some(&(seeded, 1)), "{recorded:?}");
    let st = l.status();
    assert_eq!(st["quarantine"]["samples_refused"], 1, "{st}");
    let lines = std::fs::read_to_string(l.path("flows-quarantine.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = lines
        .lines()
        .map(|x| serde_json::from_str(x).unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{lines}");
    assert_eq!(entries[0]["kind"], "sample");
    assert_eq!(entries[0]["tenant"], 1);
    assert_eq!(entries[0]["bytes"], 1000);
    assert!(
        entries[0]["reason"].as_str().unwrap().contains("2^50"),
        "{lines}"
    );
    let text = l.tollgate(&["flows", "status"]);
    assert!(text.contains("QUARANTINED"), "{text}");
}

/// A NetFlow v9 template record of `fields` one-byte vendor fields.
fn wide_v9_template(id: u16, domain: u32, fields: u16) -> Vec<u8> {
    let f: Vec<(u16, u16)> = (0..fields).map(|i| (1000 + i % 500, 1)).collect();
    lo::v9_with(domain, &[lo::set(0, &lo::template_record(id, &f))])
}

#[test]
fn a_hostile_stream_leaves_the_collector_alive_within_its_memory_and_exact() {
    // Issue 12, item 10 and the hostile-input suite: from one allowlisted
    // exporter (one address and port, so one worker), malformed datagrams,
    // absurd counts, counters beyond any link, maximal templates and
    // template floods, mixed with valid datagrams of known content.
    // Exactness needs the collector to keep up with the flood: not beside
    // the namespace tests' own exporters (CI once lost the valid datagrams
    // then).
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const ROUNDS: u64 = 120;
    let memory_limit = 96u64 << 20;
    let mut l = Loop::new("hostile", "memory_limit = \"96mb\"\n");
    let c = l.collector();
    let started = Instant::now();
    let at = lo::in_slot_ms();
    let mut truth = lo::Totals::new();
    let mut rng = lo::Rng::new(12);
    let mut malformed = 0u64;
    let mut valid_seq = 0u32;
    let mut valid = |l: &mut Loop, truth: &mut lo::Totals, n: u64| {
        let records = [
            (lo::TENANT1, lo::NATIONAL, 1000 + n, 1 + n % 3),
            (lo::ABROAD, lo::TENANT2, 40 + n, 1),
        ];
        l.send(&lo::ipfix_data(0, valid_seq, at, &records));
        valid_seq += 2;
        lo::expect(truth, &records);
    };
    l.send(&lo::ipfix_template(0));
    for round in 0..ROUNDS {
        valid(&mut l, &mut truth, round);
        // Garbage: an unknown version, then random bytes.
        for _ in 0..5 {
            let len = 2 + rng.below(1400) as usize;
            let mut g: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            g[0] = 0xab;
            g[1] = 0xcd;
            l.send(&g);
            malformed += 1;
        }
        // Truncated: a valid IPFIX message cut short of its length.
        let d = lo::ipfix_data(0, 0, at, &[(lo::TENANT1, lo::NATIONAL, 5, 1)]);
        l.send(&d[..d.len() - 1 - rng.below(20) as usize]);
        malformed += 1;
        // Absurd counts: v5 claiming 30 records with room for 1, sFlow
        // claiming 2^32 - 1 samples, a v9 set claiming 60,000 bytes.
        l.send(&lo::v5_claiming(30));
        l.send(&lo::sflow_claiming(u32::MAX));
        l.send(&lo::v9_with(3, &[vec![1, 0, 0xea, 0x60, 0, 0, 0, 0]]));
        malformed += 3;
        // Counters beyond any link: 2^62 bytes in one record.
        l.send(&lo::ipfix_data(
            0,
            0,
            at,
            &[(lo::TENANT1, lo::NATIONAL, 1 << 62, 1)],
        ));
        // Maximal templates: 16,369 fields each (refused by the field cap).
        for k in 0..5u16 {
            l.send(&wide_v9_template(300 + k, 1, 16_369));
        }
        // A byte-budget flood: templates of the largest allowed size, new
        // ids each round (evicted least recently used first).
        for k in 0..25u16 {
            l.send(&wide_v9_template(400 + (round as u16) * 25 + k, 2, 1_024));
        }
        // A count flood: 200 small templates per datagram over many
        // domains.
        let tiny: Vec<u8> = (0..200u16)
            .flat_map(|k| lo::template_record(256 + k, &[(8, 4), (12, 4), (1, 4)]))
            .collect();
        l.send(&lo::v9_with(1_000 + round as u32, &[lo::set(0, &tiny)]));
    }
    valid(&mut l, &mut truth, 99);
    l.settle();
    let mut c = c;
    assert!(c.running(), "the collector died");
    let peak = Loop::peak_rss(&c);
    let st = l.status();
    let exit = c.stop();
    assert!(exit.success(), "{exit}");
    let recorded = l.recorded();
    assert_eq!(recorded, truth, "valid traffic is recorded exactly");
    let e = st["exporters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == "127.0.0.1")
        .cloned()
        .unwrap();
    assert_eq!(e["malformed"], malformed, "{e}");
    assert_eq!(e["quarantined"], ROUNDS, "{e}");
    assert!(
        e["templates_refused"].as_u64().unwrap() >= 5 * ROUNDS,
        "{e}"
    );
    assert!(e["templates_evicted"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(st["totals"]["quarantined"], ROUNDS, "{st}");
    let template_bytes = st["totals"]["template_bytes"].as_u64().unwrap();
    assert!(template_bytes <= memory_limit / 3, "{template_bytes}");
    assert!(
        peak < memory_limit,
        "peak RSS {peak} bytes over the {memory_limit}-byte limit"
    );
    eprintln!(
        "hostile stream: {} datagrams in {:?}, peak RSS {} MiB, templates {} B",
        l.sent,
        started.elapsed(),
        peak >> 20,
        template_bytes
    );
    let saved = std::fs::metadata(l.path("flows-templates.bin"))
        .unwrap()
        .len();
    assert!(saved <= memory_limit / 3, "templates file of {saved} bytes");
}

#[test]
fn a_stop_while_the_history_is_locked_saves_what_it_holds_and_the_next_start_commits_it() {
    // Issue 12, item 2: SIGTERM must drain and exit 0 with nothing valid
    // lost, even when the history cannot take the last commit.
    let mut l = Loop::new("locked", "");
    let c = l.collector();
    let at = lo::in_slot_ms();
    // Another process holds the history's write lock (longer than the
    // store's 10 s busy timeout).
    let db = l.path("history.sqlite");
    let mut locker = {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(echo 'BEGIN EXCLUSIVE;'; echo 'SELECT 1;'; sleep 120) | sqlite3 {}",
                db.display()
            ))
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sqlite3 (Debian package sqlite3)")
    };
    // The whole pipeline goes with its group, whatever happens.
    struct Unlock(u32);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0)])
                .status();
        }
    }
    let unlock = Unlock(locker.id());
    std::thread::sleep(Duration::from_millis(500));
    l.send(&lo::ipfix_template(0));
    let records = [
        (lo::TENANT1, lo::NATIONAL, 1234, 5),
        (lo::ABROAD, lo::TENANT2, 99, 1),
    ];
    l.send(&lo::ipfix_data(0, 0, at, &records));
    // Once the worker has them, the collector's next commit waits for the
    // lock (the store's busy timeout, 10 s) and fails; so does the last
    // one, at the stop.
    l.drained();
    std::thread::sleep(Duration::from_millis(600));
    c.signal("-TERM");
    let mut c = c;
    let start = Instant::now();
    let exit = loop {
        if let Some(st) = c.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the collector did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(unlock);
    let _ = locker.wait();
    assert!(exit.success(), "{exit}: {}", c.log());
    let pending = l.path("flows-pending.json");
    assert!(pending.exists(), "{}", c.log());
    let saved = std::fs::read(&pending).unwrap();
    // The next start commits them first.
    let c = l.collector();
    let mut truth = lo::Totals::new();
    lo::expect(&mut truth, &records);
    wait_for(
        "the saved samples in the history",
        Duration::from_secs(10),
        || l.recorded() == truth,
    );
    assert!(!pending.exists());
    assert!(c.stop().success());
    assert_eq!(l.recorded(), truth);
    // A power cut can undo the file's removal after its commit: the file
    // comes back, and the next start must not add it a second time.
    std::fs::write(&pending, &saved).unwrap();
    let c = l.collector();
    wait_for("the stale file removed", Duration::from_secs(10), || {
        !pending.exists()
    });
    assert!(c.stop().success());
    assert_eq!(l.recorded(), truth, "the pending samples counted twice");
}

#[test]
fn flow_records_kept_in_clickhouse_give_the_top_talkers_sent() {
    // Issue 16, item 2: `[history.flows]` keeps the decoded records; the
    // top talkers `flows top` reads back are the sums of what was sent.
    let Some(server) = history_clickhouse::testing::server(
        "flow_records_kept_in_clickhouse_give_the_top_talkers_sent",
    ) else {
        return;
    };
    let extra = format!(
        "[history]\nstore = \"clickhouse\"\nurl = \"{}\"\ndatabase = \"kept\"\n\n[history.flows]\nkeep = true\n\n",
        server.url
    );
    let mut l = Loop::new("kept", &extra);
    let c = l.collector();
    l.send(&lo::ipfix_template(0));
    // 90 records in three datagrams, a second ago: six sources (two of
    // them tenants', four nobody's), three destinations.
    let at = u64::from(lo::now_secs()) * 1000 - 1000;
    let source = |i: u64| std::net::Ipv4Addr::new(100, 64, 1 + (i % 2) as u8, 2 + (i % 3) as u8);
    let dest = |i: u64| std::net::Ipv4Addr::new(203, 0, 113, 1 + (i % 3) as u8);
    let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for d in 0..3u64 {
        let records: Vec<_> = (0..30u64)
            .map(|j| {
                let i = d * 30 + j;
                (source(i), dest(i / 2), 1000 + i * 37, 1 + i % 5)
            })
            .collect();
        for r in &records {
            let e = want.entry(r.0.to_string()).or_default();
            e.0 += r.2;
            e.1 += r.3;
        }
        l.send(&lo::ipfix_data(0, (d * 30) as u32, at, &records));
    }
    let start = Instant::now();
    while l.status()["kept"]["kept"].as_u64() != Some(90) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the 90 records were not kept: {}\n{}",
            l.status(),
            std::fs::read_to_string(l.dir.join("collector.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let v: serde_json::Value = serde_json::from_str(&l.tollgate(&[
        "flows", "top", "--by", "src", "--since", "1h", "--limit", "100", "--json",
    ]))
    .unwrap();
    let got: BTreeMap<String, (u64, u64)> = v["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_string(),
                (t["bytes"].as_u64().unwrap(), t["packets"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(got, want, "{v}");
    // The largest first, and the text form lists the same.
    let bytes: Vec<u64> = v["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["bytes"].as_u64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{v}");
    let text = l.tollgate(&["flows", "top", "--by", "dst", "--since", "1h"]);
    assert!(
        text.contains("203.0.113.1 ") && text.lines().count() == 5,
        "{text}"
    );
    let exit = c.stop();
    assert!(exit.success(), "SIGTERM must exit 0: {exit}");
    let st = l.status();
    assert_eq!(st["kept"]["dropped"], 0, "{st}");
    assert_eq!(st["kept"]["lost"], 0, "{st}");
    let text = l.tollgate(&["flows", "status"]);
    assert!(text.contains("kept in ClickHouse: 90 records"), "{text}");
}
