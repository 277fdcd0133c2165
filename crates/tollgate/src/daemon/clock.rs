//! The daemon's one clock: the only place it reads the time.
//!
//! `TOLLGATE_CLOCK_SKEW=SECONDS` (signed) shifts it, for tests that must
//! see a 5-minute slot or a billing period close without waiting for the
//! wall clock: the daemon then lives that many seconds in the future (or
//! past) from its start, consistently for every decision.
//!
//! `TOLLGATE_CLOCK_RATE=N` (1 to 600) makes its time pass N times as fast
//! as the wall clock's from its start, for tests that must live through
//! several slots while the process lives (ClickHouse stopped for 10
//! minutes of slots while the daemon shapes and accounts): every deadline
//! the engine sets is waited for N times shorter, so the engine sees the
//! same sequence of times as a daemon living them, only closer together.
//! The kernel's counters are real and cumulative, so every byte is still
//! counted once, in the slot the daemon's time puts it in.

use crate::error::{Error, Result};
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// The environment variable that shifts the clock.
pub const SKEW: &str = "TOLLGATE_CLOCK_SKEW";

/// The environment variable that speeds the clock up.
pub const RATE: &str = "TOLLGATE_CLOCK_RATE";

/// The wall clock, perhaps shifted, perhaps faster.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    skew: SignedDuration,
    /// Daemon seconds per wall second (1: the wall clock's pace).
    rate: u32,
    /// The wall time the faster time counts from.
    origin: Timestamp,
}

impl Clock {
    /// The wall clock, shifted by `TOLLGATE_CLOCK_SKEW` and sped up by
    /// `TOLLGATE_CLOCK_RATE` if set.
    pub fn from_env() -> Result<Clock> {
        let skew = match std::env::var(SKEW) {
            Ok(v) => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    Error::invalid(format!("{SKEW}=`{v}` is not a whole number of seconds"))
                })?;
                if secs.unsigned_abs() > 100 * 366 * 86_400 {
                    return Err(Error::invalid(format!(
                        "{SKEW}=`{v}` is more than a century"
                    )));
                }
                tracing::warn!(seconds = secs, "{SKEW} shifts the daemon's clock");
                SignedDuration::from_secs(secs)
            }
            Err(_) => SignedDuration::ZERO,
        };
        let rate = match std::env::var(RATE) {
            Ok(v) => {
                let rate = parse_rate(&v)?;
                tracing::warn!(rate, "{RATE} speeds the daemon's clock up");
                rate
            }
            Err(_) => 1,
        };
        Ok(Clock {
            skew,
            rate,
            origin: Timestamp::now(),
        })
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.at(Timestamp::now())
    }

    /// The daemon's time at the wall time `wall`.
    fn at(&self, wall: Timestamp) -> Timestamp {
        let passed = wall.duration_since(self.origin);
        let faster = passed
            .checked_mul(i32::try_from(self.rate).unwrap_or(1))
            .unwrap_or(passed);
        self.origin
            .checked_add(faster)
            .and_then(|t| t.checked_add(self.skew))
            .unwrap_or(wall)
    }

    /// How long (wall time) until `t` (zero if it has passed), at most a
    /// minute so that a clock stepped by NTP is noticed.
    pub fn until(&self, t: Timestamp) -> Duration {
        let d = t.duration_since(self.now());
        if d.is_negative() {
            return Duration::ZERO;
        }
        (Duration::try_from(d).unwrap_or(Duration::ZERO) / self.rate.max(1))
            .min(Duration::from_secs(60))
    }
}

/// `TOLLGATE_CLOCK_RATE`'s value: a whole number from 1 to 600.
fn parse_rate(v: &str) -> Result<u32> {
    match v.trim().parse::<u32>() {
        Ok(r) if (1..=600).contains(&r) => Ok(r),
        _ => Err(Error::invalid(format!(
            "{RATE}=`{v}` is not a whole number from 1 to 600"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_faster_clock_counts_from_its_origin_and_waits_shorter() {
        let origin = Timestamp::from_second(1_800_000_000).unwrap();
        let c = Clock {
            skew: SignedDuration::from_secs(-30),
            rate: 20,
            origin,
        };
        // 3 wall seconds after the origin are 60 daemon seconds, less the
        // skew.
        let wall = origin.checked_add(SignedDuration::from_secs(3)).unwrap();
        assert_eq!(c.at(wall).as_second(), 1_800_000_000 + 60 - 30);
        assert_eq!(c.at(origin).as_second(), 1_800_000_000 - 30);
        // A deadline 100 daemon seconds away is 5 wall seconds away.
        let due = c.now().checked_add(SignedDuration::from_secs(100)).unwrap();
        let wait = c.until(due);
        assert!(
            wait <= Duration::from_secs(5) && wait > Duration::from_secs(4),
            "{wait:?}"
        );
        assert!(parse_rate("0").is_err() && parse_rate("601").is_err());
        assert!(parse_rate("x").unwrap_err().to_string().contains(RATE));
        assert_eq!(parse_rate(" 30 ").unwrap(), 30);
    }
}
