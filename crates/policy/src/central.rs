//! The `[central]` section: this daemon is an agent that ships its closed
//! slots to a central tollgate (docs/agents.md).
//!
//! ```toml
//! [central]
//! url = "https://central.example:9188"  # a central `tollgate run`'s API
//! token_file = "/etc/tollgate/central.token"
//! writer = "hv1"                          # default: this host's name
//! ca = "/etc/tollgate/central-ca.pem"     # https only; default: the Web PKI's roots
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
    /// The central tollgate's API, `http://host:port` or
    /// `https://host:port`.
    pub url: String,
    /// The file holding the bearer token (an `agent` or `admin` token of
    /// the central), relative to the policy file's folder unless absolute.
    pub token_file: String,
    /// This agent's name in the central history; `None` is the host name.
    pub writer: Option<String>,
    /// With `https`, the PEM file of the certificates that may sign the
    /// central's (relative to the policy file's folder unless absolute);
    /// `None` trusts the Web PKI's roots.
    pub ca: Option<String>,
    /// Where `[central]` was declared.
    pub span: Span,
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
    let url = match f.get(cx, "url") {
        Some(n) => cx.string(n).and_then(|s| {
            if plain_http(&s) {
                Some(s.trim_end_matches('/').to_string())
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
    let token_file = match f.get(cx, "token_file") {
        Some(n) => cx.string(n).and_then(|s| {
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
        None => {
            cx.error(
                span,
                "[central] needs `token_file`",
                "add token_file = \"/etc/tollgate/central.token\", a file holding a token made on the central with `tollgate token add NAME --scope agent`",
            );
            None
        }
    };
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
    let ca = match f.get(cx, "ca") {
        Some(n) => cx.string(n).and_then(|s| {
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
                Some(Some(s))
            }
        }),
        None => Some(None),
    };
    f.finish(cx);
    Some(Central {
        url: url?,
        token_file: token_file?,
        writer: writer?,
        ca: ca?,
        span,
    })
}
