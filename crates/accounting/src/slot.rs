//! Five-minute slots aligned to multiples of 300 s since the Unix epoch (UTC).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The length of one sample, in seconds.
pub const SAMPLE_SECONDS: i64 = 300;

/// The length of one sample, in milliseconds.
pub const SAMPLE_MILLIS: i64 = SAMPLE_SECONDS * 1000;

/// A 5-minute slot: number `n` covers `[n × 300 s, (n + 1) × 300 s)` after
/// 1970-01-01T00:00:00Z.
///
/// Slots are UTC-aligned so that every zone whose offset is a multiple of
/// five minutes (all of today's) sees the same slot boundaries, and a
/// billing period in any of them is a whole number of slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slot(pub i64);

impl Slot {
    /// The slot that contains `t`.
    pub fn containing(t: Timestamp) -> Slot {
        Slot::containing_millis(t.as_millisecond())
    }

    /// The slot that contains the instant `ms` milliseconds after the epoch.
    pub fn containing_millis(ms: i64) -> Slot {
        Slot(ms.div_euclid(SAMPLE_MILLIS))
    }

    /// The first slot that starts at or after `t`.
    pub fn starting_at_or_after(t: Timestamp) -> Slot {
        let ms = t.as_millisecond();
        Slot(ms.div_euclid(SAMPLE_MILLIS) + i64::from(ms.rem_euclid(SAMPLE_MILLIS) != 0))
    }

    /// Where the slot starts, in milliseconds since the epoch.
    pub fn start_millis(self) -> i64 {
        self.0.saturating_mul(SAMPLE_MILLIS)
    }

    /// Where the slot ends (exclusive), in milliseconds since the epoch.
    pub fn end_millis(self) -> i64 {
        self.0.saturating_add(1).saturating_mul(SAMPLE_MILLIS)
    }

    /// Where the slot starts. Slots far outside jiff's range (year ±9999)
    /// are clamped to its ends.
    pub fn start(self) -> Timestamp {
        Timestamp::from_second(self.0.saturating_mul(SAMPLE_SECONDS)).unwrap_or(if self.0 < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
    }

    /// The slot after this one.
    pub fn next(self) -> Slot {
        Slot(self.0 + 1)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start())
    }
}
