//! Durations, spelled one way everywhere: `500ms`, `10s`, `2m`, `1h`, `1d`.
//!
//! The policy file, the settings file and the command line used to have a
//! parser each; one read fractions through `f64` and panicked on
//! `100000000000000000000000s`, another multiplied without a check. This is
//! the one parser: exact integer arithmetic in nanoseconds, every step
//! checked, and a documented maximum ([`MAX_DURATION`]) so that a caller
//! can add or multiply a parsed duration by small factors without
//! overflowing anything.

use std::fmt;
use std::time::Duration;

/// The longest duration [`parse_duration`] accepts: 100 years of 365 days.
///
/// Long enough for any retention, billing or timer setting; short enough
/// that it fits `i64` seconds and `u64` nanoseconds with room to spare, so
/// a caller adding two of them or converting to a signed type cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The units, in nanoseconds. `m` is minutes: a month is not a fixed length.
const UNITS: &[(&str, u128)] = &[
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

/// Why a duration was refused. [`DurationError::hint`] says how to write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing was written.
    Empty,
    /// The text does not start with a number (`s10`, `-5s`, `five minutes`).
    NoNumber,
    /// A number with no unit (`30`): seconds or minutes?
    NoUnit {
        /// The number as written.
        number: String,
    },
    /// A unit tollgate does not know (`5M`, `3 days`, `2w`).
    UnknownUnit {
        /// The number as written.
        number: String,
        /// The unit as written.
        unit: String,
        /// The unit that was probably meant, if any.
        meant: Option<&'static str>,
    },
    /// More than one `.`, or a `.` with no digit on either side.
    BadNumber,
    /// Finer than a nanosecond (`0.0000000001s`).
    TooPrecise,
    /// Longer than [`MAX_DURATION`].
    TooLong,
}

impl DurationError {
    /// How to write the duration instead.
    pub fn hint(&self) -> String {
        const UNITS_HELP: &str =
            "write a number and a unit right after it: ms, s, m (minutes), h or d, e.g. \"500ms\", \"30s\", \"5m\", \"1.5h\", \"70d\"";
        match self {
            DurationError::NoUnit { number } => {
                format!("write \"{number}s\" for seconds or \"{number}m\" for minutes")
            }
            DurationError::UnknownUnit {
                number,
                meant: Some(u),
                ..
            } => format!(
                "write \"{number}{u}\": the units are ms, s, m, h and d, right after the number"
            ),
            DurationError::TooPrecise => {
                "durations are counted in whole nanoseconds; drop the extra digits".into()
            }
            DurationError::TooLong => format!(
                "the longest duration is {} days (100 years)",
                MAX_DURATION.as_secs() / 86_400
            ),
            _ => UNITS_HELP.into(),
        }
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => write!(f, "the duration is empty"),
            DurationError::NoNumber | DurationError::BadNumber => {
                write!(f, "the duration does not start with a number")
            }
            DurationError::NoUnit { number } => write!(f, "`{number}` has no unit"),
            DurationError::UnknownUnit { unit, .. } => {
                write!(f, "`{unit}` is not a unit of time tollgate knows")
            }
            DurationError::TooPrecise => write!(f, "the duration is finer than a nanosecond"),
            DurationError::TooLong => write!(f, "the duration is longer than 100 years"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses `500ms`, `10s`, `2m`, `1.5h`, `70d` into a [`Duration`].
///
/// A decimal fraction is allowed (`1.5h` is 90 minutes, `0.25s` is 250 ms)
/// as long as the result is a whole number of nanoseconds. The unit comes
/// right after the number and is lower case: `M` could be a month, `5 m`
/// is refused so that every spelling in a file looks the same. Zero is
/// allowed; callers that need a minimum check it themselves. Surrounding
/// white space is ignored. Never panics.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(end);
    if number.is_empty() {
        return Err(DurationError::NoNumber);
    }
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return Err(DurationError::BadNumber);
    }
    if unit.is_empty() {
        return Err(DurationError::NoUnit {
            number: number.to_owned(),
        });
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(DurationError::UnknownUnit {
            number: number.to_owned(),
            unit: unit.to_owned(),
            meant: meant(unit),
        });
    };
    // Digits beyond nanoseconds cannot be kept: drop trailing zeros, then
    // refuse what is left if it is still too fine.
    let frac = frac.trim_end_matches('0');
    let int_ns = digits(int)
        .and_then(|v| v.checked_mul(scale))
        .ok_or(DurationError::TooLong)?;
    let frac_ns = match frac.len() {
        0 => 0,
        // 10^n must divide scale × fraction for the result to be whole.
        n if n <= 30 => {
            let den = 10u128.pow(n as u32);
            let num = digits(frac)
                .and_then(|v| v.checked_mul(scale))
                .ok_or(DurationError::TooPrecise)?;
            if num % den != 0 {
                return Err(DurationError::TooPrecise);
            }
            num / den
        }
        _ => return Err(DurationError::TooPrecise),
    };
    let total = int_ns.checked_add(frac_ns).ok_or(DurationError::TooLong)?;
    if total > MAX_DURATION.as_nanos() {
        return Err(DurationError::TooLong);
    }
    // Below MAX_DURATION, so it fits u64 nanoseconds.
    Ok(Duration::from_nanos(total as u64))
}

/// A run of ASCII digits as a number, or `None` if it overflows `u128`.
/// An empty run is zero (`.5s`).
fn digits(s: &str) -> Option<u128> {
    s.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

/// The unit a spelled-out or capitalised unit probably means.
fn meant(unit: &str) -> Option<&'static str> {
    match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => Some("ms"),
        "s" | "sec" | "secs" | "second" | "seconds" => Some("s"),
        "min" | "mins" | "minute" | "minutes" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "d" | "day" | "days" => Some("d"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_fractions() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok(" 2m "), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1d"), Duration::from_secs(86_400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".25s"), Duration::from_millis(250));
        assert_eq!(ok("2.s"), ok("2s"));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0.000000001s"), Duration::from_nanos(1));
        assert_eq!(ok("1.500000000000000000000000000000000000s"), ok("1.5s"));
        assert_eq!(ok("36500d"), MAX_DURATION);
    }

    #[test]
    fn refusals_say_how_to_write_it() {
        let e = |s: &str| parse_duration(s).unwrap_err();
        assert_eq!(e(""), DurationError::Empty);
        assert_eq!(e("s"), DurationError::NoNumber);
        assert_eq!(e("-5s"), DurationError::NoNumber);
        assert_eq!(e("."), DurationError::BadNumber);
        assert_eq!(e("1.2.3s"), DurationError::BadNumber);
        assert!(e("30").hint().contains("\"30s\""));
        assert!(e("5 minutes").hint().contains("\"5m\""));
        assert!(e("5M").hint().contains("\"5m\""));
        assert!(e("3days").hint().contains("\"3d\""));
        assert_eq!(e("0.0000000001s"), DurationError::TooPrecise);
        assert_eq!(e("36501d"), DurationError::TooLong);
        assert_eq!(e("36500.000000001d"), DurationError::TooLong);
    }

    #[test]
    fn huge_numbers_are_too_long_not_a_panic() {
        // The command line's old parser panicked here (issue 12, item 15).
        assert_eq!(
            parse_duration("100000000000000000000000s"),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse_duration(&format!("{}d", "9".repeat(200))),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse_duration(&format!("1.{}1s", "0".repeat(200))),
            Err(DurationError::TooPrecise)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_duration_never_panics(s in ".{0,40}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn numbers_and_units_never_panic(int in "[0-9]{0,45}", frac in "[0-9]{0,45}", unit in "(ms|s|m|h|d|x)") {
            let text = format!("{int}.{frac}{unit}");
            if let Ok(d) = parse_duration(&text) {
                proptest::prop_assert!(d <= MAX_DURATION);
            }
        }

        #[test]
        fn whole_seconds_are_exact(secs in 0u64..=MAX_DURATION.as_secs()) {
            proptest::prop_assert_eq!(parse_duration(&format!("{secs}s")), Ok(Duration::from_secs(secs)));
        }
    }
}
