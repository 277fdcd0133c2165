//! The transit guard's decision: when the site's burst budget against an
//! upstream's commit would run out before the period ends, tighten step
//! by step; when it recovers, relax the same steps in reverse
//! (docs/transit.md, "The guard").
//!
//! The steps, in order:
//! 1. lower the overage pool's ceil (what the tenants in it share);
//! 2. move the heaviest tenants (by their bytes in the samples above the
//!    commit) into the overage plan;
//! 3. lower the realm's parent ceil (the upstream's realms, or the whole
//!    uplink) to the commit less the margin.
//!
//! Pure: [`TransitGuard::check`] takes the time, the site's
//! [`TransitStatus`] and the tenants' shares, and returns what to do, with
//! the reason. Time matters for the hold: a step is relaxed only when it
//! has stood for [`GuardConfig::hold`], so that one quiet hour does not
//! undo what a busy evening needed.
//!
//! # Thresholds
//!
//! With budget `B` and margin `m` %, the guard tightens while the
//! projected spend (`spent × N / elapsed`) is above `B × (100 − m) / 100`
//! and relaxes while it is under `B × (100 − 2m) / 100`: between the two
//! it holds, so that it does not flap. Once the budget is spent (the bill
//! is over the commit whatever comes) it stays tight: relaxing cannot
//! lower the bill, and tightening still limits the overage.
//!
//! The daemon runs it at each closed 5-minute slot and applies the steps
//! in force to the policy it compiles (`crate::transit_run`).

use billing::TransitStatus;
use jiff::{SignedDuration, Timestamp};
use net_types::{Rate, RealmId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One step of the ladder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    /// Lower the overage pool's ceil to this.
    LowerPoolCeil {
        /// The new ceil.
        ceil: Rate,
    },
    /// Move these tenants into the overage plan.
    MoveHeaviest {
        /// Heaviest first.
        tenants: Vec<TenantId>,
    },
    /// Lower the parent ceil of these realms (none: the whole uplink).
    LowerParentCeil {
        /// The realms; empty is every realm.
        realms: Vec<RealmId>,
        /// The new ceil.
        ceil: Rate,
    },
}

/// What the guard decided at one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct GuardAction {
    /// When.
    pub at: Timestamp,
    /// Tighten (`true`) or relax (`false`) this step.
    pub tighten: bool,
    /// The step.
    pub step: Step,
    /// Only reported: the guard is in dry-run mode.
    pub dry_run: bool,
    /// Why, in words, for the log and `status`.
    pub reason: String,
}

impl fmt::Display for GuardAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.step {
            Step::LowerPoolCeil { ceil } => format!("the overage pool's ceil to {ceil}"),
            Step::MoveHeaviest { tenants } => {
                let ids: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
                format!("tenants {} into the overage plan", ids.join(", "))
            }
            Step::LowerParentCeil { ceil, .. } => format!("the realm's parent ceil to {ceil}"),
        };
        let verb = match (self.dry_run, self.tighten) {
            (true, true) => "would tighten",
            (true, false) => "would relax",
            (false, true) => "tighten",
            (false, false) => "relax",
        };
        write!(f, "{verb}: {what} ({})", self.reason)
    }
}

/// How the guard acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// The commit less the margin: the parent ceil of step 3.
    pub target: Rate,
    /// The margin, percent of the budget.
    pub margin_percent: u32,
    /// The overage pool's ceil in step 1.
    pub pool_ceil: Rate,
    /// How many tenants step 2 moves.
    pub heaviest: usize,
    /// The upstream's realms (empty: the whole uplink). Step 3 lowers
    /// the uplink's own ceil, which carries every realm, so an upstream
    /// of some realms stops at step 2: the site has no class of its own
    /// per realm to lower.
    pub realms: Vec<RealmId>,
    /// A step stands at least this long before it is relaxed.
    pub hold: SignedDuration,
    /// Report only.
    pub dry_run: bool,
}

/// The guard's state: the steps in force (a stack) and when the last
/// changed. Saved by the daemon, so that a restart neither forgets a step
/// nor takes it twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitGuard {
    steps: Vec<Step>,
    changed: Option<Timestamp>,
}

impl TransitGuard {
    /// The steps in force, first taken first.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// When the last step was taken or relaxed.
    pub fn changed(&self) -> Option<Timestamp> {
        self.changed
    }

    /// Undoes every step at once (a relax by hand), newest first, and
    /// returns them in that order.
    pub fn relax_all(&mut self, now: Timestamp) -> Vec<Step> {
        let mut out = std::mem::take(&mut self.steps);
        out.reverse();
        if !out.is_empty() {
            self.changed = Some(now);
        }
        out
    }

    /// Decides at `now` from the site's `status` and each tenant's bytes in
    /// the samples above the commit so far (`shares`, any order). At most
    /// one step changes per check: the next check sees its effect.
    pub fn check(
        &mut self,
        now: Timestamp,
        status: &TransitStatus,
        shares: &[(TenantId, u128)],
        config: &GuardConfig,
    ) -> Option<GuardAction> {
        let budget = status.budget as u128;
        let m = u128::from(config.margin_percent.min(50));
        let projected = status.projected_spent as u128;
        let high = budget * (100 - m) / 100;
        let low = budget * (100 - 2 * m) / 100;
        let held = self
            .changed
            .is_none_or(|c| now.duration_since(c) >= config.hold);
        let (tighten, step, reason) = if projected > high || status.lost() {
            let step = match self.steps.len() {
                0 => Step::LowerPoolCeil {
                    ceil: config.pool_ceil,
                },
                1 => {
                    let mut by = shares.to_vec();
                    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    let tenants: Vec<TenantId> = by
                        .into_iter()
                        .filter(|(_, b)| *b > 0)
                        .take(config.heaviest)
                        .map(|(t, _)| t)
                        .collect();
                    Step::MoveHeaviest { tenants }
                }
                2 if config.realms.is_empty() => Step::LowerParentCeil {
                    realms: config.realms.clone(),
                    ceil: config.target,
                },
                _ => return None,
            };
            let reason = if status.lost() {
                format!(
                    "{} samples above the commit, more than the {} the period allows: the bill is over, limit the overage",
                    status.spent, status.budget
                )
            } else {
                format!(
                    "at this pace {} samples above the commit by the end, over {high} ({}% under the budget of {})",
                    status.projected_spent, m, status.budget
                )
            };
            (true, step, reason)
        } else if projected < low && held && !status.lost() {
            let step = self.steps.last()?.clone();
            let reason = format!(
                "at this pace {} samples above the commit by the end, under {low}",
                status.projected_spent
            );
            (false, step, reason)
        } else {
            return None;
        };
        if tighten {
            self.steps.push(step.clone());
        } else {
            self.steps.pop();
        }
        self.changed = Some(now);
        Some(GuardAction {
            at: now,
            tighten,
            step,
            dry_run: config.dry_run,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    //! "A month in a minute": a generated 30-day month of 5-minute samples
    //! through the guard, time as an input.
    use super::*;
    use accounting::SlotStatus;
    use billing::{
        assess, BillingCycle, Method, MissingSamples, Percentile, RankRule, Series, UpstreamMethod,
        UpstreamRule,
    };

    /// Bytes of one 5-minute sample at 1 Mbit/s.
    const MBIT: u64 = 37_500_000;
    const COMMIT: u64 = 100;
    const HEAVY: std::ops::RangeInclusive<u32> = 16..=20;

    fn rate(mbit: u64) -> Rate {
        Rate::from_bps(mbit * 1_000_000).unwrap()
    }

    /// Each tenant's demand in Mbit/s at slot `i`: fifteen light tenants
    /// (4 Mbit/s from 18:00 to 20:00, 2 otherwise) and five heavy ones (14
    /// in the evening, 1 otherwise). The evening is 24 of 288 slots a day
    /// (8.3 %) at 15 × 4 + 5 × 14 = 130 Mbit/s, so unguarded the 95th is
    /// 130: 30 % over the 100 Mbit/s commit. Otherwise 35.
    fn demand(tenant: u32, i: usize) -> f64 {
        let evening = (18..20).contains(&((i % 288) / 12));
        match (HEAVY.contains(&tenant), evening) {
            (true, true) => 14.0,
            (true, false) => 1.0,
            (false, true) => 4.0,
            (false, false) => 2.0,
        }
    }

    struct Outcome {
        percentile_mbit: f64,
        spent: usize,
        budget: usize,
        actions: Vec<GuardAction>,
        touched: Vec<TenantId>,
    }

    fn month(guard: Option<GuardConfig>) -> Outcome {
        let period = BillingCycle::new(1, "UTC")
            .unwrap()
            .period(2026, 11)
            .unwrap();
        let n = period.expected_samples();
        let rule = UpstreamRule {
            percentile: Percentile::P95,
            method: UpstreamMethod::Both(Method::MaxOfDirections),
            rank: RankRule::NearestRank,
            missing: MissingSamples::ZeroAgainstExpected,
        };
        let mut down = vec![0u64; n];
        let mut shares: Vec<(TenantId, u128)> = (1..=20).map(|t| (TenantId(t), 0)).collect();
        let mut g = TransitGuard::default();
        let mut actions = Vec::new();
        let mut touched = Vec::new();
        let series = |down: &[u64], m: usize| {
            let status = (0..n)
                .map(|i| (i < m).then_some(SlotStatus::Measured))
                .collect();
            Series::new(period.first_slot(), down.to_vec(), vec![0; n], status).unwrap()
        };
        for i in 0..n {
            // Hourly, at the slot's start: the guard sees the closed slots.
            if let Some(cfg) = &guard {
                if i % 12 == 0 && i > 0 {
                    let now = period.start + SignedDuration::from_secs(300 * i as i64);
                    let status = assess(&series(&down, i), i, &rule, rate(COMMIT), 10);
                    if let Some(a) = g.check(now, &status, &shares, cfg) {
                        actions.push(a);
                    }
                }
            }
            // What the kernel lets through with the steps in force (none
            // in dry-run mode).
            let applied: &[Step] = match &guard {
                Some(c) if !c.dry_run => g.steps(),
                _ => &[],
            };
            let pool_ceil = applied.iter().find_map(|s| match s {
                Step::LowerPoolCeil { ceil } => Some(ceil.bps() as f64 / 1e6),
                _ => None,
            });
            let members: Vec<TenantId> = applied
                .iter()
                .flat_map(|s| match s {
                    Step::MoveHeaviest { tenants } => tenants.clone(),
                    _ => Vec::new(),
                })
                .collect();
            for t in &members {
                if !touched.contains(t) {
                    touched.push(*t);
                }
            }
            let parent = applied.iter().find_map(|s| match s {
                Step::LowerParentCeil { ceil, .. } => Some(ceil.bps() as f64 / 1e6),
                _ => None,
            });
            let mut got: Vec<(TenantId, f64)> =
                (1..=20).map(|t| (TenantId(t), demand(t, i))).collect();
            let pooled: f64 = got
                .iter()
                .filter(|(t, _)| members.contains(t))
                .map(|(_, d)| d)
                .sum();
            if let Some(c) = pool_ceil.filter(|c| pooled > *c) {
                for (t, d) in &mut got {
                    if members.contains(t) {
                        *d *= c / pooled;
                    }
                }
            }
            let total: f64 = got.iter().map(|(_, d)| d).sum();
            if let Some(c) = parent.filter(|c| total > *c) {
                for (_, d) in &mut got {
                    *d *= c / total;
                }
            }
            let total: f64 = got.iter().map(|(_, d)| d).sum();
            down[i] = (total * MBIT as f64).round() as u64;
            if total > COMMIT as f64 {
                for ((_, share), (_, d)) in shares.iter_mut().zip(&got) {
                    *share += (d * MBIT as f64) as u128;
                }
            }
        }
        let end = assess(&series(&down, n), n, &rule, rate(COMMIT), 10);
        Outcome {
            percentile_mbit: end.so_far.unwrap().bytes as f64 / MBIT as f64,
            spent: end.spent,
            budget: end.budget,
            actions,
            touched,
        }
    }

    fn config(dry_run: bool) -> GuardConfig {
        GuardConfig {
            target: rate(90),
            margin_percent: 10,
            pool_ceil: rate(10),
            heaviest: 3,
            realms: Vec::new(),
            hold: SignedDuration::from_hours(6),
            dry_run,
        }
    }

    #[test]
    fn a_month_30_percent_over_unguarded_ends_at_or_under_the_commit_guarded() {
        let off = month(None);
        assert!(
            (off.percentile_mbit - 130.0).abs() < 0.01,
            "unguarded: {}",
            off.percentile_mbit
        );
        assert_eq!(off.spent, 30 * 24);
        let on = month(Some(config(false)));
        assert!(
            on.percentile_mbit <= COMMIT as f64,
            "guarded: {} Mbit/s, {} of {} spent; {:#?}",
            on.percentile_mbit,
            on.spent,
            on.budget,
            on.actions.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        );
        assert!(on.spent <= on.budget);
        println!(
            "guarded: 95th {} Mbit/s, {} of {} spent, {} actions, touched {:?}; unguarded: 95th {} Mbit/s, {} spent",
            on.percentile_mbit,
            on.spent,
            on.budget,
            on.actions.len(),
            on.touched,
            off.percentile_mbit,
            off.spent
        );
        for a in on.actions.iter().take(6) {
            println!("  {}: {a}", a.at);
        }
        // The steps it took, in order at first, and relaxed again.
        let first: Vec<&Step> = on.actions.iter().take(2).map(|a| &a.step).collect();
        assert!(matches!(first[0], Step::LowerPoolCeil { .. }), "{first:?}");
        assert!(matches!(first[1], Step::MoveHeaviest { .. }), "{first:?}");
        assert!(
            on.actions.iter().any(|a| !a.tighten),
            "it relaxes when it recovers"
        );
        assert!(on
            .actions
            .iter()
            .all(|a| !a.dry_run && !a.reason.is_empty()));
        // The tenants it touched are heavy ones: the heaviest by their
        // bytes above the commit.
        assert!(!on.touched.is_empty());
        assert!(
            on.touched.iter().all(|t| HEAVY.contains(&t.0)),
            "{:?}",
            on.touched
        );
    }

    #[test]
    fn in_dry_run_the_guard_only_says_what_it_would_do() {
        let dry = month(Some(config(true)));
        assert!((dry.percentile_mbit - 130.0).abs() < 0.01);
        assert!(dry.touched.is_empty());
        assert!(!dry.actions.is_empty());
        assert!(dry.actions.iter().all(|a| a.dry_run));
        assert!(dry.actions[0]
            .to_string()
            .starts_with("would tighten: the overage pool's ceil"));
    }
}
