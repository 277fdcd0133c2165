//! What the fixture tests and the kernel tests share: a plan that holds
//! every element form at its edges, and the comparison of a read table
//! with a plan.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use net_types::{ClassId, IfName, Prefix};
use nft_reader::{KindMatch, Table};
use plan::{Chain, ChainHook, MapKey, MapKind, MapValue, NftMap, Plan};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

pub fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn p(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

fn c(s: &str) -> ClassId {
    ClassId::parse(s).unwrap()
}

fn class(s: &str) -> MapValue {
    MapValue::Class(c(s))
}

fn map(kind: MapKind, elements: Vec<(MapKey, MapValue)>) -> NftMap {
    NftMap {
        kind,
        elements: elements.into_iter().collect(),
    }
}

/// Every map kind, with the values where nft's printing changes: host
/// prefixes (printed as bare addresses), the whole address space, adjacent
/// prefixes with the same value (which a set with auto-merge would join),
/// class 0:0 (`none`) and ffff:ffff (`root`), one-class ranges (printed as a
/// bare class), the largest mark and number, the longest interface name,
/// and an empty map.
pub fn edge_plan() -> Plan {
    use MapKey::*;
    let mut plan = Plan::default();
    let maps = &mut plan.maps;
    maps.insert(
        "realm4".into(),
        map(
            MapKind::Realm4,
            vec![
                (Prefix(p("0.0.0.0/2")), class("0:1")),
                (Prefix(p("192.0.2.7/32")), class("0:2")),
                (Prefix(p("198.51.100.0/25")), class("0:1")),
                (Prefix(p("198.51.100.128/25")), class("0:1")),
                (Prefix(p("203.0.112.0/24")), class("0:3")),
                (Prefix(p("203.0.113.0/24")), class("0:3")),
                (Prefix(p("255.255.255.0/24")), class("0:4")),
            ],
        ),
    );
    maps.insert(
        "realm4_all".into(),
        map(
            MapKind::Realm4,
            vec![(Prefix(p("0.0.0.0/0")), class("0:1"))],
        ),
    );
    maps.insert(
        "realm6".into(),
        map(
            MapKind::Realm6,
            vec![
                (Prefix(p("2001:db8::1/128")), class("0:1")),
                (Prefix(p("2001:db8:1::/48")), class("0:0")),
                (Prefix(p("2001:db8:2::/48")), class("0:ffff")),
                (Prefix(p("2001:db8:3::/65")), class("0:1")),
                (Prefix(p("2001:db8:3:0:8000::/65")), class("0:1")),
                (Prefix(p("ffff::/16")), class("0:2")),
            ],
        ),
    );
    maps.insert(
        "realm6_all".into(),
        map(MapKind::Realm6, vec![(Prefix(p("::/0")), class("0:1"))]),
    );
    let mark = MapValue::Mark;
    maps.insert(
        "tenants4".into(),
        map(
            MapKind::Tenants4,
            vec![
                (Prefix(p("192.0.2.10/32")), mark(1)),
                (Prefix(p("100.64.0.0/30")), mark(2)),
                (Prefix(p("100.64.0.4/30")), mark(3)),
                (Prefix(p("255.255.255.255/32")), mark(u32::MAX)),
            ],
        ),
    );
    maps.insert(
        "tenants4_all".into(),
        map(MapKind::Tenants4, vec![(Prefix(p("0.0.0.0/0")), mark(5))]),
    );
    maps.insert(
        "tenants6".into(),
        map(
            MapKind::Tenants6,
            vec![
                (Prefix(p("2001:db8::7/128")), mark(1)),
                (Prefix(p("2001:db8:10::/64")), mark(0xffff)),
                (Prefix(p("2001:db8:ff00::/40")), mark(65536)),
            ],
        ),
    );
    maps.insert(
        "tenants6_all".into(),
        map(MapKind::Tenants6, vec![(Prefix(p("::/0")), mark(2))]),
    );
    let ifn = |s: &str| IfName::new(s).unwrap();
    maps.insert(
        "vif_tenants".into(),
        map(
            MapKind::VifTenants,
            vec![
                (Interface(ifn("vif1.0")), mark(1)),
                (Interface(ifn("tap-a_b")), mark(2)),
                (Interface(ifn("abcdefghijklmno")), mark(3)),
                (Interface(ifn("192.0.2.1")), mark(0)),
            ],
        ),
    );
    maps.insert(
        "tenant_classes".into(),
        map(
            MapKind::TenantClasses,
            vec![
                (TenantRealm(1, 1), class("1:10")),
                (TenantRealm(1, 2), class("1:14")),
                (TenantRealm(0, 0), class("0:0")),
                (TenantRealm(u32::MAX, 0xffff), class("ffff:ffff")),
            ],
        ),
    );
    maps.insert(
        "shards".into(),
        map(
            MapKind::Shard,
            vec![
                (ClassRange(c("0:0"), c("0:3")), MapValue::Mark(7)),
                (ClassRange(c("1:4"), c("1:7")), MapValue::Mark(2)),
                (ClassRange(c("1:8"), c("1:8")), MapValue::Mark(3)),
                (ClassRange(c("2:0"), c("2:ffff")), MapValue::Mark(u32::MAX)),
                (ClassRange(c("3:10"), c("3:1f")), MapValue::Mark(0)),
                (ClassRange(c("4:1"), c("4:2")), MapValue::Mark(1)),
                (
                    ClassRange(c("ffff:ffff"), c("ffff:ffff")),
                    MapValue::Mark(9),
                ),
            ],
        ),
    );
    maps.insert(
        "owners".into(),
        map(
            MapKind::Registry,
            vec![
                (Number(0), class("1:4")),
                (Number(1), class("1:10")),
                (Number(65536), class("0:1")),
                (Number(u32::MAX), class("1:1c")),
            ],
        ),
    );
    maps.insert("owners_empty".into(), map(MapKind::Registry, vec![]));
    plan.chains.insert(
        "classify".into(),
        Chain {
            hook: None,
            rules: vec![
                "meta priority set 0:2".into(),
                "meta priority set ip saddr map @realm4".into(),
                "meta mark set ip saddr map @tenants4".into(),
                "meta priority set meta mark . meta priority map @tenant_classes".into(),
            ],
        },
    );
    plan.chains.insert(
        "up_wan0".into(),
        Chain {
            hook: Some(ChainHook {
                dev: IfName::new("wan0").unwrap(),
            }),
            rules: vec!["jump classify".into()],
        },
    );
    plan
}

/// Asserts that a read table holds exactly the plan's nftables objects.
///
/// `devices` fills base chain devices that the JSON did not carry (nft
/// before 1.0.10), from [`nft_reader::chain_devices_from_listing`].
pub fn assert_matches_plan(
    table: &Table,
    plan: &Plan,
    devices: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert!(
        table.others.is_empty(),
        "{what}: unexpected objects {:?}",
        table.others
    );
    assert_eq!(
        table.maps.keys().collect::<Vec<_>>(),
        plan.maps.keys().collect::<Vec<_>>(),
        "{what}: map names"
    );
    for (name, want) in &plan.maps {
        let got = &table.maps[name];
        assert!(
            got.kind.fits(want.kind),
            "{what}: map {name} is {:?}, want {:?}",
            got.kind,
            want.kind
        );
        assert!(
            !matches!(got.kind, KindMatch::Unrecognised),
            "{what}: map {name} unrecognised"
        );
        assert!(
            got.unreadable.is_empty(),
            "{what}: map {name}: {:?}",
            got.unreadable
        );
        if got.elements != want.elements {
            let missing: Vec<_> = want
                .elements
                .iter()
                .filter(|(k, v)| got.elements.get(k) != Some(v))
                .take(10)
                .collect();
            let extra: Vec<_> = got
                .elements
                .iter()
                .filter(|(k, v)| want.elements.get(k) != Some(v))
                .take(10)
                .collect();
            panic!(
                "{what}: map {name}: {} elements read, {} planned\n  missing or different: {missing:?}\n  extra or different: {extra:?}",
                got.elements.len(),
                want.elements.len()
            );
        }
    }
    assert_eq!(
        table.chains.keys().collect::<Vec<_>>(),
        plan.chains.keys().collect::<Vec<_>>(),
        "{what}: chain names"
    );
    for (name, want) in &plan.chains {
        let got = &table.chains[name];
        match (&got.hook, &want.hook) {
            (None, None) => {}
            (Some(h), Some(w)) => {
                assert_eq!(
                    (h.hook.as_str(), h.priority),
                    ("egress", 0),
                    "{what}: chain {name}"
                );
                assert_eq!(h.chain_type, "filter", "{what}: chain {name}");
                let devs = if h.devices.is_empty() {
                    devices.get(name).cloned().unwrap_or_default()
                } else {
                    h.devices.clone()
                };
                assert_eq!(devs, [w.dev.to_string()], "{what}: chain {name} device");
            }
            (g, w) => panic!("{what}: chain {name}: hook {g:?}, planned {w:?}"),
        }
        let comments: Vec<Option<String>> = got.rules.iter().map(|r| r.comment.clone()).collect();
        // The renderer tags every rule with a hash of its text.
        let planned: Vec<Option<String>> = want
            .rules
            .iter()
            .map(|r| Some(plan::render::rule_tag(r)))
            .collect();
        assert_eq!(comments, planned, "{what}: chain {name} rule comments");
        let mut handles: Vec<u64> = got.rules.iter().map(|r| r.handle).collect();
        handles.dedup();
        assert_eq!(
            handles.len(),
            got.rules.len(),
            "{what}: chain {name}: handles repeat"
        );
    }
}

/// One tenant-class map of 2000 elements (1000 tenants in two realms):
/// past the 64 KiB of elements that nft 1.0.6 puts into one netlink
/// message, where it once corrupted an element of a concatenated map.
pub fn overflow_plan() -> Plan {
    let mut elements = BTreeMap::new();
    for t in 0..1000u32 {
        for realm in [1u16, 2] {
            elements.insert(
                MapKey::TenantRealm(t + 1, realm),
                MapValue::Class(ClassId::new(1, (t * 2 + realm as u32) as u16)),
            );
        }
    }
    let mut plan = Plan::default();
    plan.maps.insert(
        "tenant_classes".into(),
        NftMap {
            kind: MapKind::TenantClasses,
            elements,
        },
    );
    plan
}
