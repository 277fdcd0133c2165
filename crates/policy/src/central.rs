//! The `[central]` section: this daemon is an agent that ships its closed
//! slots to a central tollgate, or straight into a ClickHouse history
//! (docs/agents.md).
//!
//! ```toml
//! [central]
//! url = "https://central.example:9188"  # a central `tollgate run`'s API
//! token_file = "/etc/tollgate/central.token"
//! writer = "hv1"                          # default: this host's name
//! ca = "/etc/tollgate/central-ca.pem"     # https only; default: the Web PKI's roots
//!
//! [central]                               # or: ClickHouse directly
//! store = "clickhouse"
//! url = "http://192.0.2.10:8123"
//! database = "tollgate"                   # the default
//! ```
//!
//! The token itself never sits in the policy (which is shown by `check`,
//! edited by the API and often kept in version control): only the file
//! that holds it.

use crate::reader::{Cx, Node};
use crate::source::Span;
use serde::Serialize;

/// The writer name the flow collector uses in the history: an agent may
/// not take it.
const RESERVED: &[&str] = &["flows"];

/// The `[central]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Central {
    /// The central tollgate's API (`http://host:port` or
    /// `https://host:port`), or the ClickHouse server's HTTP interface.
    pub url: String,
    /// This agent's name in the central history; `None` is the host name.
    pub writer: Option<String>,
    /// What `url` is.
    pub target: CentralTarget,
    /// Where `[central]` was declared.
    pub span: Span,
}

/// What the agent ships to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "store")]
pub enum CentralTarget {
    /// A central `tollgate run`, through its API.
    Tollgate {
        /// The file holding the bearer token (an `agent` or `admin` token
        /// of the central), relative to the policy file's folder unless
        /// absolute.
        token_file: String,
        /// With `https`, the PEM file of the certificates that may sign the
        /// central's (relative to the policy file's folder unless
        /// absolute); `None` trusts the Web PKI's roots.
        ca: Option<String>,
    },
    /// A ClickHouse history that the agent writes itself: each batch under
    /// its writer and sequence, so one sent twice counts once. A central
    /// tollgate reading the same database (`[history] store =
    /// "clickhouse"`) answers for every host.
    ClickHouse {
        /// The database, created if absent.
        database: String,
    },
}

/// Whether `url` is `http://host[:port]` or `https://host[:port]`
/// without a path, user or query.
fn plain_http(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let rest = rest.trim_end_matches('/');
        !rest.is_empty() && !rest.contains(['/', '@', '?', '#', ' '])
    })
}

/// Whether `name` can name a writer: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_writer(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !RESERVED.contains(&name)
}

/// Reads the `[central]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<Central> {
    let mut f = cx.table(node, "central")?;
    let span = f.span;
    let clickhouse = match f.get(cx, "store") {
        Some(n) => match cx.string(n)?.as_str() {
            "tollgate" => Some(false),
            "clickhouse" => Some(true),
            other => {
                cx.error(
                    n.span,
                    format!("unknown central store `{other}`"),
                    "use \"tollgate\" (a central tollgate's API, the default) or \"clickhouse\" (a ClickHouse history written directly)",
                );
                None
            }
        },
        None => Some(false),
    };
    let url = match f.get(cx, "url") {
        Some(n) => cx.string(n).and_then(|s| {
            let ok = if clickhouse == Some(true) {
                crate::history::plain_http(&s)
            } else {
                plain_http(&s)
            };
            if ok {
                Some(s.trim_end_matches('/').to_string())
            } else if clickhouse == Some(true) {
                cx.error(
                    n.span,
                    format!("`{s}` is not an http://host:port URL"),
                    "write the ClickHouse server's HTTP interface, e.g. \"http://192.0.2.10:8123\" (no user, path or TLS)",
                );
                None
            } else {
                cx.error(
                    n.span,
                    format!("`{s}` is not an http(s)://host:port URL"),
                    "write the central tollgate's API, e.g. \"https://central.example:9188\"",
                );
                None
            }
        }),
        None => {
            cx.error(
                span,
                "[central] needs `url`",
                "add url = \"http://central.example:9188\" (the central tollgate's API)",
            );
            None
        }
    };
    let token_file = f.get(cx, "token_file").map(|n| {
        (
            n.span,
            cx.string(n).and_then(|s| {
                if s.is_empty() {
                    cx.error(
                        n.span,
                        "`token_file` is empty",
                        "name the file holding the central's token",
                    );
                    None
                } else {
                    Some(s)
                }
            }),
        )
    });
    let writer = match f.get(cx, "writer") {
        Some(n) => match cx.string(n) {
            Some(s) if valid_writer(&s) => Some(Some(s)),
            Some(s) => {
                cx.error(
                    n.span,
                    format!("`{s}` cannot name a writer"),
                    "use 1 to 64 letters, digits, `.`, `_` or `-` (not `flows`, the flow collector's)",
                );
                None
            }
            None => None,
        },
        None => Some(None),
    };
    let ca = f.get(cx, "ca").map(|n| {
        (
            n.span,
            cx.string(n).and_then(|s| {
                if s.is_empty() {
                    cx.error(n.span, "`ca` is empty", "name a PEM file of certificates");
                    None
                } else if url.as_ref().is_some_and(|u| u.starts_with("http://")) {
                    cx.error(
                        n.span,
                        "`ca` is for an https:// url",
                        "write url = \"https://…\", or remove `ca`",
                    );
                    None
                } else {
                    Some(s)
                }
            }),
        )
    });
    let database = f.get(cx, "database").map(|n| (n.span, cx.string(n)));
    f.finish(cx);
    let target = if clickhouse? {
        for (key, at) in [
            ("token_file", token_file.as_ref().map(|t| t.0)),
            ("ca", ca.as_ref().map(|c| c.0)),
        ] {
            if let Some(at) = at {
                cx.error(
                    at,
                    format!("`{key}` is for a central tollgate, not ClickHouse"),
                    "remove it: the agent writes to the ClickHouse server as its default user, which the server must allow from this host",
                );
                return None;
            }
        }
        let database = match database {
            Some((at, name)) => {
                let name = name?;
                if !crate::history::plain_name(&name) {
                    cx.error(
                        at,
                        format!("`{name}` is not a plain database name"),
                        "use letters, digits and `_`, starting with a letter or `_` (at most 64)",
                    );
                    return None;
                }
                name
            }
            None => crate::history::DEFAULT_CLICKHOUSE_DATABASE.to_string(),
        };
        CentralTarget::ClickHouse { database }
    } else {
        if let Some((at, _)) = database {
            cx.error(
                at,
                "`database` is for store = \"clickhouse\"",
                "remove it, or add store = \"clickhouse\" to ship straight into a ClickHouse history",
            );
            return None;
        }
        let token_file = match token_file {
            Some((_, t)) => t?,
            None => {
                cx.error(
                    span,
                    "[central] needs `token_file`",
                    "add token_file = \"/etc/tollgate/central.token\", a file holding a token made on the central with `tollgate token add NAME --scope agent`",
                );
                return None;
            }
        };
        let ca = match ca {
            Some((_, c)) => Some(c?),
            None => None,
        };
        CentralTarget::Tollgate { token_file, ca }
    };
    Some(Central {
        url: url?,
        writer: writer?,
        target,
        span,
    })
}
