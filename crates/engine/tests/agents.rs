//! Issue 16, item 3: a central tollgate takes agents' batches as engine
//! commands. The engine asks the shell to add each to the history (the
//! daemon stays its only writer), answers with the writer's committed
//! sequence, a duplicate as a success that counted once, the store's
//! trouble as a failure, and shows each writer in the snapshot.

use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use engine::io::{Answer, Command, Effect, Input, Intervals, PolicyText, Start};
use engine::records::Records;
use engine::shipping::{AddOutcome, ShippedBatch};
use engine::Engine;
use jiff::{SignedDuration, Timestamp};
use net_types::{RealmId, TenantId};
use std::collections::BTreeMap;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

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
        flows: false,
        transit: Default::default(),
    }
}

fn batch(slot: i64) -> ShippedBatch {
    ShippedBatch {
        writer: "hv1".into(),
        sequence: slot as u64,
        samples: vec![Sample {
            slot: Slot(slot),
            key: UsageKey {
                tenant: TenantId(1),
                realm: RealmId(2),
                direction: Direction::Down,
                band: Band::Normal,
                source: Source::Kernel,
            },
            bytes: 1042,
            packets: 1,
        }],
        coverage: vec![SlotCoverage {
            slot: Slot(slot),
            status: SlotStatus::Measured,
        }],
    }
}

fn reply(effects: &[Effect], id: u64) -> Answer {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Reply { id: i, answer } if *i == id => Some(answer.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply to {id} in {effects:?}"))
}

#[test]
fn a_batch_is_added_through_the_shell_once_and_each_writer_is_shown() {
    let t0 = Timestamp::from_second(1_800_000_000).unwrap();
    let (mut engine, _) = Engine::start(t0, start()).unwrap();
    let b = batch(6_000_000);
    let fx = engine.handle(
        t0,
        Input::Command {
            id: 7,
            command: Command::AddBatch(Box::new(b.clone())),
        },
    );
    // The engine writes nothing itself: the shell adds it, unchanged.
    assert_eq!(
        fx,
        vec![Effect::AddBatch {
            id: 7,
            batch: Box::new(b.clone())
        }]
    );
    let added = |outcome| Input::BatchAdded {
        id: 7,
        writer: "hv1".into(),
        sequence: b.sequence,
        last_slot: Some(Slot(6_000_000)),
        bytes: 1000,
        outcome,
    };
    let fx = engine.handle(t0, added(AddOutcome::Committed { refused: vec![] }));
    // The figures are saved for `tollgate status`.
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::SaveAgents { agents } if agents["hv1"].bytes == 1000)),
        "{fx:?}"
    );
    assert_eq!(
        reply(&fx, 7),
        Answer::BatchAdded {
            writer: "hv1".into(),
            sequence: 6_000_000,
            duplicate: false
        }
    );
    let later = t0 + SignedDuration::from_secs(10);
    let fx = engine.handle(later, added(AddOutcome::AlreadyAdded { last: 6_000_001 }));
    assert_eq!(
        reply(&fx, 7),
        Answer::BatchAdded {
            writer: "hv1".into(),
            sequence: 6_000_001,
            duplicate: true
        }
    );
    let fx = engine.handle(
        later,
        added(AddOutcome::Failed {
            error: "database is locked".into(),
        }),
    );
    assert!(
        matches!(reply(&fx, 7), Answer::Failed { ref message } if message.contains("locked")),
        "{fx:?}"
    );
    let snap = engine.snapshot(later);
    let a = &snap.agents["hv1"];
    assert_eq!(
        (a.sequence, a.last_slot, a.at),
        (6_000_001, Some(Slot(6_000_000)), later)
    );
    assert_eq!((a.batches, a.bytes, a.duplicates), (1, 1000, 1));
    // After a restart, the saved counts come back; what arrived since
    // start is newer and stays.
    let mut saved = snap.agents.clone();
    saved.get_mut("hv1").unwrap().batches = 99;
    let mut older = saved["hv1"].clone();
    older.batches = 5;
    saved.insert("hv0".into(), older);
    let fx = engine.handle(later, Input::AgentsRestored { agents: saved });
    assert!(fx.is_empty(), "{fx:?}");
    let snap = engine.snapshot(later);
    assert_eq!(snap.agents["hv1"].batches, 1);
    assert_eq!(snap.agents["hv0"].batches, 5);
}
