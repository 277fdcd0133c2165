//! The plan crate at its boundary: plans in, ordered change sets out.
//!
//! Plans here are built directly, in the shape the compiler gives them (two
//! IFBs, a root HTB with one class per shard, a nested HTB per shard,
//! tenant blocks of a class, realm classes and band leaves, nft maps and
//! chains), so that the diff is tested on thousands of tenants without the
//! compiler. Change sets are applied to a strict model of the kernel that
//! refuses what the kernel refuses (a class before its parent, a parent
//! before its children are gone, a map still used by a chain…), so an
//! order the kernel would reject fails here.

use net_types::{ClassId, IfName, Prefix, Rate};
use plan::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn dev(name: &str) -> IfName {
    IfName::new(name).unwrap()
}

fn rate(bps: u64) -> Rate {
    Rate::from_bps(bps).unwrap()
}

fn class(parent: ClassId, bps: u64) -> Class {
    Class {
        parent,
        rate: rate(bps),
        ceil: rate(bps * 2),
        burst: None,
        cburst: None,
        prio: 0,
        quantum: 1514,
    }
}

/// How a synthetic plan is laid out.
#[derive(Clone, Copy, Debug)]
struct Shape {
    tenants: u32,
    shards: u16,
    realms: u16,
    bands: bool,
}

/// The first minor of tenant `t`'s block (cells of four minors, cell 0
/// holding a shard's root and default classes).
fn base_minor(shape: &Shape, t: u32) -> (u16, u16) {
    let per_shard = shape.tenants.div_ceil(shape.shards as u32);
    let shard = ((t - 1) / per_shard) as u16;
    let index = (t - 1) % per_shard;
    let cells = 1 + shape.realms as u32;
    (shard + 2, (4 + index * cells * 4) as u16)
}

/// Adds tenant `t`'s objects: its classes in both directions and its map
/// elements. `bps` is its rate.
fn add_tenant(p: &mut Plan, shape: &Shape, t: u32, bps: u64) {
    let (major, base) = base_minor(shape, t);
    for d in ["tg-down", "tg-up"] {
        let d = dev(d);
        let root = ClassId::new(major, 1);
        let me = ClassId::new(major, base);
        p.classes
            .insert(ClassKey { dev: d, id: me }, class(root, bps));
        let realm_minors: Vec<u16> = if shape.realms == 0 {
            vec![base]
        } else {
            (1..=shape.realms).map(|g| base + 4 * g).collect()
        };
        for m in realm_minors {
            let id = ClassId::new(major, m);
            if m != base {
                p.classes
                    .insert(ClassKey { dev: d, id }, class(me, bps / 2));
            }
            if shape.bands {
                for b in 1..=3 {
                    p.classes.insert(
                        ClassKey {
                            dev: d,
                            id: ClassId::new(major, m + b),
                        },
                        class(id, bps / 8),
                    );
                }
            }
        }
    }
    // A /30 per tenant inside 100.64.0.0/10.
    let v4 = Prefix::V4(std::net::Ipv4Addr::from(0x6440_0000 + t * 4), 30);
    p.maps
        .get_mut("tenants4")
        .unwrap()
        .elements
        .insert(MapKey::Prefix(v4), MapValue::Mark(t));
    for g in 0..shape.realms.max(1) {
        let minor = if shape.realms == 0 {
            base
        } else {
            base + 4 * (g + 1)
        };
        p.maps.get_mut("tenant_classes").unwrap().elements.insert(
            MapKey::TenantRealm(t, g + 1),
            MapValue::Class(ClassId::new(major, minor)),
        );
    }
    p.maps.get_mut("owners_tenants").unwrap().elements.insert(
        MapKey::Number(t),
        MapValue::Class(ClassId::new(major, base)),
    );
}

/// A plan with `shape.tenants` tenants, built the way the compiler lays one
/// out.
fn synthetic(shape: &Shape) -> Plan {
    let mut p = Plan::default();
    for d in ["tg-down", "tg-up"] {
        let d = dev(d);
        p.links.insert(d, Link::Ifb);
        p.qdiscs.insert(
            QdiscKey {
                dev: d,
                attach: Attach::Root,
            },
            Qdisc::Htb {
                major: 1,
                default_minor: 0xffff,
            },
        );
        p.classes.insert(
            ClassKey {
                dev: d,
                id: ClassId::new(1, 1),
            },
            class(ClassId::new(1, 0), 1 << 33),
        );
        p.classes.insert(
            ClassKey {
                dev: d,
                id: ClassId::new(1, 0xffff),
            },
            class(ClassId::new(1, 1), 1 << 20),
        );
        p.filters.insert(
            FilterKey {
                dev: d,
                hook: Hook::Root,
                prio: FILTER_PRIO_BASE,
            },
            Filter {
                select: Select::MarkToClass(1),
                redirect_to: None,
            },
        );
        for s in 0..shape.shards {
            let major = s + 2;
            p.classes.insert(
                ClassKey {
                    dev: d,
                    id: ClassId::new(1, major),
                },
                class(ClassId::new(1, 1), 1 << 30),
            );
            p.qdiscs.insert(
                QdiscKey {
                    dev: d,
                    attach: Attach::Class(ClassId::new(1, major)),
                },
                Qdisc::Htb {
                    major,
                    default_minor: 2,
                },
            );
            p.classes.insert(
                ClassKey {
                    dev: d,
                    id: ClassId::new(major, 1),
                },
                class(ClassId::new(major, 0), 1 << 30),
            );
            p.classes.insert(
                ClassKey {
                    dev: d,
                    id: ClassId::new(major, 2),
                },
                class(ClassId::new(major, 1), 1 << 20),
            );
        }
    }
    for (hooked, ifb) in [("wan0", "tg-up"), ("lan0", "tg-down")] {
        let d = dev(hooked);
        p.qdiscs.insert(
            QdiscKey {
                dev: d,
                attach: Attach::Clsact,
            },
            Qdisc::Clsact,
        );
        p.filters.insert(
            FilterKey {
                dev: d,
                hook: Hook::Egress,
                prio: FILTER_PRIO_BASE,
            },
            Filter {
                select: Select::All,
                redirect_to: Some(dev(ifb)),
            },
        );
    }
    for (name, kind) in [
        ("tenants4", MapKind::Tenants4),
        ("tenant_classes", MapKind::TenantClasses),
        ("owners_tenants", MapKind::Registry),
        ("shards", MapKind::Shard),
    ] {
        p.maps.insert(
            name.into(),
            NftMap {
                kind,
                elements: BTreeMap::new(),
            },
        );
    }
    for s in 0..shape.shards {
        let major = s + 2;
        p.maps.get_mut("shards").unwrap().elements.insert(
            MapKey::ClassRange(ClassId::new(major, 0), ClassId::new(major, 0xffff)),
            MapValue::Mark(major as u32),
        );
    }
    p.chains.insert(
        "classify".into(),
        Chain {
            hook: None,
            rules: vec![
                "meta mark set ip daddr map @tenants4".into(),
                "meta priority set meta mark . meta priority map @tenant_classes".into(),
            ],
        },
    );
    for (hooked, d) in [("wan0", "up"), ("lan0", "down")] {
        p.chains.insert(
            format!("{d}_{hooked}"),
            Chain {
                hook: Some(ChainHook { dev: dev(hooked) }),
                rules: vec![
                    "jump classify".into(),
                    "meta mark set meta priority map @shards".into(),
                ],
            },
        );
    }
    for t in 1..=shape.tenants {
        add_tenant(&mut p, shape, t, 10_000_000 + t as u64);
    }
    p
}

/// Removes tenant `t`'s objects from the plan.
fn remove_tenant(p: &mut Plan, shape: &Shape, t: u32) {
    let mut alone = Plan::default();
    for (name, m) in &p.maps {
        alone.maps.insert(
            name.clone(),
            NftMap {
                kind: m.kind,
                elements: BTreeMap::new(),
            },
        );
    }
    add_tenant(&mut alone, shape, t, 1_000);
    for k in alone.classes.keys() {
        p.classes.remove(k);
    }
    for (name, m) in &alone.maps {
        if let Some(mine) = p.maps.get_mut(name) {
            for k in m.elements.keys() {
                mine.elements.remove(k);
            }
        }
    }
}

/// The plan without tenant `t`'s objects.
fn without_tenant(p: &Plan, shape: &Shape, t: u32) -> Plan {
    let mut out = p.clone();
    remove_tenant(&mut out, shape, t);
    out
}

/// The children of every class, counted: (device, parent) → how many.
fn child_counts(p: &Plan) -> std::collections::HashMap<(IfName, ClassId), usize> {
    let mut out = std::collections::HashMap::new();
    for (k, c) in &p.classes {
        *out.entry((k.dev, c.parent)).or_default() += 1;
    }
    out
}

/// Applies a change set one change at a time to a model of the kernel that
/// refuses what the kernel refuses, and returns where it went wrong.
fn strict_apply(plan: &mut Plan, cs: &ChangeSet) -> Result<(), String> {
    fn htb_major_exists(p: &Plan, d: IfName, major: u16) -> bool {
        p.qdiscs
            .iter()
            .any(|(k, q)| k.dev == d && matches!(q, Qdisc::Htb { major: m, .. } if *m == major))
    }
    fn refs(rules: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut maps = BTreeSet::new();
        let mut chains = BTreeSet::new();
        for r in rules {
            let words: Vec<&str> = r.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                if let Some(m) = w.strip_prefix('@') {
                    maps.insert(m.to_string());
                }
                if (*w == "jump" || *w == "goto") && i + 1 < words.len() {
                    chains.insert(words[i + 1].to_string());
                }
            }
        }
        (maps, chains)
    }
    let mut children = child_counts(plan);
    for (i, c) in cs.changes.iter().enumerate() {
        let at = |what: String| format!("change {i} ({c:?}): {what}");
        match c {
            Change::AddLink { name, .. } if plan.links.contains_key(name) => {
                return Err(at("link exists".into()))
            }
            Change::DelLink { name } if !plan.links.contains_key(name) => {
                return Err(at("no such link".into()))
            }
            Change::AddQdisc { key, .. } => {
                if plan.qdiscs.contains_key(key) {
                    return Err(at("qdisc exists".into()));
                }
                if let Attach::Class(id) = key.attach {
                    if !plan.classes.contains_key(&ClassKey { dev: key.dev, id }) {
                        return Err(at("its class does not exist yet".into()));
                    }
                }
            }
            Change::DelQdisc { key } if !plan.qdiscs.contains_key(key) => {
                return Err(at("no such qdisc".into()))
            }
            Change::AddClass { key, class } => {
                if plan.classes.contains_key(key) {
                    return Err(at("class exists".into()));
                }
                if !htb_major_exists(plan, key.dev, key.id.major) {
                    return Err(at("its qdisc does not exist yet".into()));
                }
                if class.parent.major != key.id.major {
                    return Err(at("parent in another qdisc".into()));
                }
                if class.parent.minor != 0
                    && !plan.classes.contains_key(&ClassKey {
                        dev: key.dev,
                        id: class.parent,
                    })
                {
                    return Err(at("its parent does not exist yet".into()));
                }
            }
            Change::ChangeClass { key, class } => match plan.classes.get(key) {
                Some(old) if old.parent == class.parent => {}
                Some(_) => return Err(at("HTB cannot change a parent in place".into())),
                None => return Err(at("no such class".into())),
            },
            // HTB refuses to delete a class with child classes; a nested
            // qdisc (and its classes) goes with the class that holds it.
            Change::DelClass { key } => {
                if !plan.classes.contains_key(key) {
                    return Err(at("no such class".into()));
                }
                if children.get(&(key.dev, key.id)).copied().unwrap_or(0) > 0 {
                    return Err(at("it still has children".into()));
                }
            }
            Change::SetFilter { key, .. } => {
                let needs = match key.hook {
                    Hook::Root => Attach::Root,
                    _ => Attach::Clsact,
                };
                if !plan.qdiscs.contains_key(&QdiscKey {
                    dev: key.dev,
                    attach: needs,
                }) {
                    return Err(at("no qdisc to hold the filter".into()));
                }
            }
            Change::DelFilter { key } if !plan.filters.contains_key(key) => {
                return Err(at("no such filter".into()))
            }
            Change::AddMap { name, .. } if plan.maps.contains_key(name) => {
                return Err(at("map exists".into()))
            }
            Change::DelMap { name } => {
                if !plan.maps.contains_key(name) {
                    return Err(at("no such map".into()));
                }
                if plan
                    .chains
                    .values()
                    .any(|ch| refs(&ch.rules).0.contains(name))
                {
                    return Err(at("a chain still uses it".into()));
                }
            }
            Change::SetChain { chain, .. } => {
                let (maps, chains) = refs(&chain.rules);
                if let Some(m) = maps.iter().find(|m| !plan.maps.contains_key(*m)) {
                    return Err(at(format!("map {m} does not exist yet")));
                }
                if let Some(j) = chains.iter().find(|j| !plan.chains.contains_key(*j)) {
                    return Err(at(format!("chain {j} does not exist yet")));
                }
            }
            Change::DelChain { name } => {
                if !plan.chains.contains_key(name) {
                    return Err(at("no such chain".into()));
                }
                if plan
                    .chains
                    .iter()
                    .any(|(n, ch)| n != name && refs(&ch.rules).1.contains(name))
                {
                    return Err(at("another chain still jumps to it".into()));
                }
            }
            Change::SetElement {
                map, key, previous, ..
            } => match plan.maps.get(map) {
                Some(m) if m.elements.get(key) == previous.as_ref() => {}
                Some(_) => return Err(at("`previous` is not the element's value".into())),
                None => return Err(at("no such map".into())),
            },
            Change::DelElement { map, key }
                if !plan
                    .maps
                    .get(map)
                    .is_some_and(|m| m.elements.contains_key(key)) =>
            {
                return Err(at("no such element".into()));
            }
            _ => {}
        }
        let before = plan.classes.len();
        let deleted_parent = match c {
            Change::DelClass { key } => plan.classes.get(key).map(|cl| (key.dev, cl.parent)),
            _ => None,
        };
        ChangeSet {
            changes: vec![c.clone()],
        }
        .apply_to(plan);
        match c {
            Change::AddClass { key, class } => {
                *children.entry((key.dev, class.parent)).or_default() += 1;
            }
            Change::DelClass { .. } if plan.classes.len() + 1 == before => {
                if let Some(n) = deleted_parent.and_then(|p| children.get_mut(&p)) {
                    *n -= 1;
                }
            }
            _ if plan.classes.len() != before => children = child_counts(plan),
            _ => {}
        }
    }
    Ok(())
}

/// `diff(desired, observed)` applied strictly to `observed` gives `desired`,
/// and diffing again finds nothing.
fn assert_round_trip(desired: &Plan, observed: &Plan) -> ChangeSet {
    let cs = diff(desired, observed);
    let mut applied = observed.clone();
    if let Err(e) = strict_apply(&mut applied, &cs) {
        panic!("{e}");
    }
    assert!(
        applied == *desired,
        "applying the diff did not give the plan"
    );
    assert!(
        diff(desired, &applied).is_empty(),
        "a second diff is not empty"
    );
    cs
}

const BIG: Shape = Shape {
    tenants: 3_000,
    shards: 12,
    realms: 2,
    bands: true,
};

#[test]
fn a_plan_built_from_nothing_creates_every_object_in_kernel_order() {
    let p = synthetic(&BIG);
    let cs = assert_round_trip(&p, &Plan::default());
    assert_eq!(cs.len(), p.object_count(), "one change per object");
    let steps: Vec<Step> = cs.changes.iter().map(Change::step).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]));
    // 3,000 tenants × 2 directions × (1 + 2 realms × (1 + 3 bands)) classes.
    let tenant_classes = 3_000 * 2 * 9;
    assert_eq!(
        cs.changes
            .iter()
            .filter(|c| matches!(c, Change::AddClass { .. }))
            .count(),
        tenant_classes + 2 * (2 + 12 * 3)
    );
    // And tearing it all down again is the exact inverse.
    let back = assert_round_trip(&Plan::default(), &p);
    assert!(back.changes.iter().all(|c| c.step() == Step::Remove));
}

#[test]
fn removing_one_tenant_of_thousands_removes_exactly_its_objects() {
    let p = synthetic(&BIG);
    let gone = without_tenant(&p, &BIG, 1_234);
    let cs = assert_round_trip(&gone, &p);
    // 18 classes and 4 elements (a prefix, two realms, the registry).
    assert_eq!(cs.len(), 18 + 4, "{:#?}", cs.changes);
    let dels: Vec<&Change> = cs
        .changes
        .iter()
        .filter(|c| matches!(c, Change::DelClass { .. }))
        .collect();
    assert_eq!(dels.len(), 18);
    // Elements go before the classes they point at.
    let first_class = cs
        .changes
        .iter()
        .position(|c| matches!(c, Change::DelClass { .. }))
        .unwrap();
    assert!(cs.changes[..first_class]
        .iter()
        .all(|c| matches!(c, Change::DelElement { .. })));
    // Adding it back is the inverse, parents before children.
    let again = assert_round_trip(&p, &gone);
    assert_eq!(again.len(), 22);
}

#[test]
fn a_rate_change_is_one_change_in_place_per_class() {
    let p = synthetic(&BIG);
    let mut q = p.clone();
    let (major, base) = base_minor(&BIG, 77);
    for d in ["tg-down", "tg-up"] {
        let k = ClassKey {
            dev: dev(d),
            id: ClassId::new(major, base),
        };
        q.classes.get_mut(&k).unwrap().ceil = rate(99_000_000);
    }
    let cs = assert_round_trip(&q, &p);
    assert_eq!(cs.len(), 2);
    assert!(cs
        .changes
        .iter()
        .all(|c| matches!(c, Change::ChangeClass { .. })));
}

#[test]
fn a_new_parent_means_delete_then_add_children_first() {
    let p = synthetic(&BIG);
    let mut q = p.clone();
    let (major, base) = base_minor(&BIG, 5);
    // Hang tenant 5's second realm class under its first one.
    let k = ClassKey {
        dev: dev("tg-down"),
        id: ClassId::new(major, base + 8),
    };
    q.classes.get_mut(&k).unwrap().parent = ClassId::new(major, base + 4);
    let cs = assert_round_trip(&q, &p);
    // The class and its three leaves go, then come back: 8 changes.
    assert_eq!(cs.len(), 8, "{:#?}", cs.changes);
}

#[test]
fn a_changed_nested_qdisc_is_replaced_with_everything_under_it() {
    let p = synthetic(&BIG);
    let mut q = p.clone();
    let key = QdiscKey {
        dev: dev("tg-up"),
        attach: Attach::Class(ClassId::new(1, 3)),
    };
    q.qdiscs.insert(
        key,
        Qdisc::Htb {
            major: 3,
            default_minor: 1,
        },
    );
    let cs = assert_round_trip(&q, &p);
    let rebuilt = p
        .classes
        .keys()
        .filter(|k| k.dev == dev("tg-up") && k.id.major == 3)
        .count();
    assert_eq!(
        cs.len(),
        1 + 1 + rebuilt,
        "delete, add, and its classes again"
    );
}

#[test]
fn maps_and_chains_are_made_before_use_and_removed_after() {
    let p = synthetic(&Shape { tenants: 10, ..BIG });
    let mut q = p.clone();
    q.maps.insert(
        "realm4".into(),
        NftMap {
            kind: MapKind::Realm4,
            elements: [(
                MapKey::Prefix(Prefix::parse("192.0.2.0/24").unwrap()),
                MapValue::Class(ClassId::new(0, 1)),
            )]
            .into_iter()
            .collect(),
        },
    );
    q.chains
        .get_mut("classify")
        .unwrap()
        .rules
        .insert(0, "meta priority set ip saddr map @realm4".into());
    assert_round_trip(&q, &p);
    assert_round_trip(&p, &q);
    // A regular chain is only removed after the base chains jumping to it.
    let mut bare = q.clone();
    bare.chains.clear();
    assert_round_trip(&bare, &q);
}

/// One random edit to a plan.
#[derive(Clone, Debug)]
enum Edit {
    RemoveTenant(u32),
    AddTenant(u32),
    Rate(u32, u64),
    Element(u32),
    DropClass(usize),
    DropElement(usize),
    /// Hangs a tenant's second realm class under its first.
    Reparent(u32),
    /// Changes a shard's nested qdisc, which the kernel cannot do in place.
    ReplaceShard(u16),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (1u32..=2_000).prop_map(Edit::RemoveTenant),
        (2_001u32..=2_400).prop_map(Edit::AddTenant),
        ((1u32..=2_000), 1u64..1_000_000_000).prop_map(|(t, r)| Edit::Rate(t, r)),
        (1u32..=2_000).prop_map(Edit::Element),
        any::<usize>().prop_map(Edit::DropClass),
        any::<usize>().prop_map(Edit::DropElement),
        (1u32..=2_000).prop_map(Edit::Reparent),
        (2u16..10).prop_map(Edit::ReplaceShard),
    ]
}

const MID: Shape = Shape {
    tenants: 2_400,
    shards: 8,
    realms: 2,
    bands: true,
};

/// Applies edits to a 2,000-tenant plan (with room for 400 more).
fn edited(base: &Plan, edits: &[Edit]) -> Plan {
    let mut p = base.clone();
    for e in edits {
        match *e {
            Edit::RemoveTenant(t) => remove_tenant(&mut p, &MID, t),
            Edit::AddTenant(t) => add_tenant(&mut p, &MID, t, 5_000_000),
            Edit::Rate(t, r) => {
                let (major, base) = base_minor(&MID, t);
                if let Some(c) = p.classes.get_mut(&ClassKey {
                    dev: dev("tg-down"),
                    id: ClassId::new(major, base),
                }) {
                    c.rate = rate(r);
                }
            }
            Edit::Element(t) => {
                if let Some(v) = p
                    .maps
                    .get_mut("tenants4")
                    .unwrap()
                    .elements
                    .values_mut()
                    .find(|v| **v == MapValue::Mark(t))
                {
                    *v = MapValue::Mark(t + 100_000);
                }
            }
            Edit::DropClass(i) => {
                // A leaf only, as the kernel would still hold it otherwise:
                // no class below it, and no qdisc on it (a shard's class
                // holds the shard's own HTB, whose classes name that
                // qdisc's major as their parent, not the class).
                let parents: BTreeSet<(IfName, ClassId)> =
                    p.classes.iter().map(|(k, c)| (k.dev, c.parent)).collect();
                let holders: BTreeSet<(IfName, ClassId)> = p
                    .qdiscs
                    .keys()
                    .filter_map(|q| match q.attach {
                        Attach::Class(c) => Some((q.dev, c)),
                        _ => None,
                    })
                    .collect();
                let leaves: Vec<ClassKey> = p
                    .classes
                    .keys()
                    .filter(|k| {
                        !parents.contains(&(k.dev, k.id)) && !holders.contains(&(k.dev, k.id))
                    })
                    .copied()
                    .collect();
                if !leaves.is_empty() {
                    p.classes.remove(&leaves[i % leaves.len()]);
                }
            }
            Edit::Reparent(t) => {
                let (major, base) = base_minor(&MID, t);
                if let Some(c) = p.classes.get_mut(&ClassKey {
                    dev: dev("tg-up"),
                    id: ClassId::new(major, base + 8),
                }) {
                    c.parent = ClassId::new(major, base + 4);
                }
            }
            Edit::ReplaceShard(major) => {
                if let Some(q) = p.qdiscs.get_mut(&QdiscKey {
                    dev: dev("tg-down"),
                    attach: Attach::Class(ClassId::new(1, major)),
                }) {
                    *q = Qdisc::Htb {
                        major,
                        default_minor: 3,
                    };
                }
            }
            Edit::DropElement(i) => {
                let m = p.maps.get_mut("tenant_classes").unwrap();
                if let Some(k) = m.elements.keys().nth(i % m.elements.len().max(1)).cloned() {
                    m.elements.remove(&k);
                }
            }
        }
    }
    p
}

fn mid_plan() -> Plan {
    let mut p = synthetic(&MID);
    for t in 2_001..=2_400 {
        remove_tenant(&mut p, &MID, t);
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// For two plans of thousands of tenants that differ by random edits,
    /// the diff in either direction is accepted by the strict kernel model,
    /// yields the other plan exactly, and never goes back a phase.
    #[test]
    fn diff_round_trips_on_thousands_of_tenants(
        a in proptest::collection::vec(edit(), 0..12),
        b in proptest::collection::vec(edit(), 0..12),
    ) {
        let base = mid_plan();
        let (pa, pb) = (edited(&base, &a), edited(&base, &b));
        for (desired, observed) in [(&pa, &pb), (&pb, &pa)] {
            let cs = assert_round_trip(desired, observed);
            // What cannot change in place is deleted first; after that the
            // phases never go backwards.
            let steps: Vec<Step> = cs
                .changes
                .iter()
                .skip_while(|c| matches!(c, Change::DelQdisc { .. } | Change::DelClass { .. }))
                .map(Change::step)
                .collect();
            prop_assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{:?}", steps);
        }
    }
}
