//! The 95th percentile of one series: method, missing-sample rule, rank
//! rule, and the coverage behind the figure.

use crate::names::named;
use crate::percentile::{rank_value, Percentile, RankRule};
use crate::rate::BitRate;
use crate::series::Series;
use accounting::{Direction, SlotStatus};
use serde::{Deserialize, Serialize};

/// How the two directions are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The 95th of "in" and the 95th of "out" separately; bill the larger
    /// (the usual transit rule).
    MaxOfDirections,
    /// The 95th of in + out per sample (LibreNMS "agg").
    SumOfDirections,
    /// The 95th of max(in, out) per sample.
    PerSampleMax,
}

named!(
    Method,
    "method",
    [
        (Method::MaxOfDirections, "max_of_directions"),
        (Method::SumOfDirections, "sum_of_directions"),
        (Method::PerSampleMax, "per_sample_max"),
    ]
);

impl Method {
    /// What the method does, for bills.
    pub fn describe(self) -> &'static str {
        match self {
            Method::MaxOfDirections => {
                "the larger of the in (down) and out (up) percentiles, each taken on its own"
            }
            Method::SumOfDirections => "the percentile of in + out per sample",
            Method::PerSampleMax => "the percentile of max(in, out) per sample",
        }
    }
}

/// What a missing sample (a slot nobody observed) counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingSamples {
    /// Zero, and n is the *expected* count (the common carrier rule: an
    /// outage of the meter never raises the bill).
    ZeroAgainstExpected,
    /// Left out; n is the number of samples seen (vnStat and LibreNMS do
    /// this). Missing samples then push the rank up.
    Skip,
}

named!(
    MissingSamples,
    "missing-sample rule",
    [
        (MissingSamples::ZeroAgainstExpected, "zero_against_expected"),
        (MissingSamples::Skip, "skip"),
    ]
);

impl MissingSamples {
    fn describe(self, expected: usize) -> String {
        match self {
            MissingSamples::ZeroAgainstExpected => {
                format!("missing samples count as zero against the {expected} expected")
            }
            MissingSamples::Skip => "missing samples are left out; n is the samples seen".into(),
        }
    }
}

/// How a percentile figure is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PercentileRule {
    /// Usually 95.
    pub percentile: Percentile,
    /// How directions combine.
    pub method: Method,
    /// Which rank.
    pub rank: RankRule,
    /// What missing samples count as.
    pub missing: MissingSamples,
}

impl Default for PercentileRule {
    fn default() -> Self {
        PercentileRule {
            percentile: Percentile::P95,
            method: Method::MaxOfDirections,
            rank: RankRule::NearestRank,
            missing: MissingSamples::ZeroAgainstExpected,
        }
    }
}

/// Expected, seen and missing samples behind a figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Slots in the period (or in the part of it considered).
    pub expected: usize,
    /// Slots observed (measured, estimated or partial).
    pub seen: usize,
    /// Slots nobody observed: `expected − seen`.
    pub missing: usize,
    /// Of the seen, those filled by spreading a gap's traffic.
    pub estimated: usize,
    /// Of the seen, those observed only in part.
    pub partial: usize,
}

impl Coverage {
    /// Counts a series' slots.
    pub fn of(series: &Series) -> Coverage {
        let mut c = Coverage {
            expected: series.len(),
            ..Coverage::default()
        };
        for s in series.status().iter().flatten() {
            c.seen += 1;
            match s {
                SlotStatus::Measured => {}
                SlotStatus::Estimated => c.estimated += 1,
                SlotStatus::Partial => c.partial += 1,
            }
        }
        c.missing = c.expected - c.seen;
        c
    }
}

/// The chosen sample of one direction (or combination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankedSample {
    /// Its average rate: bytes × 8 / 300 s.
    pub rate: BitRate,
    /// Its bytes, exactly.
    pub bytes: u64,
    /// Its 1-based rank among the samples sorted ascending.
    pub rank: usize,
    /// Among how many.
    pub of: usize,
}

/// A percentile figure with everything needed to check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PercentileFigure {
    /// The rule used.
    pub rule: PercentileRule,
    /// The billed sample; `None` when there was no sample to rank.
    pub value: Option<RankedSample>,
    /// For [`Method::MaxOfDirections`]: which direction was billed.
    pub billed_direction: Option<Direction>,
    /// For [`Method::MaxOfDirections`]: the down ("in") percentile.
    pub down: Option<RankedSample>,
    /// For [`Method::MaxOfDirections`]: the up ("out") percentile.
    pub up: Option<RankedSample>,
    /// The samples behind the figure.
    pub coverage: Coverage,
    /// The method and rank rule in words, printed with the figure.
    pub explanation: String,
}

impl PercentileFigure {
    /// The billed rate (zero if there was nothing to rank).
    pub fn rate(&self) -> BitRate {
        self.value.map_or(BitRate(0), |v| v.rate)
    }
}

fn ranked(values: &mut [u64], rule: &PercentileRule) -> Option<RankedSample> {
    let of = values.len();
    let rank = rule.rank.rank(rule.percentile, of)?;
    let bytes = rank_value(values, rank)?;
    Some(RankedSample {
        rate: BitRate::of_sample(bytes),
        bytes,
        rank,
        of,
    })
}

/// The values that take part, per the missing-sample rule: `f` of each
/// slot's index.
fn values(series: &Series, rule: &PercentileRule, f: impl Fn(usize) -> u64) -> Vec<u64> {
    let all = series.status().iter().enumerate();
    match rule.missing {
        MissingSamples::ZeroAgainstExpected => all.map(|(i, _)| f(i)).collect(),
        MissingSamples::Skip => all
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| f(i))
            .collect(),
    }
}

/// Computes the percentile figure of a series.
pub fn percentile(series: &Series, rule: &PercentileRule) -> PercentileFigure {
    let coverage = Coverage::of(series);
    let (value, billed_direction, down, up) = match rule.method {
        Method::MaxOfDirections => {
            let down = ranked(&mut values(series, rule, |i| series.down()[i]), rule);
            let up = ranked(&mut values(series, rule, |i| series.up()[i]), rule);
            match (down, up) {
                (Some(d), Some(u)) if u.bytes > d.bytes => (Some(u), Some(Direction::Up), down, up),
                (Some(d), _) => (Some(d), Some(Direction::Down), down, up),
                _ => (None, None, down, up),
            }
        }
        Method::SumOfDirections => (
            ranked(&mut values(series, rule, |i| series.sum_at(i)), rule),
            None,
            None,
            None,
        ),
        Method::PerSampleMax => (
            ranked(
                &mut values(series, rule, |i| series.down()[i].max(series.up()[i])),
                rule,
            ),
            None,
            None,
            None,
        ),
    };
    let n = match rule.missing {
        MissingSamples::ZeroAgainstExpected => coverage.expected,
        MissingSamples::Skip => coverage.seen,
    };
    let rank_text = match value {
        Some(v) => format!("rank {} of {}", v.rank, v.of),
        None => "no sample to rank".into(),
    };
    let explanation = format!(
        "{}th percentile of 5-minute samples (rate = bytes × 8 / 300 s); {}; {} (n = {n}: {rank_text}); {}; coverage: {} expected, {} seen, {} missing ({} estimated, {} partial)",
        rule.percentile.get(),
        rule.method.describe(),
        rule.rank.formula(rule.percentile),
        rule.missing.describe(coverage.expected),
        coverage.expected,
        coverage.seen,
        coverage.missing,
        coverage.estimated,
        coverage.partial,
    );
    PercentileFigure {
        rule: *rule,
        value,
        billed_direction,
        down,
        up,
        coverage,
        explanation,
    }
}
