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

#[cfg(test)]
mod tests {
    //! Issue 12, item 1: `usage --period P` once counted an hour past the
    //! period's end, because the range was widened "so that the current
    //! hour is in". A range is exactly what was asked for: a period from
    //! its first to its last instant in the billing zone, a `since` range
    //! until `now` to the second.

    use super::*;

    fn settings(zone: &str, day: u8) -> Settings {
        Settings::parse(
            "accounting.toml",
            &format!("[billing]\nday = {day}\ntimezone = \"{zone}\"\n"),
        )
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn period(zone: &str, label: &str, now: &str) -> Range {
        resolve(
            &settings(zone, 1),
            &RangeSpec::Period(label.into()),
            ts(now),
        )
        .unwrap()
    }

    #[test]
    fn a_closed_period_ends_exactly_at_its_end_in_utc() {
        let r = period("UTC", "2026-10", "2026-12-15T10:17:23Z");
        assert_eq!(r.from, ts("2026-10-01T00:00:00Z"));
        assert_eq!(r.to, ts("2026-11-01T00:00:00Z"));
        assert_eq!(r.label, "2026-10");
        assert_eq!(r.zone, "UTC");
        // 31 days, 8,928 slots: 37,500,000 B each is 334,800,000,000 B.
        assert_eq!(r.to.duration_since(r.from).as_hours(), 31 * 24);
    }

    #[test]
    fn berlin_months_with_a_dst_change_end_at_local_midnight() {
        // October 2026: CEST (+02:00) until 25 October, then CET (+01:00):
        // 745 hours.
        let r = period("Europe/Berlin", "2026-10", "2027-01-02T00:00:00Z");
        assert_eq!(r.from, ts("2026-09-30T22:00:00Z"));
        assert_eq!(r.to, ts("2026-10-31T23:00:00Z"));
        assert_eq!(r.to.duration_since(r.from).as_hours(), 31 * 24 + 1);
        // March 2026: CET until 29 March, then CEST: 743 hours.
        let r = period("Europe/Berlin", "2026-03", "2026-06-01T00:00:00Z");
        assert_eq!(r.from, ts("2026-02-28T23:00:00Z"));
        assert_eq!(r.to, ts("2026-03-31T22:00:00Z"));
        assert_eq!(r.to.duration_since(r.from).as_hours(), 31 * 24 - 1);
    }

    #[test]
    fn zones_off_the_whole_hour_end_at_their_quarter_and_half_hours() {
        // Kathmandu is +05:45 all year.
        let r = period("Asia/Kathmandu", "2026-10", "2026-12-01T00:00:00Z");
        assert_eq!(r.from, ts("2026-09-30T18:15:00Z"));
        assert_eq!(r.to, ts("2026-10-31T18:15:00Z"));
        // Lord Howe: +10:30 until 4 October 2026, then +11:00 (a
        // half-hour DST change): 743.5 hours in October.
        let r = period("Australia/Lord_Howe", "2026-10", "2026-12-01T00:00:00Z");
        assert_eq!(r.from, ts("2026-09-30T13:30:00Z"));
        assert_eq!(r.to, ts("2026-10-31T13:00:00Z"));
        assert_eq!(
            r.to.duration_since(r.from).as_secs(),
            (31 * 24 * 2 - 1) * 1800
        );
    }

    #[test]
    fn a_period_ends_where_it_ends_whatever_the_time_of_asking() {
        // Asked during the period, a second before its end, and long
        // after: always the same end, never `now` and never an hour more.
        let zone = "Asia/Kathmandu";
        let end = ts("2026-10-31T18:15:00Z");
        for now in [
            "2026-10-15T11:11:11Z",
            "2026-10-31T18:14:59Z",
            "2026-10-31T18:15:00Z",
            "2026-11-30T23:59:59Z",
            "2030-01-01T00:00:00Z",
        ] {
            assert_eq!(period(zone, "2026-10", now).to, end, "asked at {now}");
        }
    }

    #[test]
    fn the_current_period_is_the_whole_period_that_holds_now() {
        // The code's intent: the current period is shown whole (its end
        // may be in the future; nothing is recorded there yet), so its
        // figures are the bill's. Not `now` rounded up to the hour.
        for (zone, now, from, to) in [
            (
                "UTC",
                "2026-10-15T10:17:23Z",
                "2026-10-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
            ),
            (
                "Europe/Berlin",
                "2026-10-31T22:59:59Z",
                "2026-09-30T22:00:00Z",
                "2026-10-31T23:00:00Z",
            ),
            (
                "Europe/Berlin",
                "2026-10-31T23:00:00Z",
                "2026-10-31T23:00:00Z",
                "2026-11-30T23:00:00Z",
            ),
            (
                "Asia/Kathmandu",
                "2026-10-31T18:14:00Z",
                "2026-09-30T18:15:00Z",
                "2026-10-31T18:15:00Z",
            ),
            (
                "Australia/Lord_Howe",
                "2026-10-31T13:00:00Z",
                "2026-10-31T13:00:00Z",
                "2026-11-30T13:00:00Z",
            ),
        ] {
            let r = resolve(&settings(zone, 1), &RangeSpec::Current, ts(now)).unwrap();
            assert_eq!((r.from, r.to), (ts(from), ts(to)), "{zone} at {now}");
        }
    }

    #[test]
    fn the_billing_day_moves_the_period() {
        let r = resolve(
            &settings("Europe/Berlin", 15),
            &RangeSpec::Period("2026-10".into()),
            ts("2027-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(r.from, ts("2026-10-14T22:00:00Z"));
        assert_eq!(r.to, ts("2026-11-14T23:00:00Z"));
    }

    #[test]
    fn a_since_range_starts_at_local_midnight_and_ends_now_to_the_second() {
        for (zone, since, from) in [
            ("UTC", "2026-10-25", "2026-10-25T00:00:00Z"),
            // The day Berlin's clocks go back starts at CEST.
            ("Europe/Berlin", "2026-10-25", "2026-10-24T22:00:00Z"),
            ("Europe/Berlin", "2026-10-26", "2026-10-25T23:00:00Z"),
            ("Europe/Berlin", "2026-03-29", "2026-03-28T23:00:00Z"),
            ("Asia/Kathmandu", "2026-10-25", "2026-10-24T18:15:00Z"),
            ("Australia/Lord_Howe", "2026-10-04", "2026-10-03T13:30:00Z"),
            ("Australia/Lord_Howe", "2026-10-05", "2026-10-04T13:00:00Z"),
        ] {
            let now = ts("2026-10-31T12:34:56.789Z");
            let r = resolve(&settings(zone, 1), &RangeSpec::Since(since.into()), now).unwrap();
            assert_eq!(r.from, ts(from), "{zone} since {since}");
            assert_eq!(r.to, now, "{zone} since {since}");
            assert_eq!(r.label, format!("since {since}"));
            assert_eq!(r.zone, zone);
        }
    }

    #[test]
    fn since_today_and_the_future_and_bad_dates() {
        let s = settings("Asia/Kathmandu", 1);
        // Today, a minute after local midnight: a minute long.
        let now = ts("2026-10-24T18:16:00Z");
        let r = resolve(&s, &RangeSpec::Since("2026-10-25".into()), now).unwrap();
        assert_eq!(r.to.duration_since(r.from).as_secs(), 60);
        // Tomorrow (local): refused, naming the field.
        let e = resolve(&s, &RangeSpec::Since("2026-10-26".into()), now).unwrap_err();
        assert!(
            matches!(&e, QueryError::Invalid { field: "since", problem } if problem.contains("future")),
            "{e}"
        );
        let e = resolve(&s, &RangeSpec::Since("25.10.2026".into()), now).unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        let e = resolve(&s, &RangeSpec::Period("2026-13".into()), now).unwrap_err();
        assert!(e.to_string().starts_with("period:"), "{e}");
        let e = period_of_since(&s);
        assert!(e.to_string().contains("give a period"), "{e}");
    }

    fn period_of_since(s: &Settings) -> QueryError {
        super::period(
            s,
            &RangeSpec::Since("2026-10-01".into()),
            ts("2026-10-02T00:00:00Z"),
        )
        .unwrap_err()
    }

    #[test]
    fn options_become_a_spec() {
        assert_eq!(RangeSpec::new(None, None), RangeSpec::Current);
        assert_eq!(
            RangeSpec::new(Some("2026-10"), None),
            RangeSpec::Period("2026-10".into())
        );
        assert_eq!(
            RangeSpec::new(None, Some("2026-10-03")),
            RangeSpec::Since("2026-10-03".into())
        );
    }
}
