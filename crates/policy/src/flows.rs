//! The `[flows]` section (the flow collector) and a tenant's `measured_by`.

use crate::model::{Exporter, Flows, Measure};
use crate::reader::{Cx, Fields, Node};
use net_types::Size;
use std::net::{IpAddr, SocketAddr};

/// The receive buffer asked for when the policy does not say: enough for
/// about a second of a busy router's export (20k datagrams of 1.5 kB)
/// while a worker is briefly descheduled.
const DEFAULT_RECEIVE_BUFFER: Size = Size::from_bytes(32 << 20);

/// Reads `measured_by = "kernel" | "flows"`.
pub(crate) fn measure(cx: &mut Cx, node: Node<'_>) -> Option<Measure> {
    let s = cx.string(node)?;
    match s.as_str() {
        "kernel" => Some(Measure::Kernel),
        "flows" => Some(Measure::Flows),
        _ => {
            cx.error(
                node.span,
                format!("unknown `measured_by` value `{s}`"),
                "use \"kernel\" (this box shapes the tenant and counts its classes) or \"flows\" (a router exports flow records about it)",
            );
            None
        }
    }
}

/// Reads the `[flows]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<Flows> {
    let mut f = cx.table(node, "flows")?;
    let listen: Vec<(SocketAddr, _)> = match f.require(cx, "listen", "[\"0.0.0.0:2055\"]") {
        Some(n) => cx
            .strings(n)
            .into_iter()
            .filter_map(|(s, span)| match s.parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 => Some((a, span)),
                Ok(_) => {
                    cx.error(span, format!("`{s}` has port 0"), "give the UDP port the exporters send to, e.g. 2055 (NetFlow), 4739 (IPFIX) or 6343 (sFlow)");
                    None
                }
                Err(_) => {
                    cx.error(span, format!("`{s}` is not an address and port"), "write \"0.0.0.0:2055\" or \"[::]:2055\"");
                    None
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let receive_buffer = match f.get(cx, "receive_buffer") {
        Some(n) => cx.size(n),
        None => Some(DEFAULT_RECEIVE_BUFFER),
    };
    let workers = match f.get(cx, "workers") {
        Some(n) => cx.integer(n, 1, 256).map(|v| Some(v as u16)),
        None => Some(None),
    };
    let mut exporters = Vec::new();
    if let Some(n) = f.get(cx, "exporters") {
        crate::parse::each_table(cx, n, "flows.exporters", |cx, ef| {
            if let Some(e) = exporter(cx, ef) {
                exporters.push(e);
            }
        });
    }
    let span = f.span;
    f.finish(cx);
    Some(Flows {
        listen,
        receive_buffer: receive_buffer?,
        workers: workers?,
        exporters,
        span,
    })
}

fn exporter(cx: &mut Cx, mut f: Fields<'_>) -> Option<Exporter> {
    let address = f.require(cx, "address", "\"192.0.2.1\"").and_then(|n| {
        let s = cx.string(n)?;
        match s.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                cx.error(
                    n.span,
                    format!("`{s}` is not an IP address"),
                    "give the address the exporter's datagrams come from, without a port",
                );
                None
            }
        }
    });
    let name = match f.get(cx, "name") {
        Some(n) => cx.string(n),
        None => address.map(|a| a.to_string()),
    };
    let sampling = match f.get(cx, "sampling") {
        Some(n) => cx.integer(n, 1, u32::MAX as i64).map(|v| Some(v as u32)),
        None => Some(None),
    };
    let span = f.span;
    f.finish(cx);
    Some(Exporter {
        address: address?,
        name: name?,
        sampling: sampling?,
        span,
    })
}

/// Checks that relate `[flows]` to the rest of the policy.
pub(crate) fn check(p: &crate::model::Policy, diags: &mut Vec<crate::diagnostic::Diagnostic>) {
    use crate::diagnostic::Diagnostic;
    let mut error = |span, message: String, hint: &str| {
        diags.push(Diagnostic::error(Some(span), message).with_hint(hint));
    };
    match &p.flows {
        None => {
            if let Some(t) = p.tenants.iter().find(|t| t.measured_by == Measure::Flows) {
                error(
                    t.measured_by_span,
                    format!(
                        "tenant {} is measured by flows, but the policy has no [flows] section",
                        t.id
                    ),
                    "add [flows] with `listen` and the [[flows.exporters]] that report on it",
                );
            }
        }
        Some(flows) => {
            let mut seen: Vec<IpAddr> = Vec::new();
            for e in &flows.exporters {
                if seen.contains(&e.address) {
                    error(
                        e.span,
                        format!("exporter {} is listed twice", e.address),
                        "list each exporter address once",
                    );
                }
                seen.push(e.address);
            }
            let mut ports: Vec<SocketAddr> = Vec::new();
            for (a, span) in &flows.listen {
                if ports.contains(a) {
                    error(
                        *span,
                        format!("`{a}` is listed twice"),
                        "listen on each address once; `workers` sets the sockets per address",
                    );
                }
                ports.push(*a);
            }
            if flows.listen.is_empty() {
                error(
                    flows.span,
                    "[flows] listens nowhere".into(),
                    "add listen = [\"0.0.0.0:2055\"]",
                );
            }
        }
    }
}
