//! The ladder's state across a restart.
//!
//! Monotonic times mean nothing to the next process (its clock starts
//! again), so what is saved is *durations*: how long each rung has still
//! to be held, how long ago it was added, how much of a manual ban is
//! left. [`Detector::restore`] takes the new process's `now` and puts
//! every active rung back with its remaining hold time, and returns a
//! [`Decision::Restore`] per rung so the shell applies it again (a BGP
//! peer that lost the announcement gets it again). The rates are not
//! saved: after a restart every address starts from zero and must show
//! calm for the calm time again before anything is removed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, InvalidConfig, Rung};
use crate::decision::{Decision, Hold, Target};
use crate::detect::Detector;
use crate::ladder::{step, ActiveRung, Incident};
use crate::report::{AttackReport, FlowSpecRule};
use crate::sample::{Direction, Monotonic};

/// The saved form's version; [`Detector::restore`] refuses others.
pub const STATE_VERSION: u32 = 1;

/// Everything that must survive a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The open incidents.
    pub incidents: Vec<SavedIncident>,
}

/// One open incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedIncident {
    /// What is attacked.
    pub target: Target,
    /// Which way.
    pub direction: Direction,
    /// The report (its times are the old process's: see `age`).
    pub report: AttackReport,
    /// How long ago the attack started.
    pub age: Duration,
    /// The rungs in place, bottom first.
    pub rungs: Vec<SavedRung>,
    /// The ladder position of the next rung.
    pub next: usize,
    /// Whether the ladder was stopped by a refused rung.
    pub blocked: bool,
    /// `None` for automatic; `Some(None)` permanent; `Some(Some(d))` a
    /// manual ban with `d` left.
    pub manual: Option<Option<Duration>>,
}

/// One rung in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedRung {
    /// The rung.
    pub rung: Rung,
    /// Its settings when it was applied.
    pub action: crate::config::Action,
    /// How long ago it was added.
    pub age: Duration,
    /// How much of its hold time is left.
    pub hold_left: Duration,
    /// The prefixes it was applied to.
    pub prefixes: Vec<net_types::Prefix>,
    /// Its FlowSpec rules.
    pub flowspec: Vec<FlowSpecRule>,
}

/// Why a saved state was refused.
#[derive(Debug)]
pub enum RestoreError {
    /// The configuration is invalid.
    Config(InvalidConfig),
    /// The state was saved by another version.
    Version(u32),
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::Config(e) => e.fmt(f),
            RestoreError::Version(v) => write!(
                f,
                "the guard state has version {v}; this tollgate reads version {STATE_VERSION}"
            ),
        }
    }
}

impl std::error::Error for RestoreError {}

impl Detector {
    /// The state to store, as of `now`.
    pub fn save(&self, now: Monotonic) -> SavedState {
        let incidents = self
            .incidents
            .iter()
            .map(|((target, direction), inc)| SavedIncident {
                target: target.clone(),
                direction: *direction,
                report: inc.report.clone(),
                age: now.since(inc.report.started),
                rungs: inc
                    .rungs
                    .iter()
                    .map(|r| SavedRung {
                        rung: r.rung,
                        action: r.action.clone(),
                        age: now.since(r.since),
                        hold_left: r.hold_until.since(now),
                        prefixes: r.prefixes.clone(),
                        flowspec: r.flowspec.clone(),
                    })
                    .collect(),
                next: inc.next,
                blocked: inc.blocked,
                manual: match inc.hold {
                    Hold::Auto => None,
                    Hold::Permanent => Some(None),
                    Hold::Until(t) => Some(Some(t.since(now))),
                },
            })
            .collect();
        SavedState {
            version: STATE_VERSION,
            incidents,
        }
    }

    /// A detector for `config` with `saved`'s incidents, at `now` on the
    /// new process's clock, and the decisions to carry out: a
    /// [`Decision::Restore`] for every rung still allowed, and a
    /// [`Decision::Stop`] for rungs the new configuration no longer allows
    /// (an address now outside the networks, a prefix now shorter than the
    /// limit, a group that is gone), so the shell withdraws them.
    pub fn restore(
        config: Config,
        saved: &SavedState,
        now: Monotonic,
    ) -> Result<(Detector, Vec<Decision>), RestoreError> {
        if saved.version != STATE_VERSION {
            return Err(RestoreError::Version(saved.version));
        }
        let mut d = Detector::new(config).map_err(RestoreError::Config)?;
        let mut out = Vec::new();
        for s in &saved.incidents {
            let key = (s.target.clone(), s.direction);
            let profile = match &s.target {
                Target::Host(a) => d.r.lookup(*a).map(|e| d.r.entries[e as usize].profile),
                Target::Group(name) => {
                    d.r.profiles
                        .iter()
                        .position(|p| &p.name == name)
                        .map(|p| p as u32)
                }
            };
            let mut report = s.report.clone();
            report.started = Monotonic(now.0.saturating_sub(s.age));
            let rungs: Vec<ActiveRung> = s
                .rungs
                .iter()
                .map(|r| ActiveRung {
                    rung: r.rung,
                    action: r.action.clone(),
                    since: Monotonic(now.0.saturating_sub(r.age)),
                    hold_until: now.plus(r.hold_left),
                    sent: now,
                    prefixes: r.prefixes.clone(),
                    flowspec: r.flowspec.clone(),
                })
                .collect();
            let allowed = |r: &ActiveRung| {
                profile.is_some()
                    && (!r.rung.announces() || r.prefixes.iter().all(|p| d.r.may_announce(*p)))
            };
            let (keep, drop): (Vec<ActiveRung>, Vec<ActiveRung>) =
                rungs.into_iter().partition(|r| allowed(r));
            let ended = keep.is_empty();
            for (i, r) in drop.iter().enumerate().rev() {
                let mut report = report.clone();
                if ended && i == 0 {
                    report.ended = Some(now);
                }
                out.push(Decision::Stop {
                    step: step(&key, r, &report),
                    ended: ended && i == 0,
                });
            }
            let Some(profile) = profile.filter(|_| !ended) else {
                continue;
            };
            for r in &keep {
                out.push(Decision::Restore(step(&key, r, &report)));
            }
            let hold = match s.manual {
                None => Hold::Auto,
                Some(None) => Hold::Permanent,
                Some(Some(left)) => Hold::Until(now.plus(left)),
            };
            let ladder_len = d.r.ladder(profile).len();
            let mut inc = Incident::new(profile, report, hold, now);
            inc.rungs = keep;
            inc.next = s.next.min(ladder_len);
            inc.blocked = s.blocked;
            d.incidents.insert(key, inc);
        }
        Ok((d, out))
    }

    /// The same detector under a new configuration (a policy reload): the
    /// incidents carry over as across a restart (see [`Detector::restore`]:
    /// rungs the new configuration no longer allows are stopped, the others
    /// restored), the rates start again from zero.
    pub fn reconfigure(
        &self,
        config: Config,
        now: Monotonic,
    ) -> Result<(Detector, Vec<Decision>), RestoreError> {
        Detector::restore(config, &self.save(now), now)
    }
}
