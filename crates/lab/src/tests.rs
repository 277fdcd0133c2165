//! The lab's pure parts: which tenants, which addresses, which policy, which
//! commands. Nothing here needs root; the namespace tests are in
//! `tests/lab.rs`.

use super::*;
use std::net::IpAddr;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn lab(mode: LabMode, tenants: u16) -> Lab {
    tenants::plan_lab(&LabSpec { mode, tenants }, &examples()).unwrap_or_else(|e| panic!("{e}"))
}

fn policy_of(lab: &Lab) -> policy::Policy {
    // The emitted policy names national.txt relative to itself; read it from
    // examples/, where up() copies it from.
    realms::load(&lab.policy_path, &lab.policy_toml, &examples()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn emitted_policies_load_for_every_size() {
    for mode in [LabMode::Router, LabMode::Hypervisor] {
        for n in [1, 2, 3, 4, 5, 9, MAX_TENANTS] {
            let l = lab(mode, n);
            let p = policy_of(&l);
            assert_eq!(p.tenants.len(), usize::from(n), "{mode:?} {n}");
            assert_eq!(l.tenants.len(), usize::from(n));
            let ids: Vec<u32> = l.tenants.iter().map(|t| t.id).collect();
            assert!(ids
                .iter()
                .all(|id| p.tenant(net_types::TenantId(*id)).is_some()));
        }
    }
}

#[test]
fn a_policy_without_prefix_files_loads_with_load_str() {
    let l = lab(LabMode::Hypervisor, 6);
    let loaded = policy::load_str("lab.toml", &l.policy_toml);
    assert!(loaded.policy.is_some(), "{}", loaded.render());
}

#[test]
fn sizes_out_of_range_are_refused_with_the_range() {
    for n in [0, MAX_TENANTS + 1] {
        let spec = LabSpec {
            mode: LabMode::Router,
            tenants: n,
        };
        let e = tenants::plan_lab(&spec, &examples()).unwrap_err();
        assert!(e.to_string().contains("1 to 240"), "{e}");
    }
}

#[test]
fn router_lab_uses_the_examples_tenants_verbatim() {
    let l = lab(LabMode::Router, 3);
    let names: Vec<&str> = l.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let example = std::fs::read_to_string(examples().join("router.toml")).unwrap();
    assert!(l.policy_toml.ends_with(&example), "{}", l.policy_toml);
    let alice = &l.tenants[0];
    assert_eq!(
        (alice.v4.to_string(), alice.gateway4.to_string()),
        ("100.64.1.2".into(), "100.64.1.1".into())
    );
    assert_eq!(alice.v6.to_string(), "2001:db8:1::2");
    assert_eq!(
        (l.tenants[2].v4_len, l.tenants[2].v6.to_string()),
        (25, "2001:db8:3::2".into())
    );
    assert_eq!(l.tenants[2].netns, "tg-lab-t3");
    assert_eq!(
        (l.uplink.as_str(), l.lan.as_deref()),
        ("wan0", Some("lan0"))
    );
}

#[test]
fn fewer_tenants_than_the_example_keeps_only_those() {
    let l = lab(LabMode::Hypervisor, 2);
    assert!(l.policy_toml.contains("name = \"db-1\""));
    assert!(!l.policy_toml.contains("batch-1"));
    assert!(l.policy_toml.contains("[plans.overage]"));
}

#[test]
fn further_tenants_cycle_the_examples_plans() {
    let l = lab(LabMode::Router, 5);
    let t4 = &l.tenants[3];
    assert_eq!(
        (t4.id, t4.name.as_str(), t4.plan.as_str()),
        (4, "lab-4", "home")
    );
    assert_eq!(
        (t4.v4.to_string(), t4.v6.to_string()),
        ("100.64.4.2".into(), "2001:db8:4::2".into())
    );
    assert_eq!(l.tenants[4].plan, "business");
    assert!(l
        .policy_toml
        .contains("prefixes = [\"100.64.5.0/24\", \"2001:db8:5::/48\"]"));

    let h = lab(LabMode::Hypervisor, 8);
    let plans: Vec<&str> = h.tenants[4..].iter().map(|t| t.plan.as_str()).collect();
    assert_eq!(plans, ["vm-small", "vm-large", "overage", "vm-small"]);
    let t5 = &h.tenants[4];
    assert_eq!(
        (t5.id, t5.vif.as_deref(), t5.v4.to_string()),
        (5, Some("vif5.0"), "192.0.2.14".into())
    );
    assert!(h.policy_toml.contains(
        "name = \"lab-5\"\nplan = \"vm-small\"\nparent = \"reseller-a\"\ninterface = \"vif5.0\""
    ));
    // A VM on a shared plan gets no parent: its pool decides.
    assert!(h
        .policy_toml
        .contains("name = \"lab-7\"\nplan = \"overage\"\ninterface"));
}

#[test]
fn endpoints_follow_each_examples_realms() {
    let r = lab(LabMode::Router, 1);
    let e: Vec<String> = r
        .endpoints
        .iter()
        .map(|e| format!("{} {:?} {:?}", e.realm, e.v4, e.v6))
        .collect();
    assert_eq!(
        e,
        [
            "national Some(198.51.100.1) Some(2001:db8:5100::1)",
            "international Some(203.0.113.1) Some(2001:db8:9999::1)"
        ]
    );
    let h = lab(LabMode::Hypervisor, 1);
    let e: Vec<String> = h
        .endpoints
        .iter()
        .map(|e| format!("{} {:?} {:?}", e.realm, e.v4, e.v6))
        .collect();
    assert_eq!(
        e,
        [
            "internet Some(203.0.113.1) Some(2001:db8:5100::1)",
            "datacenter Some(198.51.100.1) Some(2001:db8:ffff::1)"
        ]
    );
}

#[test]
fn expected_ceilings_are_the_policys() {
    let l = lab(LabMode::Router, 3);
    let p = policy_of(&l);
    let ceil = |i: usize, v6: bool, realm: &str, dir| {
        let t = &l.tenants[i];
        let from = if v6 {
            IpAddr::V6(t.v6)
        } else {
            IpAddr::V4(t.v4)
        };
        realms::expected_ceil_mbit(&p, t.id, from, realm, dir)
    };
    assert_eq!(ceil(0, false, "national", Direction::Down), Some(10.0));
    assert_eq!(ceil(0, true, "international", Direction::Up), Some(3.0));
    assert_eq!(ceil(2, false, "national", Direction::Down), Some(8.0));
    assert_eq!(ceil(2, false, "international", Direction::Down), Some(3.0));
    // carol has no IPv6 prefix: her IPv6 traffic is nobody's.
    assert_eq!(ceil(2, true, "national", Direction::Down), None);

    let h = lab(LabMode::Hypervisor, 4);
    let p = policy_of(&h);
    let got: Vec<Option<f64>> = h
        .tenants
        .iter()
        .map(|t| realms::expected_ceil_mbit(&p, t.id, IpAddr::V4(t.v4), "internet", Direction::Up))
        .collect();
    assert_eq!(got, [Some(200.0), Some(400.0), Some(100.0), Some(100.0)]);
}

#[test]
fn every_command_names_a_lab_namespace() {
    for mode in [LabMode::Router, LabMode::Hypervisor] {
        let l = lab(mode, 5);
        let cmds = topology::commands(&l);
        assert!(cmds.len() > 50);
        for c in &cmds {
            let ns = match c.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["ip", "netns", "add", ns] => ns,
                ["ip", "-n", ns, ..] | ["ip", "netns", "exec", ns, ..] => ns,
                _ => panic!("{c:?} does not name its namespace"),
            };
            assert!(ns.starts_with(NETNS_PREFIX), "{c:?}");
            // Links created in a lab namespace have their peers in one too.
            if let Some(i) = c.iter().position(|a| a == "netns").filter(|&i| i > 2) {
                assert!(c[i + 1].starts_with(NETNS_PREFIX), "{c:?}");
            }
        }
    }
}

#[test]
fn hypervisor_vifs_carry_the_examples_names() {
    let l = lab(LabMode::Hypervisor, 4);
    let cmds: Vec<String> = topology::commands(&l).iter().map(|c| c.join(" ")).collect();
    assert!(cmds.contains(
        &"ip -n tg-lab-host link add vif3.0 type veth peer name eth0 netns tg-lab-t3".to_string()
    ));
    assert!(cmds.contains(
        &"ip -n tg-lab-host link add eth0 type veth peer name up0 netns tg-lab-up".to_string()
    ));
    assert!(
        cmds.contains(&"ip -n tg-lab-host -6 route add 2001:db8:10::/64 dev vif1.0".to_string())
    );
}

#[test]
fn state_round_trips_through_json() {
    for mode in [LabMode::Router, LabMode::Hypervisor] {
        let l = lab(mode, 6);
        let back = state::from_json(&state::to_json(&l));
        assert_eq!(back.as_ref(), Some(&l));
    }
}
