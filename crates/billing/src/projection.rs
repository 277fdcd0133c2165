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

use crate::bytes::ByteCount;
use crate::figure::{percentile, Method, MissingSamples, PercentileRule, RankedSample};
use crate::percentile::rank_value;
use crate::rate::BitRate;
use crate::series::Series;
use crate::volume::VolumeCounts;
use accounting::SAMPLE_SECONDS;
use net_types::{Rate, Size};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    pub volume_used: ByteCount,
    /// Bytes projected at the end.
    pub volume_projected: ByteCount,
}

/// `used × n / m` rounded down, exactly, for `used` a sum of `m` slots of
/// at most 2^65 bytes each (down + up) and `n ≥ m`: the quotient and the
/// remainder's share are each far below 2^128.
pub(crate) fn scale(used: u128, n: usize, m: usize) -> u128 {
    if m == 0 {
        return 0;
    }
    let (n, m) = (n as u128, m as u128);
    used / m * n + used % m * n / m
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
    let used: u128 = (0..m)
        .map(|i| counts.of(past.down()[i], past.up()[i]))
        .sum();
    Projection {
        elapsed: m,
        expected: n,
        percentile: figure.value,
        percentile_floor: floor_bytes.map(BitRate::of_sample),
        percentile_floor_bytes: floor_bytes,
        volume_used: ByteCount(used),
        volume_projected: ByteCount(scale(used, n, m)),
    }
}

fn floor(past: &Series, expected: usize, rule: &PercentileRule) -> Option<u64> {
    if rule.missing != MissingSamples::ZeroAgainstExpected {
        return None;
    }
    let r = rule.rank.rank(rule.percentile, expected)?;
    let future = expected - past.len();
    let one = |f: &dyn Fn(usize) -> u64| -> u64 {
        if r <= future {
            return 0;
        }
        let mut v: Vec<u64> = (0..past.len()).map(f).collect();
        rank_value(&mut v, r - future).unwrap_or(0)
    };
    let (down, up) = (past.down(), past.up());
    Some(match rule.method {
        Method::MaxOfDirections => one(&|i| down[i]).max(one(&|i| up[i])),
        Method::SumOfDirections => one(&|i| past.sum_at(i)),
        Method::PerSampleMax => one(&|i| down[i].max(up[i])),
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
        projected: ByteCount,
        /// quota × (1 + margin).
        threshold: ByteCount,
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

impl fmt::Display for Decision {
    /// The decision in words, for logs and `tollgate status`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::MoveCertain { floor, commit } => write!(
                f,
                "move: the percentile cannot end below {floor}, above the commit of {commit}"
            ),
            Decision::MoveProjectedRate {
                projected,
                threshold,
            } => write!(
                f,
                "move: the projected percentile {projected} is above {threshold} (the commit and the margin)"
            ),
            Decision::MoveProjectedVolume {
                projected,
                threshold,
            } => write!(
                f,
                "move: the projected volume of {projected} is above {threshold} (the quota and the margin)"
            ),
            Decision::StayTooEarly { elapsed, needed } => write!(
                f,
                "stay: {elapsed} slots closed, a projection needs {needed}"
            ),
            Decision::Stay => f.write_str("stay: within the commit and the quota, margin included"),
        }
    }
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
        if let Some(threshold) = rate_threshold(c, margin) {
            if u128::from(p.bytes) * 8 * 100 > u128::from(c.bps()) * slot * margin {
                return Decision::MoveProjectedRate {
                    projected: p.rate,
                    threshold,
                };
            }
        }
    }
    if let Some(q) = quota {
        if let Some(threshold) = volume_threshold(projection.volume_projected, q, margin) {
            return Decision::MoveProjectedVolume {
                projected: projection.volume_projected,
                threshold,
            };
        }
    }
    Decision::Stay
}

/// commit × margin / 100 (margin in percent, 100 and up) as a rate, or
/// `None` when it is beyond 2^64 − 1 bit/s: then no sample (at most 2^64
/// − 1 bytes, below 2^64 bit/s) can be above it.
pub(crate) fn rate_threshold(commit: Rate, margin: u128) -> Option<BitRate> {
    u64::try_from(u128::from(commit.bps()) * margin / 100)
        .ok()
        .map(BitRate)
}

/// quota × margin / 100 (margin in percent), if `projected` is above it.
pub(crate) fn volume_threshold(
    projected: ByteCount,
    quota: Size,
    margin: u128,
) -> Option<ByteCount> {
    // projected × 100 > quota × margin exactly when projected is above
    // ⌊quota × margin / 100⌋ (an integer is above x when above ⌊x⌋);
    // quota × margin < 2^64 × 2^33.
    let threshold = u128::from(quota.bytes()) * margin / 100;
    (projected.bytes() > threshold).then_some(ByteCount(threshold))
}
