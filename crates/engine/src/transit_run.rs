//! The transit guard in the daemon (`[transit] guard = "on"` or
//! `"dry-run"`): when to check, what the steps in force do to the policy
//! the kernel is reconciled with, and a relax by hand.
//!
//! At start and at each closed 5-minute slot the engine asks the shell
//! for every upstream's [`TransitStatus`] and each tenant's bytes in the
//! samples above the commit ([`crate::io::Effect::AssessTransit`]; the
//! shell reads them through the query layer, as `tollgate transit`
//! does). [`TransitGuard::check`] decides, one step at most per upstream
//! and check; the steps in force are saved
//! ([`crate::io::Effect::SaveTransit`]) before they reach the kernel and
//! handed back at start, so that a restart neither forgets a tightening
//! nor takes it twice.
//!
//! The steps are not written into the policy file: they are applied to
//! the policy as loaded, each time the engine compiles ([`effective`]).
//! Relaxing a step is dropping it, so the kernel gets back exactly what
//! the file says, and the ordinary compile → diff → apply changes only
//! the classes the step touched. In dry-run mode the guard keeps its
//! stack of steps it would have taken (so that its log reads as the real
//! one would) and none of them is applied.

use crate::core::Engine;
use crate::io::{Answer, Effect, Level};
use crate::transit_guard::{GuardAction, GuardConfig, Step, TransitGuard};
use billing::TransitStatus;
use jiff::{SignedDuration, Timestamp};
use net_types::{Rate, TenantId};
use policy::{Direction, Policy, TransitGuardMode, UpstreamMethod};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many of the guard's last actions are kept (saved and shown).
const ACTIONS_KEPT: usize = 50;

/// The guard's state, saved in the state directory (`transit-guard.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitState {
    /// One guard per upstream, by its name.
    #[serde(default)]
    pub guards: BTreeMap<String, UpstreamGuard>,
    /// Tightening is held off until then: a relax by hand.
    #[serde(default)]
    pub relaxed_until: Option<Timestamp>,
    /// The last actions, oldest first.
    #[serde(default)]
    pub actions: Vec<GuardAction>,
    /// Steps taken (applied or, in dry-run mode, reported) since the
    /// state was created.
    #[serde(default)]
    pub tightened: u64,
    /// Steps relaxed since the state was created.
    #[serde(default)]
    pub relaxed: u64,
}

/// One upstream's guard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamGuard {
    /// Whether its steps were only reported: a guard switched between
    /// `dry-run` and `on` starts again from no step.
    pub dry_run: bool,
    /// Its steps and when they last changed.
    pub guard: TransitGuard,
}

impl TransitState {
    /// The steps applied to the kernel, by upstream (none in dry-run).
    pub fn active(&self) -> impl Iterator<Item = (&str, &Step)> {
        self.guards
            .iter()
            .filter(|(_, g)| !g.dry_run)
            .flat_map(|(n, g)| g.guard.steps().iter().map(move |s| (n.as_str(), s)))
    }

    fn record(&mut self, a: GuardAction) {
        if a.tighten {
            self.tightened += 1;
        } else {
            self.relaxed += 1;
        }
        if self.actions.len() == ACTIONS_KEPT {
            self.actions.remove(0);
        }
        self.actions.push(a);
    }
}

/// The shell's answer: each guarded upstream's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitAssessment {
    /// One per upstream that could be read.
    pub upstreams: Vec<UpstreamFigures>,
    /// Why the figures could not be read, if they could not.
    pub error: Option<String>,
}

/// One upstream's figures for the guard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamFigures {
    /// The upstream's name.
    pub name: String,
    /// Where the site stands against its commit.
    pub status: TransitStatus,
    /// Each tenant's bytes in the samples above the commit so far.
    pub shares: Vec<(TenantId, u64)>,
}

/// What the guard shows: its mode, the steps in force and its state.
#[derive(Clone, Debug, Serialize)]
pub struct TransitView {
    /// `off`, `dry-run` or `on`.
    pub mode: TransitGuardMode,
    /// Every step in its guard's stack, first taken first; `applied` is
    /// false for a dry run's.
    pub steps_in_force: Vec<StepInForce>,
    /// Its state.
    #[serde(flatten)]
    pub state: TransitState,
}

/// One step in force.
#[derive(Clone, Debug, Serialize)]
pub struct StepInForce {
    /// The upstream whose guard took it.
    pub upstream: String,
    /// Whether the kernel has it (false in dry-run mode).
    pub applied: bool,
    /// Since when its guard last changed.
    pub since: Option<Timestamp>,
    /// The step.
    #[serde(flatten)]
    pub step: Step,
}

impl TransitView {
    /// The view of `state` under `mode`.
    pub fn new(mode: TransitGuardMode, state: TransitState) -> TransitView {
        let steps_in_force = state
            .guards
            .iter()
            .flat_map(|(name, g)| {
                g.guard.steps().iter().map(move |s| StepInForce {
                    upstream: name.clone(),
                    applied: !g.dry_run && mode == TransitGuardMode::On,
                    since: g.guard.changed(),
                    step: s.clone(),
                })
            })
            .collect();
        TransitView {
            mode,
            steps_in_force,
            state,
        }
    }

    /// Steps the kernel has now.
    pub fn applied(&self) -> usize {
        self.steps_in_force.iter().filter(|s| s.applied).count()
    }
}

/// The guard's mode in `policy` (off without `[transit]`).
pub(crate) fn mode(policy: &Policy) -> TransitGuardMode {
    policy
        .transit
        .as_ref()
        .map_or(TransitGuardMode::Off, |t| t.guard.value)
}

/// When the next check is due after one at `now`: two seconds into the
/// next 5-minute slot, once the read that closes the slot is committed.
pub(crate) fn next_check(now: Timestamp) -> Timestamp {
    let slot = accounting::Slot::containing(now);
    accounting::Slot(slot.0 + 1).start() + SignedDuration::from_secs(2)
}

/// The directions an upstream bills.
fn directions(m: UpstreamMethod) -> &'static [Direction] {
    match m {
        UpstreamMethod::In => &[Direction::Down],
        UpstreamMethod::Out => &[Direction::Up],
        _ => &Direction::BOTH,
    }
}

/// The overage plan's name.
fn overage_plan(p: &Policy) -> &str {
    p.overage
        .as_ref()
        .map_or("overage", |o| o.plan.value.as_str())
}

/// `policy` with the steps in force applied: the policy the kernel is
/// reconciled with. Without a step, `policy` itself.
pub(crate) fn effective(policy: &Arc<Policy>, state: &TransitState) -> Arc<Policy> {
    match with_steps(policy, state) {
        Some(p) => Arc::new(p),
        None => policy.clone(),
    }
}

/// `policy` with the transit guard's steps in force applied, or `None`
/// when none is (guard not on, or no step): what the daemon compiles, and
/// what `apply`, `plan` and `status` compare the kernel with, so that
/// they do not take a step for drift.
pub fn with_steps(policy: &Policy, state: &TransitState) -> Option<Policy> {
    if mode(policy) != TransitGuardMode::On || state.active().next().is_none() {
        return None;
    }
    let mut p = policy.clone();
    let pool = overage_plan(policy).to_owned();
    let shared = p.plan(&pool).is_some_and(|pl| pl.is_shared());
    let upstreams = &policy.transit.as_ref().expect("mode is on").upstreams;
    for (name, step) in state.active() {
        // A step of an upstream no longer in the policy is dropped at the
        // next check; until then it still stands (it was taken for a
        // reason, and the kernel has it).
        let dirs = upstreams
            .iter()
            .find(|u| u.name.value == name)
            .map_or(&Direction::BOTH[..], |u| directions(u.method.value));
        match step {
            Step::LowerPoolCeil { ceil } => {
                if let Some(plan) = p.plans.iter_mut().find(|pl| pl.name == pool) {
                    for &d in dirs {
                        lower(plan.shape.get_mut(d), *ceil);
                    }
                }
            }
            Step::MoveHeaviest { tenants } => {
                for t in p.tenants.iter_mut().filter(|t| tenants.contains(&t.id)) {
                    t.plan = pool.clone();
                    if shared {
                        // A tenant on a shared plan sits in its pool, with
                        // the pool's shape (as `tenant move` does).
                        t.parent = None;
                        t.overrides = policy::PerDirection {
                            down: Default::default(),
                            up: Default::default(),
                        };
                    }
                }
            }
            Step::LowerParentCeil { ceil, .. } => {
                for &d in dirs {
                    let cap = p.site.capacity.get_mut(d);
                    *cap = (*cap).min(*ceil);
                }
            }
        }
    }
    Some(p)
}

fn lower(s: &mut policy::Shape, ceil: Rate) {
    s.ceil = s.ceil.min(ceil);
    s.rate = s.rate.min(s.ceil);
}

/// The guard's configuration for upstream `u` with its `status`.
fn config(p: &Policy, u: &policy::Upstream, status: &TransitStatus) -> Option<GuardConfig> {
    let t = p.transit.as_ref()?;
    Some(GuardConfig {
        target: Rate::from_bps(status.target.0).unwrap_or(status.commit),
        margin_percent: u.margin_percent.value,
        pool_ceil: t.pool_ceil.as_ref()?.value,
        heaviest: t.heaviest.value as usize,
        realms: u
            .realms
            .iter()
            .filter_map(|r| p.realms.by_name(&r.value).map(|r| r.id))
            .collect(),
        hold: SignedDuration::try_from(t.hold.value).unwrap_or(SignedDuration::from_hours(6)),
        dry_run: t.guard.value == TransitGuardMode::DryRun,
    })
}

impl Engine {
    /// Checks every upstream's guard with the shell's figures.
    pub(crate) fn transit_assessed(
        &mut self,
        now: Timestamp,
        a: TransitAssessment,
        out: &mut Vec<Effect>,
    ) {
        if let Some(e) = a.error {
            self.event(
                out,
                now,
                Level::Error,
                "transit_failed",
                format!("transit guard: cannot read the site's figures; nothing changed: {e}"),
                None,
            );
            return;
        }
        let policy = self.running.policy.clone();
        let mode = mode(&policy);
        if mode == TransitGuardMode::Off {
            return;
        }
        let dry = mode == TransitGuardMode::DryRun;
        let pool = overage_plan(&policy);
        let mut state = self.transit.clone();
        let mut applied = false;
        for u in policy.transit.iter().flat_map(|t| &t.upstreams) {
            let Some(fig) = a.upstreams.iter().find(|f| f.name == u.name.value) else {
                continue;
            };
            let Some(cfg) = config(&policy, u, &fig.status) else {
                continue;
            };
            let g = state.guards.entry(u.name.value.clone()).or_default();
            if g.dry_run != dry {
                // Switched between dry-run and on: start from no step.
                *g = UpstreamGuard {
                    dry_run: dry,
                    guard: TransitGuard::default(),
                };
            }
            // Tenants already on the overage plan by the policy file
            // cannot be moved into it.
            let shares: Vec<(TenantId, u128)> = fig
                .shares
                .iter()
                .filter(|(t, _)| policy.tenant(*t).is_some_and(|t| t.plan != pool))
                .map(|&(t, b)| (t, u128::from(b)))
                .collect();
            let mut trial = g.guard.clone();
            let Some(action) = trial.check(now, &fig.status, &shares, &cfg) else {
                continue;
            };
            if let Some(until) = state.relaxed_until.filter(|u| action.tighten && *u > now) {
                self.event(
                    out,
                    now,
                    Level::Info,
                    "transit_held",
                    format!(
                        "transit guard, upstream {}: relaxed by hand until {until}; not taken: {action}",
                        u.name.value
                    ),
                    None,
                );
                continue;
            }
            g.guard = trial;
            applied |= !dry;
            let (level, kind) = match (dry, action.tighten) {
                (true, _) => (Level::Info, "transit_dry_run"),
                (false, true) => (Level::Warn, "transit_tighten"),
                (false, false) => (Level::Info, "transit_relax"),
            };
            self.event(
                out,
                now,
                level,
                kind,
                format!("transit guard, upstream {}: {action}", u.name.value),
                None,
            );
            state.record(action);
        }
        // Guards of upstreams no longer in the policy go, with their steps.
        let names: Vec<&str> = policy
            .transit
            .iter()
            .flat_map(|t| &t.upstreams)
            .map(|u| u.name.value.as_str())
            .collect();
        let before = state.guards.len();
        state.guards.retain(|n, _| names.contains(&n.as_str()));
        applied |= state.guards.len() != before;
        self.set_transit(now, state, applied, out);
    }

    /// Undoes every step in force and holds off tightening for the hold
    /// time (`tollgate transit relax`, `POST /api/v1/transit/relax`).
    pub(crate) fn transit_relax(&mut self, now: Timestamp, id: u64, out: &mut Vec<Effect>) {
        let policy = self.running.policy.clone();
        let Some(t) = policy
            .transit
            .as_ref()
            .filter(|t| t.guard.value != TransitGuardMode::Off)
        else {
            out.push(Effect::Reply {
                id,
                answer: Answer::NotFound {
                    message: "the transit guard is off ([transit] guard = \"off\" or no [transit])"
                        .into(),
                },
            });
            return;
        };
        let hold = SignedDuration::try_from(t.hold.value).unwrap_or(SignedDuration::from_hours(6));
        let until = now + hold;
        let mut state = self.transit.clone();
        let mut applied = false;
        let mut actions = Vec::new();
        for (name, g) in &mut state.guards {
            let dry_run = g.dry_run;
            for step in g.guard.relax_all(now) {
                applied |= !dry_run;
                let action = GuardAction {
                    at: now,
                    tighten: false,
                    step,
                    dry_run,
                    reason: format!("relaxed by hand; no tightening until {until}"),
                };
                self.event(
                    out,
                    now,
                    Level::Warn,
                    "transit_relax",
                    format!("transit guard, upstream {name}: {action}"),
                    None,
                );
                actions.push(action);
            }
        }
        let undone = actions.len();
        for a in actions {
            state.record(a);
        }
        state.relaxed_until = Some(until);
        let message = format!("transit guard: {undone} steps relaxed; no tightening until {until}");
        if undone == 0 {
            self.event(
                out,
                now,
                Level::Info,
                "transit_relax",
                message.clone(),
                None,
            );
        }
        self.set_transit(now, state, true, out);
        if applied {
            // Answered once the kernel has the policy back.
            self.after_apply.push((id, message));
        } else {
            out.push(Effect::Reply {
                id,
                answer: Answer::Done {
                    message,
                    applied: 0,
                    failed: 0,
                },
            });
        }
    }

    /// The policy turned the guard off: its steps go (the kernel gets the
    /// file's policy back at the next round, which is due now).
    pub(crate) fn transit_off(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        if self.transit.guards.is_empty() {
            return;
        }
        let mut state = self.transit.clone();
        for (name, g) in std::mem::take(&mut state.guards) {
            let n = g.guard.steps().len();
            if n > 0 && !g.dry_run {
                self.event(
                    out,
                    now,
                    Level::Warn,
                    "transit_relax",
                    format!(
                        "transit guard, upstream {name}: off in the policy; its {n} steps relaxed"
                    ),
                    None,
                );
                state.relaxed += n as u64;
            }
        }
        self.set_transit(now, state, true, out);
    }

    /// Takes `state`, saving it first when it changed; when a step in
    /// force changed (`reconcile`), the next round starts now.
    fn set_transit(
        &mut self,
        now: Timestamp,
        state: TransitState,
        reconcile: bool,
        out: &mut Vec<Effect>,
    ) {
        if state == self.transit {
            return;
        }
        // Saved before the kernel changes: a crash after the save and
        // before the round applies the step at the next start, once.
        out.push(Effect::SaveTransit(Box::new(state.clone())));
        self.transit = state;
        if reconcile {
            self.policy_changed = true;
            self.policy_changes += 1;
            self.due_reconcile_now(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

[plans.basic]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "5mbit", ceil = "10mbit" }

[plans.overage]
shared = true
id = 100
down = { rate = "4mbit", ceil = "30mbit" }
up = { rate = "4mbit", ceil = "30mbit" }

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
plan = "basic"
prefixes = ["100.64.2.0/24"]
down = { ceil = "15mbit" }

[transit]
guard = "on"
pool_ceil = "2mbit"

[[transit.upstreams]]
name = "carrier"
commit = "50mbit"
method = "in"
"#;

    fn policy() -> Arc<Policy> {
        Arc::new(
            policy::load("p.toml", POLICY, &mut |_| Err("none".into()))
                .policy
                .expect("valid"),
        )
    }

    fn state(steps: Vec<Step>, dry_run: bool) -> TransitState {
        let mut g = TransitGuard::default();
        // Steps go in through `check`'s stack only; rebuild one by serde.
        let json = serde_json::json!({ "steps": steps, "changed": null });
        g = serde_json::from_value(json).unwrap_or(g);
        TransitState {
            guards: [("carrier".to_string(), UpstreamGuard { dry_run, guard: g })].into(),
            ..Default::default()
        }
    }

    fn rate(mbit: u64) -> Rate {
        Rate::from_bps(mbit * 1_000_000).unwrap()
    }

    #[test]
    fn the_steps_change_only_what_they_name_and_in_the_billed_direction() {
        let p = policy();
        let steps = vec![
            Step::LowerPoolCeil { ceil: rate(2) },
            Step::MoveHeaviest {
                tenants: vec![TenantId(2)],
            },
            Step::LowerParentCeil {
                realms: vec![],
                ceil: rate(45),
            },
        ];
        let e = effective(&p, &state(steps.clone(), false));
        let pool = e.plan("overage").unwrap();
        // `in` is billed: the down direction only.
        assert_eq!(pool.shape.down.ceil, rate(2));
        assert_eq!(pool.shape.down.rate, rate(2));
        assert_eq!(pool.shape.up.ceil, rate(30));
        let t2 = e.tenant(TenantId(2)).unwrap();
        assert_eq!(t2.plan, "overage");
        assert!(t2.overrides.down.is_empty());
        assert_eq!(e.tenant(TenantId(1)).unwrap().plan, "basic");
        assert_eq!(e.site.capacity.down, rate(45));
        assert_eq!(e.site.capacity.up, rate(100));
        // It compiles, and against the file's policy only the pool, the
        // moved tenant and the root classes differ.
        let facts = compiler::HostFacts::default();
        compiler::compile(&e, &facts).expect("the guarded policy compiles");
        // Dry run, or no step: the file's policy itself.
        assert!(Arc::ptr_eq(&effective(&p, &state(steps, true)), &p));
        assert!(Arc::ptr_eq(&effective(&p, &TransitState::default()), &p));
    }

    #[test]
    fn relaxing_gives_back_exactly_the_files_plan() {
        let p = policy();
        let facts = compiler::HostFacts::default();
        let file = compiler::compile(&p, &facts).unwrap().plan;
        let tight = effective(
            &p,
            &state(
                vec![
                    Step::LowerPoolCeil { ceil: rate(2) },
                    Step::MoveHeaviest {
                        tenants: vec![TenantId(2)],
                    },
                ],
                false,
            ),
        );
        let live = compiler::Live::from_plan(&compiler::compile(&tight, &facts).unwrap().plan);
        let guarded = compiler::compile(
            &tight,
            &compiler::HostFacts {
                live: live.clone(),
                ..Default::default()
            },
        )
        .unwrap()
        .plan;
        assert!(!plan::diff(&guarded, &file).is_empty());
        // Relaxed: the file's policy, compiled against what the kernel
        // has, is the file's plan again.
        let back = effective(&p, &TransitState::default());
        let relaxed = compiler::compile(
            &back,
            &compiler::HostFacts {
                live,
                ..Default::default()
            },
        )
        .unwrap()
        .plan;
        assert!(Arc::ptr_eq(&back, &p));
        assert!(!plan::diff(&relaxed, &guarded).is_empty());
        // The same classes as the file's, rates and ceils included; only
        // the moved tenant's handles may be fresh ones.
        let shapes = |pl: &plan::Plan| {
            let mut v: Vec<(u64, u64)> = pl
                .classes
                .values()
                .map(|c| (c.rate.bps(), c.ceil.bps()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(shapes(&relaxed), shapes(&file));
    }

    #[test]
    fn the_next_check_is_two_seconds_into_the_next_slot() {
        let now: Timestamp = "2026-11-10T11:58:30Z".parse().unwrap();
        assert_eq!(
            next_check(now),
            "2026-11-10T12:00:02Z".parse::<Timestamp>().unwrap()
        );
    }

    /// The engine with the test policy in `mode`, and `saved` state.
    fn engine(mode: &str, saved: TransitState, now: Timestamp) -> (Engine, Vec<Effect>) {
        let text = POLICY.replace("guard = \"on\"", &format!("guard = \"{mode}\""));
        Engine::start(
            now,
            crate::io::Start {
                policy: crate::io::PolicyText {
                    name: "p.toml".into(),
                    text,
                    files: Default::default(),
                },
                settings: None,
                resume: None,
                records: Default::default(),
                intervals: crate::io::Intervals {
                    read_ms: 60_000,
                    reconcile_ms: 300_000,
                },
                flows: false,
                transit: saved,
            },
        )
        .expect("starts")
    }

    /// 400 samples above the commit by the 20th: at this pace 615 by the
    /// end, over the 388 the margin allows.
    fn at_risk() -> TransitAssessment {
        let status = TransitStatus {
            commit: rate(50),
            target: billing::BitRate(45_000_000),
            elapsed: 5615,
            expected: 8640,
            rank: Some(8208),
            budget: 432,
            spent: 400,
            left: 32,
            projected_spent: 615,
            so_far: None,
            projected: None,
            floor: None,
            runs_out_at: Some(6071),
            exact_budget: true,
        };
        TransitAssessment {
            upstreams: vec![UpstreamFigures {
                name: "carrier".into(),
                status,
                shares: vec![(TenantId(2), 1000), (TenantId(1), 10)],
            }],
            error: None,
        }
    }

    fn kinds(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Event(e) => format!("event:{}", e.kind),
                other => serde_json::to_value(other).unwrap()["effect"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            })
            .collect()
    }

    #[test]
    fn the_daemon_checks_at_start_saves_a_step_before_the_round_that_applies_it() {
        let now: Timestamp = "2026-11-20T11:59:44Z".parse().unwrap();
        let (mut e, first) = engine("on", TransitState::default(), now);
        assert!(
            kinds(&first).contains(&"assess_transit".to_string()),
            "{:?}",
            kinds(&first)
        );
        // The next check: two seconds into the next slot.
        assert!(e.next_due() <= "2026-11-20T12:00:02Z".parse::<Timestamp>().unwrap());
        let out = e.handle(now, crate::io::Input::TransitAssessed(Box::new(at_risk())));
        let k = kinds(&out);
        let save = k.iter().position(|k| k == "save_transit").expect("saved");
        let tighten = k
            .iter()
            .position(|k| k == "event:transit_tighten")
            .expect("logged");
        assert!(tighten < save, "{k:?}");
        // No round is out (the start's Observe was never answered here),
        // so the step's round waits for it; the step is in force.
        assert_eq!(e.snapshot(now).transit.applied(), 1);
        let saved = e.transit.clone();
        // A restart from the saved state with the same figures: no step
        // is taken again for what was already done; the next one is.
        let (mut e2, _) = engine("on", saved.clone(), now);
        assert_eq!(e2.snapshot(now).transit.applied(), 1);
        let out = e2.handle(now, crate::io::Input::TransitAssessed(Box::new(at_risk())));
        let steps = e2.transit.guards["carrier"].guard.steps().to_vec();
        assert_eq!(steps.len(), 2, "{:?}", kinds(&out));
        // Heaviest first (the policy moves up to three).
        assert!(
            matches!(&steps[1], Step::MoveHeaviest { tenants } if tenants == &vec![TenantId(2), TenantId(1)])
        );
        // By hand: every step undone, and no tightening for the hold.
        let out = e2.handle(
            now,
            crate::io::Input::Command {
                id: 7,
                command: crate::io::Command::TransitRelax,
            },
        );
        assert!(kinds(&out).contains(&"save_transit".to_string()));
        assert_eq!(e2.snapshot(now).transit.applied(), 0);
        assert_eq!(
            e2.transit.relaxed_until,
            Some(now + SignedDuration::from_hours(6))
        );
        let later = now + SignedDuration::from_mins(5);
        let out = e2.handle(
            later,
            crate::io::Input::TransitAssessed(Box::new(at_risk())),
        );
        assert!(
            kinds(&out).contains(&"event:transit_held".to_string()),
            "{:?}",
            kinds(&out)
        );
        assert_eq!(e2.snapshot(later).transit.applied(), 0);
    }

    #[test]
    fn in_dry_run_the_daemon_logs_and_changes_nothing() {
        let now: Timestamp = "2026-11-20T11:59:44Z".parse().unwrap();
        let (mut e, _) = engine("dry-run", TransitState::default(), now);
        let out = e.handle(now, crate::io::Input::TransitAssessed(Box::new(at_risk())));
        let k = kinds(&out);
        assert!(k.contains(&"event:transit_dry_run".to_string()), "{k:?}");
        assert!(!k.contains(&"event:transit_tighten".to_string()), "{k:?}");
        let view = e.snapshot(now).transit;
        assert_eq!((view.applied(), view.steps_in_force.len()), (0, 1));
        assert!(Arc::ptr_eq(
            &effective(&e.running.policy, &e.transit),
            &e.running.policy
        ));
        let message = out
            .iter()
            .find_map(|x| match x {
                Effect::Event(ev) if ev.kind == "transit_dry_run" => Some(ev.message.clone()),
                _ => None,
            })
            .unwrap();
        assert!(
            message.contains("would tighten: the overage pool's ceil to 2mbit"),
            "{message}"
        );
    }
}
