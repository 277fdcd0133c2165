//! Which sample is "the 95th": the rank rules, and picking the sample.
//!
//! Tools disagree by one rank. For `n` samples sorted ascending and a
//! percentile `p` (95), with ranks counted from 1:
//!
//! | rule | rank | source, as read in its code |
//! |---|---|---|
//! | [`RankRule::NearestRank`] | `⌈p·n/100⌉` | the textbook nearest-rank definition; Cacti's `ninety_fifth_percentile` (lib/graph_variables.php) sorts descending and takes index `⌊n/20⌋`, which is the same sample |
//! | [`RankRule::VnStat`] | `round(p·n/100)`, halves down | vnStat `src/percentile.c`: `lrint(count * 0.95f) - 1` as a 0-based index into the seen samples; `0.95f` is just below 0.95, so exact halves round down |
//! | [`RankRule::LibreNms`] | `round(p·n/100) − 1`, halves up, at least 1 | LibreNMS `LibreNMS/Billing.php` `get95thIn`: `round(count / 100 * 95) - 2` as a 0-based index |
//!
//! For a 31-day month (`n` = 8928) they give 8482, 8482 and 8481; for
//! `n` = 30 they give 29, 28 and 28. tollgate's default is nearest rank:
//! it is the definition the other two approximate, and it never picks a
//! sample below the one that at least `p`% of the samples do not exceed.

use crate::error::BillingError;
use crate::names::named;
use serde::{Deserialize, Serialize};

/// A percentile, 1 to 99 (95 for "95th").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Percentile(u8);

impl Percentile {
    /// The 95th.
    pub const P95: Percentile = Percentile(95);

    /// Checks `value` is 1 to 99.
    pub fn new(value: u8) -> Result<Percentile, BillingError> {
        if (1..=99).contains(&value) {
            Ok(Percentile(value))
        } else {
            Err(BillingError::invalid(
                "percentile",
                format!("{value} is not between 1 and 99"),
            ))
        }
    }

    /// The number, e.g. 95.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Percentile {
    type Error = BillingError;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Percentile::new(v)
    }
}

impl From<Percentile> for u8 {
    fn from(p: Percentile) -> u8 {
        p.0
    }
}

/// How the percentile's rank is chosen among `n` sorted samples. Named
/// `nearest_rank`, `vnstat` and `librenms` everywhere (policy, bill JSON,
/// printed bills); bills frozen by older builds spelled the last two
/// `vn_stat` and `libre_nms`, which are still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankRule {
    /// `⌈p·n/100⌉` (the default; Cacti agrees).
    NearestRank,
    /// `round(p·n/100)` with halves rounded down, as vnStat.
    VnStat,
    /// `round(p·n/100) − 1` with halves rounded up, at least 1, as LibreNMS.
    LibreNms,
}

impl RankRule {
    /// The 1-based rank of the percentile among `n ≥ 1` samples sorted
    /// ascending, always within `1..=n`. `None` when `n` is 0.
    pub fn rank(self, p: Percentile, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let pn = u128::from(p.0) * n as u128;
        let r = match self {
            RankRule::NearestRank => pn.div_ceil(100),
            RankRule::VnStat => (pn + 49) / 100,
            RankRule::LibreNms => ((pn + 50) / 100).saturating_sub(1),
        };
        Some((r as usize).clamp(1, n))
    }

    /// The rule as a formula, for bills.
    pub fn formula(self, p: Percentile) -> String {
        let p = p.0;
        match self {
            RankRule::NearestRank => format!("nearest rank: the ⌈{p}·n/100⌉-th smallest"),
            RankRule::VnStat => {
                format!("vnStat's rule: the round({p}·n/100)-th smallest, halves down")
            }
            RankRule::LibreNms => format!(
                "LibreNMS's rule: the (round({p}·n/100) − 1)-th smallest, halves up, at least the 1st"
            ),
        }
    }
}

named!(
    RankRule,
    "rank rule",
    [
        (RankRule::NearestRank, "nearest_rank"),
        (RankRule::VnStat, "vnstat"),
        (RankRule::LibreNms, "librenms"),
    ],
    old: [(RankRule::VnStat, "vn_stat"), (RankRule::LibreNms, "libre_nms")]
);

/// The `rank`-th smallest value (1-based), reordering `values`. Linear time
/// on average: a month is 8928 samples and a bill run has 10,000 tenants.
/// `None` if `rank` is 0 or beyond the values.
pub fn rank_value(values: &mut [u64], rank: usize) -> Option<u64> {
    if rank == 0 || rank > values.len() {
        return None;
    }
    let (_, v, _) = values.select_nth_unstable(rank - 1);
    Some(*v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(n: usize) -> (usize, usize, usize) {
        let p = Percentile::P95;
        (
            RankRule::NearestRank.rank(p, n).unwrap(),
            RankRule::VnStat.rank(p, n).unwrap(),
            RankRule::LibreNms.rank(p, n).unwrap(),
        )
    }

    #[test]
    fn the_rules_differ_by_one_rank() {
        assert_eq!(ranks(8928), (8482, 8482, 8481)); // 8481.6
        assert_eq!(ranks(8640), (8208, 8208, 8207)); // 8208 exactly
        assert_eq!(ranks(8064), (7661, 7661, 7660)); // 7660.8
        assert_eq!(ranks(30), (29, 28, 28)); // 28.5
        assert_eq!(ranks(10), (10, 9, 9)); // 9.5
        assert_eq!(ranks(20), (19, 19, 18));
    }

    #[test]
    fn tiny_n_stays_in_range() {
        assert_eq!(ranks(1), (1, 1, 1));
        assert_eq!(ranks(2), (2, 2, 1)); // 1.9
        assert_eq!(RankRule::NearestRank.rank(Percentile::P95, 0), None);
    }

    #[test]
    fn rank_value_picks_the_sorted_position() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(rank_value(&mut v, 1), Some(1));
        assert_eq!(rank_value(&mut v, 5), Some(5));
        assert_eq!(rank_value(&mut v, 6), None);
        assert_eq!(rank_value(&mut v, 0), None);
    }

    #[test]
    fn percentile_is_checked() {
        assert!(Percentile::new(0).is_err());
        assert!(Percentile::new(100).is_err());
        assert_eq!(Percentile::new(95).unwrap(), Percentile::P95);
    }

    proptest::proptest! {
        #[test]
        fn rank_value_matches_sorting(mut v in proptest::collection::vec(0u64..1000, 1..300), p in 1u8..100) {
            let p = Percentile::new(p).unwrap();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            for rule in [RankRule::NearestRank, RankRule::VnStat, RankRule::LibreNms] {
                let r = rule.rank(p, v.len()).unwrap();
                proptest::prop_assert_eq!(rank_value(&mut v, r), Some(sorted[r - 1]));
            }
        }
    }
}
