//! Real traffic through the compiled router example.
//!
//! Three namespaces: an upstream holding a national (198.51.100.0/24) and an
//! international (203.0.113.0/24) network, the router where tollgate's plan
//! is applied (as `tollgate plan --format tc|nft` prints it), and one tenant
//! (alice, 100.64.1.0/24). iperf3 measures what the plan lets through.
//!
//! Tolerance: HTB is a limiter, so a measured rate must not exceed its
//! ceil by more than 5% (TCP and timer slack) and should reach at least 80% of
//! it (TCP's ramp-up over a short test on a busy machine). Expect about −4.4%:
//! HTB counts whole frames (1,514 bytes for a full TCP segment: 14 Ethernet +
//! 20 IP + 32 TCP with timestamps + 1,448 payload), iperf3 counts payload, and
//! 1448 / 1514 = 0.956. Needs root,
//! iproute2, nftables and iperf3; the namespaces are removed even on failure.

use std::process::Command;

/// Rate tests run one at a time: two at once would compete for the two cores
/// and measure each other instead of the shaper.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = Command::new("pkill")
            .args(["-f", &format!("tg-iperf-{}", std::process::id())])
            .status();
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

/// Mbit/s received, from iperf3's JSON.
fn iperf(ns: &str, server: &str, port: u16, reverse: bool) -> f64 {
    let r = if reverse { "-R" } else { "" };
    let out = sh(&format!(
        "ip netns exec {ns} iperf3 -c {server} -p {port} {r} -t 4 -J"
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 -J prints JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("a received rate")
        / 1e6
}

/// Compiles an example and applies exactly the text `tollgate plan` prints.
fn apply_example(ns: &str, name: &str) {
    let id = std::process::id();
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let loaded = policy::load(name, &text, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    });
    let c = compiler::compile(
        loaded.policy.as_ref().unwrap(),
        &compiler::HostFacts::default(),
    )
    .unwrap();
    let tc_file = std::env::temp_dir().join(format!("{ns}-{id}.tc"));
    let nft_file = std::env::temp_dir().join(format!("{ns}-{id}.nft"));
    let tc: String = plan::render::plan_tc(&c.plan)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&tc_file, tc).unwrap();
    std::fs::write(&nft_file, plan::render::plan_nft(&c.plan)).unwrap();
    for dev in c.plan.links.keys() {
        sh(&format!(
            "ip -n {ns} link add {dev} type ifb && ip -n {ns} link set {dev} up"
        ));
    }
    sh(&format!(
        "ip netns exec {ns} tc -batch {}",
        tc_file.display()
    ));
    sh(&format!("ip netns exec {ns} nft -f {}", nft_file.display()));
    let _ = std::fs::remove_file(&tc_file);
    let _ = std::fs::remove_file(&nft_file);
}

/// Starts tagged iperf3 servers (the guard stops them) on the given addresses.
fn servers(ns: &str, addrs: &[(&str, u16)]) {
    let id = std::process::id();
    for (addr, port) in addrs {
        sh(&format!(
            "ip netns exec {ns} bash -c 'exec -a tg-iperf-{id} iperf3 -s -D -B {addr} -p {port}'"
        ));
    }
    sh("sleep 0.5");
}

fn check(report: &mut String, what: &str, got: f64, ceil: f64) {
    report.push_str(&format!(
        "{what}: {got:.2} Mbit/s of {ceil} ({:+.1}%)\n",
        (got / ceil - 1.0) * 100.0
    ));
    assert!(
        got <= ceil * 1.05,
        "{what}: {got:.2} Mbit/s exceeds the {ceil} Mbit/s ceil\n{report}"
    );
    assert!(
        got >= ceil * 0.80,
        "{what}: {got:.2} Mbit/s is far below the {ceil} Mbit/s ceil\n{report}"
    );
}

#[test]
fn hypervisor_example_holds_vm_caps_and_the_shared_pool() {
    if !testkit::root("hypervisor_example_holds_vm_caps_and_the_shared_pool") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = std::process::id();
    let (h, u) = (format!("tgs-H{id}"), format!("tgs-U{id}"));
    let (v1, v3) = (format!("tgs-v1{id}"), format!("tgs-v3{id}"));
    let _guard = Namespaces(vec![h.clone(), u.clone(), v1.clone(), v3.clone()]);
    // The host routes its VMs (as Xen's vif-route or a routed libvirt network
    // does): each VM is a /32 behind its vif, answered by proxy ARP.
    sh(&format!(
        "set -e
        for n in {h} {u}; do ip netns add $n; ip -n $n link set lo up; done
        ip link add eth0 netns {h} type veth peer name up0 netns {u}
        ip -n {h} addr add 203.0.113.254/24 dev eth0; ip -n {u} addr add 203.0.113.1/24 dev up0
        ip -n {h} link set eth0 up; ip -n {u} link set up0 up
        ip -n {u} route add 192.0.2.0/24 via 203.0.113.254
        ip -n {h} addr add 169.254.0.1/32 dev lo
        ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
        for vm in '{v1} 1 192.0.2.10' '{v3} 3 192.0.2.12'; do
          set -- $vm; ip netns add $1
          ip link add vif$2.0 netns {h} type veth peer name e0 netns $1
          ip -n $1 addr add $3/32 dev e0; ip -n $1 link set e0 up; ip -n $1 link set lo up
          ip -n $1 route add 169.254.0.1 dev e0; ip -n $1 route add default via 169.254.0.1 dev e0 onlink
          ip -n {h} link set vif$2.0 up; ip -n {h} route add $3/32 dev vif$2.0
          ip netns exec {h} sysctl -qw net.ipv4.conf.vif$2/0.proxy_arp=1
        done
        # vif2.0 and vif4.0 exist too, so the whole example applies.
        ip -n {h} link add vif2.0 type veth peer name p2; ip -n {h} link add vif4.0 type veth peer name p4"
    ));
    apply_example(&h, "hypervisor.toml");
    servers(&u, &[("203.0.113.1", 5202)]);
    let mut report = String::new();
    // web-1 is on vm-small (ceil 200mbit) under reseller-a; batch-1 is in the
    // overage pool (ceil 100mbit).
    check(
        &mut report,
        "vm-small down",
        iperf(&v1, "203.0.113.1", 5202, true),
        200.0,
    );
    check(
        &mut report,
        "vm-small up",
        iperf(&v1, "203.0.113.1", 5202, false),
        200.0,
    );
    check(
        &mut report,
        "overage down",
        iperf(&v3, "203.0.113.1", 5202, true),
        100.0,
    );
    check(
        &mut report,
        "overage up",
        iperf(&v3, "203.0.113.1", 5202, false),
        100.0,
    );
    eprintln!("{report}");
}

#[test]
fn router_example_holds_national_and_international_caps() {
    if !testkit::root("router_example_holds_national_and_international_caps") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = std::process::id();
    let (h, u, t) = (
        format!("tgs-h{id}"),
        format!("tgs-u{id}"),
        format!("tgs-t{id}"),
    );
    let _guard = Namespaces(vec![h.clone(), u.clone(), t.clone()]);
    sh(&format!(
        "set -e
        for n in {h} {u} {t}; do ip netns add $n; ip -n $n link set lo up; done
        ip link add wan0 netns {h} type veth peer name up0 netns {u}
        ip link add lan0 netns {h} type veth peer name t0 netns {t}
        ip -n {h} addr add 192.0.2.1/30 dev wan0; ip -n {u} addr add 192.0.2.2/30 dev up0
        ip -n {h} addr add 100.64.1.1/24 dev lan0; ip -n {t} addr add 100.64.1.2/24 dev t0
        ip -n {u} addr add 198.51.100.1/24 dev lo; ip -n {u} addr add 203.0.113.1/24 dev lo
        ip -n {h} link set wan0 up; ip -n {h} link set lan0 up; ip -n {u} link set up0 up; ip -n {t} link set t0 up
        ip -n {h} route add 198.51.100.0/24 via 192.0.2.2; ip -n {h} route add 203.0.113.0/24 via 192.0.2.2
        ip -n {u} route add 100.64.0.0/10 via 192.0.2.1; ip -n {t} route add default via 100.64.1.1
        ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
        # The same over IPv6: alice has 2001:db8:1::/48; 2001:db8:5100::/40 is national.
        ip -n {h} addr add 2001:db8:ffff::1/64 dev wan0 nodad; ip -n {u} addr add 2001:db8:ffff::2/64 dev up0 nodad
        ip -n {h} addr add 2001:db8:1::1/48 dev lan0 nodad; ip -n {t} addr add 2001:db8:1::2/48 dev t0 nodad
        ip -n {u} addr add 2001:db8:5100::1/64 dev lo nodad; ip -n {u} addr add 2001:db8:9999::1/64 dev lo nodad
        ip -n {h} -6 route add 2001:db8:5100::/40 via 2001:db8:ffff::2
        ip -n {h} -6 route add 2001:db8:9999::/48 via 2001:db8:ffff::2
        ip -n {u} -6 route add 2001:db8:1::/48 via 2001:db8:ffff::1; ip -n {t} -6 route add default via 2001:db8:1::1
        ip netns exec {h} sysctl -qw net.ipv6.conf.all.forwarding=1"
    ));

    apply_example(&h, "router.toml");
    servers(
        &u,
        &[
            ("198.51.100.1", 5201),
            ("203.0.113.1", 5202),
            ("2001:db8:5100::1", 5203),
            ("2001:db8:9999::1", 5204),
        ],
    );

    // alice is on plan `home`: 10mbit ceil overall, international capped at 3mbit.
    let cases = [
        ("national down", "198.51.100.1", 5201, true, 10.0),
        ("international down", "203.0.113.1", 5202, true, 3.0),
        ("national up", "198.51.100.1", 5201, false, 10.0),
        ("international up", "203.0.113.1", 5202, false, 3.0),
        // IPv6 headers are 20 bytes longer, so expect about −5.7% of payload.
        ("IPv6 national down", "2001:db8:5100::1", 5203, true, 10.0),
        (
            "IPv6 international down",
            "2001:db8:9999::1",
            5204,
            true,
            3.0,
        ),
        (
            "IPv6 international up",
            "2001:db8:9999::1",
            5204,
            false,
            3.0,
        ),
    ];
    let mut report = String::new();
    for (what, server, port, reverse, ceil) in cases {
        check(&mut report, what, iperf(&t, server, port, reverse), ceil);
    }
    // Both realms' classes of tenant 1 carried traffic, in both trees.
    let classes = sh(&format!("ip netns exec {h} tc -s class show dev tg-down"));
    assert!(classes.contains("class htb 2:e "), "{classes}");
    eprintln!("{report}");
}
