//! Rates and sizes, spelled the way `tc` spells them.
//!
//! The trap this module exists to close: `tc` reads `10mbps` as ten
//! *megabytes* per second, and a bare `10m` or `10` is read in units most
//! operators do not expect. Those spellings are refused with a hint that
//! names the unambiguous spelling, instead of silently shaping at eight
//! times (or an eighth of) the intended rate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A rate in bits per second. Never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(u64);

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Size(u64);

/// Why a rate or size was refused, with a hint that says how to write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError {
    /// What is wrong.
    pub message: String,
    /// How to write it instead.
    pub hint: String,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (hint: {})", self.message, self.hint)
    }
}

impl std::error::Error for UnitError {}

const RATE_UNITS: &[(&str, u64)] = &[
    ("bit", 1),
    ("kbit", 1_000),
    ("mbit", 1_000_000),
    ("gbit", 1_000_000_000),
    ("tbit", 1_000_000_000_000),
    ("kibit", 1 << 10),
    ("mibit", 1 << 20),
    ("gibit", 1 << 30),
    ("tibit", 1 << 40),
];

const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1 << 10),
    ("mb", 1 << 20),
    ("gb", 1 << 30),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
];

/// Splits `10.5 mbit/s` into the number and the lower-cased unit.
fn split_number(text: &str) -> (&str, String) {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(end);
    (num, unit.trim().to_ascii_lowercase())
}

/// Multiplies a decimal number written as text by a whole unit, exactly.
/// Returns `None` if the text is not a plain decimal number or the result
/// overflows `u64`.
fn scale(num: &str, unit: u64) -> Option<u64> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 12 {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_v: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let denom = 10u128.pow(frac.len() as u32);
    let total = int_v
        .checked_mul(denom)?
        .checked_add(frac_v)?
        .checked_mul(unit as u128)?;
    // Round to the nearest whole bit or byte; nobody shapes half a bit.
    let value = (total + denom / 2) / denom;
    u64::try_from(value).ok()
}

impl Rate {
    /// Builds a rate from bits per second. Returns `None` for zero.
    pub const fn from_bps(bits_per_second: u64) -> Option<Rate> {
        if bits_per_second == 0 {
            None
        } else {
            Some(Rate(bits_per_second))
        }
    }

    /// The rate in bits per second.
    pub const fn bps(self) -> u64 {
        self.0
    }

    /// The rate in bytes per second, rounded down, as HTB's `rate64` wants it.
    pub const fn bytes_per_second(self) -> u64 {
        self.0 / 8
    }

    /// Parses `10mbit`, `1.5gbit`, `512kibit`, `100 Mbit/s`.
    pub fn parse(text: &str) -> Result<Rate, UnitError> {
        let (num, unit) = split_number(text);
        let unit = unit.strip_suffix("/s").unwrap_or(&unit).trim_end();
        if num.is_empty() {
            return Err(UnitError {
                message: format!("`{text}` is not a rate"),
                hint: "write a number and a unit, e.g. `10mbit`".into(),
            });
        }
        if unit.is_empty() {
            return Err(UnitError {
                message: format!("`{text}` has no unit"),
                hint: format!(
                    "tc reads a bare number as bytes per second; write `{num}mbit` or `{num}kbit`"
                ),
            });
        }
        if let Some(prefix) = unit.strip_suffix("bps") {
            let word = match prefix {
                "k" => "kilo",
                "m" => "mega",
                "g" => "giga",
                "t" => "tera",
                _ => "",
            };
            return Err(UnitError {
                message: format!(
                    "`{text}` is ambiguous: tc reads `{unit}` as {word}bytes per second, not bits"
                ),
                hint: format!("write `{num}{prefix}bit` for bits per second"),
            });
        }
        if matches!(
            unit,
            "k" | "m" | "g" | "t" | "kb" | "mb" | "gb" | "tb" | "b"
        ) {
            return Err(UnitError {
                message: format!("`{text}` is ambiguous: `{unit}` could mean bits or bytes"),
                hint: format!("write `{num}{}bit`", unit.trim_end_matches('b')),
            });
        }
        let Some(&(_, mult)) = RATE_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(UnitError {
                message: format!("`{unit}` is not a rate unit"),
                hint: "use bit, kbit, mbit, gbit, tbit (powers of 1000) or kibit, mibit, gibit, tibit (powers of 1024)".into(),
            });
        };
        let value = scale(num, mult).ok_or_else(|| UnitError {
            message: format!("`{text}` is not a number tollgate can use as a rate"),
            hint: "write a plain decimal number, e.g. `1.5gbit`".into(),
        })?;
        Rate::from_bps(value).ok_or_else(|| UnitError {
            message: format!("`{text}` is zero"),
            hint: "a rate must be above zero; leave the key out if there is no limit".into(),
        })
    }

    /// Scales the rate by `num / den`, never below 1 bit/s.
    pub fn scaled(self, num: u64, den: u64) -> Rate {
        let v = (self.0 as u128 * num as u128 / den.max(1) as u128).clamp(1, u64::MAX as u128);
        Rate(v as u64)
    }
}

impl fmt::Display for Rate {
    /// Prints the largest SI unit that divides the rate exactly, as `tc` accepts it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, mult) in [
            ("tbit", 1_000_000_000_000u64),
            ("gbit", 1_000_000_000),
            ("mbit", 1_000_000),
            ("kbit", 1_000),
        ] {
            if self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        write!(f, "{}bit", self.0)
    }
}

impl Size {
    /// Builds a size from bytes.
    pub const fn from_bytes(bytes: u64) -> Size {
        Size(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `1500b`, `40kb`, `2mb` (tc's powers of 1024) or `64kib`.
    pub fn parse(text: &str) -> Result<Size, UnitError> {
        let (num, unit) = split_number(text);
        if num.is_empty() {
            return Err(UnitError {
                message: format!("`{text}` is not a size"),
                hint: "write a number and a unit, e.g. `40kb`".into(),
            });
        }
        if unit.is_empty() {
            return Err(UnitError {
                message: format!("`{text}` has no unit"),
                hint: format!("write `{num}b` for bytes or `{num}kb` for kilobytes"),
            });
        }
        if matches!(unit.as_str(), "k" | "m" | "g") {
            return Err(UnitError {
                message: format!("`{text}` is ambiguous: `{unit}` could mean bits or bytes"),
                hint: format!("write `{num}{unit}b` (bytes, powers of 1024 as in tc)"),
            });
        }
        if unit.ends_with("bit") {
            return Err(UnitError {
                message: format!("`{text}` is a size in bits"),
                hint: "write sizes in bytes, e.g. `40kb`".into(),
            });
        }
        let Some(&(_, mult)) = SIZE_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(UnitError {
                message: format!("`{unit}` is not a size unit"),
                hint: "use b, kb, mb, gb (powers of 1024, as tc reads them) or kib, mib, gib"
                    .into(),
            });
        };
        scale(num, mult).map(Size).ok_or_else(|| UnitError {
            message: format!("`{text}` is not a number tollgate can use as a size"),
            hint: "write a plain decimal number, e.g. `1.5mb`".into(),
        })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, mult) in [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
            if self.0 != 0 && self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        write!(f, "{}b", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_tc_spelling() {
        assert_eq!(Rate::parse("10mbit").unwrap().bps(), 10_000_000);
        assert_eq!(Rate::parse("1.5gbit").unwrap().bps(), 1_500_000_000);
        assert_eq!(Rate::parse("512kibit").unwrap().bps(), 512 * 1024);
        assert_eq!(Rate::parse("100 Mbit/s").unwrap().bps(), 100_000_000);
        assert_eq!(Rate::parse("3MBIT").unwrap().bps(), 3_000_000);
        assert_eq!(Rate::parse(".5mbit").unwrap().bps(), 500_000);
    }

    #[test]
    fn ambiguous_rates_are_refused_with_a_hint() {
        let e = Rate::parse("10mbps").unwrap_err();
        assert!(e.message.contains("megabytes"), "{e}");
        assert!(e.hint.contains("10mbit"), "{e}");
        let e = Rate::parse("10m").unwrap_err();
        assert!(e.hint.contains("10mbit"), "{e}");
        let e = Rate::parse("10").unwrap_err();
        assert!(e.message.contains("no unit"), "{e}");
        assert!(Rate::parse("0mbit").is_err());
        assert!(Rate::parse("mbit").is_err());
        assert!(Rate::parse("1.2.3mbit").is_err());
        assert!(Rate::parse("99999999999999999999tbit").is_err());
        assert!(Rate::parse("10furlongs").is_err());
    }

    #[test]
    fn rates_print_as_tc_reads_them() {
        for s in [
            "10mbit", "1500mbit", "3kbit", "1bit", "2gbit", "1tbit", "1001bit",
        ] {
            assert_eq!(Rate::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn sizes_in_tc_spelling() {
        assert_eq!(Size::parse("1500b").unwrap().bytes(), 1500);
        assert_eq!(Size::parse("40kb").unwrap().bytes(), 40 * 1024);
        assert_eq!(Size::parse("2mb").unwrap().bytes(), 2 << 20);
        assert_eq!(Size::parse("64KiB").unwrap().bytes(), 64 << 10);
        assert!(Size::parse("1500").is_err());
        assert!(Size::parse("10k").is_err());
        assert!(Size::parse("10kbit").is_err());
        assert_eq!(Size::parse("40kb").unwrap().to_string(), "40kb");
        assert_eq!(Size::parse("1500b").unwrap().to_string(), "1500b");
    }

    #[test]
    fn scaling_never_reaches_zero() {
        let r = Rate::parse("10mbit").unwrap();
        assert_eq!(r.scaled(1, 10).bps(), 1_000_000);
        assert_eq!(Rate::parse("1bit").unwrap().scaled(1, 10).bps(), 1);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = Rate::parse(&s);
            let _ = Size::parse(&s);
        }

        #[test]
        fn display_round_trips(bps in 1u64..=u64::MAX / 2) {
            let r = Rate::from_bps(bps).unwrap();
            proptest::prop_assert_eq!(Rate::parse(&r.to_string()).unwrap(), r);
        }
    }
}
