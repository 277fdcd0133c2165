//! Volume: bytes per period, against an optional quota.

use crate::figure::Coverage;
use crate::series::Series;
use net_types::Size;
use serde::{Deserialize, Serialize};

/// Which directions count toward a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeCounts {
    /// Down + up.
    Both,
    /// Toward the tenant only.
    Down,
    /// From the tenant only.
    Up,
}

impl VolumeCounts {
    /// The counted bytes of one slot.
    pub fn of(self, down: u64, up: u64) -> u64 {
        match self {
            VolumeCounts::Both => down.saturating_add(up),
            VolumeCounts::Down => down,
            VolumeCounts::Up => up,
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

/// Volume in a period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeFigure {
    /// Bytes toward the tenant.
    pub down: Size,
    /// Bytes from the tenant.
    pub up: Size,
    /// The bytes that count (per [`VolumeRule::counts`]).
    pub used: Size,
    /// The quota.
    pub quota: Option<Size>,
    /// Bytes above the quota (zero if within it).
    pub over: Option<Size>,
    /// `used / quota × 100`.
    pub used_percent: Option<f64>,
    /// The samples behind the figure. Missing samples carry no bytes, so
    /// a volume with missing samples is a lower bound.
    pub coverage: Coverage,
}

impl VolumeFigure {
    /// Adds up a series.
    pub fn of(series: &Series, rule: &VolumeRule) -> VolumeFigure {
        let down: u64 = series.down.iter().fold(0u64, |a, &b| a.saturating_add(b));
        let up: u64 = series.up.iter().fold(0u64, |a, &b| a.saturating_add(b));
        let used = rule.counts.of(down, up);
        VolumeFigure {
            down: Size::from_bytes(down),
            up: Size::from_bytes(up),
            used: Size::from_bytes(used),
            quota: rule.quota,
            over: rule
                .quota
                .map(|q| Size::from_bytes(used.saturating_sub(q.bytes()))),
            used_percent: rule
                .quota
                .filter(|q| q.bytes() > 0)
                .map(|q| used as f64 * 100.0 / q.bytes() as f64),
            coverage: Coverage::of(series),
        }
    }
}
