//! The eBPF classifier's per-address counters (`tg_addrs`,
//! `[guard.capture] source = "ebpf"`) with real traffic in namespaces.
//!
//! ```text
//! upstream ──veth── router ──veth── tenant
//! 198.51.100.1  up0 | wan0 192.0.2.1 | lan0 100.64.1.1    t0 100.64.1.2
//! 2001:db8:5100::1                     2001:db8:1::1         2001:db8:1::2
//! ```
//!
//! 1. `ebpf_counters_equal_the_traffic_sent`: tollgate applies a policy
//!    with the eBPF classifier and the counting source; bounded bursts
//!    (hping3 `-c`: TCP SYN, UDP, ICMP; ping with fragments, IPv4 and
//!    IPv6; iperf3 UDP with `-k`) are sent to and from the tenant, and
//!    the map, read before and after each (through
//!    `linux_dataplane::addr_counters`, as the daemon reads it), moved by
//!    exactly the packets and IP bytes sent, per protocol and direction.
//!    iperf3's datagrams are also checked against an nftables counter on
//!    the tenant's output. `tollgate top --addresses` shows the tenant's
//!    address first during a SYN burst. Then the same policy without the
//!    counting source: the programs stop counting.
//! 2. `ebpf_counters_feed_the_guard_which_blackholes_a_syn_flood`: the
//!    daemon with `source = "ebpf"`: an hping3 SYN flood is detected from
//!    the counters and the notify and blackhole rungs fire.
//!
//! Needs root, iproute2, nftables, hping3, iperf3 and ping. Namespaces
//! are removed and processes killed even on failure (`Netns`, `Process`);
//! every burst is bounded by its count and by `timeout`.

use bpf_classify::counters::{AddrCounts, Way};
use linux_dataplane::addr_counters::{AddrCounterMap, Totals};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::{sh, wait_for, Netns, Process};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const TENANT4: &str = "100.64.1.2";
const TENANT6: &str = "2001:db8:1::2";
const UP4: &str = "198.51.100.1";
const UP6: &str = "2001:db8:5100::1";

struct Site {
    up: Netns,
    rtr: Netns,
    ten: Netns,
}

fn site(tag: &str) -> Site {
    let s = Site {
        up: Netns::new(&format!("addrc{tag}u")),
        rtr: Netns::new(&format!("addrc{tag}r")),
        ten: Netns::new(&format!("addrc{tag}t")),
    };
    let (u, h, t) = (&s.up.0, &s.rtr.0, &s.ten.0);
    sh(&format!(
        "set -e
        ip link add wan0 netns {h} type veth peer name up0 netns {u}
        ip link add lan0 netns {h} type veth peer name t0 netns {t}
        ip -n {h} addr add 192.0.2.1/30 dev wan0; ip -n {u} addr add 192.0.2.2/30 dev up0
        ip -n {h} addr add 100.64.1.1/24 dev lan0; ip -n {t} addr add {TENANT4}/24 dev t0
        ip -n {u} addr add {UP4}/24 dev lo
        ip -n {h} link set wan0 up; ip -n {h} link set lan0 up; ip -n {u} link set up0 up; ip -n {t} link set t0 up
        ip -n {h} route add 198.51.100.0/24 via 192.0.2.2
        ip -n {u} route add 100.64.0.0/10 via 192.0.2.1; ip -n {t} route add default via 100.64.1.1
        ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
        ip -n {h} addr add 2001:db8:ffff::1/64 dev wan0 nodad; ip -n {u} addr add 2001:db8:ffff::2/64 dev up0 nodad
        ip -n {h} addr add 2001:db8:1::1/48 dev lan0 nodad; ip -n {t} addr add {TENANT6}/48 dev t0 nodad
        ip -n {u} addr add {UP6}/64 dev lo nodad
        ip -n {h} -6 route add 2001:db8:5100::/40 via 2001:db8:ffff::2
        ip -n {u} -6 route add 2001:db8:1::/48 via 2001:db8:ffff::1; ip -n {t} -6 route add default via 2001:db8:1::1
        ip netns exec {h} sysctl -qw net.ipv6.conf.all.forwarding=1
        # Neighbour discovery towards the tenant would be counted as its
        # ICMPv6: a permanent entry keeps the router from probing.
        mac=$(ip netns exec {t} cat /sys/class/net/t0/address)
        ip -n {h} neigh replace {TENANT6} lladdr $mac dev lan0 nud permanent"
    ));
    s
}

fn policy(counting: bool, guard_extra: &str) -> String {
    let capture = if counting {
        "[guard.capture]\nsource = \"ebpf\"\n"
    } else {
        ""
    };
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
classifier = "ebpf"
capacity = {{ down = "10gbit", up = "10gbit" }}

[plans.home]
down = {{ rate = "500mbit", ceil = "1gbit" }}
up = {{ rate = "500mbit", ceil = "1gbit" }}

[[tenants]]
id = 1
name = "t"
plan = "home"
prefixes = ["100.64.1.0/24", "2001:db8:1::/48"]

[guard]
networks = ["100.64.1.0/24", "2001:db8:1::/48"]
flows = false

{capture}
[guard.thresholds]
pps_in = 1000000

{guard_extra}
"#
    )
}

const NOTIFY_TRUE: &str = r#"[[guard.ladder]]
rung = "notify"
hold = "60s"
script = "/bin/true"
"#;

fn tollgate(rtr: &Netns, dir: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &rtr.0])
        .args(args)
        .arg("-c")
        .arg(dir.join("policy.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_STATE_DIR")
        .output()
        .expect("run tollgate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "tollgate {args:?} failed:\n{text}");
    text
}

/// The counters map of `ns`, summed over CPUs, as the daemon reads it.
fn totals(ns: &Netns) -> Totals {
    let name = ns.0.clone();
    std::thread::spawn(move || {
        linux_dataplane::netns::enter(&name).expect("enter the router's namespace");
        let mut m = AddrCounterMap::find().expect("the counters map");
        let mut t = Totals::new();
        m.read(&mut t).expect("read the counters");
        t
    })
    .join()
    .expect("the reading thread")
}

fn delta(before: &Totals, after: &Totals, addr: &str, way: Way) -> AddrCounts {
    let key: (IpAddr, Way) = (addr.parse().unwrap(), way);
    let a = after.get(&key).copied().unwrap_or_default();
    match before.get(&key) {
        Some(b) => a.since(b),
        None => a,
    }
}

/// Runs a bounded burst in `ns` and returns what it moved on the router.
fn burst(rtr: &Netns, ns: &Netns, cmd: &str) -> (Totals, Totals) {
    let before = totals(rtr);
    sh(&format!("ip netns exec {} timeout 30 {cmd}", ns.0));
    // The last packets are counted when they pass the hook: the command
    // has returned by then, but a reply may still be on its way.
    std::thread::sleep(Duration::from_millis(200));
    (before, totals(rtr))
}

#[test]
fn ebpf_counters_equal_the_traffic_sent() {
    if !testkit::root("ebpf_counters_equal_the_traffic_sent") {
        return;
    }
    for (cmd, pkg) in [
        ("hping3", "hping3"),
        ("iperf3", "iperf3"),
        ("nft", "nftables"),
        ("ping", "iputils-ping"),
    ] {
        testkit::need(cmd, pkg);
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("policy.toml"), policy(true, NOTIFY_TRUE)).unwrap();
    let s = site("c");
    tollgate(&s.rtr, dir, &["apply"]);
    // Warm the paths (ARP), outside the measured bursts.
    sh(&format!(
        "ip netns exec {} ping -c 1 -w 10 {UP4} >/dev/null; ip netns exec {} ping -6 -c 1 -w 10 {UP6} >/dev/null",
        s.ten.0, s.ten.0
    ));
    let mut report = String::new();
    let mut check = |what: &str, got: u64, want: u64| {
        report.push_str(&format!("{what}: {got} of {want}\n"));
        assert_eq!(got, want, "{what}\n{report}");
    };

    // TCP SYN towards the tenant: 500 segments of 40 bytes (IP + TCP).
    let (b, a) = burst(
        &s.rtr,
        &s.up,
        &format!("hping3 -q -S -p 80 -c 500 -i u1000 {TENANT4}"),
    );
    let d = delta(&b, &a, TENANT4, Way::In);
    check("SYN in: packets", d.packets, 500);
    check("SYN in: tcp packets", d.tcp_packets, 500);
    check("SYN in: SYN", d.tcp_syn, 500);
    check("SYN in: bytes", d.bytes, 500 * 40);
    check("SYN in: udp", d.udp_packets, 0);
    // The tenant's answers (RST, ACK) are TCP out, never SYNs.
    let o = delta(&b, &a, TENANT4, Way::Out);
    check("SYN out: SYN", o.tcp_syn, 0);
    check("SYN out: tcp = packets", o.tcp_packets, o.packets);

    // UDP towards the tenant: 500 datagrams of 100 bytes (128 in IP).
    let (b, a) = burst(
        &s.rtr,
        &s.up,
        &format!("hping3 -q --udp -p 9 -d 100 -c 500 -i u1000 {TENANT4}"),
    );
    let d = delta(&b, &a, TENANT4, Way::In);
    check("UDP in: packets", d.packets, 500);
    check("UDP in: udp packets", d.udp_packets, 500);
    check("UDP in: udp bytes", d.udp_bytes, 500 * 128);

    // ICMP echo from the tenant (upload) and the replies (download).
    let (b, a) = burst(
        &s.rtr,
        &s.ten,
        &format!("hping3 -q --icmp -d 56 -c 500 -i u1000 {UP4}"),
    );
    let o = delta(&b, &a, TENANT4, Way::Out);
    check("ICMP out: packets", o.packets, 500);
    check("ICMP out: icmp bytes", o.icmp_bytes, 500 * 84);
    let d = delta(&b, &a, TENANT4, Way::In);
    check("ICMP in (replies): icmp packets", d.icmp_packets, 500);

    // Fragments: 20 echoes of 3,000 bytes leave in 3 fragments each
    // (1500 + 1500 + 68 bytes at MTU 1500), and so do the replies.
    let (b, a) = burst(
        &s.rtr,
        &s.ten,
        &format!("ping -q -s 3000 -c 20 -i 0.01 {UP4}"),
    );
    let o = delta(&b, &a, TENANT4, Way::Out);
    check("fragments out", o.fragments, 60);
    check("fragment bytes out", o.fragment_bytes, 20 * 3068);
    check("fragments out are ICMP", o.icmp_packets, 60);
    let d = delta(&b, &a, TENANT4, Way::In);
    check("fragments in", d.fragments, 60);

    // IPv6: 200 echoes of 56 bytes (104 in IP), and 10 of 3,000 bytes in
    // three fragments each (counted through the fragment header).
    let (b, a) = burst(&s.rtr, &s.ten, &format!("ping -6 -q -c 200 -i 0.002 {UP6}"));
    let o = delta(&b, &a, TENANT6, Way::Out);
    check("IPv6 out: icmp packets", o.icmp_packets, 200);
    check("IPv6 out: bytes", o.bytes, 200 * 104);
    check(
        "IPv6 in: icmp packets",
        delta(&b, &a, TENANT6, Way::In).icmp_packets,
        200,
    );
    let (b, a) = burst(
        &s.rtr,
        &s.ten,
        &format!("ping -6 -q -s 3000 -c 10 -i 0.01 {UP6}"),
    );
    let o = delta(&b, &a, TENANT6, Way::Out);
    check("IPv6 fragments out", o.fragments, 30);
    check("IPv6 fragments out are ICMPv6", o.icmp_packets, 30);

    // iperf3 UDP, 2,000 datagrams of 200 bytes from the tenant; the
    // tenant's own nftables counter of UDP leaving it is the reference
    // (iperf3 adds its connect datagram to the -k ones).
    let _server = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.up.0])
            .args([
                "timeout", "30", "iperf3", "-s", "-1", "-B", UP4, "-p", "5311",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    sh("sleep 0.5");
    s.ten.sh(
        "nft add table inet addrc; nft add chain inet addrc out '{ type filter hook output priority 0; }'; nft add rule inet addrc out meta l4proto udp counter",
    );
    let (b, a) = burst(
        &s.rtr,
        &s.ten,
        &format!("iperf3 -c {UP4} -p 5311 -u -b 20M -l 200 -k 2000 -J >/dev/null"),
    );
    let nft = s.ten.sh("nft -j list chain inet addrc out");
    let sent: u64 = nft
        .split("\"packets\":")
        .nth(1)
        .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an nftables counter: {nft}"));
    let o = delta(&b, &a, TENANT4, Way::Out);
    assert!(
        (2000..=2004).contains(&sent),
        "nftables counted {sent} UDP packets"
    );
    check("iperf3 UDP out against nftables", o.udp_packets, sent);

    // `top --addresses` while a bounded SYN burst runs: the tenant's
    // address is the busiest, with SYNs in.
    let mut syn = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.up.0])
            .args([
                "timeout", "10", "hping3", "-q", "-S", "-p", "81", "-c", "3000", "-i", "u1000",
                TENANT4,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let top = tollgate(
        &s.rtr,
        dir,
        &[
            "top",
            "--addresses",
            "--once",
            "--json",
            "--interval",
            "500ms",
        ],
    );
    syn.wait(Duration::from_secs(15));
    let v: serde_json::Value = serde_json::from_str(top.lines().next().unwrap_or("")).expect(&top);
    let first = &v["rows"][0];
    assert_eq!(first["address"], TENANT4, "{top}");
    assert!(first["syn_in"].as_f64().unwrap() > 0.0, "{top}");

    // Without the counting source the programs stop counting.
    std::fs::write(dir.join("policy.toml"), policy(false, NOTIFY_TRUE)).unwrap();
    tollgate(&s.rtr, dir, &["apply"]);
    let (b, a) = burst(
        &s.rtr,
        &s.up,
        &format!("hping3 -q -S -p 80 -c 100 -i u1000 {TENANT4}"),
    );
    check(
        "counting off: SYN in",
        delta(&b, &a, TENANT4, Way::In).packets,
        0,
    );
    eprintln!("{report}");
    tollgate(&s.rtr, dir, &["down"]);
}

#[test]
fn ebpf_counters_feed_the_guard_which_blackholes_a_syn_flood() {
    if !testkit::root("ebpf_counters_feed_the_guard_which_blackholes_a_syn_flood") {
        return;
    }
    testkit::need("hping3", "hping3");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"ARGS $*\" >> {}\ncat > /dev/null\n",
            dir.join("notify.log").display()
        ),
    )
    .unwrap();
    sh(&format!("chmod +x {}", script.display()));
    let ladder = format!(
        "[[guard.ladder]]\nrung = \"notify\"\nhold = \"60s\"\nscript = \"{}\"\n\n[[guard.ladder]]\nrung = \"blackhole\"\nhold = \"60s\"\n",
        script.display()
    );
    let text = policy(true, &ladder)
        .replace("pps_in = 1000000", "pps_in = 2000")
        .replace(
            "flows = false",
            "flows = false\newma = \"1s\"\ninstant = \"300ms\"\ncalm = \"2s\"",
        );
    std::fs::write(dir.join("policy.toml"), text).unwrap();
    std::fs::write(dir.join("accounting.toml"), "").unwrap();
    let s = site("g");
    let log_file = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut d = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--netns", &s.rtr.0, "-c"])
            .arg(dir.join("policy.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["run", "--interval", "1s", "--reconcile", "1s"])
            .arg("--accounting")
            .arg(dir.join("accounting.toml"))
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_STATE_DIR")
            .env("TOLLGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file),
    );
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("the counters to be read", Duration::from_secs(20), || {
        log().contains("reading the per-address counters")
    });
    assert!(d.running(), "{}", log());
    let _flood = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.up.0])
            .args([
                "timeout", "5", "hping3", "-S", "-p", "80", "-i", "u100", "-q", TENANT4,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let notified = || std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();
    let detected = wait_for("the notify script", Duration::from_secs(4), || {
        notified().contains(&format!("ARGS {TENANT4} incoming"))
    });
    let ours = format!("blackhole {TENANT4} proto 213");
    let routed = wait_for("the blackhole route", Duration::from_secs(4), || {
        sh(&format!("ip -n {} route show type blackhole", s.rtr.0))
            .lines()
            .any(|l| l.trim() == ours)
    });
    eprintln!(
        "FIGURE ebpf_counters: notify ran {detected:?}, blackhole route {:?} after the flood started",
        detected + routed
    );
    let status = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["guard", "status", "--json"])
        .env_remove("TOLLGATE_STATE_DIR")
        .output()
        .unwrap();
    let st = String::from_utf8_lossy(&status.stdout);
    assert!(st.contains("syn_flood"), "{st}\n{}", log());
    d.signal_group(libc::SIGTERM);
    d.wait(Duration::from_secs(10)).expect("the daemon ends");
    tollgate(&s.rtr, dir, &["down"]);
}
