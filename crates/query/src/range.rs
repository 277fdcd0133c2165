//! Which stretch of time an answer covers: a billing period, or from a
//! local date until now.

use crate::QueryError;
use billing::Period;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use settings::Settings;

/// What was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RangeSpec {
    /// The billing period that holds `now`.
    #[default]
    Current,
    /// A billing period by its label, `YYYY-MM`.
    Period(String),
    /// From this local date (`YYYY-MM-DD`) until now.
    Since(String),
}

impl RangeSpec {
    /// From the options people give: a period label, or a start date.
    pub fn new(period: Option<&str>, since: Option<&str>) -> RangeSpec {
        match (period, since) {
            (Some(p), _) => RangeSpec::Period(p.to_string()),
            (None, Some(s)) => RangeSpec::Since(s.to_string()),
            (None, None) => RangeSpec::Current,
        }
    }
}

/// A resolved stretch of time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Range {
    /// `2026-11`, or `since 2026-11-03`.
    pub label: String,
    /// The first instant.
    pub from: Timestamp,
    /// The end (exclusive).
    pub to: Timestamp,
    /// The zone days are counted in.
    pub zone: String,
}

/// The period `spec` names (a `Since` is refused: bills are per period).
pub fn period(settings: &Settings, spec: &RangeSpec, now: Timestamp) -> Result<Period, QueryError> {
    let cycle_err = |e: billing::BillingError| QueryError::invalid("period", e.to_string());
    match spec {
        RangeSpec::Current => settings.cycle.period_containing(now).map_err(cycle_err),
        RangeSpec::Period(p) => settings.cycle.period_labelled(p).map_err(cycle_err),
        RangeSpec::Since(_) => Err(QueryError::invalid(
            "since",
            "bills are per billing period; give a period instead",
        )),
    }
}

/// Resolves `spec` against the billing cycle. A `Since` range ends at
/// `now`; a period ends where it ends, even if that is in the future.
pub fn resolve(settings: &Settings, spec: &RangeSpec, now: Timestamp) -> Result<Range, QueryError> {
    let zone = settings.cycle.zone_name().to_string();
    if let RangeSpec::Since(since) = spec {
        let date: Date = since.parse().map_err(|_| {
            QueryError::invalid(
                "since",
                format!("`{since}` is not a date; write YYYY-MM-DD"),
            )
        })?;
        let tz = TimeZone::get(&zone).map_err(|e| QueryError::invalid("zone", e.to_string()))?;
        let from = date
            .to_zoned(tz)
            .map_err(|e| QueryError::invalid("since", format!("{since}: {e}")))?
            .timestamp();
        if from > now {
            return Err(QueryError::invalid(
                "since",
                format!("{since} is in the future"),
            ));
        }
        return Ok(Range {
            label: format!("since {since}"),
            from,
            to: now,
            zone,
        });
    }
    let p = period(settings, spec, now)?;
    Ok(Range {
        label: p.label,
        from: p.start,
        to: p.end,
        zone,
    })
}
