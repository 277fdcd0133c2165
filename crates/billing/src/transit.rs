//! The site's own bill: the uplink's percentile as an upstream computes
//! it, the burst budget left before it goes over the commit, and where it
//! is heading (docs/transit.md).
//!
//! # The site's series
//!
//! The uplink carries every tenant's traffic and what no tenant holds
//! (the root tree's default class, stored under [`UNCLASSIFIED`]). The
//! site's series is therefore every stored key added up, per slot and
//! direction, for the realms an upstream carries ([`site_series`]).
//! Traffic of no tenant has no realm (the default class is one per
//! direction, not per realm), so it counts for an upstream that carries
//! every realm only.
//!
//! # The burst budget
//!
//! Under the carrier rule (missing samples are zero against the `N`
//! expected), the percentile is the `r`-th smallest of `N` samples. It is
//! at or under the commit exactly when at most `N − r` samples are above
//! it: that is the period's burst budget (a 30-day month has `N` = 8640,
//! nearest rank `r` = 8208, so 432 samples, 36 hours). With
//! [`Method::MaxOfDirections`] each direction has the budget on its own
//! and the one that spent more counts; the other methods spend it with
//! the combined sample. Under [`MissingSamples::Skip`], `N` is the samples
//! that will be seen, unknown before the end; the expected count stands
//! in for it, and the budget is then an estimate (said so in
//! [`TransitStatus::exact_budget`]).
//!
//! "Above the commit" is exact: a sample's bytes × 8 above the commit ×
//! 300 s, the comparison `decide` makes for tenants.

use crate::error::BillingError;
use crate::figure::{Method, MissingSamples, PercentileRule, RankedSample};
use crate::names::named;
use crate::percentile::{Percentile, RankRule};
use crate::period::Period;
use crate::projection::{project, scale};
use crate::rate::BitRate;
use crate::series::{RealmSelection, Series};
use crate::volume::VolumeCounts;
use accounting::{Direction, Sample, SlotCoverage, SlotStatus, SAMPLE_SECONDS};
use net_types::{Rate, TenantId};
use serde::{Deserialize, Serialize};

/// The key under which the history keeps the uplink's traffic of no
/// tenant. Policy tenant ids start at 1, so no tenant can have it.
pub const UNCLASSIFIED: TenantId = TenantId(0);

/// How an upstream combines the uplink's directions. "In" is toward the
/// site (its tenants' down), "out" from it (their up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamMethod {
    /// A tenant method: the larger of the two percentiles, the percentile
    /// of the sum, or of the larger direction per sample.
    Both(Method),
    /// The percentile of "in" only.
    In,
    /// The percentile of "out" only.
    Out,
}

named!(
    UpstreamMethod,
    "upstream billing method",
    [
        (
            UpstreamMethod::Both(Method::MaxOfDirections),
            "max_of_directions"
        ),
        (
            UpstreamMethod::Both(Method::SumOfDirections),
            "sum_of_directions"
        ),
        (UpstreamMethod::Both(Method::PerSampleMax), "per_sample_max"),
        (UpstreamMethod::In, "in"),
        (UpstreamMethod::Out, "out"),
    ]
);

/// How an upstream bills the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRule {
    /// Usually 95.
    pub percentile: Percentile,
    /// How directions combine.
    pub method: UpstreamMethod,
    /// Which rank.
    pub rank: RankRule,
    /// What missing samples count as.
    pub missing: MissingSamples,
}

impl UpstreamRule {
    /// The tenant rule that computes the same figure on the series
    /// [`UpstreamRule::view`] makes: `in` and `out` are the larger per
    /// sample of one direction and zero.
    fn tenant_rule(&self) -> PercentileRule {
        PercentileRule {
            percentile: self.percentile,
            method: match self.method {
                UpstreamMethod::Both(m) => m,
                UpstreamMethod::In | UpstreamMethod::Out => Method::PerSampleMax,
            },
            rank: self.rank,
            missing: self.missing,
        }
    }

    /// The series the tenant rule is applied to: unchanged, or one
    /// direction with the other zeroed.
    fn view(&self, s: &Series) -> Series {
        let zero = || vec![0; s.len()];
        let (down, up) = match self.method {
            UpstreamMethod::Both(_) => return s.clone(),
            UpstreamMethod::In => (s.down().to_vec(), zero()),
            UpstreamMethod::Out => (zero(), s.up().to_vec()),
        };
        Series::new(s.first_slot(), down, up, s.status().to_vec())
            .expect("one direction of a valid series is valid")
    }

    /// The value of slot `i` that counts against the commit, per
    /// direction: `(down, up)` for the larger-of-percentiles method (each
    /// spends its own budget), else the combined sample twice.
    fn spend_values(&self, s: &Series, i: usize) -> (u64, u64) {
        let (d, u) = (s.down()[i], s.up()[i]);
        let one = match self.method {
            UpstreamMethod::Both(Method::MaxOfDirections) => return (d, u),
            UpstreamMethod::Both(Method::SumOfDirections) => d + u,
            UpstreamMethod::Both(Method::PerSampleMax) => d.max(u),
            UpstreamMethod::In => d,
            UpstreamMethod::Out => u,
        };
        (one, one)
    }
}

/// The site's series over `period` for the realms an upstream carries:
/// every key's samples (each tenant's and [`UNCLASSIFIED`]) added up per
/// slot and direction. Traffic of no tenant is stored without a realm and
/// counts only when `realms` is [`RealmSelection::All`]. Samples outside
/// the period are skipped. Refused, naming the slot, if a slot's bytes do
/// not fit in 64 bits.
pub fn site_series(
    period: &Period,
    realms: &RealmSelection,
    samples: &[Sample],
    coverage: &[SlotCoverage],
) -> Result<Series, BillingError> {
    let empty = Series::empty(period);
    let n = empty.len();
    let (mut down, mut up) = (vec![0u64; n], vec![0u64; n]);
    let mut status: Vec<Option<SlotStatus>> = vec![None; n];
    for c in coverage {
        if let Some(i) = empty.index(c.slot) {
            status[i] = Some(c.status);
        }
    }
    for x in samples {
        let counts = if x.key.tenant == UNCLASSIFIED {
            *realms == RealmSelection::All
        } else {
            realms.contains(x.key.realm)
        };
        let Some(i) = empty.index(x.slot).filter(|_| counts) else {
            continue;
        };
        let v = match x.key.direction {
            Direction::Down => &mut down[i],
            Direction::Up => &mut up[i],
        };
        *v = v.checked_add(x.bytes).ok_or_else(|| {
            BillingError::invalid(
                format!("samples at {}", x.slot),
                "the site's bytes add up past 2^64 − 1 in five minutes; such samples are not real traffic",
            )
        })?;
        status[i].get_or_insert(SlotStatus::Partial);
    }
    Series::new(period.first_slot(), down, up, status)
}

/// Where the site stands against one upstream's commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitStatus {
    /// The commit.
    pub commit: Rate,
    /// The commit less the safety margin: what the guard aims under.
    pub target: BitRate,
    /// Slots closed so far (`m`).
    pub elapsed: usize,
    /// Slots in the period (`N`).
    pub expected: usize,
    /// The rank of the percentile among the period's `N` samples.
    pub rank: Option<usize>,
    /// Samples the period allows above the commit: `N − rank`.
    pub budget: usize,
    /// Samples of the closed slots above the commit (for the
    /// larger-of-percentiles method, of the direction that spent more).
    pub spent: usize,
    /// `budget − spent`, or zero once the budget is gone.
    pub left: usize,
    /// Samples above the commit by the end at the pace so far
    /// (`spent × N / m`).
    pub projected_spent: usize,
    /// The percentile of the closed slots with the upstream's rule, as
    /// the bill would be if the period ended now.
    pub so_far: Option<RankedSample>,
    /// The percentile projected to the period's end at the current pace:
    /// the closed slots' distribution scaled to `N` samples has the same
    /// percentile, so this is `so_far` by construction; it is its own
    /// field so that a better model can replace it without a new API.
    pub projected: Option<RankedSample>,
    /// The percentile cannot end below this whatever the rest of the
    /// period carries (carrier rule only; `None` under `skip`).
    pub floor: Option<BitRate>,
    /// At the pace so far, the slot (counted from the period's first)
    /// at which the budget is gone; `None` if it lasts the period.
    pub runs_out_at: Option<usize>,
    /// Whether the budget is exact (carrier rule) or an estimate (missing
    /// samples skipped: `N` is not known before the end).
    pub exact_budget: bool,
}

impl TransitStatus {
    /// Whether the bill is already over the commit whatever comes: more
    /// samples above it than the period allows.
    pub fn lost(&self) -> bool {
        self.spent > self.budget
    }

    /// Whether, at the pace so far, the budget runs out before the period
    /// ends: the moment the guard tightens.
    pub fn at_risk(&self) -> bool {
        self.projected_spent > self.budget
    }
}

/// Assesses `series` (the period's site series, of which the first
/// `elapsed` slots have closed) against `commit` under the upstream's
/// rule, aiming `margin_percent` under the commit.
pub fn assess(
    series: &Series,
    elapsed: usize,
    rule: &UpstreamRule,
    commit: Rate,
    margin_percent: u32,
) -> TransitStatus {
    let n = series.len();
    let m = elapsed.min(n);
    // The tenants' projection does the rest: the percentile of the closed
    // slots, and the floor the remaining slots cannot push it under.
    let p = project(
        &rule.view(series),
        m,
        &rule.tenant_rule(),
        VolumeCounts::Both,
    );
    let rank = rule.rank.rank(rule.percentile, n);
    let budget = rank.map_or(0, |r| n - r);
    let limit = u128::from(commit.bps()) * SAMPLE_SECONDS as u128;
    let above = |bytes: u64| u128::from(bytes) * 8 > limit;
    let (mut spent_down, mut spent_up) = (0usize, 0usize);
    for i in 0..m {
        let (d, u) = rule.spend_values(series, i);
        spent_down += usize::from(above(d));
        spent_up += usize::from(above(u));
    }
    let spent = spent_down.max(spent_up);
    let projected_spent = scale(spent as u128, n, m) as usize;
    // At spent/m per slot, the budget's (budget + 1)-th sample above the
    // commit falls at slot ⌈(budget + 1) × m / spent⌉.
    let runs_out_at = (spent > 0)
        .then(|| ((budget as u128 + 1) * m as u128).div_ceil(spent as u128) as usize)
        .filter(|&at| at <= n);
    let target = BitRate(
        (u128::from(commit.bps()) * u128::from(100 - margin_percent.min(100)) / 100) as u64,
    );
    TransitStatus {
        commit,
        target,
        elapsed: m,
        expected: n,
        rank,
        budget,
        spent,
        left: budget.saturating_sub(spent),
        projected_spent,
        so_far: p.percentile,
        projected: p.percentile,
        floor: p.percentile_floor,
        runs_out_at,
        exact_budget: rule.missing == MissingSamples::ZeroAgainstExpected,
    }
}

/// The closed slots (of the first `elapsed`) whose sample is above the
/// commit under the upstream's rule, with the directions whose traffic
/// put it there: `(index, down, up)`. Under the larger-of-percentiles
/// method each direction is above on its own; under the others a slot
/// above counts both directions the rule adds up (`in` and `out` one).
/// The transit guard weighs tenants by their bytes in these.
pub fn above_commit(
    series: &Series,
    elapsed: usize,
    rule: &UpstreamRule,
    commit: Rate,
) -> Vec<(usize, bool, bool)> {
    let limit = u128::from(commit.bps()) * SAMPLE_SECONDS as u128;
    let above = |bytes: u64| u128::from(bytes) * 8 > limit;
    let mut out = Vec::new();
    for i in 0..elapsed.min(series.len()) {
        let (d, u) = rule.spend_values(series, i);
        let (d, u) = match rule.method {
            UpstreamMethod::Both(Method::MaxOfDirections) => (above(d), above(u)),
            UpstreamMethod::In => (above(d), false),
            UpstreamMethod::Out => (false, above(u)),
            UpstreamMethod::Both(_) => (above(d), above(d)),
        };
        if d || u {
            out.push((i, d, u));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Every expected value here was worked out by hand (in the comments),
    //! not by calling the code under test.
    use super::*;
    use crate::period::BillingCycle;
    use accounting::{Band, Slot, Source, UsageKey};
    use net_types::RealmId;

    /// Bytes of one 5-minute sample at `mbit` Mbit/s: mbit × 10⁶ × 300 / 8.
    const MBIT: u64 = 37_500_000;

    fn rate(bps: u64) -> Rate {
        Rate::from_bps(bps).unwrap()
    }

    fn rule(method: UpstreamMethod, rank: RankRule, missing: MissingSamples) -> UpstreamRule {
        UpstreamRule {
            percentile: Percentile::P95,
            method,
            rank,
            missing,
        }
    }

    const IN: UpstreamMethod = UpstreamMethod::In;
    const MAX: UpstreamMethod = UpstreamMethod::Both(Method::MaxOfDirections);
    const ZERO: MissingSamples = MissingSamples::ZeroAgainstExpected;

    fn series(down: &[u64], up: &[u64], missing: &[usize]) -> Series {
        let status = (0..down.len())
            .map(|i| (!missing.contains(&i)).then_some(SlotStatus::Measured))
            .collect();
        Series::new(
            Slot(1000),
            down.iter().map(|m| m * MBIT).collect(),
            up.iter().map(|m| m * MBIT).collect(),
            status,
        )
        .unwrap()
    }

    fn mbit_of(s: &TransitStatus) -> u64 {
        s.so_far.unwrap().bytes / MBIT
    }

    #[test]
    fn a_30_day_month_allows_432_samples_above_the_commit() {
        let p = BillingCycle::new(1, "UTC")
            .unwrap()
            .period(2026, 11)
            .unwrap();
        let s = Series::empty(&p);
        // 30 × 288 = 8640 samples. Nearest rank and vnStat: 0.95 × 8640 =
        // 8208 exactly, so 8640 − 8208 = 432 (5 %, 36 hours). LibreNMS
        // takes round(8208) − 1 = 8207, one sample more: 433.
        for (rank, budget) in [
            (RankRule::NearestRank, 432),
            (RankRule::VnStat, 432),
            (RankRule::LibreNms, 433),
        ] {
            let t = assess(&s, 0, &rule(MAX, rank, ZERO), rate(10_000_000), 10);
            assert_eq!(
                (t.expected, t.budget, t.spent, t.left),
                (8640, budget, 0, budget)
            );
            assert!(!t.at_risk() && !t.lost());
        }
    }

    #[test]
    fn a_dst_month_has_its_own_budget_and_percentile() {
        // Europe/Berlin, March 2026: clocks go forward on the 29th, so the
        // month is 31 × 24 − 1 = 743 hours, 8916 samples. Nearest rank:
        // ⌈0.95 × 8916⌉ = ⌈8470.2⌉ = 8471, budget 8916 − 8471 = 445.
        let p = BillingCycle::new(1, "Europe/Berlin")
            .unwrap()
            .period(2026, 3)
            .unwrap();
        assert_eq!(p.expected_samples(), 8916);
        let month = |high: usize| {
            let n = 8916;
            let down: Vec<u64> = (0..n)
                .map(|i| if i % 20 == 0 && i / 20 < high { 20 } else { 5 })
                .collect();
            series(&down, &vec![1; n], &[])
        };
        let r = rule(MAX, RankRule::NearestRank, ZERO);
        // 445 samples at 20 Mbit/s: sorted, 8471 at 5 then 445 at 20, and
        // rank 8471 is the last 5: under the 10 Mbit/s commit, budget gone.
        let t = assess(&month(445), 8916, &r, rate(10_000_000), 10);
        assert_eq!((t.budget, t.spent, t.left), (445, 445, 0));
        assert_eq!(mbit_of(&t), 5);
        assert!(!t.lost());
        // One more, and rank 8471 is a 20: over.
        let t = assess(&month(446), 8916, &r, rate(10_000_000), 10);
        assert_eq!((t.spent, t.left), (446, 0));
        assert_eq!(mbit_of(&t), 20);
        assert!(t.lost());
    }

    #[test]
    fn each_rank_rule_with_and_without_missing_samples() {
        // In = down: 1, 2, …, 20 Mbit/s; the slots holding 3 and 20 were
        // never observed (stored as zero).
        let down: Vec<u64> = (1..=20)
            .map(|v| if v == 3 || v == 20 { 0 } else { v })
            .collect();
        let s = series(&down, &[0; 20], &[2, 19]);
        let c = rate(15_000_000);
        // Zero against 20 expected: sorted 0,0,1,2,4,5,…,19. Ranks: nearest
        // ⌈19⌉ = 19 → 18; vnStat round(19) = 19 → 18; LibreNMS 19 − 1 = 18
        // → 17.
        // Skipped, n = 18 seen: sorted 1,2,4,5,…,19. Ranks: nearest
        // ⌈17.1⌉ = 18 → 19; vnStat round(17.1) = 17 → 18; LibreNMS
        // round(17.1) − 1 = 16 → 17.
        for (rank, zero, skip) in [
            (RankRule::NearestRank, 18, 19),
            (RankRule::VnStat, 18, 18),
            (RankRule::LibreNms, 17, 17),
        ] {
            let t = assess(&s, 20, &rule(IN, rank, ZERO), c, 0);
            assert_eq!(mbit_of(&t), zero, "{rank} zero");
            assert!(t.exact_budget);
            let t = assess(&s, 20, &rule(IN, rank, MissingSamples::Skip), c, 0);
            assert_eq!(mbit_of(&t), skip, "{rank} skip");
            assert!(!t.exact_budget);
            assert_eq!(t.floor, None);
            // Above 15: 16, 17, 18, 19 (20 was missing).
            assert_eq!(t.spent, 4);
        }
    }

    #[test]
    fn each_method_combines_the_directions_as_the_upstream_does() {
        // The 50th of 4 samples, nearest rank: the ⌈2⌉ = 2nd smallest.
        // Budget 4 − 2 = 2; commit 2.5 Mbit/s.
        let s = series(&[4, 1, 3, 2], &[1, 4, 1, 1], &[]);
        let at = |method| {
            let r = UpstreamRule {
                percentile: Percentile::new(50).unwrap(),
                ..rule(method, RankRule::NearestRank, ZERO)
            };
            let t = assess(&s, 4, &r, rate(2_500_000), 0);
            assert_eq!(t.budget, 2);
            (mbit_of(&t), t.spent)
        };
        // in: 1,2,3,4 → 2; above 2.5: 4, 3.
        assert_eq!(at(IN), (2, 2));
        // out: 1,1,1,4 → 1; above: 4.
        assert_eq!(at(UpstreamMethod::Out), (1, 1));
        // the larger of 2 and 1; each direction spends its own: max(2, 1).
        assert_eq!(at(MAX), (2, 2));
        // sums 5,5,4,3 → sorted 3,4,5,5 → 4; all four above.
        assert_eq!(at(UpstreamMethod::Both(Method::SumOfDirections)), (4, 4));
        // per-sample max 4,4,3,2 → sorted 2,3,4,4 → 3; above: 4, 4, 3.
        assert_eq!(at(UpstreamMethod::Both(Method::PerSampleMax)), (3, 3));
    }

    #[test]
    fn the_pace_says_when_the_budget_runs_out() {
        // A 30-day month, ten days (2880 slots) closed, 200 of them at
        // 20 Mbit/s: at that pace 200 × 8640 / 2880 = 600 > 432 by the end,
        // and the 433rd falls at ⌈433 × 2880 / 200⌉ = ⌈6235.2⌉ = 6236.
        let p = BillingCycle::new(1, "UTC")
            .unwrap()
            .period(2026, 11)
            .unwrap();
        let down: Vec<u64> = (0..8640)
            .map(|i| {
                if i < 2880 && i % 14 == 0 && i / 14 < 200 {
                    20
                } else if i < 2880 {
                    5
                } else {
                    0
                }
            })
            .collect();
        let mut s = series(&down, &vec![0; 8640], &[]);
        s = Series::new(
            p.first_slot(),
            s.down().to_vec(),
            s.up().to_vec(),
            s.status().to_vec(),
        )
        .unwrap();
        let t = assess(
            &s,
            2880,
            &rule(MAX, RankRule::NearestRank, ZERO),
            rate(10_000_000),
            10,
        );
        assert_eq!(
            (t.elapsed, t.spent, t.left, t.projected_spent),
            (2880, 200, 232, 600)
        );
        assert_eq!(t.runs_out_at, Some(6236));
        assert!(t.at_risk() && !t.lost());
        // The target is the commit less 10 %.
        assert_eq!(t.target, BitRate(9_000_000));
        // The floor: rank 8208 of 8640 with 5760 slots still open needs the
        // 8208 − 5760 = 2448th smallest closed sample: 2680 are at 5, so 5.
        assert_eq!(t.floor, Some(BitRate(5_000_000)));
        // Five days closed: 103 above (slots 0, 14, …, 1428), so 103 × 6 =
        // 618 by the end, the 433rd at ⌈433 × 1440 / 103⌉ = ⌈6053.6⌉ = 6054.
        let t = assess(
            &s,
            1440,
            &rule(MAX, RankRule::NearestRank, ZERO),
            rate(10_000_000),
            10,
        );
        assert_eq!(
            (t.spent, t.projected_spent, t.runs_out_at),
            (103, 618, Some(6054))
        );
    }

    fn sample(slot: i64, tenant: u32, realm: u16, direction: Direction, bytes: u64) -> Sample {
        Sample {
            slot: Slot(slot),
            key: UsageKey {
                tenant: TenantId(tenant),
                realm: RealmId(realm),
                direction,
                band: Band::Whole,
                source: Source::Kernel,
            },
            bytes,
            packets: 1,
        }
    }

    #[test]
    fn the_site_is_every_tenant_plus_what_no_tenant_holds() {
        let p = BillingCycle::new(1, "UTC")
            .unwrap()
            .period(2026, 11)
            .unwrap();
        let f = p.first_slot().0;
        let (d, u) = (Direction::Down, Direction::Up);
        let samples = [
            sample(f, 1, 1, d, 100),
            sample(f, 1, 2, d, 20),
            sample(f, 2, 1, d, 3),
            sample(f, 2, 1, u, 7),
            sample(f, 0, 0, d, 5000), // no tenant's
            sample(f + 1, 0, 0, u, 40_000),
            sample(f + 1, 2, 2, u, 600),
            sample(f - 1, 1, 1, d, 9), // before the period
        ];
        let coverage = [SlotCoverage {
            slot: Slot(f + 2),
            status: SlotStatus::Measured,
        }];
        let all = site_series(&p, &RealmSelection::All, &samples, &coverage).unwrap();
        // Slot 0: down 100 + 20 + 3 + 5000, up 7; slot 1: up 40000 + 600.
        assert_eq!(&all.down()[..3], &[5123, 0, 0]);
        assert_eq!(&all.up()[..3], &[7, 40_600, 0]);
        assert_eq!(
            &all.status()[..4],
            &[
                Some(SlotStatus::Partial),
                Some(SlotStatus::Partial),
                Some(SlotStatus::Measured),
                None
            ]
        );
        // Realm 1 only: tenants' realm-1 traffic; no tenant's has no realm.
        let one = site_series(&p, &RealmSelection::Only(vec![RealmId(1)]), &samples, &[]).unwrap();
        assert_eq!(
            (&one.down()[..2], &one.up()[..2]),
            (&[103, 0][..], &[7, 0][..])
        );
    }

    #[test]
    fn the_slots_above_the_commit_name_the_directions_that_count() {
        // Commit 10 Mbit/s. Slot 0: 12 down, 1 up; slot 1: 6 and 6; slot
        // 2: 1 down, 11 up; slot 3 (not closed): 20 down.
        let s = series(&[12, 6, 1, 20], &[1, 6, 11, 0], &[]);
        let c = rate(10_000_000);
        let r = |m| rule(m, RankRule::NearestRank, ZERO);
        assert_eq!(
            above_commit(&s, 3, &r(MAX), c),
            vec![(0, true, false), (2, false, true)]
        );
        assert_eq!(above_commit(&s, 3, &r(IN), c), vec![(0, true, false)]);
        // The sum: 13, 12, 12 are all above, both directions counting.
        let sum = UpstreamMethod::Both(Method::SumOfDirections);
        assert_eq!(
            above_commit(&s, 3, &r(sum), c),
            vec![(0, true, true), (1, true, true), (2, true, true)]
        );
    }
}
