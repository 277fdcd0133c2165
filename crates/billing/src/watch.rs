//! The overage decision kept up to date slot by slot, in a few counters
//! per tenant instead of the period's whole series.
//!
//! # Why counts are enough
//!
//! [`decide`] compares two percentile figures against fixed per-slot byte
//! thresholds that depend only on the tenant's commit and the margin:
//! - the certain floor moves when `floor × 8 > commit × 300`, that is when
//!   `floor > ⌊commit × 300 / 8⌋`;
//! - the projected percentile moves when `p × 8 × 100 > commit × 300 ×
//!   (100 + margin)`, that is when `p > ⌊commit × 300 × (100 + margin) /
//!   800⌋`.
//!
//! The `r`-th smallest of `n` values is above a threshold `t` exactly when
//! at least `n − r + 1` of the values are above `t`. So each comparison
//! needs only how many values are above each threshold:
//! - the projected percentile ranks the `m` closed slots (or, when missing
//!   samples are skipped, the `s` seen ones): `k = n − rank(n) + 1`;
//! - the floor (carrier rule only) is the `(r − (N − m))`-th smallest closed
//!   value with `r = rank(N)`, which is the `(N − r + 1)`-th largest: a `k`
//!   fixed for the period. When `r ≤ N − m` the floor is 0 and the count,
//!   at most `m < N − r + 1`, says "not above" as it should.
//! - [`Method::MaxOfDirections`] takes the larger of two figures: it is
//!   above `t` when either direction's is, so each direction has its own
//!   counts.
//!
//! Missing slots count as zero, and zero is above no threshold. The
//! projected volume needs the counted bytes so far (an exact `u128` sum,
//! which does not depend on the order of additions).
//!
//! A [`Tally`] is 48 bytes. When the counts say a tenant moves on a
//! percentile, the [`Decision`] carries the figure itself (the floor or the
//! projected rate), which counts cannot give: [`Verdict::Recompute`] asks
//! the caller to compute it the long way ([`project`](crate::project) and
//! [`decide`] on the tenant's series), once per moved tenant.

use crate::bytes::ByteCount;
use crate::error::BillingError;
use crate::figure::{Method, MissingSamples, PercentileRule};
use crate::projection::{scale, volume_threshold, Decision, OveragePolicy};
use crate::volume::VolumeCounts;
use accounting::{Direction, Sample, Slot, SAMPLE_SECONDS};
use net_types::{Rate, Size, TenantId};

/// What the overage decision of every tenant in one period shares: the
/// period's length and the rules. Build a new one (and new tallies) when
/// any of it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Slots in the whole period (`N`).
    pub expected: usize,
    /// The percentile rule.
    pub rule: PercentileRule,
    /// Which directions count toward the volume.
    pub counts: VolumeCounts,
    /// Margin and minimum observation.
    pub policy: OveragePolicy,
}

/// One tenant's per-slot byte thresholds, from its commit and the margin.
/// A value above `certain` takes part in the floor's comparison; above
/// `projected`, in the projected percentile's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    certain: u128,
    projected: u128,
}

impl Limits {
    /// Nothing is above these: for a tenant without a commit.
    pub const NONE: Limits = Limits {
        certain: u128::MAX,
        projected: u128::MAX,
    };
}

/// One tenant's counts over the closed slots folded in so far (always the
/// period's first slots, in any order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    slots: u32,
    seen: u32,
    /// Values above the certain threshold, per value stream (down and up
    /// for [`Method::MaxOfDirections`], else only the first).
    certain: [u32; 2],
    /// Values above the projected threshold, likewise.
    projected: [u32; 2],
    /// Counted bytes: at most 2^32 slots of 2^65 bytes, far within 128
    /// bits.
    volume: u128,
}

impl Tally {
    /// How many slots were folded in (`m`).
    pub fn slots(&self) -> usize {
        self.slots as usize
    }
}

/// What [`Watch::decide`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The decision, exactly as [`decide`](crate::decide) gives it.
    Exact(Decision),
    /// The tenant moves on its percentile (certain floor or projected
    /// rate); the decision's figure needs the series: compute it with
    /// [`project`](crate::project) and [`decide`](crate::decide).
    Recompute,
}

impl Verdict {
    /// Whether the tenant should move to the overage class.
    pub fn moves(&self) -> bool {
        match self {
            Verdict::Exact(d) => d.moves(),
            Verdict::Recompute => true,
        }
    }
}

impl Watch {
    /// The thresholds of a tenant with this commit.
    pub fn limits(&self, commit: Option<Rate>) -> Limits {
        let Some(c) = commit else {
            return Limits::NONE;
        };
        let x = u128::from(c.bps()) * SAMPLE_SECONDS as u128;
        let margin = 100 + u128::from(self.policy.margin_percent);
        Limits {
            certain: x / 8,
            projected: x * margin / 800,
        }
    }

    /// Folds one closed slot into `tally`: bytes toward (`down`) and from
    /// (`up`) the tenant, all realms added up, and whether the slot was
    /// seen (a sample or a coverage record), as [`crate::Series`] has it.
    pub fn add(&self, tally: &mut Tally, limits: &Limits, down: u64, up: u64, seen: bool) {
        tally.slots += 1;
        tally.seen += u32::from(seen);
        tally.volume += self.counts.of(down, up);
        if !seen && self.rule.missing == MissingSamples::Skip {
            return;
        }
        let mut count = |i: usize, v: u128| {
            tally.certain[i] += u32::from(v > limits.certain);
            tally.projected[i] += u32::from(v > limits.projected);
        };
        let (down, up) = (u128::from(down), u128::from(up));
        match self.rule.method {
            Method::MaxOfDirections => {
                count(0, down);
                count(1, up);
            }
            // Exact: down + up may exceed 64 bits, not 128.
            Method::SumOfDirections => count(0, down + up),
            Method::PerSampleMax => count(0, down.max(up)),
        }
    }

    /// The decision for a tenant whose closed slots so far are all in
    /// `tally`, with the same answer as [`decide`](crate::decide) on
    /// [`project`](crate::project) of its series.
    pub fn decide(&self, tally: &Tally, commit: Option<Rate>, quota: Option<Size>) -> Verdict {
        let n = self.expected;
        let m = tally.slots().min(n);
        let rule = &self.rule;
        let above = |counts: &[u32; 2], k: usize| counts.iter().any(|&c| c as usize >= k);
        if commit.is_some() && rule.missing == MissingSamples::ZeroAgainstExpected {
            if let Some(r) = rule.rank.rank(rule.percentile, n) {
                if above(&tally.certain, n - r + 1) {
                    return Verdict::Recompute;
                }
            }
        }
        if m < self.policy.min_elapsed {
            return Verdict::Exact(Decision::StayTooEarly {
                elapsed: m,
                needed: self.policy.min_elapsed,
            });
        }
        if commit.is_some() {
            let ranked = match rule.missing {
                MissingSamples::ZeroAgainstExpected => m,
                MissingSamples::Skip => tally.seen as usize,
            };
            if let Some(r) = rule.rank.rank(rule.percentile, ranked) {
                if above(&tally.projected, ranked - r + 1) {
                    return Verdict::Recompute;
                }
            }
        }
        if let Some(q) = quota {
            let margin = 100 + u128::from(self.policy.margin_percent);
            let projected = ByteCount(scale(tally.volume, n, m));
            if let Some(threshold) = volume_threshold(projected, q, margin) {
                return Verdict::Exact(Decision::MoveProjectedVolume {
                    projected,
                    threshold,
                });
            }
        }
        Verdict::Exact(Decision::Stay)
    }
}

/// One tenant's bytes in one slot, all realms, bands and sources added up,
/// as [`crate::Series::build`] adds them (down + up within 64 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotBytes {
    /// The slot.
    pub slot: Slot,
    /// Whose.
    pub tenant: TenantId,
    /// Toward the tenant.
    pub down: u64,
    /// From the tenant.
    pub up: u64,
}

/// Adds up samples per slot and tenant, ordered by slot then tenant.
/// Refused, naming the tenant and slot, where a slot's bytes (down and up
/// together) do not fit in 64 bits, as [`crate::Series::build`] refuses
/// them.
pub fn slot_bytes(samples: &[Sample]) -> Result<Vec<SlotBytes>, BillingError> {
    let mut out: Vec<SlotBytes> = Vec::new();
    let add = |out: &mut Vec<SlotBytes>, x: &Sample| -> Result<(), BillingError> {
        let i = match out.last() {
            Some(l) if l.slot == x.slot && l.tenant == x.key.tenant => out.len() - 1,
            _ => {
                out.push(SlotBytes {
                    slot: x.slot,
                    tenant: x.key.tenant,
                    down: 0,
                    up: 0,
                });
                out.len() - 1
            }
        };
        let row = &mut out[i];
        let (v, other) = match x.key.direction {
            Direction::Down => (&mut row.down, row.up),
            Direction::Up => (&mut row.up, row.down),
        };
        *v = v
            .checked_add(x.bytes)
            .filter(|v| v.checked_add(other).is_some())
            .ok_or_else(|| {
                BillingError::invalid(
                    format!("samples at {}", x.slot),
                    format!(
                        "tenant {}'s bytes {} add up past 2^64 − 1 (18 EB in five minutes); such samples are not real traffic",
                        x.key.tenant,
                        x.key.direction.as_str()
                    ),
                )
            })?;
        Ok(())
    };
    let sorted = samples
        .windows(2)
        .all(|w| (w[0].slot, w[0].key.tenant) <= (w[1].slot, w[1].key.tenant));
    if sorted {
        for x in samples {
            add(&mut out, x)?;
        }
    } else {
        let mut order: Vec<&Sample> = samples.iter().collect();
        order.sort_by_key(|x| (x.slot, x.key.tenant));
        for x in order {
            add(&mut out, x)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::PercentileRule;
    use crate::percentile::{Percentile, RankRule};
    use crate::projection::{decide, project};
    use crate::series::Series;
    use accounting::{Band, SlotStatus, Source, UsageKey};
    use net_types::RealmId;
    use proptest::prelude::*;

    fn reference(
        series: &Series,
        m: usize,
        watch: &Watch,
        commit: Option<Rate>,
        quota: Option<Size>,
    ) -> Decision {
        let p = project(series, m, &watch.rule, watch.counts);
        decide(&p, commit, quota, &watch.policy)
    }

    fn tally(series: &Series, m: usize, watch: &Watch, commit: Option<Rate>) -> Tally {
        let limits = watch.limits(commit);
        let mut t = Tally::default();
        // In reverse: the order of the slots must not matter.
        for i in (0..m).rev() {
            watch.add(
                &mut t,
                &limits,
                series.down()[i],
                series.up()[i],
                series.status()[i].is_some(),
            );
        }
        t
    }

    fn check(series: &Series, m: usize, watch: &Watch, commit: Option<Rate>, quota: Option<Size>) {
        let want = reference(series, m, watch, commit, quota);
        let got = watch.decide(&tally(series, m, watch, commit), commit, quota);
        match got {
            Verdict::Exact(d) => assert_eq!(d, want, "m = {m}, {watch:?}"),
            Verdict::Recompute => assert!(
                matches!(
                    want,
                    Decision::MoveCertain { .. } | Decision::MoveProjectedRate { .. }
                ),
                "recompute but the reference says {want:?}; m = {m}, {watch:?}"
            ),
        }
    }

    fn watch(expected: usize) -> Watch {
        Watch {
            expected,
            rule: PercentileRule::default(),
            counts: VolumeCounts::Both,
            policy: OveragePolicy::default(),
        }
    }

    fn flat(n: usize, bytes: u64) -> Series {
        Series::new(
            Slot(0),
            vec![bytes; n],
            vec![bytes / 2; n],
            vec![Some(SlotStatus::Measured); n],
        )
        .unwrap()
    }

    #[test]
    fn certain_projected_and_too_early() {
        // 10 Mbit/s is 375,000,000 bytes per 300 s.
        let commit = Rate::from_bps(10_000_000);
        let w = watch(8928);
        let mut t = Tally::default();
        let limits = w.limits(commit);
        for _ in 0..100 {
            w.add(&mut t, &limits, 400_000_000, 0, true);
        }
        // Over, but too early, and 100 slots cannot make the floor.
        assert_eq!(
            w.decide(&t, commit, None),
            Verdict::Exact(Decision::StayTooEarly {
                elapsed: 100,
                needed: 288
            })
        );
        for _ in 100..300 {
            w.add(&mut t, &limits, 400_000_000, 0, true);
        }
        // 400 MB is over 375 MB but within the 10% margin.
        assert_eq!(w.decide(&t, commit, None), Verdict::Exact(Decision::Stay));
        for _ in 300..447 {
            w.add(&mut t, &limits, 500_000_000, 0, true);
        }
        // 447 values above the commit: the floor (rank 8482 of 8928) is over.
        assert_eq!(w.decide(&t, commit, None), Verdict::Recompute);
        check(&flat(8928, 500_000_000), 447, &w, commit, None);
    }

    #[test]
    fn volume_is_exact() {
        let w = watch(8640);
        let quota = Some(Size::from_bytes(1_000_000_000));
        let s = flat(8640, 1_000_000);
        check(&s, 300, &w, None, quota);
        let s = flat(8640, 50_000);
        check(&s, 300, &w, None, quota);
        assert_eq!(
            w.decide(&tally(&s, 300, &w, None), None, quota),
            Verdict::Exact(Decision::Stay)
        );
    }

    #[test]
    fn slot_bytes_adds_realms_and_sorts() {
        let key = |tenant, realm, direction| UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction,
            band: Band::Whole,
            source: Source::Kernel,
        };
        let s = |slot, k, bytes| Sample {
            slot: Slot(slot),
            key: k,
            bytes,
            packets: 0,
        };
        let samples = [
            s(2, key(1, 1, Direction::Down), 5),
            s(1, key(2, 1, Direction::Up), 7),
            s(1, key(1, 1, Direction::Down), 1),
            s(1, key(1, 2, Direction::Down), u64::MAX - 4),
            s(1, key(1, 2, Direction::Up), 3),
        ];
        let b = slot_bytes(&samples).unwrap();
        let row = |slot, tenant, down, up| SlotBytes {
            slot: Slot(slot),
            tenant: TenantId(tenant),
            down,
            up,
        };
        assert_eq!(
            b,
            vec![row(1, 1, u64::MAX - 3, 3), row(1, 2, 0, 7), row(2, 1, 5, 0)]
        );
        // One more byte in that slot is past 2^64 − 1: refused, not clamped.
        let mut more = samples.to_vec();
        more.push(s(1, key(1, 3, Direction::Up), 1));
        let e = slot_bytes(&more).unwrap_err();
        assert!(e.to_string().contains("tenant 1's bytes up"), "{e}");
    }

    fn rules() -> impl Strategy<Value = Watch> {
        (
            1u8..100,
            prop_oneof![
                Just(Method::MaxOfDirections),
                Just(Method::SumOfDirections),
                Just(Method::PerSampleMax)
            ],
            prop_oneof![
                Just(RankRule::NearestRank),
                Just(RankRule::VnStat),
                Just(RankRule::LibreNms)
            ],
            prop_oneof![
                Just(MissingSamples::ZeroAgainstExpected),
                Just(MissingSamples::Skip)
            ],
            prop_oneof![
                Just(VolumeCounts::Both),
                Just(VolumeCounts::Down),
                Just(VolumeCounts::Up)
            ],
            0u32..60,
            0usize..120,
        )
            .prop_map(
                |(p, method, rank, missing, counts, margin, min_elapsed)| Watch {
                    expected: 0,
                    rule: PercentileRule {
                        percentile: Percentile::new(p).unwrap(),
                        method,
                        rank,
                        missing,
                    },
                    counts,
                    policy: OveragePolicy {
                        margin_percent: margin,
                        min_elapsed,
                    },
                },
            )
    }

    /// Bytes per slot: mostly near the thresholds (a commit of 1–100 bit/s
    /// is 0–3750 bytes per slot), sometimes near `u64::MAX`.
    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => 0u64..6000,
            1 => Just(0u64),
            1 => (0u64..4).prop_map(|x| u64::MAX - x),
        ]
    }

    fn slot() -> impl Strategy<Value = (u64, u64, Option<SlotStatus>)> {
        (
            value(),
            value(),
            prop_oneof![
                3 => Just(Some(SlotStatus::Measured)),
                1 => Just(Some(SlotStatus::Estimated)),
                1 => Just(Some(SlotStatus::Partial)),
                2 => Just(None),
            ],
            any::<bool>(),
        )
            .prop_map(|(d, u, s, zero)| match s {
                // As `Series::build` makes them, a missing slot has no
                // bytes; sometimes not, to cover any series.
                None if zero => (0, 0, None),
                // A series keeps down + up within 64 bits.
                _ => (d, u.min(u64::MAX - d), s),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn counts_decide_as_the_series_does(
            w in rules(),
            slots in proptest::collection::vec(slot(), 1..300),
            m_frac in 0.0f64..=1.0,
            commit in proptest::option::of(1u64..100),
            quota in proptest::option::of(0u64..2_000_000),
        ) {
            let n = slots.len();
            let m = ((n as f64 * m_frac) as usize).min(n);
            let series = Series::new(
                Slot(0),
                slots.iter().map(|s| s.0).collect(),
                slots.iter().map(|s| s.1).collect(),
                slots.iter().map(|s| s.2).collect(),
            )
            .unwrap();
            let w = Watch { expected: n, ..w };
            check(&series, m, &w, commit.and_then(Rate::from_bps), quota.map(Size::from_bytes));
        }
    }
}
