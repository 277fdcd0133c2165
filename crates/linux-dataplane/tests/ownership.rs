//! What tollgate owns on interfaces it shares with the operator, against
//! the real kernel: observe → diff → apply, as `apply`, `hook vif` and
//! `down` run it, inside a private network namespace.
//!
//! Needs root, iproute2 and nft (see `common` for running without root).

mod common;

use common::{one_at_a_time, Netns};
use linux_dataplane::apply::KeptClsact;
use linux_dataplane::{ApplyOptions, ClsactOwner, Dataplane};
use net_types::IfName;
use plan::{
    diff, Attach, Filter, FilterKey, Hook, Plan, Qdisc, QdiscKey, Select, FILTER_PRIO_BASE,
};
use std::collections::BTreeMap;

fn dev(name: &str) -> IfName {
    IfName::new(name).unwrap()
}

/// What tollgate would want on these vifs: a clsact qdisc and one of its
/// filters on the egress hook.
fn hooked(vifs: &[&str]) -> Plan {
    let mut p = Plan::default();
    for v in vifs {
        p.qdiscs.insert(
            QdiscKey {
                dev: dev(v),
                attach: Attach::Clsact,
            },
            Qdisc::Clsact,
        );
        p.filters.insert(
            FilterKey {
                dev: dev(v),
                hook: Hook::Egress,
                prio: FILTER_PRIO_BASE,
            },
            Filter {
                select: Select::All,
                redirect_to: None,
            },
        );
    }
    p
}

/// One reconcile round as `tollgate apply` runs it (observe without a hint,
/// read again with the desired plan as the hint, diff, apply); then checks
/// that the kernel accepted everything and that a second round has nothing
/// to do.
fn converge(dp: &mut Dataplane, want: &Plan) {
    let observed = dp.observe(&Plan::default()).unwrap();
    let changes = diff(want, &observed.plan_for(want));
    let report = dp.apply(&changes, &ApplyOptions::default()).unwrap();
    assert!(
        report.failed.is_empty(),
        "the kernel refused: {:?}\nchanges: {changes:?}",
        report.failed
    );
    let again = dp.observe(&Plan::default()).unwrap();
    let rest = diff(want, &again.plan_for(want));
    assert!(rest.is_empty(), "not converged after a round: {rest:?}");
}

/// `tollgate down`: everything tollgate observes as its own, removed.
fn down(dp: &mut Dataplane) {
    let observed = dp.observe(&Plan::default()).unwrap();
    let changes = diff(&Plan::default(), &observed.plan);
    let report = dp.apply(&changes, &ApplyOptions::default()).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
}

fn qdiscs(ns: &Netns, vif: &str) -> String {
    ns.tc(&["qdisc", "show", "dev", vif])
}

fn filters(ns: &Netns, vif: &str, hook: &str) -> String {
    ns.tc(&["filter", "show", "dev", vif, hook])
}

/// The operator's objects, as the issue found them removed: a prio-100
/// bpf filter on v0's ingress (on the operator's clsact) and an empty
/// clsact on v1. tollgate hooks v0, v1 and v2 (where it creates the
/// clsact), unhooks v0 and hooks it again, and goes down. The operator's
/// filter and clsact survive every step; tollgate's clsact on v2 goes.
#[test]
fn down_and_unhook_leave_the_operators_clsact_and_filters() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("owner") else {
        return;
    };
    ns.ip(&["link", "add", "v2", "type", "veth", "peer", "name", "v3"]);
    ns.ip(&["link", "set", "v2", "up"]);
    ns.tc(&["qdisc", "add", "dev", "v0", "clsact"]);
    ns.tc(&[
        "filter",
        "add",
        "dev",
        "v0",
        "ingress",
        "prio",
        "100",
        "protocol",
        "all",
        "bpf",
        "bytecode",
        "1,6 0 0 0",
    ]);
    ns.tc(&["qdisc", "add", "dev", "v1", "clsact"]);
    let operators_filter = |ns: &Netns| {
        let f = filters(ns, "v0", "ingress");
        assert!(
            f.contains("pref 100 bpf") && f.contains("handle 0x1"),
            "the operator's filter on v0 is gone:\n{f}"
        );
    };

    ns.inside(|| {
        let mut dp = Dataplane::open().unwrap();
        converge(&mut dp, &hooked(&["v0", "v1", "v2"]));
        assert!(filters(&ns, "v2", "egress").contains("pref 49152"));
        assert!(
            ns.tc(&["chain", "show", "dev", "v2", "ingress"])
                .contains("chain 122057831"),
            "the clsact tollgate created carries its mark"
        );
        let o = dp.observe(&Plan::default()).unwrap();
        assert_eq!(
            o.clsacts,
            BTreeMap::from([
                (dev("v0"), ClsactOwner::Operator),
                (dev("v1"), ClsactOwner::Operator),
                (dev("v2"), ClsactOwner::Tollgate),
            ])
        );

        // `hook vif offline v0`, then online again.
        converge(&mut dp, &hooked(&["v1", "v2"]));
        operators_filter(&ns);
        assert!(qdiscs(&ns, "v0").contains("clsact"));
        assert!(!filters(&ns, "v0", "egress").contains("pref 49152"));
        converge(&mut dp, &hooked(&["v0", "v1", "v2"]));
        operators_filter(&ns);

        down(&mut dp);
    });
    operators_filter(&ns);
    assert!(
        qdiscs(&ns, "v1").contains("clsact"),
        "the operator's empty clsact on v1 was removed"
    );
    assert!(
        !qdiscs(&ns, "v2").contains("clsact"),
        "tollgate's own clsact on v2 was left behind:\n{}",
        qdiscs(&ns, "v2")
    );
    for v in ["v0", "v1"] {
        for hook in ["ingress", "egress"] {
            let f = filters(&ns, v, hook);
            assert!(!f.contains("pref 49152"), "tollgate's filter left: {f}");
        }
    }
}

/// A clsact tollgate created, on which the operator then put a filter of
/// their own: `down` removes tollgate's filter and leaves the clsact with
/// the operator's filter on it.
#[test]
fn down_keeps_a_tollgate_clsact_that_the_operator_also_uses() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("shared") else {
        return;
    };
    ns.inside(|| {
        let mut dp = Dataplane::open().unwrap();
        converge(&mut dp, &hooked(&["v0"]));
    });
    ns.tc(&[
        "filter",
        "add",
        "dev",
        "v0",
        "ingress",
        "prio",
        "100",
        "protocol",
        "all",
        "bpf",
        "bytecode",
        "1,6 0 0 0",
    ]);
    ns.inside(|| {
        let mut dp = Dataplane::open().unwrap();
        // Another round sees the operator's filter and still converges.
        converge(&mut dp, &hooked(&["v0"]));
        let o = dp.observe(&Plan::default()).unwrap();
        assert_eq!(o.clsacts.get(&dev("v0")), Some(&ClsactOwner::Shared));
        down(&mut dp);
        // And `down` again has nothing left to do.
        let o = dp.observe(&Plan::default()).unwrap();
        let rest = diff(&Plan::default(), &o.plan);
        assert!(rest.is_empty(), "{rest:?}");
    });
    let f = filters(&ns, "v0", "ingress");
    assert!(
        f.contains("pref 100 bpf"),
        "the operator's filter went:\n{f}"
    );
    assert!(!filters(&ns, "v0", "egress").contains("pref 49152"));
}

/// Whatever a change set says, apply does not remove a clsact qdisc that
/// tollgate did not create (an operator's, empty) or that someone else's
/// filter is on: it reports them as kept instead.
#[test]
fn apply_keeps_clsacts_that_are_not_tollgates_whatever_the_plan_says() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("keep") else {
        return;
    };
    ns.tc(&["qdisc", "add", "dev", "v0", "clsact"]);
    ns.inside(|| {
        let mut dp = Dataplane::open().unwrap();
        converge(&mut dp, &hooked(&["v1"]));
    });
    ns.tc(&[
        "filter", "add", "dev", "v1", "egress", "prio", "7", "protocol", "all", "u32", "match",
        "u32", "0", "0",
    ]);
    let remove_both = plan::ChangeSet {
        changes: ["v0", "v1"]
            .iter()
            .map(|v| plan::Change::DelQdisc {
                key: QdiscKey {
                    dev: dev(v),
                    attach: Attach::Clsact,
                },
            })
            .collect(),
    };
    let report = ns.inside(|| {
        let mut dp = Dataplane::open().unwrap();
        dp.observe(&Plan::default()).unwrap();
        dp.apply(&remove_both, &ApplyOptions::default()).unwrap()
    });
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        report.kept,
        vec![
            KeptClsact {
                dev: dev("v0"),
                owner: ClsactOwner::Operator
            },
            KeptClsact {
                dev: dev("v1"),
                owner: ClsactOwner::Shared
            },
        ]
    );
    assert!(qdiscs(&ns, "v0").contains("clsact"));
    assert!(qdiscs(&ns, "v1").contains("clsact"));
    assert!(filters(&ns, "v1", "egress").contains("pref 7 u32"));
}
