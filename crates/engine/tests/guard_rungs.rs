//! Issue 15: the `throttle` and `drop` rungs are effects like every
//! other rung. A flood climbs a ladder of throttle then signature drop,
//! each decision carries the rung's settings and the victim's /32 (what
//! the shell puts in the prepared sets), a restart hands both back as
//! `Restore`, and `unban` stops both.

use engine::guard::{CaptureCounts, GuardCommand, GuardEffect, GuardInput, GuardTick};
use engine::io::{Command, Effect, Input, Intervals, PolicyText, Start};
use engine::Engine;
use guard::{Action, Decision, Direction, HostCounters, HostSample, Monotonic, Observation, Rung};
use jiff::Timestamp;
use net_types::{Prefix, Rate};

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["203.0.113.0/24"]

[guard]
networks = ["203.0.113.0/24"]
instant = "0s"
calm = "2s"

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 1000

[[guard.ladder]]
rung = "throttle"
hold = "10s"
rate = "2mbit"

[[guard.ladder]]
rung = "drop"
after = "1s"
hold = "30s"
match = "signature"
"#;

const VICTIM: &str = "203.0.113.7";

fn t0() -> Timestamp {
    "2026-12-06T12:00:00Z".parse().unwrap()
}

fn start() -> Engine {
    let s = Start {
        policy: PolicyText {
            name: "guard.toml".into(),
            text: POLICY.into(),
            files: Default::default(),
        },
        settings: None,
        resume: None,
        records: Default::default(),
        intervals: Intervals {
            read_ms: 10_000,
            reconcile_ms: 60_000,
        },
        flows: false,
        transit: Default::default(),
    };
    Engine::start(t0(), s).unwrap().0
}

/// A tick at `ms` with `pps` UDP from source port 53 towards the victim.
fn tick(ms: u64, pps: u64) -> Input {
    let packets = pps / 10;
    let hosts = if packets == 0 {
        Vec::new()
    } else {
        vec![HostSample {
            addr: VICTIM.parse().unwrap(),
            direction: Direction::In,
            counters: HostCounters {
                packets,
                bytes: packets * 500,
                udp_packets: packets,
                udp_bytes: packets * 500,
                top_udp_src_ports: vec![(53, packets)].into(),
                ..HostCounters::default()
            },
        }]
    };
    Input::Guard(GuardInput::Tick(GuardTick {
        observation: Observation {
            at: Monotonic::from_millis(ms),
            hosts,
        },
        capture: CaptureCounts {
            frames: packets,
            ..CaptureCounts::default()
        },
        scans: Vec::new(),
    }))
}

fn decisions(effects: Vec<Effect>) -> Vec<Decision> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Guard(GuardEffect::Apply { decision }) => Some(*decision),
            _ => None,
        })
        .collect()
}

fn saved(effects: &[Effect]) -> Option<guard::SavedState> {
    effects.iter().rev().find_map(|e| match e {
        Effect::Guard(GuardEffect::Save { state }) => Some(state.clone()),
        _ => None,
    })
}

#[test]
fn throttle_then_signature_drop_are_decided_restored_and_stopped() {
    let mut e = start();
    let mut effects = e.handle(t0(), tick(0, 0));
    for ms in (100..=1_500).step_by(100) {
        effects.extend(e.handle(t0(), tick(ms, 20_000)));
    }
    let state = saved(&effects).expect("saved");
    let d = decisions(effects);
    let victim = Prefix::parse("203.0.113.7/32").unwrap();
    let Decision::Start(first) = &d[0] else {
        panic!("{d:?}")
    };
    assert_eq!(first.rung, Rung::Throttle);
    assert_eq!(
        first.action,
        Action::Throttle {
            rate: Rate::from_bps(2_000_000).unwrap()
        }
    );
    assert_eq!(first.prefixes, [victim]);
    let drop = d
        .iter()
        .find_map(|x| match x {
            Decision::Escalate { from, step } => Some((*from, step)),
            _ => None,
        })
        .expect("an escalation");
    assert_eq!(drop.0, Rung::Throttle);
    assert_eq!(drop.1.action, Action::Drop { signature: true });
    assert_eq!(drop.1.prefixes, [victim]);
    // What the shell builds the signature from: UDP from port 53.
    assert_eq!(
        drop.1.attack.kind,
        guard::AttackKind::Amplification { port: 53 }
    );

    // A new engine with the saved state: both rungs come back.
    let mut again = start();
    let back = decisions(again.handle(
        t0(),
        Input::Guard(GuardInput::Restore {
            at: Monotonic::from_millis(0),
            saved: state,
        }),
    ));
    let restored: Vec<(Rung, &Action)> = back
        .iter()
        .filter_map(|x| match x {
            Decision::Restore(s) => Some((s.rung, &s.action)),
            _ => None,
        })
        .collect();
    assert_eq!(restored.len(), 2, "{back:?}");
    assert!(restored.contains(&(Rung::Drop, &Action::Drop { signature: true })));

    // Unban stops both, the top one first.
    let out = decisions(again.handle(
        t0(),
        Input::Command {
            id: 1,
            command: Command::Guard {
                guard: GuardCommand::Unban {
                    target: VICTIM.parse().unwrap(),
                    direction: None,
                },
            },
        },
    ));
    let stopped: Vec<Rung> = out
        .iter()
        .filter_map(|x| match x {
            Decision::Stop { step, .. } => Some(step.rung),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, [Rung::Drop, Rung::Throttle], "{out:?}");
}
