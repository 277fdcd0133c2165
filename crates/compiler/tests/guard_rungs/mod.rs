//! The guard's prepared rungs (issue 15): what the compiler adds for a
//! `[guard]` ladder with `throttle` and `drop` rungs, and that diff
//! leaves the guard's set elements alone.

use compiler::{compile, Compiled, HostFacts};
use net_types::{ClassId, Rate};
use plan::{diff, Change, MapKey, MapKind, MapValue};
use std::path::Path;

fn load(extra: &str) -> policy::Policy {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let text = std::fs::read_to_string(dir.join("router.toml")).unwrap() + extra;
    let loaded = policy::load("router.toml", &text, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    });
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.policy.unwrap()
}

fn compiled(p: &policy::Policy) -> Compiled {
    let facts = HostFacts {
        interfaces: None,
        live: Default::default(),
        route_realms: Vec::new(),
        bridges: None,
        offline: Default::default(),
        foreign_roots: Default::default(),
    };
    compile(p, &facts).unwrap_or_else(|e| panic!("{e:#?}"))
}

const GUARD: &str = r#"
[guard]
networks = ["100.64.0.0/16", "2001:db8::/32"]

[guard.capture]
interfaces = ["eth0"]

[guard.thresholds]
pps_in = 20000

[[guard.group]]
name = "small"
prefixes = ["100.64.2.0/24"]
inherit = "global"

[[guard.group.ladder]]
rung = "throttle"
hold = "1m"
rate = "1mbit"

[[guard.ladder]]
rung = "throttle"
hold = "1m"
rate = "5mbit"

[[guard.ladder]]
rung = "drop"
after = "10s"
hold = "1m"
match = "victim"
"#;

const SIGNATURE: &str = r#"
[[guard.ladder]]
rung = "blackhole"
after = "10s"
hold = "1m"

[[guard.group]]
name = "sig"
prefixes = ["100.64.1.0/24"]
inherit = "global"

[[guard.group.ladder]]
rung = "drop"
hold = "1m"
match = "signature"
"#;

fn mbit(n: u64) -> Rate {
    Rate::from_bps(n * 1_000_000).unwrap()
}

#[test]
fn without_the_rungs_nothing_is_prepared() {
    let c = compiled(&load(""));
    assert!(c.plan.maps.keys().all(|m| !m.starts_with("guard_")));
    assert!(c
        .plan
        .classes
        .keys()
        .all(|k| k.id.major != 1 || k.id.minor < 0xfff0 || k.id.minor == 0xffff));
    let nft = plan::render::plan_nft(&c.plan);
    assert!(!nft.contains("guard_") && !nft.contains("\tset "), "{nft}");
}

#[test]
fn throttle_rates_get_classes_and_sets_and_drop_gets_its_sets() {
    let c = compiled(&load(GUARD));
    let devs = ["tg-down", "tg-up"];
    for dev in devs {
        // The lowest rate first: 1:fffe, then 1:fffd.
        for (minor, rate) in [(0xfffe, mbit(1)), (0xfffd, mbit(5))] {
            let (_, class) = c
                .plan
                .classes
                .iter()
                .find(|(k, _)| k.dev.as_str() == dev && k.id == ClassId::new(1, minor))
                .unwrap_or_else(|| panic!("no 1:{minor:x} on {dev}"));
            assert_eq!((class.rate, class.ceil), (rate, rate));
            assert_eq!(class.parent, ClassId::new(1, 1));
        }
    }
    let sets: Vec<(&str, MapKind)> = c
        .plan
        .maps
        .iter()
        .filter(|(n, _)| n.starts_with("guard_"))
        .map(|(n, m)| (n.as_str(), m.kind))
        .collect();
    assert_eq!(
        sets,
        [
            ("guard_drop_in4", MapKind::GuardAddr4),
            ("guard_drop_in6", MapKind::GuardAddr6),
            ("guard_drop_out4", MapKind::GuardAddr4),
            ("guard_drop_out6", MapKind::GuardAddr6),
            ("guard_thr_1000000_in4", MapKind::GuardAddr4),
            ("guard_thr_1000000_in6", MapKind::GuardAddr6),
            ("guard_thr_1000000_out4", MapKind::GuardAddr4),
            ("guard_thr_1000000_out6", MapKind::GuardAddr6),
            ("guard_thr_5000000_in4", MapKind::GuardAddr4),
            ("guard_thr_5000000_in6", MapKind::GuardAddr6),
            ("guard_thr_5000000_out4", MapKind::GuardAddr4),
            ("guard_thr_5000000_out6", MapKind::GuardAddr6),
        ]
    );
    assert!(c
        .plan
        .maps
        .values()
        .all(|m| !m.kind.is_guard_set() || m.elements.is_empty()));
    // Drops before the classification, throttles after it (they win).
    let down = &c.plan.chains["down_lan0"].rules;
    assert_eq!(
        down[..2],
        [
            "ip daddr @guard_drop_in4 drop".to_string(),
            "ip6 daddr @guard_drop_in6 drop".to_string(),
        ]
    );
    assert_eq!(down[2], "jump classify_down");
    assert_eq!(
        down[4..],
        [
            "ip daddr @guard_thr_1000000_in4 meta priority set 1:fffe".to_string(),
            "ip6 daddr @guard_thr_1000000_in6 meta priority set 1:fffe".to_string(),
            "ip daddr @guard_thr_5000000_in4 meta priority set 1:fffd".to_string(),
            "ip6 daddr @guard_thr_5000000_in6 meta priority set 1:fffd".to_string(),
        ]
    );
    let up = &c.plan.chains["up_wan0"].rules;
    assert_eq!(up[0], "ip saddr @guard_drop_out4 drop");
    assert_eq!(
        up.last().unwrap(),
        "ip6 saddr @guard_thr_5000000_out6 meta priority set 1:fffd"
    );
    let nft = plan::render::plan_nft(&c.plan);
    assert!(
        nft.contains("\tset guard_drop_in4 {\n\t\ttypeof ip daddr; flags interval\n\t}"),
        "{nft}"
    );
    // Every throttle class has a reason.
    let why = c
        .provenance
        .objects
        .iter()
        .filter(|(id, s)| {
            matches!(id, plan::ObjectId::Class(_)) && s.role == compiler::Role::GuardThrottleClass
        })
        .count();
    assert_eq!(why, 4);
}

#[test]
fn a_signature_drop_gets_concatenated_sets() {
    let c = compiled(&load(&format!("{GUARD}{SIGNATURE}")));
    assert_eq!(c.plan.maps["guard_sig_in4"].kind, MapKind::GuardSig4);
    assert_eq!(c.plan.maps["guard_sig_out6"].kind, MapKind::GuardSig6);
    assert_eq!(c.plan.maps["guard_sigaddr_in4"].kind, MapKind::GuardAddr4);
    let down = &c.plan.chains["down_lan0"].rules;
    assert!(
        down.contains(
            &"ip daddr @guard_sigaddr_in4 ip daddr . meta l4proto . th sport @guard_sig_in4 drop"
                .to_string()
        ),
        "{down:?}"
    );
    let nft = plan::render::plan_nft(&c.plan);
    assert!(
        nft.contains("type ipv4_addr . inet_proto . inet_service; flags interval"),
        "{nft}"
    );
}

#[test]
fn diff_leaves_the_guards_elements_and_removes_its_sets_with_the_rungs() {
    let with = compiled(&load(GUARD)).plan;
    // The kernel as the guard left it: a victim in the drop set.
    let mut kernel = with.clone();
    kernel
        .maps
        .get_mut("guard_drop_in4")
        .unwrap()
        .elements
        .insert(
            MapKey::Prefix(net_types::Prefix::parse("100.64.1.7/32").unwrap()),
            MapValue::Mark(0),
        );
    assert!(diff(&with, &kernel).is_empty());

    // Adding the rungs to a running site: the sets and classes are
    // created before the chains that use them are replaced.
    let without = compiled(&load("")).plan;
    let add = diff(&with, &without);
    let pos = |f: &dyn Fn(&Change) -> bool| add.changes.iter().position(f).unwrap();
    let set = pos(&|c| matches!(c, Change::AddMap { name, .. } if name == "guard_drop_in4"));
    let chain = pos(&|c| matches!(c, Change::SetChain { name, .. } if name == "down_lan0"));
    assert!(set < chain, "{add:#?}");
    let script = plan::render::changes_nft(&add);
    assert!(
        script.contains(
            "add set netdev tollgate guard_drop_in4 { typeof ip daddr; flags interval; }"
        ),
        "{script}"
    );

    // Removing them: the chains no longer use the sets, then they go.
    let remove = diff(&without, &kernel);
    let script = plan::render::changes_nft(&remove);
    let chain = script
        .find("flush chain netdev tollgate down_lan0")
        .unwrap();
    let set = script
        .find("delete set netdev tollgate guard_drop_in4")
        .unwrap();
    assert!(chain < set, "{script}");
    assert!(remove
        .changes
        .iter()
        .any(|c| matches!(c, Change::DelClass { key } if key.id == ClassId::new(1, 0xfffe))));
}

#[test]
fn the_ebpf_classifier_gets_the_throttle_classes_and_no_set() {
    // With the eBPF classifier: no nftables set (the drop rung is the XDP
    // drop list, the throttle victims a BPF map of the guard's), the
    // throttle classes in both root trees, and their rates and classes
    // in tg_config's throttle words.
    let mut p = load(GUARD);
    p.site.classifier = Some(policy::ClassifierKind::Ebpf);
    let c = compiled(&p);
    assert!(c.plan.maps.keys().all(|m| !m.starts_with("guard_")));
    let throttle: Vec<_> = c
        .plan
        .classes
        .keys()
        .filter(|k| k.id == ClassId::new(1, 0xfffe))
        .collect();
    assert_eq!(throttle.len(), 2, "one per IFB");
    let words = &c.plan.maps["tg_config"].elements;
    let word = |i: u32| words.get(&plan::MapKey::Number(i)).copied();
    // 1mbit and 5mbit, lowest first (the nftables path's classes).
    assert_eq!(word(96), Some(plan::MapValue::Mark(1000)));
    assert_eq!(word(97), Some(plan::MapValue::Mark(0x1fffe)));
    assert_eq!(word(98), Some(plan::MapValue::Mark(5000)));
    assert_eq!(word(99), Some(plan::MapValue::Mark(0x1fffd)));
    assert_eq!(word(100), None);
}

const UNUSED: &str = r#"
[guard]
networks = ["100.64.0.0/16", "2001:db8::/32"]
unused = "drop"

[guard.capture]
interfaces = ["eth0"]

[guard.thresholds]
pps_in = 20000

[[guard.ladder]]
rung = "blackhole"
hold = "1m"
"#;

#[test]
fn unused_addresses_are_dropped_after_the_tenant_lookup_on_the_download_hooks() {
    let c = compiled(&load(UNUSED));
    let down = &c.plan.chains["down_lan0"].rules;
    let at = |r: &str| down.iter().position(|x| x == r);
    let v4 = at("meta mark 0 ip daddr { 100.64.0.0/16 } drop").expect("the IPv4 rule");
    let v6 = at("meta mark 0 ip6 daddr { 2001:db8::/32 } drop").expect("the IPv6 rule");
    // After the classification (which leaves mark 0 for no tenant),
    // before the shard's mark overwrites it.
    let classify = at("jump classify_down").unwrap();
    let shards = at("meta mark set meta priority map @shards").unwrap();
    assert!(classify < v4 && v4 < v6 && v6 < shards, "{down:#?}");
    // Traffic from the tenants is not concerned.
    assert!(!c.plan.chains["up_wan0"]
        .rules
        .iter()
        .any(|r| r.contains("meta mark 0")));

    // A tenant added (or moved) changes the tenants map, not the rule:
    // diff touches no chain.
    let more = load(&format!(
        "{UNUSED}\n[[tenants]]\nid = 9\nname = \"dave\"\nplan = \"home\"\nprefixes = [\"100.64.9.7/32\"]\n"
    ));
    let changes = diff(&compiled(&more).plan, &c.plan);
    assert!(!changes.is_empty());
    assert!(
        !changes
            .changes
            .iter()
            .any(|ch| matches!(ch, Change::SetChain { .. })),
        "{changes:#?}"
    );

    // Off (the default): no rule.
    let off = compiled(&load(
        &UNUSED.replace("unused = \"drop\"", "unused = \"off\""),
    ));
    assert!(!off.plan.chains["down_lan0"]
        .rules
        .iter()
        .any(|r| r.contains("meta mark 0")));
}

#[test]
fn unused_drop_is_refused_without_networks_and_other_settings_named() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let base = std::fs::read_to_string(dir.join("router.toml")).unwrap();
    let check = |extra: &str, want: &str| {
        let text = format!("{base}{extra}");
        let loaded = policy::load("router.toml", &text, &mut |p| {
            std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
        });
        let r = loaded.render();
        assert!(loaded.has_errors() && r.contains(want), "{r}");
        // The place: the `unused` line.
        let line = text.lines().position(|l| l.starts_with("unused")).unwrap() + 1;
        assert!(r.contains(&format!("router.toml:{line}:")), "{r}");
    };
    let no_nets = UNUSED.replace("networks = [\"100.64.0.0/16\", \"2001:db8::/32\"]\n", "");
    check(&no_nets, "needs [guard] networks");
    check(
        &no_nets.replace("\"drop\"", "\"blackhole\""),
        "unused = \"blackhole\" needs [guard] networks",
    );
    check(
        &UNUSED.replace("\"drop\"", "\"dropp\""),
        "unknown `unused` setting",
    );
}
