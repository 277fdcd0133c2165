//! A measured rate, which unlike a configured [`net_types::Rate`] may be zero.

use accounting::SAMPLE_SECONDS;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bits per second, measured. Zero is a valid measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BitRate(pub u64);

impl BitRate {
    /// The average rate of one 5-minute sample: `bytes × 8 / 300 s`,
    /// rounded down to a whole bit per second (in the customer's favour).
    /// Exact for every `u64`: `bytes × 8 / 300` is `bytes × 2 / 75`, which
    /// is `2⌊bytes / 75⌋ + ⌊2 (bytes mod 75) / 75⌋`, all within 64 bits.
    pub fn of_sample(bytes: u64) -> BitRate {
        const { assert!(SAMPLE_SECONDS == 300) };
        BitRate(bytes / 75 * 2 + bytes % 75 * 2 / 75)
    }

    /// Bits per second.
    pub fn bps(self) -> u64 {
        self.0
    }
}

impl From<net_types::Rate> for BitRate {
    fn from(r: net_types::Rate) -> Self {
        BitRate(r.bps())
    }
}

impl fmt::Display for BitRate {
    /// `0 bit/s`, `950 bit/s`, `12.35 Mbit/s`: three significant decimals
    /// are enough for a person; bills carry the exact `bps` beside it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0 as f64;
        for (unit, scale) in [
            ("Tbit/s", 1e12),
            ("Gbit/s", 1e9),
            ("Mbit/s", 1e6),
            ("kbit/s", 1e3),
        ] {
            if v >= scale {
                return write!(f, "{:.2} {unit}", v / scale);
            }
        }
        write!(f, "{} bit/s", self.0)
    }
}
