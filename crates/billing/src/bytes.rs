//! A byte count that can exceed 2^64: a sum over many samples.

use net_types::Size;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bytes summed over many samples (a period's volume, a projection). A
/// sample holds at most 2^64 − 1 bytes, a period thousands of samples, so
/// a sum needs more than 64 bits to be carried exactly; `u128` holds the
/// sum of 2^64 such samples. Serialised as a plain number, as
/// [`net_types::Size`] is, so bills frozen when volumes were sizes read
/// back unchanged.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ByteCount(pub u128);

impl ByteCount {
    /// No bytes.
    pub const ZERO: ByteCount = ByteCount(0);

    /// The count.
    pub fn bytes(self) -> u128 {
        self.0
    }
}

impl From<Size> for ByteCount {
    fn from(s: Size) -> Self {
        ByteCount(u128::from(s.bytes()))
    }
}

impl fmt::Display for ByteCount {
    /// `1234 bytes`: exact, for bills.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}
