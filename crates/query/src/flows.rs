//! Top talkers of the flow records kept (`[history.flows]`), for
//! `tollgate flows top` and `GET /api/v1/flows/top`: the arguments read
//! and checked here (errors name the field), the sums from the store.

use crate::QueryError;
use history::{FlowBy, FlowTopQuery, Store, Talker};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// Talkers listed when the question does not say.
pub const DEFAULT_LIMIT: usize = 10;

/// The furthest back `since` may reach: the per-hour sums' longest
/// retention one may reasonably set, with slack.
const MAX_BACK: SignedDuration = SignedDuration::from_hours(24 * 3660);

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowTop {
    /// Ranked by what (`src`, `dst`, `src-port`, `dst-port`, `proto`, `as`).
    pub by: FlowBy,
    /// The range's start (inclusive).
    pub from: Timestamp,
    /// Its end (exclusive): the time asked.
    pub to: Timestamp,
    /// The talkers, the most bytes first.
    pub talkers: Vec<Talker>,
}

/// Reads `by`, `since` and `limit` as a user wrote them.
pub fn query(
    by: &str,
    since: &str,
    limit: Option<usize>,
    now: Timestamp,
) -> Result<FlowTopQuery, QueryError> {
    let by = FlowBy::parse(by.trim()).map_err(|problem| QueryError::Invalid {
        field: "by",
        problem,
    })?;
    let from = crate::latency::since_within(
        since,
        now,
        MAX_BACK,
        "flow records' sums are kept for [history.flows] hour_days (730 by default)",
    )?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > history::flows::MAX_TALKERS {
        return Err(QueryError::Invalid {
            field: "limit",
            problem: format!("{limit} is not in 1 ..= {}", history::flows::MAX_TALKERS),
        });
    }
    if from >= now {
        return Err(QueryError::Invalid {
            field: "since",
            problem: "the range is empty: ask for a time before now".into(),
        });
    }
    Ok(FlowTopQuery {
        by,
        from,
        to: now,
        limit,
    })
}

/// The top talkers for `q`.
pub fn top(store: &dyn Store, q: &FlowTopQuery) -> Result<FlowTop, QueryError> {
    let talkers = store.flow_top(q).map_err(|e| match e {
        history::StoreError::Invalid { field, problem } if field == "history.flows" => {
            QueryError::Invalid {
                field: "history.flows",
                problem,
            }
        }
        source => QueryError::Store {
            what: "the flow records kept",
            source,
        },
    })?;
    Ok(FlowTop {
        by: q.by,
        from: q.from,
        to: q.to,
        talkers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-07T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn arguments_are_read_and_mistakes_name_their_field() {
        let q = query("dst-port", "1h", None, now()).unwrap();
        assert_eq!(q.by, FlowBy::DstPort);
        assert_eq!(q.to.duration_since(q.from), SignedDuration::from_hours(1));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        for (by, since, limit, field) in [
            ("port", "1h", None, "by"),
            ("src", "yesterday", None, "since"),
            ("src", "0s", None, "since"),
            ("src", "1h", Some(0), "limit"),
            ("src", "1h", Some(1_000_000), "limit"),
        ] {
            let e = query(by, since, limit, now()).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{field}: ")), "{by} {since}: {e}");
        }
    }

    #[test]
    fn a_store_without_flow_records_says_which_setting_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            history::SqliteStore::open(&dir.path().join("h.sqlite"), &Default::default()).unwrap();
        let q = query("src", "1h", None, now()).unwrap();
        let e = top(&store, &q).unwrap_err().to_string();
        assert!(e.starts_with("history.flows: "), "{e}");
    }
}
