//! `[guard] unused = "drop"` in network namespaces, through `tollgate
//! apply`: traffic towards an address of the guard's networks that no
//! tenant holds is dropped before the LAN, a tenant's address answers.
//!
//! ```text
//! attacker ──veth── router ──veth── victim
//! 198.51.100.2  wan0 198.51.100.1 | lan0 203.0.113.1  203.0.113.10 (tenant)
//!                                                      203.0.113.200 (no tenant)
//! ```
//!
//! The tenant holds 203.0.113.0/25; the guard's networks are the whole
//! /24. Before the policy is applied both addresses answer a ping (so
//! the drop is tollgate's); after, only the tenant's. Then a tenant is
//! added for 203.0.113.200: the plan changes the tenants map, not the
//! hook chain, and the address answers; with `unused = "off"` and no
//! tenant it answers too. An operator's own nftables table
//! is there throughout and after `tollgate down`.
//!
//! Needs root and iproute2. The namespaces are deleted even if the test
//! fails (`Netns` on drop); every ping is bounded (`-c`, `-W`).

use std::path::Path;
use std::process::{Command, Output};

use testkit::{sh, Netns};

const TENANT: &str = "203.0.113.10";
const UNUSED: &str = "203.0.113.200";

fn policy(extra: &str) -> String {
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}

[plans.home]
down = {{ rate = "100mbit", ceil = "1gbit" }}
up = {{ rate = "100mbit", ceil = "1gbit" }}

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["203.0.113.0/25"]
{extra}
[guard]
networks = ["203.0.113.0/24"]
unused = "drop"

[guard.thresholds]
pps_in = 2000

[[guard.ladder]]
rung = "blackhole"
hold = "60s"
"#
    )
}

fn tollgate(rtr: &Netns, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &rtr.0, "--state-dir"])
        .arg(dir.join("state"))
        .args(args)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_STATE_DIR")
        .output()
        .expect("run tollgate")
}

fn ok(rtr: &Netns, dir: &Path, args: &[&str]) -> String {
    let o = tollgate(rtr, dir, args);
    assert!(
        o.status.success(),
        "tollgate {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether `addr` answers one of two pings from the attacker (1 s each).
fn answers(atk: &Netns, addr: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", &atk.0, "ping", "-c", "2", "-W", "1", "-q", addr,
        ])
        .output()
        .expect("ping")
        .status
        .success()
}

#[test]
fn an_unused_address_is_dropped_and_a_tenants_answers() {
    if !testkit::root("guard_unused::an_unused_address_is_dropped") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("policy.toml");
    let p = file.to_str().unwrap();
    std::fs::write(&file, policy("")).unwrap();
    let atk = Netns::new("attacks-a");
    let rtr = Netns::new("attacks-r");
    let vic = Netns::new("attacks-v");
    sh(&format!(
        "set -e
ip link add atk0 netns {a} type veth peer name wan0 netns {r}
ip link add lan0 netns {r} type veth peer name vic0 netns {v}
ip -n {a} addr add 198.51.100.2/24 dev atk0; ip -n {a} link set atk0 up
ip -n {r} addr add 198.51.100.1/24 dev wan0; ip -n {r} link set wan0 up
ip -n {r} addr add 203.0.113.1/24 dev lan0; ip -n {r} link set lan0 up
ip -n {v} addr add {TENANT}/24 dev vic0; ip -n {v} addr add {UNUSED}/24 dev vic0
ip -n {v} link set vic0 up
ip -n {a} route add default via 198.51.100.1
ip -n {v} route add default via 203.0.113.1
ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1
ip netns exec {r} nft add table inet operator
ip netns exec {r} nft add chain inet operator input '{{ type filter hook input priority 0; }}'",
        a = atk.0,
        r = rtr.0,
        v = vic.0,
    ));
    // Before tollgate: both answer (so a drop later is tollgate's).
    assert!(answers(&atk, TENANT) && answers(&atk, UNUSED));

    let out = ok(&rtr, dir, &["apply", "-c", p]);
    assert!(out.contains("applied"), "{out}");
    assert!(answers(&atk, TENANT), "the tenant's address must answer");
    assert!(!answers(&atk, UNUSED), "the unused address must be dropped");
    let chain = sh(&format!(
        "ip netns exec {} nft list chain netdev tollgate down_lan0",
        rtr.0
    ));
    assert!(
        chain.contains("203.0.113.0/24") && chain.contains("drop"),
        "{chain}"
    );
    // Converged: a second apply changes nothing.
    assert!(
        ok(&rtr, dir, &["apply", "-c", p]).contains("applied 0 changes"),
        "not converged"
    );

    // A tenant for the address: the plan changes the tenants' elements
    // and classes, not the hook chain with the rule; then it answers.
    std::fs::write(
        &file,
        policy(&format!(
            "\n[[tenants]]\nid = 2\nname = \"late\"\nplan = \"home\"\nprefixes = [\"{UNUSED}/32\"]\n"
        )),
    )
    .unwrap();
    let plan = ok(&rtr, dir, &["plan", "-c", p]);
    assert!(!plan.contains("nothing to do"), "{plan}");
    assert!(
        !plan.contains("down_lan0"),
        "the hook chain is rewritten:\n{plan}"
    );
    ok(&rtr, dir, &["apply", "-c", p]);
    assert!(answers(&atk, UNUSED), "a tenant's address now");
    assert!(answers(&atk, TENANT));

    // Without the tenant and with `unused = "off"`, the address is
    // forwarded like any other: the drop was the key's.
    std::fs::write(
        &file,
        policy("").replace("unused = \"drop\"", "unused = \"off\""),
    )
    .unwrap();
    ok(&rtr, dir, &["apply", "-c", p]);
    assert!(answers(&atk, UNUSED), "forwarded with unused = \"off\"");

    // The operator's table survived the applies, and survives down.
    ok(&rtr, dir, &["down"]);
    let tables = sh(&format!("ip netns exec {} nft list tables", rtr.0));
    assert!(
        tables.contains("inet operator") && !tables.contains("tollgate"),
        "{tables}"
    );
}
