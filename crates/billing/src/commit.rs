//! Commit rates and how far a billed percentile went over them.

use crate::figure::RankedSample;
use crate::rate::BitRate;
use accounting::SAMPLE_SECONDS;
use net_types::Rate;
use serde::{Deserialize, Serialize};

/// How far a billed rate is over the commit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overage {
    /// The committed rate.
    pub commit: Rate,
    /// The billed percentile rate.
    pub billed: BitRate,
    /// How far over, zero if within the commit.
    pub over: BitRate,
    /// `over / commit × 100`.
    pub over_percent: f64,
}

impl Overage {
    /// Compares a billed sample with the commit. The comparison is done on
    /// the sample's exact bytes (bits in 300 s against commit × 300 s), so
    /// rounding the displayed rate never tips a tenant over.
    pub fn of(billed: &RankedSample, commit: Rate) -> Overage {
        let billed_bits = u128::from(billed.bytes) * 8;
        let commit_bits = u128::from(commit.bps()) * SAMPLE_SECONDS as u128;
        // How far over, and nothing when within the commit (a difference
        // that stops at zero, not a clamped sum). ⌊(billed bits − commit
        // bits) / 300⌋ is ⌊billed bits / 300⌋ − commit, the commit being
        // whole bits per second, so the rate needs no cast from 128 bits.
        let over = BitRate::of_sample(billed.bytes)
            .0
            .saturating_sub(commit.bps());
        let over_bits = billed_bits.saturating_sub(commit_bits);
        Overage {
            commit,
            billed: billed.rate,
            over: BitRate(over),
            over_percent: over_bits as f64 * 100.0 / commit_bits as f64,
        }
    }

    /// Whether the billed rate is above the commit.
    pub fn is_over(&self) -> bool {
        self.over_percent > 0.0
    }
}
