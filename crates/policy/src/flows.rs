//! The `[flows]` section (the flow collector) and a tenant's `measured_by`.

use crate::model::{Exporter, Flows, Measure};
use crate::reader::{Cx, Fields, Node};
use crate::source::Span;
use net_types::Size;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

/// The receive buffer asked for when the policy does not say: enough for
/// about a second of a busy router's export (20k datagrams of 1.5 kB)
/// while a worker is briefly descheduled.
const DEFAULT_RECEIVE_BUFFER: Size = Size::from_bytes(32 << 20);

/// How much memory the flow collector keeps to, and how it may spend it on
/// exporters' templates: `memory_limit`, `templates_per_exporter`,
/// `templates_per_domain` and `template_fields` in `[flows]`.
///
/// One allowlisted exporter (or anyone spoofing its address) can send any
/// number of templates of up to 16,383 fields; without limits 12,000 of
/// them took a collector to 5 GB. Templates are kept within these limits,
/// the least recently used evicted first (docs/flows.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FlowLimits {
    /// The resident memory the collector stays under, whatever it is sent.
    pub memory: Size,
    /// Templates one exporter address may have, over its observation
    /// domains.
    pub templates_per_exporter: u32,
    /// Templates per exporter and observation domain.
    pub templates_per_domain: u32,
    /// Fields a template may have; a template with more is refused.
    pub template_fields: u32,
    /// Where `memory_limit` was written (the section if absent).
    pub memory_span: Span,
}

impl FlowLimits {
    /// What the collector needs whatever it is sent: the process (runtime,
    /// history database, status) and, per socket, its receive slots (64 of
    /// 64 KiB) and address cache.
    pub const BASE: u64 = 48 << 20;
    /// See [`FlowLimits::BASE`].
    pub const PER_SOCKET: u64 = 9 << 19;
    /// The least template budget a worker is given.
    pub const MIN_WORKER_TEMPLATES: u64 = 1 << 20;

    /// Each of `sockets` workers' template budget, in bytes: what
    /// `memory` leaves after the fixed costs, divided by 3 (a worker's
    /// templates, plus at most two saved copies of them on their way to
    /// disk) and by the sockets. `None` when that is below
    /// [`FlowLimits::MIN_WORKER_TEMPLATES`].
    pub fn worker_template_bytes(&self, sockets: usize) -> Option<u64> {
        let sockets = u64::try_from(sockets.max(1)).unwrap_or(u64::MAX);
        let fixed = Self::BASE.saturating_add(Self::PER_SOCKET.saturating_mul(sockets));
        let left = self.memory.bytes().checked_sub(fixed)?;
        Some(left / 3 / sockets).filter(|&b| b >= Self::MIN_WORKER_TEMPLATES)
    }

    /// The smallest `memory_limit` that gives `sockets` workers their
    /// least template budget.
    pub fn memory_needed(sockets: usize) -> u64 {
        let sockets = u64::try_from(sockets.max(1)).unwrap_or(u64::MAX);
        Self::BASE
            .saturating_add(Self::PER_SOCKET.saturating_mul(sockets))
            .saturating_add(
                Self::MIN_WORKER_TEMPLATES
                    .saturating_mul(3)
                    .saturating_mul(sockets),
            )
    }
}

/// `memory_limit` when the policy does not say.
const DEFAULT_MEMORY: Size = Size::from_bytes(256 << 20);
/// Real exporters use tens of templates per domain and a few domains.
const DEFAULT_TEMPLATES_PER_EXPORTER: u32 = 4_096;
/// See [`DEFAULT_TEMPLATES_PER_EXPORTER`].
const DEFAULT_TEMPLATES_PER_DOMAIN: u32 = 1_024;
/// Real templates have tens of fields; IPFIX allows 16,383.
const DEFAULT_TEMPLATE_FIELDS: u32 = 1_024;
/// The most field specifiers one set can carry.
const MAX_TEMPLATE_FIELDS: i64 = 16_383;

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
    let section = f.span;
    let limits = limits(cx, &mut f, section);
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
    let limits = limits?;
    Some(Flows {
        listen,
        receive_buffer: receive_buffer?,
        workers: workers?,
        exporters,
        limits,
        span,
    })
}

/// Reads the memory and template limits; `None` if any is wrong (each
/// reported).
fn limits(cx: &mut Cx, f: &mut Fields<'_>, section: Span) -> Option<FlowLimits> {
    let (memory, memory_span) = match f.get(cx, "memory_limit") {
        Some(n) => (cx.size(n), n.span),
        None => (Some(DEFAULT_MEMORY), section),
    };
    let mut count = |key: &'static str, max: i64, default: u32| match f.get(cx, key) {
        Some(n) => cx.integer(n, 1, max).map(|v| (v as u32, Some(n.span))),
        None => Some((default, None)),
    };
    let per_exporter = count(
        "templates_per_exporter",
        65_536,
        DEFAULT_TEMPLATES_PER_EXPORTER,
    );
    let per_domain = count("templates_per_domain", 65_536, DEFAULT_TEMPLATES_PER_DOMAIN);
    let fields = count(
        "template_fields",
        MAX_TEMPLATE_FIELDS,
        DEFAULT_TEMPLATE_FIELDS,
    );
    if let (Some((exporter, _)), Some((domain, Some(span)))) = (per_exporter, per_domain) {
        if domain > exporter {
            cx.error(
                span,
                format!("`templates_per_domain` = {domain} is more than `templates_per_exporter` = {exporter}"),
                "an exporter's domains share its templates: make templates_per_exporter at least templates_per_domain",
            );
            return None;
        }
    }
    let memory = memory?;
    if memory.bytes() < FlowLimits::memory_needed(1) {
        cx.error(
            memory_span,
            format!("`memory_limit` = {memory} leaves the flow collector no room for templates"),
            format!(
                "give it at least {} (the process and one socket take {})",
                Size::from_bytes(FlowLimits::memory_needed(1)),
                Size::from_bytes(FlowLimits::BASE + FlowLimits::PER_SOCKET)
            ),
        );
        return None;
    }
    Some(FlowLimits {
        memory,
        templates_per_exporter: per_exporter?.0,
        templates_per_domain: per_domain?.0,
        template_fields: fields?.0,
        memory_span,
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
            // With `workers` unset the socket count depends on the host's
            // cores; the collector checks it when it starts.
            if let Some(w) = flows.workers {
                let sockets = flows.listen.len() * usize::from(w);
                let l = &flows.limits;
                if l.worker_template_bytes(sockets).is_none() {
                    let needed = FlowLimits::memory_needed(sockets);
                    diags.push(
                        Diagnostic::error(
                            Some(l.memory_span),
                            format!(
                                "`memory_limit` = {} is too small for {sockets} sockets ({} listen addresses × {w} workers)",
                                l.memory,
                                flows.listen.len()
                            ),
                        )
                        .with_hint(format!(
                            "raise memory_limit to at least {}, or lower workers",
                            Size::from_bytes(needed)
                        )),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
[realms]
default = "i"
[realms.i]
id = 1
[plans.basic]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["0.0.0.0:2055", "0.0.0.0:6343"]
"#;

    fn load(extra: &str) -> crate::Loaded {
        crate::load_str("p.toml", &format!("{BASE}{extra}"))
    }

    fn rendered(l: &crate::Loaded) -> String {
        l.render()
    }

    #[test]
    fn the_limits_default_to_256_mb_and_room_for_real_exporters() {
        let p = load("").policy.expect("valid");
        let l = p.flows.unwrap().limits;
        assert_eq!(l.memory, Size::from_bytes(256 << 20));
        assert_eq!(
            (
                l.templates_per_exporter,
                l.templates_per_domain,
                l.template_fields
            ),
            (4_096, 1_024, 1_024)
        );
        // Two workers on two addresses: (256 - 48 - 4 × 4.5) MiB / 3 / 4.
        assert_eq!(
            l.worker_template_bytes(4),
            Some(((256 - 48 - 18) << 20) / 12)
        );
    }

    #[test]
    fn every_limit_is_read_with_its_place() {
        let l = load(
            "memory_limit = \"1gb\"\ntemplates_per_exporter = 100\ntemplates_per_domain = 10\ntemplate_fields = 300\n",
        );
        let f = l.policy.expect("valid").flows.unwrap();
        assert_eq!(f.limits.memory, Size::from_bytes(1 << 30));
        assert_eq!(
            (
                f.limits.templates_per_exporter,
                f.limits.templates_per_domain,
                f.limits.template_fields
            ),
            (100, 10, 300)
        );
    }

    #[test]
    fn bad_limits_are_named_at_their_place() {
        let l =
            load("memory_limit = \"10mb\"\ntemplates_per_exporter = 0\ntemplate_fields = 20000\n");
        assert!(l.policy.is_none());
        let text = rendered(&l);
        assert!(text.contains("p.toml:16:16"), "{text}");
        assert!(
            text.contains("`memory_limit` = 10mb leaves the flow collector no room for templates"),
            "{text}"
        );
        assert!(text.contains("p.toml:17:26"), "{text}");
        assert!(
            text.contains("`templates_per_exporter` = 0 is out of range"),
            "{text}"
        );
        assert!(text.contains("p.toml:18:19"), "{text}");
        assert!(
            text.contains("`template_fields` = 20000 is out of range"),
            "{text}"
        );
    }

    #[test]
    fn a_domain_cannot_hold_more_than_its_exporter() {
        let l = load("templates_per_exporter = 10\ntemplates_per_domain = 20\n");
        let text = rendered(&l);
        assert!(text.contains("p.toml:17:24"), "{text}");
        assert!(
            text.contains("`templates_per_domain` = 20 is more than `templates_per_exporter` = 10"),
            "{text}"
        );
    }

    #[test]
    fn memory_too_small_for_the_sockets_asked_for_is_refused() {
        let l = load("memory_limit = \"100mb\"\nworkers = 16\n");
        let text = rendered(&l);
        assert!(
            text.contains("`memory_limit` = 100mb is too small for 32 sockets (2 listen addresses × 16 workers)"),
            "{text}"
        );
        assert!(text.contains("p.toml:16:16"), "{text}");
    }
}
