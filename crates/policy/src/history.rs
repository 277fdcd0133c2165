//! The `[history]` section: which store keeps the history (samples,
//! rollups, frozen bills).
//!
//! ```toml
//! [history]
//! store = "clickhouse"            # default "sqlite"
//! url = "http://127.0.0.1:8123"
//! database = "tollgate"
//!
//! [history.flows]                 # the flow records kept (ClickHouse only)
//! keep = true
//! raw_days = 15                   # the records themselves
//! minute_days = 30                # sums per minute
//! five_minute_days = 90           # sums per 5 minutes
//! hour_days = 730                 # sums per hour
//! ```

use crate::reader::{Cx, Node};
use crate::source::Span;
use serde::Serialize;

/// `url` when the policy does not say.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";
/// `database` when the policy does not say.
pub const DEFAULT_CLICKHOUSE_DATABASE: &str = "tollgate";

/// Which store keeps the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "store")]
pub enum HistoryStore {
    /// The SQLite file in the state directory (the default).
    Sqlite,
    /// A ClickHouse server.
    #[serde(rename = "clickhouse")]
    ClickHouse {
        /// Its HTTP interface, `http://host:port`.
        url: String,
        /// The database, created if absent.
        database: String,
    },
}

/// `[history.flows]`: the collector's decoded records kept in the
/// history (ClickHouse only), with their sums per minute, 5 minutes and
/// hour, each kept for its own number of days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryFlows {
    /// Whether the records are kept (`keep = true`).
    pub keep: bool,
    /// Days the records themselves are kept (15).
    pub raw_days: u32,
    /// Days the per-minute sums are kept (30).
    pub minute_days: u32,
    /// Days the per-5-minute sums are kept (90).
    pub five_minute_days: u32,
    /// Days the per-hour sums are kept (730).
    pub hour_days: u32,
    /// Where `[history.flows]` was declared.
    pub span: Span,
}

/// `[history.flows]`' defaults, as Akvorado's for the records (15 days),
/// each coarser table kept at least as long as the finer one.
pub const DEFAULT_FLOW_DAYS: [u32; 4] = [15, 30, 90, 730];

/// The `[history]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct History {
    /// The store.
    pub store: HistoryStore,
    /// `[history.flows]`, if written.
    pub flows: Option<HistoryFlows>,
    /// Where `[history]` was declared.
    pub span: Span,
}

/// Whether `url` is one the ClickHouse store can use: `http://host[:port]`
/// without a path or user.
pub(crate) fn plain_http(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| {
        let rest = rest.trim_end_matches('/');
        !rest.is_empty() && !rest.contains(['/', '@', '?', '#', ' '])
    })
}

/// Whether `name` is a database name ClickHouse takes unquoted.
pub(crate) fn plain_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads the `[history]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<History> {
    let mut f = cx.table(node, "history")?;
    let store = match f.get(cx, "store") {
        Some(n) => {
            let s = cx.string(n)?;
            match s.as_str() {
                "sqlite" => Some(false),
                "clickhouse" => Some(true),
                _ => {
                    cx.error(
                        n.span,
                        format!("unknown history store `{s}`"),
                        "use \"sqlite\" (a file in the state directory, the default) or \"clickhouse\" (with url and database)",
                    );
                    None
                }
            }
        }
        None => Some(false),
    };
    let url = f.get(cx, "url").map(|n| (cx.string(n), n.span));
    let database = f.get(cx, "database").map(|n| (cx.string(n), n.span));
    let flows = f.get(cx, "flows").map(|n| history_flows(cx, n));
    let span = f.span;
    f.finish(cx);
    let clickhouse = store?;
    if let (Some(fl), false) = (&flows, clickhouse) {
        if let Some(fl) = fl {
            cx.error(
                fl.span,
                "[history.flows] keeps flow records only in ClickHouse",
                "add store = \"clickhouse\" (with url and database) to [history], or remove [history.flows]",
            );
        }
        return None;
    }
    let flows = match flows {
        Some(fl) => Some(fl?),
        None => None,
    };
    if !clickhouse {
        for (key, given) in [("url", &url), ("database", &database)] {
            if let Some((_, at)) = given {
                cx.error(
                    *at,
                    format!("`{key}` is only read with store = \"clickhouse\""),
                    "remove it, or add store = \"clickhouse\" to keep the history in ClickHouse",
                );
            }
        }
        if url.is_some() || database.is_some() {
            return None;
        }
        return Some(History {
            store: HistoryStore::Sqlite,
            flows: None,
            span,
        });
    }
    let url = match url {
        Some((s, at)) => {
            let s = s?;
            if !plain_http(&s) {
                cx.error(
                    at,
                    format!("`{s}` is not an http://host:port URL"),
                    "write the server's HTTP interface, e.g. \"http://127.0.0.1:8123\" (https is not supported yet)",
                );
                None
            } else {
                Some(s)
            }
        }
        None => Some(DEFAULT_CLICKHOUSE_URL.to_string()),
    };
    let database = match database {
        Some((s, at)) => {
            let s = s?;
            if !plain_name(&s) {
                cx.error(
                    at,
                    format!("`{s}` is not a plain database name"),
                    "use letters, digits and _ (not starting with a digit), e.g. \"tollgate\"",
                );
                None
            } else {
                Some(s)
            }
        }
        None => Some(DEFAULT_CLICKHOUSE_DATABASE.to_string()),
    };
    Some(History {
        store: HistoryStore::ClickHouse {
            url: url?,
            database: database?,
        },
        flows,
        span,
    })
}

/// Reads `[history.flows]`.
fn history_flows(cx: &mut Cx, node: Node<'_>) -> Option<HistoryFlows> {
    let mut f = cx.table(node, "history.flows")?;
    let keep = match f.get(cx, "keep") {
        Some(n) => cx.boolean(n),
        None => Some(true),
    };
    let mut days = [Some(0u32); 4];
    let mut spans = [f.span; 4];
    for (i, key) in ["raw_days", "minute_days", "five_minute_days", "hour_days"]
        .into_iter()
        .enumerate()
    {
        days[i] = match f.get(cx, key) {
            Some(n) => {
                spans[i] = n.span;
                cx.integer(n, 1, 36_500).map(|d| d as u32)
            }
            None => Some(DEFAULT_FLOW_DAYS[i]),
        };
    }
    let span = f.span;
    f.finish(cx);
    // A range's edges are read from the finer tables and its middle from
    // the coarser: a coarser table kept for less time than a finer one
    // would make an old range's answer depend on where its edges fall.
    // Checked between every two values that could be read.
    let keys = ["raw_days", "minute_days", "five_minute_days", "hour_days"];
    let mut ok = true;
    for i in 1..4 {
        if let (Some(value), Some(finer)) = (days[i], days[i - 1]) {
            if value < finer {
                cx.error(
                    spans[i],
                    format!(
                        "`{}` = {value} keeps the sums for less time than `{}` = {finer}",
                        keys[i],
                        keys[i - 1]
                    ),
                    format!(
                        "keep each coarser table at least as long: `{}` ≥ {finer}",
                        keys[i]
                    ),
                );
                ok = false;
            }
        }
    }
    let [raw, minute, five, hour] = days;
    let (raw, minute, five, hour) = (raw?, minute?, five?, hour?);
    ok.then_some(HistoryFlows {
        keep: keep?,
        raw_days: raw,
        minute_days: minute,
        five_minute_days: five,
        hour_days: hour,
        span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "[site]\nmode = \"router\"\nuplink = \"eth0\"\nlan = \"eth1\"\ncapacity = { down = \"1gbit\", up = \"1gbit\" }\n[realms]\ndefault = \"internet\"\n[realms.internet]\nid = 1\n";

    fn load(history: &str) -> crate::Loaded {
        let text = format!("{SITE}{history}");
        crate::load("policy.toml", &text, &mut |_| Err("no files".into()))
    }

    fn errors(loaded: &crate::Loaded) -> Vec<(usize, usize, String)> {
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let r = d.to_record(&loaded.sources);
                (r.line.unwrap_or(0), r.column.unwrap_or(0), r.message)
            })
            .collect()
    }

    #[test]
    fn the_store_is_sqlite_unless_the_policy_says_clickhouse() {
        let none = load("");
        assert_eq!(errors(&none), vec![], "{}", none.render());
        assert_eq!(none.policy.unwrap().history, None);
        let sqlite = load("[history]\nstore = \"sqlite\"\n");
        let h = sqlite.policy.unwrap().history.unwrap();
        assert_eq!(h.store, HistoryStore::Sqlite);
        let ch = load("[history]\nstore = \"clickhouse\"\n");
        assert_eq!(
            ch.policy.unwrap().history.unwrap().store,
            HistoryStore::ClickHouse {
                url: DEFAULT_CLICKHOUSE_URL.into(),
                database: DEFAULT_CLICKHOUSE_DATABASE.into()
            }
        );
        let given = load(
            "[history]\nstore = \"clickhouse\"\nurl = \"http://10.0.0.5:8123\"\ndatabase = \"billing_2\"\n",
        );
        assert_eq!(
            given.policy.unwrap().history.unwrap().store,
            HistoryStore::ClickHouse {
                url: "http://10.0.0.5:8123".into(),
                database: "billing_2".into()
            }
        );
    }

    #[test]
    fn mistakes_are_reported_where_they_are_written() {
        // SITE has 9 lines: [history] is line 10.
        let bad = load(
            "[history]\nstore = \"clickhouse\"\nurl = \"https://ch:8443\"\ndatabase = \"bill-ing\"\ncolour = 1\n",
        );
        assert!(bad.policy.is_none());
        let got = errors(&bad);
        let places: Vec<(usize, usize)> = got.iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(places, vec![(12, 7), (13, 12), (14, 1)], "{got:#?}");
        assert!(got[0].2.contains("https://ch:8443"));
        assert!(got[1].2.contains("bill-ing"));
        assert!(got[2].2.contains("colour"));
        let unknown = load("[history]\nstore = \"postgres\"\n");
        assert_eq!(errors(&unknown)[0].0, 11);
        assert!(errors(&unknown)[0].2.contains("postgres"));
        let stray = load("[history]\nurl = \"http://a:1\"\n");
        let got = errors(&stray);
        assert_eq!((got[0].0, got[0].1), (11, 7), "{got:?}");
        assert!(got[0].2.contains("only read with store"));
    }

    #[test]
    fn flows_are_kept_only_in_clickhouse_and_coarser_sums_longer() {
        let ch = load("[history]\nstore = \"clickhouse\"\n[history.flows]\nkeep = true\nraw_days = 7\n[flows]\nlisten = [\"127.0.0.1:2055\"]\n");
        assert_eq!(errors(&ch), vec![], "{}", ch.render());
        let fl = ch.policy.unwrap().history.unwrap().flows.unwrap();
        let no_collector =
            load("[history]\nstore = \"clickhouse\"\n[history.flows]\nkeep = true\n");
        let got = errors(&no_collector);
        assert_eq!((got[0].0, got[0].1), (12, 1), "{got:?}");
        assert!(got[0].2.contains("no [flows] collector"), "{got:?}");
        assert!(fl.keep);
        assert_eq!(
            (
                fl.raw_days,
                fl.minute_days,
                fl.five_minute_days,
                fl.hour_days
            ),
            (7, 30, 90, 730)
        );
        // SITE has 9 lines: [history] is line 10, [history.flows] 11.
        let sqlite = load("[history]\nstore = \"sqlite\"\n[history.flows]\nkeep = true\n");
        let got = errors(&sqlite);
        assert_eq!((got[0].0, got[0].1), (12, 1), "{got:?}");
        assert!(got[0].2.contains("only in ClickHouse"), "{got:?}");
        let order = load(
            "[history]\nstore = \"clickhouse\"\n[history.flows]\nminute_days = 7\nhour_days = 0\nfive = 1\n",
        );
        let got = errors(&order);
        let places: Vec<(usize, usize)> = got.iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(places, vec![(13, 15), (14, 13), (15, 1)], "{got:#?}");
        assert!(
            got[0].2.contains("minute_days") && got[0].2.contains("raw_days"),
            "{got:?}"
        );
        assert!(got[1].2.contains("hour_days"), "{got:?}");
    }

    #[test]
    fn urls_and_names() {
        assert!(plain_http("http://127.0.0.1:8123"));
        assert!(plain_http("http://ch.example/"));
        for bad in [
            "https://a:1",
            "http://",
            "http://a/b",
            "http://u@a",
            "ftp://a",
        ] {
            assert!(!plain_http(bad), "{bad}");
        }
        assert!(plain_name("tollgate") && plain_name("_t1"));
        assert!(!plain_name("1t") && !plain_name("a-b") && !plain_name(""));
    }
}
