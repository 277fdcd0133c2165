//! Volume: bytes per period, against an optional quota.

use crate::bytes::ByteCount;
use crate::figure::Coverage;
use crate::names::named;
use crate::series::Series;
use net_types::Size;
use serde::{Deserialize, Serialize};

/// Which directions count toward a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeCounts {
    /// Down + up.
    Both,
    /// Toward the tenant only.
    Down,
    /// From the tenant only.
    Up,
}

named!(
    VolumeCounts,
    "volume rule",
    [
        (VolumeCounts::Both, "both"),
        (VolumeCounts::Down, "down"),
        (VolumeCounts::Up, "up"),
    ]
);

impl VolumeCounts {
    /// The counted bytes of one slot, exactly (down + up may exceed 64
    /// bits).
    pub fn of(self, down: u64, up: u64) -> u128 {
        match self {
            VolumeCounts::Both => u128::from(down) + u128::from(up),
            VolumeCounts::Down => u128::from(down),
            VolumeCounts::Up => u128::from(up),
        }
    }
}

/// A volume rule: what counts and the quota, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRule {
    /// Which directions count.
    pub counts: VolumeCounts,
    /// Bytes included per period (`1000gb` in the policy is GiB, as tc).
    pub quota: Option<Size>,
}

impl Default for VolumeRule {
    fn default() -> Self {
        VolumeRule {
            counts: VolumeCounts::Both,
            quota: None,
        }
    }
}

/// Volume in a period: exact sums, however large.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeFigure {
    /// Bytes toward the tenant.
    pub down: ByteCount,
    /// Bytes from the tenant.
    pub up: ByteCount,
    /// The bytes that count (per [`VolumeRule::counts`]).
    pub used: ByteCount,
    /// The quota.
    pub quota: Option<Size>,
    /// Bytes above the quota (zero if within it).
    pub over: Option<ByteCount>,
    /// `used / quota × 100`.
    pub used_percent: Option<f64>,
    /// The samples behind the figure. Missing samples carry no bytes, so
    /// a volume with missing samples is a lower bound.
    pub coverage: Coverage,
}

impl VolumeFigure {
    /// Adds up a series, exactly: a sum of fewer than 2^64 slots of at
    /// most 2^64 bytes each cannot overflow 128 bits.
    pub fn of(series: &Series, rule: &VolumeRule) -> VolumeFigure {
        let down: u128 = series.down().iter().map(|&b| u128::from(b)).sum();
        let up: u128 = series.up().iter().map(|&b| u128::from(b)).sum();
        let used = match rule.counts {
            VolumeCounts::Both => down + up,
            VolumeCounts::Down => down,
            VolumeCounts::Up => up,
        };
        VolumeFigure {
            down: ByteCount(down),
            up: ByteCount(up),
            used: ByteCount(used),
            quota: rule.quota,
            // Over the quota by this much; nothing when within it (a
            // difference that stops at zero, not a clamped sum).
            over: rule
                .quota
                .map(|q| ByteCount(used.saturating_sub(u128::from(q.bytes())))),
            used_percent: rule
                .quota
                .filter(|q| q.bytes() > 0)
                .map(|q| used as f64 * 100.0 / q.bytes() as f64),
            coverage: Coverage::of(series),
        }
    }
}
