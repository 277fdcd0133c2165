//! The compiler at its boundary: policy in, plan and change sets out.

use compiler::synthetic::{self, Shape};
use compiler::{compile, Compiled, HostFacts, Live, Owner};
use plan::{diff, Change, ObjectId, Plan, Step};
use std::path::Path;

mod guard_rungs;

fn load(name: &str, text: &str) -> policy::Policy {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let loaded = policy::load(name, text, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    });
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.policy.unwrap()
}

fn example(name: &str) -> policy::Policy {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name);
    load(name, &std::fs::read_to_string(path).unwrap())
}

fn compiled(p: &policy::Policy, live: &Live) -> Compiled {
    let facts = HostFacts {
        interfaces: None,
        live: live.clone(),
        route_realms: Vec::new(),
        bridges: None,
        offline: Default::default(),
        foreign_roots: Default::default(),
    };
    compile(p, &facts).unwrap_or_else(|e| panic!("{e:#?}"))
}

#[test]
fn router_example_snapshots() {
    let c = compiled(&example("router.toml"), &Live::default());
    insta::assert_snapshot!("router_tc", plan::render::plan_tc(&c.plan));
    insta::assert_snapshot!("router_nft", plan::render::plan_nft(&c.plan));
}

#[test]
fn hypervisor_example_snapshots() {
    let c = compiled(&example("hypervisor.toml"), &Live::default());
    insta::assert_snapshot!("hypervisor_tc", plan::render::plan_tc(&c.plan));
    insta::assert_snapshot!("hypervisor_nft", plan::render::plan_nft(&c.plan));
}

#[test]
fn compile_is_deterministic() {
    for name in ["router.toml", "hypervisor.toml"] {
        let p = example(name);
        let a = compiled(&p, &Live::default());
        let b = compiled(&p, &Live::default());
        assert_eq!(a.plan, b.plan);
        assert_eq!(
            plan::render::plan_tc(&a.plan),
            plan::render::plan_tc(&b.plan)
        );
        assert_eq!(
            plan::render::plan_nft(&a.plan),
            plan::render::plan_nft(&b.plan)
        );
        assert_eq!(
            serde_json::to_string(&a.plan).unwrap(),
            serde_json::to_string(&b.plan).unwrap()
        );
    }
}

#[test]
fn placements_read_back_from_the_plan() {
    for name in ["router.toml", "hypervisor.toml"] {
        let c = compiled(&example(name), &Live::default());
        assert_eq!(Live::from_plan(&c.plan), c.placements, "{name}");
    }
}

#[test]
fn every_object_has_provenance() {
    let c = compiled(&example("hypervisor.toml"), &Live::default());
    for k in c.plan.classes.keys() {
        assert!(c.provenance.get(&ObjectId::Class(*k)).is_some(), "{k:?}");
    }
    let alice_objects = c.provenance.of_tenant(net_types::TenantId(2)).count();
    // db-1: class + 2 realms × (1 + 3 bands), per direction, + map elements.
    assert!(alice_objects >= 18, "{alice_objects}");
}

/// The objects a change set touches, with the tenant each serves.
fn touched(
    cs: &plan::ChangeSet,
    new: &Compiled,
    old: &Compiled,
) -> Vec<(ObjectId, Option<net_types::TenantId>)> {
    let (new, old) = (new.provenance.index(), old.provenance.index());
    cs.changes
        .iter()
        .map(|c| {
            let id = c.object();
            let serves = new.get(&id).or_else(|| old.get(&id));
            (id, serves.and_then(|s| s.tenant))
        })
        .collect()
}

fn policy_with(shape: &Shape, extra: &str) -> policy::Policy {
    load("synthetic.toml", &(synthetic::policy_text(shape) + extra))
}

#[test]
fn adding_one_tenant_to_ten_thousand_touches_only_that_tenant() {
    let shape = Shape::router(10_000);
    let before = compiled(&policy_with(&shape, ""), &Live::default());
    let live = Live::from_plan(&before.plan);
    let extra = format!(
        "[[tenants]]\nid = 10001\nplan = \"small\"\nparent = \"p3\"\nprefixes = [\"{}\"]\n",
        synthetic::tenant_v4(10_001)
    );
    let after = compiled(&policy_with(&shape, &extra), &live);
    let cs = diff(&after.plan, &before.plan);
    assert!(!cs.is_empty());
    for (id, tenant) in touched(&cs, &after, &before) {
        assert_eq!(
            tenant,
            Some(net_types::TenantId(10_001)),
            "{id} does not belong to the new tenant"
        );
    }
    assert!(cs.changes.iter().all(|c| matches!(
        c,
        Change::AddClass { .. } | Change::SetElement { previous: None, .. }
    )));
    // And removing it again is the exact inverse.
    let back = diff(&before.plan, &after.plan);
    assert_eq!(back.len(), cs.len());
    let mut p = after.plan.clone();
    back.apply_to(&mut p);
    assert_eq!(p, before.plan);
}

#[test]
fn a_rate_change_is_changed_in_place() {
    let shape = Shape {
        tenants: 50,
        shards: 1,
        per_parent: 10,
        hypervisor: false,
    };
    let before = compiled(&policy_with(&shape, ""), &Live::default());
    let live = Live::from_plan(&before.plan);
    let text = synthetic::policy_text(&shape).replacen(
        "[[tenants]]\nid = 7\nname = \"t7\"\nplan = \"large\"\n",
        "[[tenants]]\nid = 7\nname = \"t7\"\nplan = \"large\"\ndown = { ceil = \"40mbit\" }\n",
        1,
    );
    let after = compiled(&load("s.toml", &text), &live);
    let cs = diff(&after.plan, &before.plan);
    assert!(!cs.is_empty());
    for c in &cs.changes {
        assert!(matches!(c, Change::ChangeClass { .. }), "{c:?}");
    }
    for (id, tenant) in touched(&cs, &after, &before) {
        assert_eq!(tenant, Some(net_types::TenantId(7)), "{id}");
    }
}

#[test]
fn moving_a_tenant_is_make_before_break() {
    let shape = Shape {
        tenants: 50,
        shards: 2,
        per_parent: 10,
        hypervisor: false,
    };
    let before = compiled(&policy_with(&shape, ""), &Live::default());
    let live = Live::from_plan(&before.plan);
    let text = synthetic::policy_text(&shape).replacen(
        "[[tenants]]\nid = 7\nname = \"t7\"\nplan = \"large\"\nparent = \"p0\"\n",
        "[[tenants]]\nid = 7\nname = \"t7\"\nplan = \"overage\"\n",
        1,
    );
    let after = compiled(&load("s.toml", &text), &live);
    let moved = after.placements.placements[&Owner::Tenant(net_types::TenantId(7))];
    let was = before.placements.placements[&Owner::Tenant(net_types::TenantId(7))];
    assert_ne!(moved.base(), was.base(), "a move takes fresh classes");
    let cs = diff(&after.plan, &before.plan);
    let steps: Vec<Step> = cs.changes.iter().map(Change::step).collect();
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]),
        "create, then switch, then remove: {steps:?}"
    );
    assert!(
        cs.changes.iter().any(|c| matches!(
            c,
            Change::SetElement {
                previous: Some(_),
                ..
            }
        )),
        "classification is repointed, not deleted"
    );
    assert!(
        !cs.changes
            .iter()
            .any(|c| matches!(c, Change::DelElement { .. })),
        "no element is removed, so no packet falls through"
    );
    for (id, tenant) in touched(&cs, &after, &before) {
        assert_eq!(tenant, Some(net_types::TenantId(7)), "{id}");
    }
    // Children are removed before their parents.
    let dels: Vec<u16> = cs
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::DelClass { key } => Some(key.id.minor),
            _ => None,
        })
        .collect();
    let base = was.base().minor;
    assert_eq!(
        dels.last(),
        Some(&base),
        "the tenant's own class goes last: {dels:?}"
    );
}

#[test]
fn trees_stay_small_and_an_oversized_parent_is_reported() {
    // Standalone tenants are spread over as many nested trees as it takes
    // to keep each one small, because the kernel's cost of adding a class
    // grows with the classes already in its qdisc.
    let shape = Shape {
        tenants: 6_000,
        shards: 1,
        per_parent: 0,
        hypervisor: false,
    };
    let c = compile(&policy_with(&shape, ""), &HostFacts::default()).unwrap();
    let mut per_tree: std::collections::BTreeMap<(net_types::IfName, u16), usize> =
        Default::default();
    for k in c.plan.classes.keys() {
        *per_tree.entry((k.dev, k.id.major)).or_default() += 1;
    }
    let largest = per_tree.values().max().copied().unwrap_or(0);
    assert!(largest <= 300, "a tree holds {largest} classes");
    assert!(per_tree.len() > 2 * 20, "{} trees", per_tree.len());

    // A parent lends only within its own tree, so all its descendants must
    // fit in one: 6,000 tenants under one parent do not.
    let one_parent = Shape {
        per_parent: 6_000,
        ..shape
    };
    let err = compile(&policy_with(&one_parent, ""), &HostFacts::default()).unwrap_err();
    assert!(
        err[0]
            .message
            .contains("more classes than the kernel can address"),
        "{}",
        err[0].message
    );
    assert!(err[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("top-level parents"));
    assert!(
        err[0].span.is_some(),
        "the error points at the first tenant that did not fit"
    );
    let split = Shape {
        per_parent: 1_000,
        ..shape
    };
    assert!(compile(&policy_with(&split, ""), &HostFacts::default()).is_ok());
}

#[test]
fn missing_interfaces_are_reported_and_absent_vifs_skipped() {
    let p = example("hypervisor.toml");
    let ifs = |names: &[&str]| {
        Some(
            names
                .iter()
                .map(|n| net_types::IfName::new(n).unwrap())
                .collect(),
        )
    };
    let err = compile(
        &p,
        &HostFacts {
            interfaces: ifs(&["vif1.0"]),
            live: Live::default(),
            route_realms: Vec::new(),
            bridges: None,
            offline: Default::default(),
            foreign_roots: Default::default(),
        },
    )
    .unwrap_err();
    assert!(
        err[0].message.contains("`eth0` does not exist"),
        "{}",
        err[0].message
    );
    let c = compile(
        &p,
        &HostFacts {
            interfaces: ifs(&["eth0", "vif1.0"]),
            live: Live::default(),
            route_realms: Vec::new(),
            bridges: None,
            offline: Default::default(),
            foreign_roots: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(c.notes.len(), 3, "vif2.0, vif3.0 and vif4.0 are absent");
    assert!(c.plan.chains.contains_key("down_vif1.0"));
    assert!(!c.plan.chains.contains_key("down_vif2.0"));
}

fn small_policy(tenants: &[(u32, u8, u8)], shards: u16) -> policy::Policy {
    let shape = Shape {
        tenants: 0,
        shards,
        per_parent: 0,
        hypervisor: false,
    };
    let mut text = synthetic::policy_text(&shape);
    text.push_str("[[parents]]\nname = \"a\"\nid = 1\ndown = { rate = \"1gbit\" }\nup = { rate = \"1gbit\" }\n\n[[parents]]\nname = \"b\"\nid = 2\ndown = { rate = \"1gbit\" }\nup = { rate = \"1gbit\" }\n\n");
    for (id, plan, parent) in tenants {
        let plan = ["small", "large", "overage"][*plan as usize % 3];
        let parent = if plan == "overage" {
            String::new()
        } else {
            ["", "parent = \"a\"\n", "parent = \"b\"\n"][*parent as usize % 3].to_string()
        };
        text.push_str(&format!(
            "[[tenants]]\nid = {id}\nplan = \"{plan}\"\n{parent}prefixes = [\"{}\"]\n\n",
            synthetic::tenant_v4(*id)
        ));
    }
    load("p.toml", &text)
}

fn tenants_strategy() -> impl proptest::strategy::Strategy<Value = Vec<(u32, u8, u8)>> {
    use proptest::prelude::*;
    proptest::collection::btree_map(1u32..60, (0u8..3, 0u8..3), 0..25)
        .prop_map(|m| m.into_iter().map(|(k, (a, b))| (k, a, b)).collect())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// diff(a, b) applied to b yields a, for plans compiled from any two policies.
    #[test]
    fn diff_applied_to_b_yields_a(a in tenants_strategy(), b in tenants_strategy(), shards in 1u16..3) {
        let pb = compiled(&small_policy(&b, shards), &Live::default());
        let pa = compiled(&small_policy(&a, shards), &Live::from_plan(&pb.plan));
        let cs = diff(&pa.plan, &pb.plan);
        let mut applied = pb.plan.clone();
        cs.apply_to(&mut applied);
        proptest::prop_assert_eq!(&applied, &pa.plan);
        // A second diff finds nothing left to do.
        proptest::prop_assert!(diff(&pa.plan, &applied).is_empty());
        // Make-before-break: phases never go backwards.
        let steps: Vec<Step> = cs.changes.iter().map(Change::step).collect();
        proptest::prop_assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{:?}", steps);
    }

    /// The same policy and facts always give a byte-identical plan.
    #[test]
    fn compile_is_deterministic_for_any_policy(a in tenants_strategy(), shards in 1u16..4) {
        let p = small_policy(&a, shards);
        let x = compiled(&p, &Live::default());
        let y = compiled(&p, &Live::default());
        proptest::prop_assert_eq!(plan::render::plan_tc(&x.plan), plan::render::plan_tc(&y.plan));
        proptest::prop_assert_eq!(plan::render::plan_nft(&x.plan), plan::render::plan_nft(&y.plan));
        proptest::prop_assert_eq!(serde_json::to_string(&x.plan).unwrap(), serde_json::to_string(&y.plan).unwrap());
    }

    /// Compiling against the live state of the same policy changes nothing.
    #[test]
    fn recompiling_against_live_state_is_a_no_op(a in tenants_strategy()) {
        let p = small_policy(&a, 2);
        let first = compiled(&p, &Live::default());
        let again = compiled(&p, &Live::from_plan(&first.plan));
        proptest::prop_assert_eq!(first.plan, again.plan);
    }

    /// diff is exact on arbitrary plans too, not only on compiled ones.
    #[test]
    fn diff_is_exact_after_random_edits(a in tenants_strategy(), drop_every in 2usize..7) {
        let full = compiled(&small_policy(&a, 1), &Live::default()).plan;
        let mut edited: Plan = full.clone();
        let keys: Vec<_> = edited.classes.keys().cloned().collect();
        for k in keys.iter().step_by(drop_every) {
            edited.classes.remove(k);
        }
        for m in edited.maps.values_mut() {
            let ks: Vec<_> = m.elements.keys().cloned().collect();
            for k in ks.iter().step_by(drop_every) {
                m.elements.remove(k);
            }
        }
        let mut repaired = edited.clone();
        diff(&full, &edited).apply_to(&mut repaired);
        proptest::prop_assert_eq!(repaired, full);
    }
}

/// How many classes deep the deepest class of any HTB tree in the plan is
/// (a class whose parent is its qdisc is 1).
fn deepest_class(plan: &Plan) -> usize {
    fn depth(
        plan: &Plan,
        k: plan::ClassKey,
        memo: &mut std::collections::HashMap<plan::ClassKey, usize>,
    ) -> usize {
        if let Some(d) = memo.get(&k) {
            return *d;
        }
        let c = &plan.classes[&k];
        let d = if c.parent.minor == 0 {
            1
        } else {
            1 + depth(
                plan,
                plan::ClassKey {
                    dev: k.dev,
                    id: c.parent,
                },
                memo,
            )
        };
        memo.insert(k, d);
        d
    }
    let mut memo = Default::default();
    plan.classes
        .keys()
        .map(|k| depth(plan, *k, &mut memo))
        .max()
        .unwrap_or(0)
}

/// A policy with one tenant under `parents` nested parents, optionally in a
/// shared pool, with or without realms and bands.
fn layered(parents: usize, pool: bool, realms: bool, bands: bool) -> policy::Policy {
    let mut t = String::from("[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = { down = \"10gbit\", up = \"10gbit\" }\n\n");
    if realms {
        t.push_str("[realms]\ndefault = \"intl\"\n[realms.nat]\nid = 1\nprefixes = [\"198.51.100.0/24\"]\n[realms.intl]\nid = 2\n\n");
    }
    if bands {
        t.push_str("[bands.interactive]\ndscp = [\"ef\"]\n\n");
    }
    t.push_str("[plans.p]\ndown = { rate = \"1mbit\" }\nup = { rate = \"1mbit\" }\n\n");
    let last = (parents > 0).then(|| format!("parent = \"p{parents}\"\n"));
    if pool {
        t.push_str(&format!("[plans.pool]\nshared = true\nid = 1000\n{}down = {{ rate = \"1mbit\" }}\nup = {{ rate = \"1mbit\" }}\n\n", last.clone().unwrap_or_default()));
    }
    for i in 1..=parents {
        let up = if i > 1 {
            format!("parent = \"p{}\"\n", i - 1)
        } else {
            String::new()
        };
        t.push_str(&format!("[[parents]]\nname = \"p{i}\"\nid = {i}\n{up}down = {{ rate = \"1gbit\" }}\nup = {{ rate = \"1gbit\" }}\n\n"));
    }
    let (plan, parent) = if pool {
        ("pool", String::new())
    } else {
        ("p", last.unwrap_or_default())
    };
    t.push_str(&format!(
        "[[tenants]]\nid = 1\nplan = \"{plan}\"\n{parent}prefixes = [\"100.64.0.0/30\"]\n"
    ));
    load("layered.toml", &t)
}

/// Issue 12, item 13: with 5 nested parents `plan` made classes 9 levels
/// deep, which the kernel refuses. Every layout: the compiled tree's depth
/// is exactly what the layout adds up to, it is within HTB's 8 whenever
/// compile succeeds, and compile refuses exactly past 8, naming the chain.
#[test]
fn htb_depth_is_refused_exactly_at_the_kernels_limit() {
    assert_eq!(compiler::HTB_MAX_DEPTH, 8, "TC_HTB_MAXDEPTH");
    for realms in [false, true] {
        for bands in [false, true] {
            for pool in [false, true] {
                for parents in 0..=8 {
                    let expected = 1
                        + parents
                        + usize::from(pool)
                        + 1
                        + usize::from(realms)
                        + usize::from(bands);
                    let layout =
                        format!("{parents} parents, pool {pool}, realms {realms}, bands {bands}");
                    let p = layered(parents, pool, realms, bands);
                    match compile(&p, &HostFacts::default()) {
                        Ok(c) => {
                            assert!(expected <= 8, "{layout}: compiled {expected} levels");
                            assert_eq!(deepest_class(&c.plan), expected, "{layout}");
                        }
                        Err(e) => {
                            assert!(
                                expected > 8,
                                "{layout}: refused at {expected} levels: {e:?}"
                            );
                            // One error per chain, about its first class past the limit.
                            assert_eq!(e.len(), 1, "{layout}: {e:#?}");
                            let m = &e[0].message;
                            let nodes = parents + usize::from(pool);
                            let (depth, named) = if 1 + nodes > 8 {
                                (9, 8) // the 8th node down is the 9th class
                            } else {
                                assert!(m.starts_with("tenant 1: "), "{layout}: {m}");
                                (expected, parents)
                            };
                            assert!(
                                m.contains(&format!("{depth} levels deep, and HTB allows 8")),
                                "{layout}: {m}"
                            );
                            let chain: Vec<String> = (1..=named.min(parents))
                                .map(|i| format!("parent `p{i}`"))
                                .collect();
                            assert!(
                                m.contains(&format!("shard root → {}", chain.join(" → "))),
                                "{layout}: {m}"
                            );
                            assert!(e[0].span.is_some(), "{layout}");
                            assert!(e[0].hint.as_deref().unwrap().contains("nest fewer parents"));
                        }
                    }
                }
            }
        }
    }
}

/// A 30-tenant policy with realms, bands, parents, a pool and two shards.
fn repair_policy() -> policy::Policy {
    let shape = Shape {
        tenants: 30,
        shards: 2,
        per_parent: 10,
        hypervisor: false,
    };
    // Tenant 31 sits in the shared pool.
    policy_with(
        &shape,
        &format!(
            "[[tenants]]\nid = 31\nplan = \"overage\"\nprefixes = [\"{}\"]\n",
            synthetic::tenant_v4(31)
        ),
    )
}

/// `plan` without the classes of `tenant` picked by `pick` (by position in
/// the tenant's classes) and everything under them, as the kernel would
/// have it after `tc class del`.
fn without_classes(
    c: &Compiled,
    tenant: net_types::TenantId,
    pick: &[bool],
) -> (Plan, Vec<plan::ClassKey>) {
    let mine: Vec<plan::ClassKey> = c
        .provenance
        .of_tenant(tenant)
        .filter_map(|(o, _)| match o {
            ObjectId::Class(k) => Some(*k),
            _ => None,
        })
        .collect();
    let mut gone: std::collections::BTreeSet<plan::ClassKey> = mine
        .iter()
        .zip(pick.iter().cycle())
        .filter(|(_, p)| **p)
        .map(|(k, _)| *k)
        .collect();
    // Deleting a class deletes its subtree: close the set downward.
    loop {
        let more: Vec<plan::ClassKey> = c
            .plan
            .classes
            .iter()
            .filter(|(k, cl)| {
                !gone.contains(k)
                    && gone.contains(&plan::ClassKey {
                        dev: k.dev,
                        id: cl.parent,
                    })
            })
            .map(|(k, _)| *k)
            .collect();
        if more.is_empty() {
            break;
        }
        gone.extend(more);
    }
    let mut observed = c.plan.clone();
    observed.classes.retain(|k, _| !gone.contains(k));
    (observed, gone.into_iter().collect())
}

/// Recompiling against `observed` gives the original plan, and the repair
/// recreates exactly the `gone` classes, nothing else.
fn assert_repaired_in_place(
    p: &policy::Policy,
    original: &Compiled,
    observed: &Plan,
    gone: &[plan::ClassKey],
) -> Result<(), proptest::test_runner::TestCaseError> {
    let again = compiled(p, &Live::from_plan(observed));
    proptest::prop_assert_eq!(&again.placements, &original.placements);
    proptest::prop_assert!(again.plan == original.plan, "the plan changed");
    let cs = diff(&again.plan, observed);
    let added: Vec<plan::ClassKey> = cs
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::AddClass { key, .. } => Some(*key),
            _ => None,
        })
        .collect();
    proptest::prop_assert_eq!(cs.len(), added.len(), "only creates: {:?}", cs.changes);
    let mut sorted = added.clone();
    sorted.sort();
    proptest::prop_assert_eq!(sorted, gone.to_vec());
    Ok(())
}

/// Issue 12, item 24: repairing a hand-deleted realm class with its leaves
/// rebuilt the whole tenant with new handles in both directions.
#[test]
fn a_deleted_realm_class_is_repaired_in_place_with_the_same_handles() {
    let p = repair_policy();
    let c = compiled(&p, &Live::default());
    let t = net_types::TenantId(7);
    let base = c.placements.placements[&Owner::Tenant(t)].base();
    let down = compiler::ifb_name(policy::Direction::Down);
    // The last realm's class (its leaves go with it), on the download IFB.
    let realm = plan::ClassKey {
        dev: down,
        id: net_types::ClassId::new(base.major, base.minor + 8),
    };
    assert!(c.plan.classes.contains_key(&realm));
    let mut observed = c.plan.clone();
    observed
        .classes
        .retain(|k, cl| *k != realm && !(k.dev == down && cl.parent == realm.id));
    let gone: Vec<plan::ClassKey> = c
        .plan
        .classes
        .keys()
        .filter(|k| !observed.classes.contains_key(k))
        .copied()
        .collect();
    assert_eq!(gone.len(), 4, "the realm class and its three band leaves");
    assert_repaired_in_place(&p, &c, &observed, &gone).unwrap();

    // The same class gone from both IFBs, and the tenant's whole subtree
    // gone from both: still repaired where it is.
    for pick in [vec![false, false, true], vec![true]] {
        let (observed, gone) = without_classes(&c, t, &pick);
        assert!(!gone.is_empty());
        assert_repaired_in_place(&p, &c, &observed, &gone).unwrap();
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any classes of any tenant (with their subtrees) deleted by hand are
    /// recreated with the same handles, and nothing else changes.
    #[test]
    fn hand_deleted_classes_are_repaired_in_place(
        tenant in 1u32..=31,
        pick in proptest::collection::vec(proptest::bool::weighted(0.3), 1..24),
    ) {
        let p = repair_policy();
        let c = compiled(&p, &Live::default());
        let (observed, gone) = without_classes(&c, net_types::TenantId(tenant), &pick);
        assert_repaired_in_place(&p, &c, &observed, &gone)?;
    }
}

/// Issue 12, item 22: with `uplink = "br0"` on a Xen host every check
/// passed and upload was not shaped at all.
#[test]
fn a_bridge_uplink_is_refused_in_hypervisor_mode_naming_its_ports() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hypervisor.toml"
    ));
    let text =
        std::fs::read_to_string(path)
            .unwrap()
            .replacen("uplink = \"eth0\"", "uplink = \"br0\"", 1);
    let p = load("hypervisor.toml", &text);
    let name = |n: &str| net_types::IfName::new(n).unwrap();
    let facts = |bridges| HostFacts {
        bridges,
        ..HostFacts::default()
    };
    let bridged = Some(
        [(
            name("br0"),
            vec![name("eth0"), name("vif1.0"), name("vif2.0")],
        )]
        .into_iter()
        .collect(),
    );
    let e = compile(&p, &facts(bridged)).unwrap_err();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].message
            .contains("uplink `br0` is a bridge (ports: `eth0`, `vif1.0`, `vif2.0`)"),
        "{}",
        e[0].message
    );
    assert!(
        e[0].hint
            .as_deref()
            .unwrap()
            .contains("set uplink = `eth0`"),
        "{:?}",
        e[0].hint
    );
    // At the uplink's value, 9:10 in the example.
    let span = e[0].span.unwrap();
    assert_eq!(&text[span.start..span.end], "\"br0\"");

    // Unknown bridges, or a bridge that is not the uplink: compiled.
    assert!(compile(&p, &facts(None)).is_ok());
    let other = Some([(name("br1"), vec![name("eth1")])].into_iter().collect());
    assert!(compile(&p, &facts(other)).is_ok());

    // Router mode routes the tenants' traffic, which leaves through the
    // bridge device itself: a bridge uplink works there.
    let router = example("router.toml");
    let wan_bridge = Some([(name("wan0"), vec![name("eth0")])].into_iter().collect());
    assert!(compile(&router, &facts(wan_bridge)).is_ok());
}

/// Issue 12, item 25: broadcast and multicast that a bridge floods to every
/// vif were billed to every VM. The classify chains for every combination
/// of `[site] bill_broadcast` and `bill_multicast` (default: neither billed):
/// unbilled packets return before any tenant lookup, so they reach the root
/// tree's default class. (Checked on a kernel: docs/policy.md says how.)
#[test]
fn broadcast_and_multicast_rules_for_every_setting() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hypervisor.toml"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for (broadcast, multicast) in [
        (None, None),
        (Some(true), None),
        (None, Some(true)),
        (Some(true), Some(true)),
        (Some(false), Some(false)),
    ] {
        let mut settings = String::new();
        if let Some(b) = broadcast {
            settings.push_str(&format!("bill_broadcast = {b}\n"));
        }
        if let Some(m) = multicast {
            settings.push_str(&format!("bill_multicast = {m}\n"));
        }
        let t = text.replacen(
            "uplink = \"eth0\"",
            &format!("{settings}uplink = \"eth0\""),
            1,
        );
        let c = compiled(&load("hypervisor.toml", &t), &Live::default());
        let down = &c.plan.chains["classify_down"].rules;
        let up = &c.plan.chains["classify_up"].rules;
        assert_eq!(
            down.iter()
                .filter(|r| r.ends_with(" return"))
                .collect::<Vec<_>>(),
            up.iter()
                .filter(|r| r.ends_with(" return"))
                .collect::<Vec<_>>(),
            "both directions skip the same packets"
        );
        // Nothing is looked up before the unbilled packets have returned.
        let first_lookup = down.iter().position(|r| r.contains("map @")).unwrap();
        assert!(down
            .iter()
            .skip(first_lookup)
            .all(|r| !r.ends_with(" return")));
        out.push_str(&format!(
            "# {}classify_down:\n",
            if settings.is_empty() {
                "(defaults) "
            } else {
                ""
            }
        ));
        for l in settings.lines() {
            out.push_str(&format!("#   {l}\n"));
        }
        for r in down {
            out.push_str(&format!("{r}\n"));
        }
        out.push('\n');
    }
    insta::assert_snapshot!("unbilled_broadcast_and_multicast", out);
}

#[test]
fn an_interface_taken_offline_is_left_out_without_a_warning() {
    // Item 23: `hook vif offline` must not say the interface is absent.
    let p = example("hypervisor.toml");
    let vif = p
        .tenants
        .iter()
        .find_map(|t| t.interface)
        .expect("a tenant with a vif");
    let mut present: std::collections::BTreeSet<_> =
        p.tenants.iter().filter_map(|t| t.interface).collect();
    present.insert(p.site.uplink);
    present.remove(&vif);
    let absent = compile(
        &p,
        &HostFacts {
            interfaces: Some(present.clone()),
            ..HostFacts::default()
        },
    )
    .unwrap();
    assert!(absent
        .notes
        .iter()
        .any(|n| n.message.contains(&format!("`{vif}`"))));
    let offline = compile(
        &p,
        &HostFacts {
            interfaces: Some(present),
            offline: [vif].into_iter().collect(),
            ..HostFacts::default()
        },
    )
    .unwrap();
    assert!(offline.notes.is_empty(), "{:?}", offline.notes);
    assert_eq!(offline.plan, absent.plan);
}

#[test]
fn every_object_is_described_in_words_with_no_placeholder() {
    // Issue 12, item 18: `explain` printed "the tenant's `?` traffic".
    for ex in ["router.toml", "hypervisor.toml"] {
        let p = example(ex);
        let c = compile(&p, &HostFacts::default()).unwrap();
        for (id, s) in &c.provenance.objects {
            let d = s.describe(&p);
            assert!(
                !d.contains('?') && !d.contains("(no realm)") && !d.contains("Some("),
                "{id}: {d}"
            );
        }
    }
}

/// The eBPF classifier's maps hold exactly what the nftables maps hold,
/// under their own names, and one program filter replaces each hook's
/// chains and redirect.
#[test]
fn ebpf_classifier_holds_the_nftables_maps_contents() {
    use plan::{MapKind, Program, Select};
    for (name, programs) in [
        ("router.toml", &[Program::Up, Program::Down][..]),
        (
            "hypervisor.toml",
            &[Program::Up, Program::DownVif, Program::UpVm][..],
        ),
    ] {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name);
        let text = std::fs::read_to_string(path).unwrap();
        let nft = compiled(&load(name, &text), &Live::default()).plan;
        let text = text.replacen("[site]\n", "[site]\nclassifier = \"ebpf\"\n", 1);
        let bpf = compiled(&load(name, &text), &Live::default()).plan;
        assert!(bpf.chains.is_empty(), "{name}: {:?}", bpf.chains.keys());
        for (n, b) in [
            ("realm4", "tg_realms4"),
            ("realm6", "tg_realms6"),
            ("tenants4", "tg_tenants4"),
            ("tenants6", "tg_tenants6"),
            ("tenant_classes", "tg_classes"),
        ] {
            assert_eq!(nft.maps[n].elements, bpf.maps[b].elements, "{name}: {n}");
            assert!(bpf.maps[b].kind.is_bpf());
            assert!(!bpf.maps.contains_key(n), "{name}: {n} left in nftables");
        }
        if name == "hypervisor.toml" {
            assert_eq!(
                nft.maps["vif_tenants"].elements,
                bpf.maps["tg_vifs"].elements
            );
        }
        assert_eq!(bpf.maps["tg_config"].kind, MapKind::BpfConfig);
        // The registry stays in nftables, and nothing of the eBPF maps is
        // rendered into the table.
        assert!(bpf.maps.contains_key(compiler::REG_TENANTS));
        assert!(!plan::render::plan_nft(&bpf).contains("tg_"));
        let used: std::collections::BTreeSet<Program> = bpf
            .filters
            .values()
            .filter_map(|f| match f.select {
                Select::Ebpf(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(used, programs.iter().copied().collect(), "{name}");
        assert!(bpf
            .filters
            .values()
            .filter(|f| matches!(f.select, Select::Ebpf(_)))
            .all(|f| f.redirect_to.is_some()));
    }
}

/// The router example with `[site]` lines added.
fn router_with(site_lines: &str) -> policy::Policy {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/router.toml"
    ));
    let text = std::fs::read_to_string(path).unwrap().replacen(
        "[site]\n",
        &format!("[site]\n{site_lines}\n"),
        1,
    );
    load("router.toml", &text)
}

#[test]
fn shape_on_interface_puts_the_trees_on_the_lan_and_the_uplink() {
    let name = |s: &str| net_types::IfName::new(s).unwrap();
    for classifier in ["ebpf", "nftables"] {
        let ifb = compiled(
            &router_with(&format!("classifier = \"{classifier}\"")),
            &Live::default(),
        );
        let c = compiled(
            &router_with(&format!(
                "classifier = \"{classifier}\"\nshape_on = \"interface\""
            )),
            &Live::default(),
        );
        // No IFB; the same trees, class for class, on lan0 (down) and wan0 (up).
        assert!(c.plan.links.is_empty(), "{classifier}");
        let moved: Vec<_> = ifb
            .plan
            .classes
            .iter()
            .map(|(k, v)| {
                let dev = match k.dev.as_str() {
                    "tg-down" => name("lan0"),
                    "tg-up" => name("wan0"),
                    other => panic!("a class on {other}"),
                };
                (plan::ClassKey { dev, ..*k }, *v)
            })
            .collect();
        assert_eq!(
            moved,
            c.plan
                .classes
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect::<Vec<_>>()
        );
        // Nothing redirects: the eBPF filters only classify; the nftables
        // path needs no tc hook at all.
        for (k, f) in &c.plan.filters {
            assert_eq!(f.redirect_to, None, "{classifier} {k:?}");
        }
        let hooks: Vec<_> = c
            .plan
            .filters
            .keys()
            .filter(|k| k.hook == plan::Hook::Egress)
            .collect();
        assert_eq!(hooks.len(), if classifier == "ebpf" { 2 } else { 0 });
        // The placements read back from the interfaces' trees.
        assert_eq!(Live::from_plan(&c.plan), c.placements, "{classifier}");
    }
}

#[test]
fn shape_on_interface_refuses_an_operators_root_qdisc() {
    let p = router_with("classifier = \"ebpf\"\nshape_on = \"interface\"");
    let facts = HostFacts {
        foreign_roots: [(
            net_types::IfName::new("lan0").unwrap(),
            "tbf 8001:".to_string(),
        )]
        .into_iter()
        .collect(),
        ..HostFacts::default()
    };
    let err = compile(&p, &facts).unwrap_err();
    assert_eq!(err.len(), 1, "{err:#?}");
    assert!(err[0].message.contains("`lan0`"), "{}", err[0].message);
    assert!(err[0].message.contains("tbf 8001:"), "{}", err[0].message);
    let hint = err[0].hint.as_deref().unwrap_or_default();
    assert!(hint.contains("tc qdisc del dev lan0 root"), "{hint}");
    // With the IFBs, an operator's root qdisc is none of tollgate's business.
    let ifb = router_with("classifier = \"ebpf\"");
    assert!(compile(&ifb, &facts).is_ok());
}
