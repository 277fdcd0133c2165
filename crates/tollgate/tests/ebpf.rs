//! The eBPF classifier (`[site] classifier = "ebpf"`) with real traffic,
//! applied by `tollgate apply` itself: the shipped examples' scenarios of
//! `shaping.rs` (router: national and international caps in both
//! directions, IPv4 and IPv6; hypervisor: VM caps), plus what only this
//! path does: a VM's upload to another VM on the same host held to its
//! ceil, a map element deleted by hand restored by one apply, and an
//! operator's own BPF filter on the same hook left alone through apply and
//! down.
//!
//! Tolerances as in `shaping.rs`: at most 5% over a ceil (TCP and timer
//! slack), at least 80% of it (HTB counts whole frames, iperf3 payload).
//! Needs root, iproute2, nftables, iperf3 and bpftool (the hand-made
//! drift). Namespaces are removed and iperf3 servers stopped even on failure.

mod lab_router;

use std::process::Command;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = Command::new("pkill")
            .args(["-f", &format!("tg-ebpf-iperf-{}", std::process::id())])
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

/// Runs tollgate in namespace `ns` on `policy` (a file), with its own state.
fn tollgate(ns: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", ns])
        .args(args)
        .arg("-c")
        .arg(dir.join("policy.toml"))
        .env("TOLLGATE_STATE_DIR", dir.join("state"))
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

/// Copies an example (and the files beside it) into a fresh folder with
/// `classifier = "ebpf"` added to its `[site]`.
fn example_dir(name: &str, tag: &str) -> std::path::PathBuf {
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let dir = std::env::temp_dir().join(format!("tg-ebpf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let text = std::fs::read_to_string(src.join(name)).unwrap();
    assert!(text.contains("[site]\n"), "{name} has a [site] table");
    let text = text.replacen("[site]\n", "[site]\nclassifier = \"ebpf\"\n", 1);
    std::fs::write(dir.join("policy.toml"), text).unwrap();
    dir
}

fn iperf(ns: &str, server: &str, port: u16, reverse: bool) -> f64 {
    let r = if reverse { "-R" } else { "" };
    let out = sh(&format!(
        "ip netns exec {ns} timeout 30 iperf3 -c {server} -p {port} {r} -t 4 -J"
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 -J prints JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("a received rate")
        / 1e6
}

fn servers(ns: &str, addrs: &[(&str, u16)]) {
    let id = std::process::id();
    for (addr, port) in addrs {
        sh(&format!(
            "ip netns exec {ns} bash -c 'exec -a tg-ebpf-iperf-{id} iperf3 -s -D -B {addr} -p {port}'"
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

/// The id of the eBPF program tollgate's filter runs on `dev`'s `hook`.
fn program_id(ns: &str, dev: &str, hook: &str) -> u64 {
    let out = sh(&format!(
        "ip netns exec {ns} tc filter show dev {dev} {hook}"
    ));
    let id = out
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)
        .unwrap_or_else(|| panic!("no eBPF program on {dev} {hook}:\n{out}"));
    id.parse().unwrap()
}

/// The id of map `name` used by program `prog`.
fn map_id(prog: u64, name: &str) -> u64 {
    let p: serde_json::Value =
        serde_json::from_str(&sh(&format!("bpftool -j prog show id {prog}"))).unwrap();
    for id in p["map_ids"].as_array().expect("map_ids") {
        let m: serde_json::Value =
            serde_json::from_str(&sh(&format!("bpftool -j map show id {id}"))).unwrap();
        if m["name"] == name {
            return id.as_u64().unwrap();
        }
    }
    panic!("program {prog} uses no map {name}: {p}");
}

#[test]
fn ebpf_router_example_holds_caps_and_repairs_a_deleted_element() {
    if !testkit::root("ebpf_router_example_holds_caps_and_repairs_a_deleted_element") {
        return;
    }
    testkit::need("bpftool", "bpftool");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = std::process::id();
    let (h, u, t) = (
        format!("tgeb-h{id}"),
        format!("tgeb-u{id}"),
        format!("tgeb-t{id}"),
    );
    let _guard = Namespaces(vec![h.clone(), u.clone(), t.clone()]);
    // shaping.rs's router, IPv4 and IPv6.
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
        ip -n {h} addr add 2001:db8:ffff::1/64 dev wan0 nodad; ip -n {u} addr add 2001:db8:ffff::2/64 dev up0 nodad
        ip -n {h} addr add 2001:db8:1::1/48 dev lan0 nodad; ip -n {t} addr add 2001:db8:1::2/48 dev t0 nodad
        ip -n {u} addr add 2001:db8:5100::1/64 dev lo nodad; ip -n {u} addr add 2001:db8:9999::1/64 dev lo nodad
        ip -n {h} -6 route add 2001:db8:5100::/40 via 2001:db8:ffff::2
        ip -n {h} -6 route add 2001:db8:9999::/48 via 2001:db8:ffff::2
        ip -n {u} -6 route add 2001:db8:1::/48 via 2001:db8:ffff::1; ip -n {t} -6 route add default via 2001:db8:1::1
        ip netns exec {h} sysctl -qw net.ipv6.conf.all.forwarding=1
        # The operator's own BPF filter on the hook tollgate uses (returns 0: no match).
        ip netns exec {h} tc qdisc add dev lan0 clsact
        ip netns exec {h} tc filter add dev lan0 egress prio 100 handle 1 bpf bytecode '1,6 0 0 0'"
    ));
    let dir = example_dir("router.toml", "router");
    tollgate(&h, &dir, &["apply"]);
    // No nftables chain classifies: the programs do.
    let nft = sh(&format!("ip netns exec {h} nft list ruleset"));
    assert!(!nft.contains("chain classify_"), "{nft}");
    assert!(
        tollgate(&h, &dir, &["plan"]).contains("nothing to do"),
        "a second round finds the eBPF maps as applied"
    );
    servers(
        &u,
        &[
            ("198.51.100.1", 5201),
            ("203.0.113.1", 5202),
            ("2001:db8:5100::1", 5203),
            ("2001:db8:9999::1", 5204),
        ],
    );
    let cases = [
        ("national down", "198.51.100.1", 5201, true, 10.0),
        ("international down", "203.0.113.1", 5202, true, 3.0),
        ("national up", "198.51.100.1", 5201, false, 10.0),
        ("international up", "203.0.113.1", 5202, false, 3.0),
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
    // Bands: the example's pure ACKs go to the interactive band and bulk
    // data to the normal one, in both trees (as on the nftables path).
    let classes = sh(&format!("ip netns exec {h} tc -s class show dev tg-down"));
    assert!(classes.contains("class htb 2:e "), "{classes}");
    eprintln!("{report}");

    // Drift: delete alice's national class element by hand; one apply
    // writes it back, and the next round has nothing to do.
    let prog = program_id(&h, "lan0", "egress");
    let classes_map = map_id(prog, "tg_classes");
    let dump: serde_json::Value =
        serde_json::from_str(&sh(&format!("bpftool -j map dump id {classes_map}"))).unwrap();
    let entries = dump.as_array().expect("a list of entries");
    assert!(!entries.is_empty(), "tg_classes is empty");
    let key: Vec<String> = entries[0]["key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    sh(&format!(
        "bpftool map delete id {classes_map} key hex {}",
        key.iter()
            .map(|b| b.trim_start_matches("0x"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let plan = tollgate(&h, &dir, &["plan"]);
    assert!(plan.contains("tg_classes"), "the deletion is seen:\n{plan}");
    tollgate(&h, &dir, &["apply"]);
    let after: serde_json::Value =
        serde_json::from_str(&sh(&format!("bpftool -j map dump id {classes_map}"))).unwrap();
    assert_eq!(after.as_array().unwrap().len(), entries.len(), "{after}");
    assert!(tollgate(&h, &dir, &["plan"]).contains("nothing to do"));

    // The operator's filter is still there after apply and down, and
    // tollgate's are gone after down.
    let filters = sh(&format!("ip netns exec {h} tc filter show dev lan0 egress"));
    assert!(filters.contains("pref 100 bpf"), "{filters}");
    tollgate(&h, &dir, &["down"]);
    let filters = sh(&format!("ip netns exec {h} tc filter show dev lan0 egress"));
    assert!(filters.contains("pref 100 bpf"), "{filters}");
    assert!(!filters.contains("tg_down"), "{filters}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ebpf_hypervisor_shapes_vm_to_vm_upload_on_one_host() {
    if !testkit::root("ebpf_hypervisor_shapes_vm_to_vm_upload_on_one_host") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = std::process::id();
    let (h, u) = (format!("tgeb-H{id}"), format!("tgeb-U{id}"));
    let (v1, v3) = (format!("tgeb-v1{id}"), format!("tgeb-v3{id}"));
    let _guard = Namespaces(vec![h.clone(), u.clone(), v1.clone(), v3.clone()]);
    // shaping.rs's routed hypervisor: each VM a /32 behind its vif.
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
        ip -n {h} link add vif2.0 type veth peer name p2; ip -n {h} link add vif4.0 type veth peer name p4"
    ));
    let dir = example_dir("hypervisor.toml", "hv");
    tollgate(&h, &dir, &["apply"]);
    assert!(tollgate(&h, &dir, &["plan"]).contains("nothing to do"));
    servers(&u, &[("203.0.113.1", 5202)]);
    servers(&v1, &[("192.0.2.10", 5205)]);
    let mut report = String::new();
    // web-1 (vif1.0) is on vm-small, ceil 200mbit; batch-1 (vif3.0) is in
    // the overage pool, ceil 100mbit.
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
        "overage up",
        iperf(&v3, "203.0.113.1", 5202, false),
        100.0,
    );
    // batch-1 → web-1 on the same host: never crosses the uplink, so only
    // the program on vif3.0's ingress can hold it to batch-1's upload ceil
    // (web-1's download allows 200).
    check(
        &mut report,
        "VM-to-VM up",
        iperf(&v3, "192.0.2.10", 5205, false),
        100.0,
    );
    // ... and the upload classes on tg-up carried it.
    let up = sh(&format!("ip netns exec {h} tc -s class show dev tg-up"));
    // Every VM goes offline, then one comes back: the classifier found in
    // the kernel then runs only on the uplink and lacks the VM programs
    // and the vif map, so a fresh one is loaded and filled, and the VM is
    // shaped again.
    for vif in ["vif1.0", "vif2.0", "vif3.0", "vif4.0"] {
        tollgate(&h, &dir, &["hook", "vif", "offline", vif]);
    }
    let left = sh(&format!(
        "ip netns exec {h} tc filter show dev vif1.0 egress"
    ));
    assert!(!left.contains("tg_down_vif"), "{left}");
    tollgate(&h, &dir, &["hook", "vif", "online", "vif1.0"]);
    // Shaped at once (its class elements came over from the old maps)...
    check(
        &mut report,
        "vm-small down, back online",
        iperf(&v1, "203.0.113.1", 5202, true),
        200.0,
    );
    check(
        &mut report,
        "vm-small up, back online",
        iperf(&v1, "203.0.113.1", 5202, false),
        200.0,
    );
    // ... and the next full round writes what the old object could not
    // hand over (the offline VMs' vif elements: no uplink program used
    // that map), after which nothing is left to do.
    tollgate(&h, &dir, &["apply"]);
    let plan = tollgate(&h, &dir, &["plan"]);
    assert!(plan.contains("nothing to do"), "{plan}");
    eprintln!("{report}");
    tollgate(&h, &dir, &["down"]);
    let left = sh(&format!(
        "ip netns exec {h} tc filter show dev vif3.0 ingress"
    ));
    assert!(!left.contains("tg_up_vm"), "{left}");
    assert!(up.contains("Sent"), "{up}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// traffic.rs's thousand moves on the eBPF path: each move is class work
/// plus `tg_classes` updates, made before the old classes break; neither
/// the untouched stream nor the moved one loses a datagram.
#[test]
fn ebpf_a_thousand_moves_lose_nothing() {
    if !testkit::root("ebpf_a_thousand_moves_lose_nothing") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = lab_router::Router::new("em", 2);
    let tenants: String = [1, 2]
        .iter()
        .map(|k| {
            format!(
                "\n[[tenants]]\nid = {k}\nname = \"t{k}\"\nplan = \"small\"\nparent = \"p1\"\nprefixes = [\"100.64.{k}.0/24\"]\n"
            )
        })
        .collect();
    let policy = format!(
        r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "100mbit", up = "100mbit" }}
classifier = "ebpf"

[[parents]]
name = "p1"
id = 1
down = {{ rate = "20mbit", ceil = "40mbit" }}
up = {{ rate = "20mbit", ceil = "40mbit" }}

[[parents]]
name = "p2"
id = 2
down = {{ rate = "20mbit", ceil = "40mbit" }}
up = {{ rate = "20mbit", ceil = "40mbit" }}

[plans.small]
down = {{ rate = "6mbit", ceil = "10mbit" }}
up = {{ rate = "6mbit", ceil = "10mbit" }}

[plans.big]
down = {{ rate = "8mbit", ceil = "20mbit" }}
up = {{ rate = "8mbit", ceil = "20mbit" }}

[plans.overage]
shared = true
id = 100
down = {{ rate = "6mbit", ceil = "10mbit" }}
up = {{ rate = "6mbit", ceil = "10mbit" }}
{tenants}"#
    );
    let file = r.apply(&policy);
    let streams = r.udp_streams(&[(1, "4M"), (2, "3M")]);
    let cycle: [(&str, Option<&str>); 3] = [
        ("big", Some("p2")),
        ("overage", None),
        ("small", Some("p1")),
    ];
    let started = std::time::Instant::now();
    let mut moves = 0;
    while moves < 1000 && started.elapsed() < std::time::Duration::from_secs(300) {
        let (plan, parent) = cycle[moves % cycle.len()];
        let mut args = vec!["tenant", "move", "t2", "--plan", plan, "-c", &file];
        if let Some(p) = parent {
            args.extend(["--parent", p]);
        }
        r.tollgate(&args);
        moves += 1;
    }
    let elapsed = started.elapsed();
    let result = streams.finish();
    let report = format!(
        "{moves} moves of t2 in {:.1} s ({:.1} ms each, whole command)\n{}{}\n",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / moves.max(1) as f64,
        result.describe(),
        r.drops()
    );
    eprintln!("{report}");
    assert_eq!(moves, 1000, "{report}");
    let untouched = &result.streams[0];
    assert_eq!(
        untouched.lost, 0,
        "the untouched tenant lost packets\n{report}"
    );
    assert!(untouched.intervals >= 3, "too short a stream\n{report}");
    assert!(
        untouched.min_interval_mbit >= 4.0 * 0.9,
        "the untouched stream dipped\n{report}"
    );
    let moved = &result.streams[1];
    assert!(
        moved.total > 0,
        "the moved tenant's stream carried nothing\n{report}"
    );
    assert_eq!(moved.lost, 0, "the moved tenant lost packets\n{report}");
    let plan = r.tollgate(&["plan", "-c", &file]);
    assert!(plan.contains("nothing to do"), "{plan}");
}
