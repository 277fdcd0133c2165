//! Issue 12, item 7: fail closed. An unreadable routes table once became
//! "no realms", and the next round reconciled every route realm out of the
//! kernel. Now the shell reports it as [`Input::RoutesUnreadable`] and the
//! engine keeps the last good table: no round is started because of it,
//! the rounds that follow still want the route realms in the kernel, and
//! the error is in the snapshot (which the API's status and metrics show,
//! see crates/api/tests/routes_unreadable.rs) until a good table comes.

use engine::io::{Applied, Effect, Input, Intervals, Level, Observation, PolicyText, Start};
use engine::records::Records;
use engine::Engine;
use jiff::{SignedDuration, Timestamp};
use net_types::{Prefix, RealmId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// National by BGP community: which prefixes are national is known only
/// from the routes table.
const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.national]
id = 1
communities = ["65001:100"]

[realms.international]
id = 2

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

fn start() -> Start {
    Start {
        policy: PolicyText {
            name: "policy.toml".into(),
            text: POLICY.into(),
            files: BTreeMap::new(),
        },
        settings: None,
        resume: None,
        records: Records::default(),
        intervals: Intervals {
            read_ms: 60_000,
            reconcile_ms: 60_000,
        },
        flows: true,
        transit: Default::default(),
    }
}

/// The kernel, simulated: it holds what the last converge asked for.
struct Kernel {
    plan: Option<plan::Plan>,
}

impl Kernel {
    fn observation(&self) -> Input {
        Input::Observed(Box::new(Observation {
            interfaces: ["wan0", "lan0"]
                .iter()
                .map(|n| net_types::IfName::new(n).unwrap())
                .collect(),
            offline: Default::default(),
            bridges: Default::default(),
            foreign_roots: Default::default(),
            live: self
                .plan
                .as_ref()
                .map(compiler::Live::from_plan)
                .unwrap_or_default(),
            counters: Vec::new(),
        }))
    }

    /// Answers the effects that ask a question, until none is left;
    /// returns every effect and the changes each converge made.
    fn run(&mut self, engine: &mut Engine, now: Timestamp, first: Vec<Effect>) -> Round {
        let mut round = Round::default();
        let mut queue: std::collections::VecDeque<Effect> = first.into();
        while let Some(e) = queue.pop_front() {
            let answer = match &e {
                Effect::Observe => Some(self.observation()),
                Effect::ReadCounters => Some(Input::CountersRead {
                    counters: Vec::new(),
                }),
                Effect::Converge { desired, .. } => {
                    let changes = match &self.plan {
                        Some(p) => plan::diff(desired, p).len(),
                        None => plan::diff(desired, &plan::Plan::default()).len(),
                    };
                    round.changes.push(changes);
                    round.desired.push(desired.clone());
                    self.plan = Some((**desired).clone());
                    Some(Input::Applied(Box::new(Applied {
                        changes,
                        applied: changes,
                        failed: Vec::new(),
                        readings: Vec::new(),
                        created: Vec::new(),
                        elapsed_ms: 1.0,
                        error: None,
                    })))
                }
                Effect::Store(b) => Some(Input::Stored(engine::io::Stored::Committed {
                    sequence: b.sequence,
                    refused: Vec::new(),
                })),
                Effect::CommitFlows => Some(Input::FlowsCommitted {
                    samples: 0,
                    error: None,
                }),
                _ => None,
            };
            round.effects.push(e);
            if let Some(input) = answer {
                queue.extend(engine.handle(now, input));
            }
        }
        round
    }
}

#[derive(Default)]
struct Round {
    effects: Vec<Effect>,
    changes: Vec<usize>,
    desired: Vec<Arc<plan::Plan>>,
}

impl Round {
    fn events(&self, kind: &str) -> Vec<&engine::io::Event> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Event(ev) if ev.kind == kind => Some(ev),
                _ => None,
            })
            .collect()
    }
}

fn national() -> Vec<(Prefix, RealmId)> {
    vec![
        (Prefix::parse("198.51.100.0/24").unwrap(), RealmId(1)),
        (Prefix::parse("2001:db8:100::/48").unwrap(), RealmId(1)),
    ]
}

#[test]
fn an_unreadable_routes_table_keeps_the_last_good_realms_and_changes_nothing() {
    let t0: Timestamp = "2026-10-31T00:00:00Z".parse().unwrap();
    let mut kernel = Kernel { plan: None };
    let (mut engine, first) = Engine::start(t0, start()).unwrap();
    let r = kernel.run(&mut engine, t0, first);
    assert_eq!(r.desired.len(), 1, "the first round converges");
    let without_routes = r.desired[0].clone();

    // A good table: the national routes reach the kernel.
    let t1 = t0 + SignedDuration::from_secs(10);
    let out = engine.handle(t1, Input::RoutesChanged { realms: national() });
    let r = kernel.run(&mut engine, t1, out);
    assert_eq!(r.desired.len(), 1, "a new table starts a round");
    assert!(r.changes[0] > 0, "the route realms went into the kernel");
    let with_routes = r.desired[0].clone();
    assert_ne!(
        with_routes, without_routes,
        "the route realms are in the plan (else this test could not tell them apart)"
    );
    assert!(r
        .effects
        .iter()
        .any(|e| matches!(e, Effect::RebuildFlowTables)));
    assert_eq!(engine.snapshot(t1).routes_error, None);

    // The table becomes unreadable.
    let t2 = t1 + SignedDuration::from_secs(10);
    let error = "/var/lib/tollgate/routes/table.tgr is damaged at offset 12: truncated";
    let out = engine.handle(
        t2,
        Input::RoutesUnreadable {
            error: error.into(),
        },
    );
    assert!(
        out.iter().all(|e| matches!(e, Effect::Event(_))),
        "nothing but the report is done because of an unreadable table: {out:?}"
    );
    let r = kernel.run(&mut engine, t2, out);
    let reported = r.events("routes_unreadable");
    assert_eq!(reported.len(), 1, "{:?}", r.effects);
    assert_eq!(reported[0].level, Level::Error);
    assert!(
        reported[0].message.contains(error) && reported[0].message.contains("last good"),
        "{}",
        reported[0].message
    );
    let snap = engine.snapshot(t2);
    assert_eq!(snap.routes_error.as_deref(), Some(error));
    assert_eq!(**engine.route_realms(), national(), "the last good realms");
    assert!(snap.events.iter().any(|e| e.kind == "routes_unreadable"));

    // Reported once while it stays the same; the next rounds still want
    // the route realms, so they change nothing in the kernel.
    for k in 1..=3 {
        let t = t2 + SignedDuration::from_secs(60 * k);
        let mut out = engine.handle(
            t,
            Input::RoutesUnreadable {
                error: error.into(),
            },
        );
        assert!(out.is_empty(), "{out:?}");
        out.extend(engine.handle(t, Input::Tick));
        let r = kernel.run(&mut engine, t, out);
        assert_eq!(r.desired.len(), 1, "round {k} ran");
        assert_eq!(
            r.desired[0], with_routes,
            "round {k} keeps the route realms"
        );
        assert_eq!(r.changes, vec![0], "round {k} changed the kernel");
        assert!(r.events("routes_unreadable").is_empty());
        assert_eq!(engine.snapshot(t).routes_error.as_deref(), Some(error));
    }
    assert_eq!(kernel.plan.as_ref(), Some(&*with_routes));

    // Another error is reported again.
    let t3 = t2 + SignedDuration::from_secs(300);
    let other = "cannot read /var/lib/tollgate/routes/table.tgr: permission denied";
    let out = engine.handle(
        t3,
        Input::RoutesUnreadable {
            error: other.into(),
        },
    );
    let r = kernel.run(&mut engine, t3, out);
    assert_eq!(r.events("routes_unreadable").len(), 1);
    assert!(r.desired.is_empty());
    assert_eq!(engine.snapshot(t3).routes_error.as_deref(), Some(other));

    // A good table again clears the error.
    let t4 = t3 + SignedDuration::from_secs(10);
    let out = engine.handle(t4, Input::RoutesChanged { realms: national() });
    let r = kernel.run(&mut engine, t4, out);
    assert_eq!(r.changes, vec![0]);
    assert_eq!(engine.snapshot(t4).routes_error, None);
}
