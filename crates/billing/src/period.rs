//! Billing periods: from a billing day at local midnight to the same day a
//! month later, in the operator's IANA time zone.
//!
//! Because the boundaries are local midnights, a period that contains a
//! daylight-saving change is an hour shorter (spring) or longer (autumn) than
//! its calendar days suggest, and so has 12 samples fewer or more. Months of
//! 28, 29, 30 and 31 days fall out of the calendar arithmetic. The billing day
//! is limited to 1–28 so that every month has it.

use crate::error::BillingError;
use accounting::{Slot, SAMPLE_SECONDS};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use std::fmt;

/// When periods start: a day of the month (1–28) at local midnight in a
/// time zone.
#[derive(Clone, Debug)]
pub struct BillingCycle {
    day: i8,
    zone_name: String,
    zone: TimeZone,
}

impl BillingCycle {
    /// A cycle starting on `day` (1–28) at midnight in the IANA zone `zone`
    /// (`Europe/Berlin`, `UTC`). The zone comes from the time-zone database
    /// built into this program, so no system tzdata is needed.
    pub fn new(day: u8, zone: &str) -> Result<BillingCycle, BillingError> {
        if !(1..=28).contains(&day) {
            return Err(BillingError::invalid(
                "billing_day",
                format!("{day} is not a day every month has; use 1 to 28"),
            ));
        }
        let tz = TimeZone::get(zone).map_err(|e| {
            BillingError::invalid(
                "timezone",
                format!("`{zone}` is not a known IANA zone: {e}"),
            )
        })?;
        Ok(BillingCycle {
            day: day as i8,
            zone_name: zone.to_string(),
            zone: tz,
        })
    }

    /// The billing day.
    pub fn day(&self) -> u8 {
        self.day as u8
    }

    /// The zone's IANA name.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    fn start_of(&self, year: i16, month: i8) -> Result<Timestamp, BillingError> {
        let date = Date::new(year, month, self.day)
            .map_err(|e| BillingError::invalid("period", format!("{year}-{month:02}: {e}")))?;
        // A zone that skips midnight on a DST day starts the period at the
        // first local instant after the gap (jiff's "compatible" rule).
        date.to_zoned(self.zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| BillingError::invalid("period", format!("{date}: {e}")))
    }

    /// The period labelled `year-month`: it starts on the billing day of
    /// that month.
    pub fn period(&self, year: i16, month: i8) -> Result<Period, BillingError> {
        if !(1..=12).contains(&month) {
            return Err(BillingError::invalid(
                "period",
                format!("month {month} is not 1 to 12"),
            ));
        }
        let start = self.start_of(year, month)?;
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let end = self.start_of(ny, nm)?;
        Ok(Period {
            label: format!("{year:04}-{month:02}"),
            start,
            end,
        })
    }

    /// Parses a label such as `2026-11` and returns that period.
    pub fn period_labelled(&self, label: &str) -> Result<Period, BillingError> {
        let bad = || {
            BillingError::invalid(
                "period",
                format!("`{label}` is not a period; write YYYY-MM, e.g. 2026-11"),
            )
        };
        let (y, m) = label.split_once('-').ok_or_else(bad)?;
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        self.period(year, month)
    }

    /// The period that contains the instant `t`.
    pub fn period_containing(&self, t: Timestamp) -> Result<Period, BillingError> {
        let local = t.to_zoned(self.zone.clone()).date();
        let p = self.period(local.year(), local.month())?;
        if t >= p.start {
            return Ok(p);
        }
        let prev = local
            .first_of_month()
            .checked_sub(1.day())
            .map_err(|e| BillingError::invalid("period", e.to_string()))?;
        self.period(prev.year(), prev.month())
    }
}

impl fmt::Display for BillingCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "monthly from day {} at 00:00 {}",
            self.day, self.zone_name
        )
    }
}

/// One billing period: `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// `YYYY-MM` of the month the period starts in.
    pub label: String,
    /// The first instant.
    pub start: Timestamp,
    /// The first instant after the period.
    pub end: Timestamp,
}

impl Period {
    /// The first slot that starts inside the period.
    pub fn first_slot(&self) -> Slot {
        Slot::starting_at_or_after(self.start)
    }

    /// The first slot that starts at or after the end.
    pub fn end_slot(&self) -> Slot {
        Slot::starting_at_or_after(self.end)
    }

    /// How many 5-minute samples the period should have: the slots whose
    /// start lies in `[start, end)`.
    pub fn expected_samples(&self) -> usize {
        (self.end_slot().0 - self.first_slot().0).max(0) as usize
    }

    /// Whether the slot starts inside the period.
    pub fn contains(&self, slot: Slot) -> bool {
        slot >= self.first_slot() && slot < self.end_slot()
    }

    /// The period's length in hours (for people: 743 in a spring DST month).
    pub fn hours(&self) -> f64 {
        (self.expected_samples() as i64 * SAMPLE_SECONDS) as f64 / 3600.0
    }
}
