//! The `[history]` section: which store keeps the history (samples,
//! rollups, frozen bills).
//!
//! ```toml
//! [history]
//! store = "clickhouse"            # default "sqlite"
//! url = "http://127.0.0.1:8123"
//! database = "tollgate"
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

/// The `[history]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct History {
    /// The store.
    pub store: HistoryStore,
    /// Where `[history]` was declared.
    pub span: Span,
}

/// Whether `url` is one the ClickHouse store can use: `http://host[:port]`
/// without a path or user.
fn plain_http(url: &str) -> bool {
    url.strip_prefix("http://").is_some_and(|rest| {
        let rest = rest.trim_end_matches('/');
        !rest.is_empty() && !rest.contains(['/', '@', '?', '#', ' '])
    })
}

/// Whether `name` is a database name ClickHouse takes unquoted.
fn plain_name(name: &str) -> bool {
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
    let span = f.span;
    f.finish(cx);
    let clickhouse = store?;
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
