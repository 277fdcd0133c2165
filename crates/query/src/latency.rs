//! Stored latency minutes (TCP RTT per tenant × realm, probes, busy
//! queues) over a range, for `tollgate latency --since` and `GET
//! /api/v1/latency/history`.

use crate::QueryError;
use history::{LatencyQuery, Store};
use jiff::{SignedDuration, Timestamp};
use latency::{ProbeMinute, QueueMinute, RttMinute};
use policy::Policy;
use serde::Serialize;
use std::time::Duration;

/// The most rows of each kind one answer holds.
pub const ROW_LIMIT: usize = 20_000;

/// The furthest back `since` may reach: the raw retention's default (70
/// days) plus slack; older minutes are gone anyway.
const MAX_BACK: SignedDuration = SignedDuration::from_hours(24 * 400);

/// `since` as an instant: a duration back from `now` (`2h`, `90m`,
/// `1d`), or an RFC 3339 time (`2026-12-07T04:00:00Z`; without an offset,
/// UTC). Errors name the field.
pub fn since(text: &str, now: Timestamp) -> Result<Timestamp, QueryError> {
    since_within(
        text,
        now,
        MAX_BACK,
        "latency minutes are kept as long as raw samples (70 days by default)",
    )
}

/// [`since`] reaching at most `max_back`, `kept` saying why.
pub(crate) fn since_within(
    text: &str,
    now: Timestamp,
    max_back: SignedDuration,
    kept: &str,
) -> Result<Timestamp, QueryError> {
    let bad = |problem: String| QueryError::Invalid {
        field: "since",
        problem,
    };
    let t = text.trim();
    let at = if t.starts_with(|c: char| c.is_ascii_digit()) && t.len() >= 10 && t.contains('-') {
        match t.parse::<Timestamp>() {
            Ok(ts) => ts,
            Err(_) => t
                .parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
                .ok_or_else(|| {
                    bad(format!(
                        "`{t}` is not a time: write 2026-12-07T04:00:00Z (RFC 3339) or a duration back from now like 2h"
                    ))
                })?,
        }
    } else {
        let d = net_types::parse_duration(t)
            .map_err(|e| bad(format!("`{t}`: {e} ({}); or an RFC 3339 time", e.hint())))?;
        let d = SignedDuration::try_from(d).map_err(|_| bad(format!("`{t}` is too long")))?;
        now.checked_sub(d)
            .map_err(|_| bad(format!("`{t}` is too long")))?
    };
    if at > now {
        return Err(bad(format!("{at} is in the future")));
    }
    if now.duration_since(at) > max_back {
        return Err(bad(format!(
            "{at} is more than {} days back; {kept}",
            max_back.as_hours() / 24
        )));
    }
    Ok(at)
}

/// A stored RTT minute as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RttRow {
    /// Where the minute starts.
    pub start: Timestamp,
    /// The realm's name (`all` in a policy without realms).
    pub realm_name: String,
    /// About the round trip the tenant sees (the halves' medians added).
    #[serde(rename = "rtt_p50_ms", with = "latency::millis::option")]
    pub rtt_p50: Option<Duration>,
    /// The row (`minute`, `tenant`, `realm`, `up`, `down`, the
    /// retransmissions).
    #[serde(flatten)]
    pub row: RttMinute,
}

/// A stored probe minute as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeRow {
    /// Where the minute starts.
    pub start: Timestamp,
    /// Lost share, in percent.
    pub loss_percent: f64,
    /// The row.
    #[serde(flatten)]
    pub row: ProbeMinute,
}

/// A stored queue minute as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueRow {
    /// Where the minute starts.
    pub start: Timestamp,
    /// The row.
    #[serde(flatten)]
    pub row: QueueMinute,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyHistory {
    /// From this instant (the minute holding it, whole).
    pub from: Timestamp,
    /// To this instant (exclusive).
    pub to: Timestamp,
    /// Only this tenant (no probes then: they are the site's).
    pub tenant: Option<u32>,
    /// TCP RTT per tenant × realm × minute.
    pub tcp_rtt: Vec<RttRow>,
    /// Per probe × minute.
    pub probes: Vec<ProbeRow>,
    /// Per busy class × minute.
    pub queues: Vec<QueueRow>,
    /// More rows of some kind than [`ROW_LIMIT`]: the earliest are shown.
    pub truncated: bool,
}

fn start(minute: i64) -> Timestamp {
    Timestamp::from_second(minute.saturating_mul(60)).unwrap_or(Timestamp::MIN)
}

fn realm_name(policy: Option<&Policy>, realm: u16) -> String {
    let Some(p) = policy else {
        return realm.to_string();
    };
    if p.realms.list.is_empty() {
        return "all".into();
    }
    p.realms
        .list
        .iter()
        .find(|r| r.id.0 == realm)
        .map_or_else(|| realm.to_string(), |r| r.name.clone())
}

/// The stored minutes of `tenant` (or everyone) in `[from, to)`.
pub fn history(
    store: &dyn Store,
    policy: Option<&Policy>,
    tenant: Option<u32>,
    from: Timestamp,
    to: Timestamp,
) -> Result<LatencyHistory, QueryError> {
    let q = LatencyQuery {
        tenant,
        from: from.as_second().div_euclid(60),
        to: to.as_second().div_euclid(60) + 1,
        limit: ROW_LIMIT + 1,
    };
    let mut m = store.latency(&q).map_err(|source| QueryError::Store {
        what: "the latency minutes",
        source,
    })?;
    let truncated =
        m.rtt.len() > ROW_LIMIT || m.probes.len() > ROW_LIMIT || m.queues.len() > ROW_LIMIT;
    m.rtt.truncate(ROW_LIMIT);
    m.probes.truncate(ROW_LIMIT);
    m.queues.truncate(ROW_LIMIT);
    Ok(LatencyHistory {
        from,
        to,
        tenant,
        tcp_rtt: m
            .rtt
            .into_iter()
            .map(|row| RttRow {
                start: start(row.minute),
                realm_name: realm_name(policy, row.realm),
                rtt_p50: row.rtt_p50(),
                row,
            })
            .collect(),
        probes: m
            .probes
            .into_iter()
            .map(|row| ProbeRow {
                start: start(row.minute),
                loss_percent: if row.sent == 0 {
                    0.0
                } else {
                    f64::from(row.lost) * 100.0 / f64::from(row.sent)
                },
                row,
            })
            .collect(),
        queues: m
            .queues
            .into_iter()
            .map(|row| QueueRow {
                start: start(row.minute),
                row,
            })
            .collect(),
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-07T04:30:00Z".parse().unwrap()
    }

    #[test]
    fn since_takes_a_duration_back_or_a_time() {
        let t = |s: &str| since(s, now()).map(|t| t.to_string());
        assert_eq!(t("2h").unwrap(), "2026-12-07T02:30:00Z");
        assert_eq!(t("90m").unwrap(), "2026-12-07T03:00:00Z");
        assert_eq!(t("2026-12-07T04:00:00Z").unwrap(), "2026-12-07T04:00:00Z");
        assert_eq!(
            t("2026-12-07T05:00:00+01:00").unwrap(),
            "2026-12-07T04:00:00Z"
        );
        assert_eq!(t("2026-12-07T04:10").unwrap(), "2026-12-07T04:10:00Z");
        for bad in [
            "banana",
            "2 h",
            "-5m",
            "2026-13-07T04:00:00Z",
            "2027-01-01T00:00:00Z",
            "500d",
            "",
        ] {
            let e = since(bad, now()).unwrap_err().to_string();
            assert!(e.starts_with("since: "), "{bad}: {e}");
        }
    }
}
