//! Where a tenant is heading before the period ends, and whether to move it
//! into the overage class now.
//!
//! # Method
//!
//! At a moment inside the period, `m` of the `N` expected slots have closed.
//! - **Projected percentile:** the percentile of the `m` closed slots, with
//!   the figure's own rules (missing past slots count as zero under the
//!   carrier rule). This assumes the rest of the period looks like what has
//!   been seen so far: the same distribution, scaled to `N` samples, has the
//!   same percentile.
//! - **Certain floor** (carrier rule only): whatever the remaining `N − m`
//!   slots carry, they can at worst all be zero and take the lowest `N − m`
//!   ranks. So the final percentile (rank `r` of `N`) is at least the
//!   `(r − (N − m))`-th smallest closed sample, when that rank exists. Once
//!   the floor is above the commit, going over is certain, not projected.
//! - **Projected volume:** linear, `used × N / m`. Its floor is `used`.

use crate::figure::{percentile, Method, MissingSamples, PercentileRule, RankedSample};
use crate::percentile::rank_value;
use crate::rate::BitRate;
use crate::series::Series;
use crate::volume::VolumeCounts;
use accounting::SAMPLE_SECONDS;
use net_types::{Rate, Size};
use serde::{Deserialize, Serialize};

/// A projection to the end of the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    /// Slots closed so far (`m`).
    pub elapsed: usize,
    /// Slots in the whole period (`N`).
    pub expected: usize,
    /// The projected percentile; `None` before the first closed slot.
    pub percentile: Option<RankedSample>,
    /// The percentile cannot end below this (carrier rule only).
    pub percentile_floor: Option<BitRate>,
    /// The exact bytes behind the floor.
    pub percentile_floor_bytes: Option<u64>,
    /// Bytes counted so far.
    pub volume_used: Size,
    /// Bytes projected at the end.
    pub volume_projected: Size,
}

/// Projects `series` (the whole period's, of which the first `elapsed`
/// slots have closed) to the end of the period.
pub fn project(
    series: &Series,
    elapsed: usize,
    rule: &PercentileRule,
    counts: VolumeCounts,
) -> Projection {
    let n = series.len();
    let m = elapsed.min(n);
    let past = series.truncated(m);
    let figure = percentile(&past, rule);
    let floor_bytes = floor(&past, n, rule);
    let used: u64 = past
        .down
        .iter()
        .zip(&past.up)
        .fold(0u64, |a, (&d, &u)| a.saturating_add(counts.of(d, u)));
    let projected = if m == 0 {
        0
    } else {
        (u128::from(used) * n as u128 / m as u128).min(u128::from(u64::MAX)) as u64
    };
    Projection {
        elapsed: m,
        expected: n,
        percentile: figure.value,
        percentile_floor: floor_bytes.map(BitRate::of_sample),
        percentile_floor_bytes: floor_bytes,
        volume_used: Size::from_bytes(used),
        volume_projected: Size::from_bytes(projected),
    }
}

fn floor(past: &Series, expected: usize, rule: &PercentileRule) -> Option<u64> {
    if rule.missing != MissingSamples::ZeroAgainstExpected {
        return None;
    }
    let r = rule.rank.rank(rule.percentile, expected)?;
    let future = expected - past.len();
    let one = |f: &dyn Fn(u64, u64) -> u64| -> u64 {
        if r <= future {
            return 0;
        }
        let mut v: Vec<u64> = past
            .down
            .iter()
            .zip(&past.up)
            .map(|(&d, &u)| f(d, u))
            .collect();
        rank_value(&mut v, r - future).unwrap_or(0)
    };
    Some(match rule.method {
        Method::MaxOfDirections => one(&|d, _| d).max(one(&|_, u| u)),
        Method::SumOfDirections => one(&|d, u| d.saturating_add(u)),
        Method::PerSampleMax => one(&|d, u| d.max(u)),
    })
}

/// When to move a tenant into the overage class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OveragePolicy {
    /// Move when the projection exceeds the commit (or quota) by more than
    /// this many percent.
    pub margin_percent: u32,
    /// Do not trust a projection from fewer closed slots than this (one
    /// day is 288); a certain floor over the commit moves at once anyway.
    pub min_elapsed: usize,
}

impl Default for OveragePolicy {
    fn default() -> Self {
        OveragePolicy {
            margin_percent: 10,
            min_elapsed: 288,
        }
    }
}

/// Whether to move, and why, in a form the daemon logs and `status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// The final percentile is already certain to be above the commit.
    MoveCertain {
        /// The floor.
        floor: BitRate,
        /// The commit.
        commit: Rate,
    },
    /// The projected percentile is above commit × (1 + margin).
    MoveProjectedRate {
        /// The projection.
        projected: BitRate,
        /// commit × (1 + margin).
        threshold: BitRate,
    },
    /// The projected volume is above quota × (1 + margin).
    MoveProjectedVolume {
        /// The projection.
        projected: Size,
        /// quota × (1 + margin).
        threshold: Size,
    },
    /// Too few slots closed to trust a projection.
    StayTooEarly {
        /// Closed so far.
        elapsed: usize,
        /// Needed.
        needed: usize,
    },
    /// Within commit and quota, margin included.
    Stay,
}

impl Decision {
    /// Whether the tenant should move to the overage class.
    pub fn moves(&self) -> bool {
        matches!(
            self,
            Decision::MoveCertain { .. }
                | Decision::MoveProjectedRate { .. }
                | Decision::MoveProjectedVolume { .. }
        )
    }
}

/// Decides whether a tenant with this projection should move to overage.
/// Comparisons are exact, on bytes per 300 s against the commit.
pub fn decide(
    projection: &Projection,
    commit: Option<Rate>,
    quota: Option<Size>,
    policy: &OveragePolicy,
) -> Decision {
    let slot = SAMPLE_SECONDS as u128;
    let margin = 100 + u128::from(policy.margin_percent);
    if let (Some(c), Some(floor)) = (commit, projection.percentile_floor_bytes) {
        if u128::from(floor) * 8 > u128::from(c.bps()) * slot {
            return Decision::MoveCertain {
                floor: BitRate::of_sample(floor),
                commit: c,
            };
        }
    }
    if projection.elapsed < policy.min_elapsed {
        return Decision::StayTooEarly {
            elapsed: projection.elapsed,
            needed: policy.min_elapsed,
        };
    }
    if let (Some(c), Some(p)) = (commit, projection.percentile) {
        if u128::from(p.bytes) * 8 * 100 > u128::from(c.bps()) * slot * margin {
            return Decision::MoveProjectedRate {
                projected: p.rate,
                threshold: BitRate((u128::from(c.bps()) * margin / 100) as u64),
            };
        }
    }
    if let Some(q) = quota {
        let used = u128::from(projection.volume_projected.bytes());
        if used * 100 > u128::from(q.bytes()) * margin {
            return Decision::MoveProjectedVolume {
                projected: projection.volume_projected,
                threshold: Size::from_bytes((u128::from(q.bytes()) * margin / 100) as u64),
            };
        }
    }
    Decision::Stay
}
