//! The daemon's one clock: the only place it reads the time.
//!
//! `TOLLGATE_CLOCK_SKEW=SECONDS` (signed) shifts it, for tests that must
//! see a 5-minute slot or a billing period close without waiting for the
//! wall clock: the daemon then lives that many seconds in the future (or
//! past) from its start, consistently for every decision.

use crate::error::{Error, Result};
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// The environment variable that shifts the clock.
pub const SKEW: &str = "TOLLGATE_CLOCK_SKEW";

/// The wall clock, perhaps shifted.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    skew: SignedDuration,
}

impl Clock {
    /// The wall clock, shifted by `TOLLGATE_CLOCK_SKEW` if set.
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
        Ok(Clock { skew })
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.skew)
            .unwrap_or_else(|_| Timestamp::now())
    }

    /// How long until `t` (zero if it has passed), at most a minute so
    /// that a clock stepped by NTP is noticed.
    pub fn until(&self, t: Timestamp) -> Duration {
        let d = t.duration_since(self.now());
        if d.is_negative() {
            return Duration::ZERO;
        }
        Duration::try_from(d)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(60))
    }
}
