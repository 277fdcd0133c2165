//! The `[api]` section: where `tollgate run` serves its HTTP API and
//! metrics, where the API's tokens are kept, and TLS.

use crate::model::{Api, ApiTls};
use crate::reader::{Cx, Node};
use std::net::SocketAddr;

/// Reads the `[api]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<Api> {
    let mut f = cx.table(node, "api")?;
    let listen = match f.get(cx, "listen") {
        Some(n) => {
            let s = cx.string(n)?;
            match s.parse::<SocketAddr>() {
                Ok(a) => Some((a, n.span)),
                Err(_) => {
                    cx.error(
                        n.span,
                        format!("`{s}` is not an address and port"),
                        "write \"127.0.0.1:9188\" (this box only) or \"[::]:9188\" with [api.tls]",
                    );
                    return None;
                }
            }
        }
        None => None,
    };
    let tokens = match f.get(cx, "tokens") {
        Some(n) => {
            let s = cx.string(n)?;
            let plain = !s.is_empty()
                && !s.starts_with('/')
                && std::path::Path::new(&s)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                cx.error(
                    n.span,
                    format!("`{s}` is not a file name in the policy's folder"),
                    "name a file next to the policy (or below it), such as \"api-tokens.json\"",
                );
                return None;
            }
            Some(s)
        }
        None => None,
    };
    let metrics_public = match f.get(cx, "metrics_public") {
        Some(n) => cx.boolean(n)?,
        None => false,
    };
    let tls = match f.get(cx, "tls") {
        Some(n) => {
            let mut t = cx.table(n, "api.tls")?;
            let certificate = t
                .require(cx, "certificate", "\"/etc/tollgate/api.crt\"")
                .and_then(|n| cx.string(n));
            let key = t
                .require(cx, "key", "\"/etc/tollgate/api.key\"")
                .and_then(|n| cx.string(n));
            t.finish(cx);
            Some(ApiTls {
                certificate: certificate?,
                key: key?,
            })
        }
        None => None,
    };
    let span = f.span;
    f.finish(cx);
    if let (Some((a, at)), None) = (listen, &tls) {
        if !a.ip().is_loopback() {
            cx.error(
                at,
                format!("the API would listen on {a}, beyond this box, without TLS"),
                "add [api.tls] with `certificate` and `key` files, or listen on 127.0.0.1",
            );
            return None;
        }
    }
    Some(Api {
        listen: listen.map(|(a, _)| a),
        tokens,
        metrics_public,
        tls,
        span,
    })
}
