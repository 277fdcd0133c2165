//! A byte count that can exceed 2^64: a sum over many samples.

use net_types::Size;
use serde::Serialize;
use std::fmt;

/// Bytes summed over many samples (a period's volume, a projection). A
/// sample holds at most 2^64 − 1 bytes, a period thousands of samples, so
/// a sum needs more than 64 bits to be carried exactly; `u128` holds the
/// sum of 2^64 such samples. Serialised as a plain number, as
/// [`net_types::Size`] is, so bills frozen when volumes were sizes read
/// back unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteCount(pub u128);

/// A plain number while it fits 64 bits (always, in practice), and its
/// decimal text beyond: JSON readers (and serde's buffering of tagged
/// enums) know no 128-bit integers, and a string never loses a digit.
impl Serialize for ByteCount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match u64::try_from(self.0) {
            Ok(v) => s.serialize_u64(v),
            Err(_) => s.collect_str(&self.0),
        }
    }
}

/// Read from any integer or its decimal text, so that a count inside an
/// internally tagged enum (a `Decision`, which serde buffers and which
/// knows no `u128`) reads back as it was written.
impl<'de> serde::Deserialize<'de> for ByteCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteCount, D::Error> {
        struct Count;
        impl serde::de::Visitor<'_> for Count {
            type Value = ByteCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteCount, E> {
                Ok(ByteCount(u128::from(v)))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<ByteCount, E> {
                Ok(ByteCount(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteCount, E> {
                u128::try_from(v)
                    .map(ByteCount)
                    .map_err(|_| E::custom(format!("a byte count cannot be negative: {v}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteCount, E> {
                v.parse()
                    .map(ByteCount)
                    .map_err(|_| E::custom(format!("`{v}` is not a byte count")))
            }
        }
        d.deserialize_any(Count)
    }
}

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

#[cfg(test)]
mod serde_tests {
    use super::ByteCount;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    #[serde(tag = "kind")]
    enum Tagged {
        A { n: ByteCount },
    }

    #[test]
    fn a_count_inside_a_tagged_enum_reads_back() {
        for n in [0u128, 1 << 40, u128::from(u64::MAX)] {
            let v = Tagged::A { n: ByteCount(n) };
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<Tagged>(&text).unwrap(), v, "{text}");
        }
        let big = Tagged::A {
            n: ByteCount(55_340_232_221_128_654_848),
        };
        let text = serde_json::to_string(&big).unwrap();
        assert_eq!(text, r#"{"kind":"A","n":"55340232221128654848"}"#);
        assert_eq!(serde_json::from_str::<Tagged>(&text).unwrap(), big);
    }
}
