//! The mitigation ladder: one state machine per attacked target and
//! direction.
//!
//! - **Start:** at detection the first rung is applied.
//! - **Escalate:** while the attack persists (some rate above its
//!   threshold times the hysteresis), the next rung is added once the
//!   current top rung has been in place, with the attack going on, for
//!   the next rung's `after` (a calm spell starts the count again).
//!   Lower rungs stay in place; a rung removed while a lower one holds
//!   can be added again.
//! - **Stop:** once every rate stayed at or under threshold × hysteresis
//!   for `calm`, rungs are removed from the top down, each only once its
//!   own hold time has passed since it was added. The last removal ends
//!   the incident.
//! - **Manual:** a ban by hand holds until its time (or, permanent, until
//!   an unban) whatever the traffic, and does not escalate by itself.
//!
//! A blackhole, RTBH or FlowSpec rung is applied only to prefixes inside
//! the networks and no shorter than the limits; with none left it is
//! refused once and the ladder stops below it.

use net_types::Prefix;

use crate::config::{Action, Rung};
use crate::decision::{Decision, Hold, Refusal, Step, Target};
use crate::detect::Detector;
use crate::report::{host_prefix, AttackReport, FlowAction, FlowSpecRule};
use crate::sample::{Direction, Monotonic};

/// A rung in place.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ActiveRung {
    pub rung: Rung,
    pub action: Action,
    /// When it was added.
    pub since: Monotonic,
    /// It is not removed before this.
    pub hold_until: Monotonic,
    /// When its report was last sent (a notify rung with `every`).
    pub sent: Monotonic,
    pub prefixes: Vec<Prefix>,
    pub flowspec: Vec<FlowSpecRule>,
}

/// One attacked target in one direction.
#[derive(Clone, Debug)]
pub(crate) struct Incident {
    /// Whose ladder and thresholds.
    pub profile: u32,
    pub report: AttackReport,
    /// The rungs in place, bottom first.
    pub rungs: Vec<ActiveRung>,
    /// The index in the ladder of the next rung to add.
    pub next: usize,
    /// Since when the traffic has been calm, if it is.
    pub calm_since: Option<Monotonic>,
    /// Since when the attack has persisted without a calm tick: the
    /// escalation timer counts from this or the top rung's start, the later.
    pub active_since: Monotonic,
    pub hold: Hold,
    /// Set once a rung was refused: the ladder goes no higher.
    pub blocked: bool,
}

impl Incident {
    pub fn new(profile: u32, report: AttackReport, hold: Hold, now: Monotonic) -> Incident {
        Incident {
            profile,
            report,
            rungs: Vec::new(),
            next: 0,
            calm_since: None,
            active_since: now,
            hold,
            blocked: false,
        }
    }
}

impl Detector {
    /// Applies the first rung of a new incident.
    pub(crate) fn start(
        &mut self,
        key: &(Target, Direction),
        now: Monotonic,
        out: &mut Vec<Decision>,
    ) {
        self.escalate(key, now, out);
    }

    /// Adds the incident's next rung. Returns whether one was added.
    pub(crate) fn escalate(
        &mut self,
        key: &(Target, Direction),
        now: Monotonic,
        out: &mut Vec<Decision>,
    ) -> bool {
        let Some(inc) = self.incidents.get(key) else {
            return false;
        };
        if inc.blocked {
            return false;
        }
        let ladder = self.r.ladder(inc.profile);
        let Some(cfg) = ladder.get(inc.next) else {
            return false;
        };
        let rung = cfg.rung();
        let mut prefixes = match &key.0 {
            Target::Host(a) => vec![host_prefix(*a)],
            Target::Group(_) => self.r.profiles[inc.profile as usize].prefixes.clone(),
        };
        if rung.announces() {
            prefixes.retain(|p| self.r.may_announce(*p));
            if prefixes.is_empty() {
                out.push(Decision::Refused {
                    target: key.0.clone(),
                    direction: key.1,
                    rung,
                    reason: Refusal::NoAnnounceablePrefix,
                });
                if let Some(inc) = self.incidents.get_mut(key) {
                    inc.blocked = true;
                }
                return false;
            }
        }
        let flowspec = match &cfg.action {
            Action::Flowspec { rate } => {
                let action = rate.map_or(FlowAction::Discard, FlowAction::RateLimit);
                prefixes
                    .iter()
                    .map(|p| FlowSpecRule::build(*p, &inc.report, action))
                    .collect()
            }
            _ => Vec::new(),
        };
        let active = ActiveRung {
            rung,
            action: cfg.action.clone(),
            since: now,
            hold_until: now.plus(cfg.hold),
            sent: now,
            prefixes,
            flowspec,
        };
        let Some(inc) = self.incidents.get_mut(key) else {
            return false;
        };
        let step = step(key, &active, &inc.report);
        let from = inc.rungs.last().map(|r| r.rung);
        inc.rungs.push(active);
        inc.next += 1;
        out.push(match from {
            None => Decision::Start(step),
            Some(from) => Decision::Escalate { from, step },
        });
        true
    }

    /// One incident's timers at `now`, given whether its traffic is calm.
    pub(crate) fn advance(
        &mut self,
        key: &(Target, Direction),
        calm: bool,
        now: Monotonic,
        out: &mut Vec<Decision>,
    ) {
        let calm_for = self.r.cfg.calm;
        let Some(inc) = self.incidents.get_mut(key) else {
            return;
        };
        match (calm, inc.calm_since) {
            (true, None) => inc.calm_since = Some(now),
            (false, Some(_)) => {
                inc.calm_since = None;
                inc.active_since = now;
            }
            _ => {}
        }
        let calm_since = inc.calm_since;
        // Reports sent again while the attack lasts.
        for r in &mut inc.rungs {
            if let Action::Notify {
                every: Some(every), ..
            } = r.action
            {
                if !every.is_zero() && now.since(r.sent) >= every {
                    r.sent = now;
                    out.push(Decision::Update(step(key, r, &inc.report)));
                }
            }
        }
        match inc.hold {
            Hold::Permanent => return,
            Hold::Until(t) => {
                if now >= t {
                    self.stop_all(key, now, out);
                }
                return;
            }
            Hold::Auto => {}
        }
        if !calm {
            // Escalate while the top rung has been in place long enough.
            loop {
                let Some(inc) = self.incidents.get(key) else {
                    return;
                };
                let ladder = self.r.ladder(inc.profile);
                let due = match (ladder.get(inc.next), inc.rungs.last()) {
                    (Some(next), Some(top)) => {
                        now.since(top.since.max(inc.active_since)) >= next.after
                    }
                    _ => false,
                };
                if !due || !self.escalate(key, now, out) {
                    return;
                }
            }
        }
        let Some(since) = calm_since else {
            return;
        };
        if now.since(since) < calm_for {
            return;
        }
        while let Some(inc) = self.incidents.get_mut(key) {
            match inc.rungs.last() {
                Some(top) if top.hold_until <= now => {}
                Some(_) => return,
                None => {
                    // Its only rung was refused: nothing to undo.
                    self.incidents.remove(key);
                    self.mark(key, false);
                    return;
                }
            }
            self.stop_top(key, now, out);
        }
    }

    /// Removes every rung now (unban, end of a manual ban).
    pub(crate) fn stop_all(
        &mut self,
        key: &(Target, Direction),
        now: Monotonic,
        out: &mut Vec<Decision>,
    ) {
        while self.incidents.contains_key(key) {
            self.stop_top(key, now, out);
        }
    }

    /// Removes the top rung; ends the incident with the last one.
    fn stop_top(&mut self, key: &(Target, Direction), now: Monotonic, out: &mut Vec<Decision>) {
        let Some(inc) = self.incidents.get_mut(key) else {
            return;
        };
        let Some(top) = inc.rungs.pop() else {
            self.incidents.remove(key);
            self.mark(key, false);
            return;
        };
        // The rung can be added again if the attack comes back (rungs in
        // place are always the ladder's first ones).
        inc.next = inc.rungs.len();
        inc.blocked = false;
        let ended = inc.rungs.is_empty();
        if ended {
            inc.report.ended = Some(now);
        }
        out.push(Decision::Stop {
            step: step(key, &top, &inc.report),
            ended,
        });
        if ended {
            self.incidents.remove(key);
            self.mark(key, false);
        }
    }
}

/// An open incident, for status pages and the API.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentView {
    /// What is attacked.
    pub target: Target,
    /// Which way.
    pub direction: Direction,
    /// The rungs in place, bottom first: the rung, how long it has been
    /// in place, and how much of its hold time is left.
    pub rungs: Vec<(Rung, std::time::Duration, std::time::Duration)>,
    /// Automatic or manual.
    pub hold: Hold,
    /// How long the traffic has been calm, if it is.
    pub calm_for: Option<std::time::Duration>,
    /// The attack so far.
    pub attack: AttackReport,
}

impl Detector {
    /// Every open incident at `now`, in a stable order.
    pub fn incidents(&self, now: Monotonic) -> Vec<IncidentView> {
        self.incidents
            .iter()
            .map(|((target, direction), inc)| IncidentView {
                target: target.clone(),
                direction: *direction,
                rungs: inc
                    .rungs
                    .iter()
                    .map(|r| (r.rung, now.since(r.since), r.hold_until.since(now)))
                    .collect(),
                hold: inc.hold,
                calm_for: inc.calm_since.map(|c| now.since(c)),
                attack: inc.report.clone(),
            })
            .collect()
    }
}

pub(crate) fn step(key: &(Target, Direction), r: &ActiveRung, report: &AttackReport) -> Step {
    Step {
        target: key.0.clone(),
        direction: key.1,
        rung: r.rung,
        action: r.action.clone(),
        prefixes: r.prefixes.clone(),
        flowspec: r.flowspec.clone(),
        attack: report.clone(),
    }
}
