//! A recorded day, replayed.
//!
//! A simulated shell answers the engine's effects for 26 hours of a
//! router with two tenants (one far over its quota), across the end of a
//! billing period: the engine moves the heavy tenant into the overage
//! pool, returns it when the period ends, and keeps accounting
//! throughout. Every input is recorded as one JSON line with its time;
//! feeding the recording to a new engine must give byte-identical
//! effects. Time is an input, so the day passes in about a second.

use accounting::{Sample, SlotCoverage};
use billing::{RealmSelection, Series};
use engine::io::{
    Applied, Assessment, Effect, Input, Intervals, Observation, PolicyText, Start, Stored,
};
use engine::records::Records;
use engine::Engine;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "world"

[realms.world]
id = 1

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[plans.overage]
shared = true
id = 100
down = { rate = "5mbit", ceil = "10mbit" }
up = { rate = "5mbit", ceil = "10mbit" }

[[tenants]]
id = 1
name = "heavy"
plan = "home"      # moved by the automation, and back
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
name = "light"
plan = "home"
prefixes = ["100.64.2.0/24"]

[billing]
quota = "1gb"

[overage]
enabled = true
plan = "overage"
check_every = "5m"
"#;

/// The shell's side, simulated: the kernel's counters grow by a fixed
/// amount per tenant per second; the store keeps what it is given.
struct Sim {
    policy: PolicyText,
    samples: Vec<Sample>,
    coverage: Vec<SlotCoverage>,
    /// Bytes per class so far.
    counters: BTreeMap<plan::ClassKey, u64>,
    desired: Option<plan::Plan>,
    last: Timestamp,
    records: Records,
}

impl Sim {
    /// The kernel's counters at `now`: each tenant's download leaf grows by
    /// its rate (heavy: 1 MB/s, light: 10 kB/s).
    fn counters(&mut self, now: Timestamp) -> Vec<(plan::ClassKey, u64, u64)> {
        let secs = now.duration_since(self.last).as_secs().max(0) as u64;
        self.last = now;
        let loaded = self.policy.load();
        let policy = loaded.policy.expect("the simulated policy is valid");
        if let Some(d) = &self.desired {
            let facts = compiler::HostFacts {
                interfaces: None,
                live: compiler::Live::from_plan(d),
                ..compiler::HostFacts::default()
            };
            let compiled = compiler::compile(&policy, &facts).expect("compiles");
            for (class, key) in engine::feeds::feeds(&compiled) {
                let rate = match (key.tenant.0, key.direction) {
                    (1, accounting::Direction::Down) => 1_000_000,
                    (2, accounting::Direction::Down) => 10_000,
                    _ => 0,
                };
                *self.counters.entry(class).or_default() += rate * secs;
            }
        }
        self.counters
            .iter()
            .map(|(k, b)| (*k, *b, *b / 1000))
            .collect()
    }

    /// Answers one effect, as the real shell would.
    fn answer(&mut self, now: Timestamp, e: &Effect) -> Option<Input> {
        Some(match e {
            Effect::Observe => Input::Observed(Box::new(Observation {
                interfaces: ["wan0", "lan0"]
                    .iter()
                    .map(|n| net_types::IfName::new(n).unwrap())
                    .collect(),
                offline: Default::default(),
                bridges: Default::default(),
                foreign_roots: Default::default(),
                live: self
                    .desired
                    .as_ref()
                    .map(compiler::Live::from_plan)
                    .unwrap_or_default(),
                counters: self.counters(now),
            })),
            Effect::ReadCounters => Input::CountersRead {
                counters: self.counters(now),
            },
            Effect::Converge { desired, .. } => {
                let changes = self
                    .desired
                    .as_ref()
                    .map_or(desired.classes.len(), |d| plan::diff(desired, d).len());
                // A class the plan no longer has is gone, counter and all.
                self.counters.retain(|k, _| desired.classes.contains_key(k));
                self.desired = Some((**desired).clone());
                Input::Applied(Box::new(Applied {
                    changes,
                    applied: changes,
                    failed: Vec::new(),
                    readings: Vec::new(),
                    created: Vec::new(),
                    elapsed_ms: 1.0,
                    error: None,
                }))
            }
            Effect::Store(b) => {
                self.samples.extend(b.samples.iter().copied());
                self.coverage.extend(b.coverage.iter().copied());
                Input::Stored(Stored::Committed {
                    sequence: b.sequence,
                    refused: Vec::new(),
                })
            }
            Effect::AssessOverage(q) => {
                let decisions = q
                    .tenants
                    .iter()
                    .map(|(id, commit)| {
                        let mine: Vec<Sample> = self
                            .samples
                            .iter()
                            .filter(|s| s.key.tenant == *id && q.period.contains(s.slot))
                            .copied()
                            .collect();
                        let series = Series::build(
                            &q.period,
                            *id,
                            &RealmSelection::All,
                            &mine,
                            &self.coverage,
                        )
                        .expect("plausible samples");
                        let elapsed = (q.now_slot - q.period.first_slot().0).max(0) as usize;
                        let p = billing::project(&series, elapsed, &q.rule, q.counts);
                        (id.0, billing::decide(&p, *commit, q.quota, &q.policy))
                    })
                    .collect();
                Input::OverageAssessed(Box::new(Assessment {
                    period: q.period.label.clone(),
                    decisions,
                    error: None,
                }))
            }
            Effect::WritePolicy { previous, text } => {
                assert_eq!(
                    *previous, self.policy.text,
                    "the engine edits what it loaded"
                );
                self.policy = self.policy.with_text(text.clone());
                Input::PolicyWritten { error: None }
            }
            Effect::SaveRecords(r) => {
                self.records = r.clone();
                return None;
            }
            Effect::CommitFlows => Input::FlowsCommitted {
                samples: 0,
                error: None,
            },
            _ => return None,
        })
    }
}

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
            reconcile_ms: 300_000,
        },
        flows: false,
        transit: Default::default(),
    }
}

/// Runs the day; returns the recording (time and input, as JSON lines),
/// every effect as JSON, and the simulation.
fn day() -> (Vec<String>, Vec<String>, Sim) {
    let t0: Timestamp = "2026-10-31T00:00:00Z".parse().unwrap();
    let mut sim = Sim {
        policy: start().policy,
        samples: Vec::new(),
        coverage: Vec::new(),
        counters: BTreeMap::new(),
        desired: None,
        last: t0,
        records: Records::default(),
    };
    let mut recording = Vec::new();
    let mut effects = Vec::new();
    let record = |rec: &mut Vec<String>, at: Timestamp, input: &Input| {
        rec.push(serde_json::to_string(&(at, input)).unwrap());
    };
    let first = Input::Start(Box::new(start()));
    record(&mut recording, t0, &first);
    let Input::Start(s) = first else {
        unreachable!()
    };
    let (mut engine, out) = Engine::start(t0, *s).unwrap();
    let mut queue: std::collections::VecDeque<Input> = Default::default();
    let mut now = t0;
    let handle_all = |engine: &mut Engine,
                      now: Timestamp,
                      out: Vec<Effect>,
                      sim: &mut Sim,
                      queue: &mut std::collections::VecDeque<Input>,
                      effects: &mut Vec<String>| {
        for e in &out {
            effects.push(serde_json::to_string(e).unwrap());
            if let Some(i) = sim.answer(now, e) {
                queue.push_back(i);
            }
        }
        let _ = engine;
    };
    handle_all(&mut engine, now, out, &mut sim, &mut queue, &mut effects);
    let end = t0 + SignedDuration::from_hours(26);
    while now < end {
        while let Some(input) = queue.pop_front() {
            record(&mut recording, now, &input);
            let out = engine.handle(now, input);
            handle_all(&mut engine, now, out, &mut sim, &mut queue, &mut effects);
        }
        now = engine.next_due().max(now + SignedDuration::from_secs(1));
        queue.push_back(Input::Tick);
    }
    (recording, effects, sim)
}

#[test]
fn a_recorded_day_replays_to_identical_effects_across_a_period_boundary() {
    let (recording, effects, sim) = day();
    // The day did what it should: the heavy tenant was moved, and
    // returned when October ended; the light one never moved.
    let events: Vec<serde_json::Value> = effects
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(e).unwrap())
        .filter(|e| e["effect"] == "event")
        .collect();
    let kind = |k: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == k)
            .cloned()
            .collect::<Vec<_>>()
    };
    let moves = kind("overage_move");
    let returns = kind("overage_return");
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0]["tenant"], 1);
    assert!(moves[0]["at"].as_str().unwrap() < "2026-11-01", "{moves:?}");
    assert_eq!(returns.len(), 1, "{returns:?}");
    assert!(returns[0]["message"]
        .as_str()
        .unwrap()
        .contains("its period ended"));
    assert!(
        returns[0]["at"].as_str().unwrap() >= "2026-11-01",
        "{returns:?}"
    );
    assert!(
        sim.policy
            .text
            .contains("name = \"heavy\"\nplan = \"home\"      # moved by the automation, and back"),
        "{}",
        sim.policy.text
    );
    assert!(sim.records.moves.is_empty());
    // Accounting went on: a sample for every slot of the heavy tenant.
    let heavy_slots = sim
        .samples
        .iter()
        .filter(|s| s.key.tenant.0 == 1)
        .map(|s| s.slot)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(heavy_slots.len() >= 26 * 12 - 2, "{}", heavy_slots.len());

    // Replay: a new engine fed the recording gives the same effects.
    let mut replayed = Vec::new();
    let mut engine: Option<Engine> = None;
    for line in &recording {
        let (at, input): (Timestamp, Input) = serde_json::from_str(line).unwrap();
        let out = match (input, &mut engine) {
            (Input::Start(s), None) => {
                let (e, out) = Engine::start(at, *s).unwrap();
                engine = Some(e);
                out
            }
            (input, Some(e)) => e.handle(at, input),
            (_, None) => panic!("the recording starts with Start"),
        };
        replayed.extend(out.iter().map(|e| serde_json::to_string(e).unwrap()));
    }
    assert_eq!(replayed.len(), effects.len());
    for (i, (a, b)) in effects.iter().zip(&replayed).enumerate() {
        assert_eq!(a, b, "effect {i} differs");
    }
}
