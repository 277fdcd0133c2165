//! The dataplane against a real kernel, through the `tollgate` binary:
//! apply, converge, repair drift, recover from a failed change, move a
//! tenant, hook a vif, and tear down, each in its own network namespace.
//!
//! Needs root, iproute2 and nftables. Namespaces are removed even when a
//! test fails.

use std::process::{Command, Output};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A namespace, and the state directory the commands run in it use (so
/// that `hook vif offline` never writes the host's /var/lib/tollgate).
struct Netns(String, std::path::PathBuf);

impl Netns {
    fn new(tag: &str, links: &[(&str, &str)]) -> Netns {
        let name = format!("tg-dp-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&format!("ip netns add {name}"));
        let state = std::env::temp_dir().join(format!("{name}-state"));
        let _ = std::fs::remove_dir_all(&state);
        let ns = Netns(name, state);
        for (a, b) in links {
            sh(&format!(
                "ip -n {0} link add {a} type veth peer name {b} && ip -n {0} link set {a} up && ip -n {0} link set {b} up",
                ns.0
            ));
        }
        ns
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--netns", &self.0];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(&all)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .env("TOLLGATE_STATE_DIR", &self.1)
            .output()
            .expect("run tollgate")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "tollgate {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn sh(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} {cmd}", self.0))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn sh(script: &str) -> String {
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

const ROUTER: &str = "examples/router.toml";

fn converged(ns: &Netns, policy: &str) {
    let plan = ns.ok(&["plan", "-c", policy]);
    assert!(plan.contains("nothing to do"), "not converged:\n{plan}");
}

#[test]
fn apply_converges_and_down_removes_only_what_tollgate_made() {
    if !testkit::root("apply_converges_and_down_removes_only_what_tollgate_made") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("conv", &[("wan0", "wanp"), ("lan0", "lanp")]);
    // Someone else's shaping on the peer, which tollgate must not touch.
    ns.sh("tc qdisc add dev wanp root handle 9: htb default 1");
    ns.sh("nft add table inet theirs");
    let out = ns.ok(&["apply", "-c", ROUTER]);
    assert!(out.contains("applied"), "{out}");
    converged(&ns, ROUTER);
    // A second apply changes nothing.
    assert!(ns
        .ok(&["apply", "-c", ROUTER])
        .contains("applied 0 changes"));
    let status = ns.ok(&["status", "--json", "--interval", "100ms", "-c", ROUTER]);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["pending_changes"], 0);
    assert!(v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["present"] == true));

    ns.ok(&["down"]);
    let links = ns.sh("ip -o link show");
    assert!(!links.contains("tg-"), "{links}");
    assert!(ns.sh("tc qdisc show dev wanp").contains("htb 9:"));
    assert!(!ns.sh("tc qdisc show dev lan0").contains("clsact"));
    let rules = ns.sh("nft list tables");
    assert!(
        rules.contains("inet theirs") && !rules.contains("tollgate"),
        "{rules}"
    );
}

/// Issue 12, item 21, through the command an operator types: the
/// operator's clsact (made before tollgate) and a filter the operator put
/// on tollgate's own clsact afterwards both survive `tollgate down`;
/// tollgate's filters go. (The library-level cases are in
/// `linux-dataplane/tests/ownership.rs`.)
#[test]
fn down_leaves_the_operators_clsact_and_filters() {
    if !testkit::root("down_leaves_the_operators_clsact_and_filters") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("own", &[("wan0", "wanp"), ("lan0", "lanp")]);
    let theirs = "protocol all bpf bytecode '1,6 0 0 0'";
    ns.sh("tc qdisc add dev wan0 clsact");
    ns.sh(&format!("tc filter add dev wan0 ingress prio 100 {theirs}"));
    ns.ok(&["apply", "-c", ROUTER]);
    converged(&ns, ROUTER);
    let ours = |dev: &str| ns.sh(&format!("tc filter show dev {dev} egress"));
    assert!(ours("wan0").contains("pref 49152"), "{}", ours("wan0"));
    assert!(ours("lan0").contains("pref 49152"), "{}", ours("lan0"));
    // Now the operator uses the clsact tollgate created on lan0.
    ns.sh(&format!("tc filter add dev lan0 ingress prio 100 {theirs}"));
    converged(&ns, ROUTER);

    ns.ok(&["down"]);
    for dev in ["wan0", "lan0"] {
        assert!(
            ns.sh(&format!("tc qdisc show dev {dev}"))
                .contains("clsact"),
            "the clsact on {dev} was removed although the operator uses it"
        );
        let kept = ns.sh(&format!("tc filter show dev {dev} ingress"));
        assert!(
            kept.contains("pref 100 bpf"),
            "the operator's filter on {dev} is gone:\n{kept}"
        );
        assert!(
            !ours(dev).contains("pref 49152"),
            "tollgate's filter on {dev} was left behind:\n{}",
            ours(dev)
        );
    }
}

#[test]
fn drift_is_repaired_by_the_next_round() {
    if !testkit::root("drift_is_repaired_by_the_next_round") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("drift", &[("wan0", "wanp"), ("lan0", "lanp")]);
    ns.ok(&["apply", "-c", ROUTER]);
    // A class, a rule, map elements and a redirect filter, deleted by hand.
    ns.sh("tc class del dev tg-down classid 2:25");
    let handle = ns
        .sh("nft -a list chain netdev tollgate classify_up")
        .lines()
        .filter_map(|l| l.split("# handle ").nth(1))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    ns.sh(&format!(
        "nft delete rule netdev tollgate classify_up handle {handle}"
    ));
    ns.sh("nft delete element netdev tollgate tenants4 '{ 100.64.1.0/24 }'");
    ns.sh("nft delete element netdev tollgate tenant_classes '{ 2 . 0:1 }'");
    ns.sh("tc filter del dev lan0 egress prio 49152");
    let plan = ns.ok(&["plan", "-c", ROUTER]);
    for what in [
        "class 2:25",
        "chain classify_up",
        "tenants4[100.64.1.0/24]",
        "tenant_classes[2 . 0:1]",
        "filter Egress",
    ] {
        assert!(plan.contains(what), "{what} missing from:\n{plan}");
    }
    ns.ok(&["apply", "-c", ROUTER]);
    converged(&ns, ROUTER);
}

#[test]
fn a_failed_change_is_retried_and_the_next_round_converges() {
    if !testkit::root("a_failed_change_is_retried_and_the_next_round_converges") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("fail", &[("wan0", "wanp"), ("lan0", "lanp")]);
    let mut args = vec!["--netns", ns.0.as_str(), "apply", "-c", ROUTER];
    let failed = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(&args)
        .env("TOLLGATE_FAIL_CHANGE", "20")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    assert_eq!(
        failed.status.code(),
        Some(3),
        "a failed change makes the round partial (exit 3)"
    );
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(
        text.contains("failed:") && text.contains("retries"),
        "{text}"
    );
    let pending = ns.ok(&["plan", "-c", ROUTER]);
    assert!(!pending.contains("nothing to do"), "{pending}");
    args.truncate(5);
    ns.ok(&args[2..]);
    converged(&ns, ROUTER);
}

#[test]
fn a_move_edits_the_policy_and_touches_only_that_tenant() {
    if !testkit::root("a_move_edits_the_policy_and_touches_only_that_tenant") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("move", &[("wan0", "wanp"), ("lan0", "lanp")]);
    let dir = std::env::temp_dir().join(format!("tg-move-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    for f in ["router.toml", "national.txt"] {
        std::fs::copy(format!("{root}/{f}"), dir.join(f)).unwrap();
    }
    let policy = dir.join("router.toml");
    let p = policy.to_str().unwrap();
    ns.ok(&["apply", "-c", p]);
    let before = std::fs::read_to_string(&policy).unwrap();
    let bob_before = ns.sh("tc class show dev tg-down");
    let out = ns.ok(&["tenant", "move", "alice", "--plan", "business", "-c", p]);
    assert!(out.contains("moved `alice`"), "{out}");
    let after = std::fs::read_to_string(&policy).unwrap();
    // Only alice's plan line changed; comments and layout are kept.
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.contains("plan = \"business\""));
    converged(&ns, p);
    // Every class that is not alice's is exactly as it was.
    let alice = ns.ok(&["explain", "alice", "--json", "-c", p]);
    let v: serde_json::Value = serde_json::from_str(&alice).unwrap();
    let hers: Vec<String> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            o["object"]
                .as_str()?
                .strip_prefix("class ")
                .map(|c| c.split(' ').next().unwrap().to_owned())
        })
        .collect();
    let others = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| {
                !hers
                    .iter()
                    .any(|id| l.starts_with(&format!("class htb {id} ")))
            })
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    let before_others = others(&bob_before);
    let after_others = others(&ns.sh("tc class show dev tg-down"));
    assert!(before_others.len() > 10);
    assert_eq!(before_others, after_others);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_vif_hook_shapes_one_vm_when_its_interface_appears() {
    if !testkit::root("a_vif_hook_shapes_one_vm_when_its_interface_appears") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let policy = "examples/hypervisor.toml";
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hypervisor.toml"
    ))
    .unwrap();
    let uplink = text
        .lines()
        .find_map(|l| l.strip_prefix("uplink = \""))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .to_string();
    let vifs: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("interface = \""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect();
    assert!(vifs.len() >= 2);
    let ns = Netns::new("hook", &[(&uplink, "upp")]);
    let veth = |vif: &str, peer: &str| {
        ns.sh(&format!("ip link add {vif} type veth peer name {peer}"));
        ns.sh(&format!("ip link set {vif} up"));
        ns.sh(&format!("ip link set {peer} up"));
    };
    veth(&vifs[0], "vp0");
    ns.ok(&["apply", "-c", policy]);
    // The second VM starts: its vif appears and the hook shapes it.
    veth(&vifs[1], "vp1");
    assert!(!ns
        .sh(&format!("tc filter show dev {} egress", vifs[1]))
        .contains("bpf"));
    let out = ns.ok(&["hook", "vif", "online", &vifs[1], "-c", policy]);
    assert!(out.contains("shaped"), "{out}");
    assert!(ns
        .sh(&format!("tc filter show dev {} egress", vifs[1]))
        .contains("bpf"));
    converged(&ns, policy);
    // It stops: the hook unhooks it, then the interface goes.
    let out = ns.ok(&["hook", "vif", "offline", &vifs[1], "-c", policy]);
    assert!(out.contains("unhooked"), "{out}");
    assert!(!ns
        .sh("nft list chains")
        .contains(&format!("down_{}", vifs[1])));
    assert!(ns
        .sh("nft list chains")
        .contains(&format!("down_{}", vifs[0])));
    // Issue 12, item 23: the interface still exists, and offline means
    // offline until `online` (or until it is recreated): no warning that it
    // is absent, `apply` and `plan` agree and leave it unhooked, and
    // `status` says so.
    assert!(!out.contains("absent"), "{out}");
    let out = ns.ok(&["apply", "-c", policy]);
    assert!(!out.contains("absent"), "{out}");
    assert!(!ns
        .sh(&format!("tc filter show dev {} egress", vifs[1]))
        .contains("bpf"));
    assert!(!ns
        .sh("nft list chains")
        .contains(&format!("down_{}", vifs[1])));
    converged(&ns, policy);
    let out = ns.ok(&["status", "-c", policy]);
    assert!(
        out.contains(&format!("interface {} is offline", vifs[1])),
        "{out}"
    );
    // Online again: shaped again.
    ns.ok(&["hook", "vif", "online", &vifs[1], "-c", policy]);
    assert!(ns
        .sh(&format!("tc filter show dev {} egress", vifs[1]))
        .contains("bpf"));
    converged(&ns, policy);
}

/// Issue 12, item 25, in a kernel: broadcast and multicast that a bridge
/// floods out of every VM's vif are not billed to those VMs unless the
/// site says so. VM 2 sends IPv4 broadcast, IPv4 multicast and IPv6
/// all-nodes pings; the bridge floods them out of VM 1's vif, where
/// tollgate redirects them to the download tree. VM 1 answers nothing (no
/// addresses), so whatever lands in its classes is flooded traffic.
#[test]
fn flooded_broadcast_and_multicast_are_billed_only_when_the_site_says() {
    if !testkit::root("flooded_broadcast_and_multicast_are_billed_only_when_the_site_says") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let text = std::fs::read_to_string(format!("{repo}/examples/hypervisor.toml")).unwrap();
    assert!(
        text.contains("uplink = \"eth0\"") && text.contains("interface = \"vif1.0\""),
        "the test assumes the hypervisor example's eth0 and vif1.0"
    );
    let billed = std::env::temp_dir().join(format!("tg-dp-bcast-{}.toml", std::process::id()));
    std::fs::write(
        &billed,
        text.replacen(
            "[site]\n",
            "[site]\nbill_broadcast = true\nbill_multicast = true\n",
            1,
        ),
    )
    .unwrap();
    let billed_policy = billed.to_str().unwrap().to_string();

    let ns = Netns::new("bcast", &[("eth0", "upp")]);
    // `sh` runs one command in the namespace: no `&&` chains.
    ns.sh("ip link add br0 type bridge");
    ns.sh("ip link set br0 up");
    for (vif, vm) in [("vif1.0", "vp1"), ("vif2.0", "vp2")] {
        ns.sh(&format!("ip link add {vif} type veth peer name {vm}"));
        ns.sh(&format!("ip link set {vif} master br0"));
        ns.sh(&format!("ip link set {vif} up"));
    }
    // VM 1 and the bridge stay silent: no IPv6 on them, no IPv4 address.
    for dev in ["vp1", "br0", "vif1.0", "vif2.0"] {
        // The slash form: a vif's name has a dot.
        ns.sh(&format!("sysctl -qw net/ipv6/conf/{dev}/disable_ipv6=1"));
    }
    ns.sh("ip link set vp1 up");
    ns.sh("ip link set vp2 up");
    ns.sh("ip addr add 192.0.2.11/24 dev vp2");
    ns.sh("ip addr add 2001:db8:11::11/64 dev vp2 nodad");

    let flood = |ns: &Netns| {
        // Replies never come, so each ping ends by count within a second.
        for cmd in [
            "ping -b -n -q -c 20 -i 0.01 -w 1 -I vp2 255.255.255.255",
            "ping -n -q -c 20 -i 0.01 -w 1 -I vp2 224.0.0.1",
            "ping -6 -n -q -c 20 -i 0.01 -w 1 -I vp2 ff02::1",
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &ns.0, "bash", "-c", cmd])
                .output();
        }
    };
    let vm1_bytes = |ns: &Netns, policy: &str| -> u64 {
        let out = ns.ok(&["status", "--json", "--interval", "100ms", "-c", policy]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["tenant"] == 1 && c["direction"] == "down" && c["realm"].is_null())
            .map(|c| c["bytes"].as_u64().unwrap())
            .sum()
    };
    let redirected = |ns: &Netns| -> u64 {
        let f = ns.sh("tc -s filter show dev vif1.0 egress");
        f.lines()
            .filter_map(|l| l.trim().strip_prefix("Sent "))
            .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
            .sum()
    };

    // The default: flooded, redirected, and billed to nobody.
    ns.ok(&["apply", "-c", "examples/hypervisor.toml"]);
    flood(&ns);
    let seen = redirected(&ns);
    assert!(
        seen >= 3 * 20 * 80,
        "the bridge did not flood the pings out of vif1.0 ({seen} bytes redirected)"
    );
    assert_eq!(
        vm1_bytes(&ns, "examples/hypervisor.toml"),
        0,
        "flooded broadcast or multicast was billed to VM 1"
    );

    // The site bills both: the same pings land in VM 1's classes.
    ns.ok(&["apply", "-c", &billed_policy]);
    flood(&ns);
    let billed_bytes = vm1_bytes(&ns, &billed_policy);
    let _ = std::fs::remove_file(&billed);
    assert!(
        billed_bytes >= 3 * 20 * 80,
        "with bill_broadcast and bill_multicast the flood should be VM 1's ({billed_bytes} bytes)"
    );
}

#[test]
fn a_missing_interface_changes_nothing_and_names_it() {
    if !testkit::root("a_missing_interface_changes_nothing_and_names_it") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new("missing", &[("wan0", "wanp")]);
    let o = ns.run(&["apply", "-c", ROUTER]);
    // The policy does not fit this host: invalid input, exit 1.
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lan0") && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(!ns.sh("ip -o link show").contains("tg-"));
    assert!(!ns.sh("nft list tables").contains("tollgate"));
}
