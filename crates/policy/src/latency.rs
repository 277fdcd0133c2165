//! The `[latency]` section: queueing delay sampled from HTB, active
//! probes per realm, and the alarms on both (docs/latency.md).
//!
//! ```toml
//! [latency]
//! sample = "1s"                       # how often HTB's queues are read
//! interfaces = ["bond0"]              # alarm when up with no packet at all
//! notify = "/usr/local/bin/latency-alarm"   # run on raise and clear
//! webhook = "https://hooks.example.net/latency"  # POSTed each raise and clear
//! tcp_rtt = true                      # passive TCP RTT per tenant (eBPF classifier)
//!
//! [latency.alarms]
//! queue_delay = "1s"                  # a class holding more than this…
//! queue_for = "0s"                    # …for this long
//! rtt = "150ms"                       # a probe's RTT above this
//! rtt_factor = 2                      # or above its baseline × this (0: off)
//! rtt_floor = "5ms"                   # and at least this above the baseline
//! rtt_for = "0s"
//! loss = 10                           # percent of a minute's probes
//! idle_for = "10s"
//! tenant_rtt = "150ms"                # a tenant's TCP RTT p95 over a minute above this…
//! tenant_rtt_for = "3m"               # …for this long (minutes end at whole minutes)
//!
//! [[latency.probes]]
//! realm = "national"
//! target = "192.0.2.1"
//! kind = "icmp"                       # or "tcp", with port
//! interval = "1s"
//! timeout = "2s"
//! ```

use crate::model::Spanned;
use crate::reader::{Cx, Node};
use crate::source::Span;
use net_types::IfName;
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

/// The `[latency]` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// How often the queues (and the watched interfaces) are read.
    pub sample: Duration,
    /// Interfaces watched for "up and no packet at all".
    pub interfaces: Vec<IfName>,
    /// A script run on every raise and clear.
    pub notify: Option<String>,
    /// A URL each raise and clear is POSTed to (the change as JSON).
    pub webhook: Option<String>,
    /// The thresholds.
    pub alarms: LatencyAlarms,
    /// The active probes.
    pub probes: Vec<Probe>,
    /// Passive TCP RTT per tenant × realm, from TCP timestamps matched in
    /// the eBPF classifier (`tcp_rtt = true`; off by default).
    pub tcp_rtt: bool,
    /// Where `tcp_rtt` was written, if it was.
    pub tcp_rtt_span: Option<Span>,
    /// Where `[latency]` was declared.
    pub span: Span,
}

/// `[latency.alarms]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyAlarms {
    /// A class's delay above this raises a queue alarm…
    pub queue_delay: Duration,
    /// …once it has lasted this long.
    pub queue_for: Duration,
    /// A probe's RTT above this raises an RTT alarm.
    pub rtt: Option<Duration>,
    /// A probe's RTT above its baseline × this (none: off).
    pub rtt_factor: Option<u32>,
    /// …and at least this much above the baseline.
    pub rtt_floor: Duration,
    /// An RTT condition must last this long.
    pub rtt_for: Duration,
    /// Loss over a minute above this percentage (none: off).
    pub loss: Option<u8>,
    /// An interface up and passing nothing for this long.
    pub idle_for: Duration,
    /// A tenant × realm's passive TCP RTT p95 over a minute above this
    /// raises an alarm (none: off; needs `tcp_rtt`)…
    pub tenant_rtt: Option<Duration>,
    /// …once it has held this long (checked at each minute's end).
    pub tenant_rtt_for: Duration,
}

impl Default for LatencyAlarms {
    fn default() -> LatencyAlarms {
        LatencyAlarms {
            queue_delay: Duration::from_secs(1),
            queue_for: Duration::ZERO,
            rtt: None,
            rtt_factor: Some(2),
            rtt_floor: Duration::from_millis(5),
            rtt_for: Duration::ZERO,
            loss: Some(10),
            idle_for: Duration::from_secs(10),
            tenant_rtt: None,
            tenant_rtt_for: Duration::ZERO,
        }
    }
}

/// How a probe asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ProbeKind {
    /// ICMP echo (ICMPv6 for an IPv6 target).
    Icmp,
    /// A TCP connect to `port`: the handshake's time (a refusal is an
    /// answer too).
    Tcp {
        /// The port.
        port: u16,
    },
}

/// One `[[latency.probes]]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Probe {
    /// The realm whose path it measures.
    pub realm: Spanned<String>,
    /// What it asks.
    pub target: IpAddr,
    /// How.
    pub kind: ProbeKind,
    /// One probe every…
    pub interval: Duration,
    /// A probe unanswered after this is lost.
    pub timeout: Duration,
    /// Where it was declared.
    pub span: Span,
}

impl Probe {
    /// Its name in logs, alarms and metrics: `national icmp 192.0.2.1`.
    pub fn name(&self) -> String {
        match self.kind {
            ProbeKind::Icmp => format!("{} icmp {}", self.realm.value, self.target),
            ProbeKind::Tcp { port } => {
                let t = match self.target {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                };
                format!("{} tcp {t}:{port}", self.realm.value)
            }
        }
    }
}

const MIN_SAMPLE: Duration = Duration::from_millis(100);

fn duration_or(
    cx: &mut Cx,
    n: Option<Node<'_>>,
    min: Duration,
    default: Duration,
) -> Option<Duration> {
    match n {
        Some(n) => crate::guard::duration(cx, n, min).map(|d| d.value),
        None => Some(default),
    }
}

/// Reads the `[latency]` table; pushes every probe's realm to `realms`
/// (checked against the declared realms even when the section fails).
pub(crate) fn section(
    cx: &mut Cx,
    node: Node<'_>,
    realms: &mut Vec<Spanned<String>>,
) -> Option<Latency> {
    let mut f = cx.table(node, "latency")?;
    let span = f.span;
    let sample = duration_or(cx, f.get(cx, "sample"), MIN_SAMPLE, Duration::from_secs(1));
    let mut ok = true;
    let mut interfaces = Vec::new();
    if let Some(n) = f.get(cx, "interfaces") {
        let before = cx.diags.len();
        cx.array(n, |cx, v, vspan| {
            let node = Node {
                item: &toml_edit::Item::Value(v.clone()),
                span: vspan,
                key: "interfaces",
            };
            if let Some(i) = cx.ifname(node) {
                interfaces.push(i);
            }
        });
        ok &= cx.diags.len() == before;
    }
    let notify = match f.get(cx, "notify") {
        Some(n) => match cx.string(n) {
            Some(s) if s.is_empty() => {
                cx.error(n.span, "`notify` is empty", "name a script, e.g. notify = \"/usr/local/bin/latency-alarm\", or leave the key out");
                None
            }
            Some(s) => Some(Some(s)),
            None => None,
        },
        None => Some(None),
    };
    let webhook = match f.get(cx, "webhook") {
        Some(n) => cx.webhook(n, "https://hooks.example.net/latency").map(Some),
        None => Some(None),
    };
    let (tcp_rtt, tcp_rtt_span) = match f.get(cx, "tcp_rtt") {
        Some(n) => (cx.boolean(n), Some(n.span)),
        None => (Some(false), None),
    };
    let alarms = match f.get(cx, "alarms") {
        Some(n) => alarms(cx, n),
        None => Some(LatencyAlarms::default()),
    };
    let mut probes = Vec::new();
    if let Some(n) = f.get(cx, "probes") {
        crate::parse::each_table(cx, n, "latency.probes", |cx, pf| {
            match probe(cx, pf, realms) {
                Some(p) => probes.push(p),
                None => ok = false,
            }
        });
    }
    // The same probe twice would only measure the path twice as often.
    for (i, p) in probes.iter().enumerate() {
        if probes[..i]
            .iter()
            .any(|q| q.target == p.target && q.kind == p.kind)
        {
            cx.error(
                p.span,
                format!("probe `{}` is declared twice", p.name()),
                "remove one (a shorter `interval` probes more often)",
            );
            ok = false;
        }
    }
    f.finish(cx);
    if !ok {
        return None;
    }
    Some(Latency {
        sample: sample?,
        interfaces,
        notify: notify?,
        webhook: webhook?,
        alarms: alarms?,
        probes,
        tcp_rtt: tcp_rtt?,
        tcp_rtt_span,
        span,
    })
}

fn alarms(cx: &mut Cx, node: Node<'_>) -> Option<LatencyAlarms> {
    let mut f = cx.table(node, "latency.alarms")?;
    let d = LatencyAlarms::default();
    let queue_delay = duration_or(
        cx,
        f.get(cx, "queue_delay"),
        Duration::from_millis(1),
        d.queue_delay,
    );
    let queue_for = duration_or(cx, f.get(cx, "queue_for"), Duration::ZERO, d.queue_for);
    let rtt = match f.get(cx, "rtt") {
        Some(n) => crate::guard::duration(cx, n, Duration::from_micros(1)).map(|d| Some(d.value)),
        None => Some(None),
    };
    let rtt_factor = match f.get(cx, "rtt_factor") {
        Some(n) => match cx.integer(n, 0, 1000) {
            Some(0) => Some(None),
            Some(1) => {
                cx.error(
                    n.span,
                    "`rtt_factor` = 1 would raise an alarm at any RTT above the baseline",
                    "use 2 (a doubling) or more, or 0 to turn the baseline check off",
                );
                None
            }
            Some(k) => Some(Some(k as u32)),
            None => None,
        },
        None => Some(d.rtt_factor),
    };
    let rtt_floor = duration_or(cx, f.get(cx, "rtt_floor"), Duration::ZERO, d.rtt_floor);
    let rtt_for = duration_or(cx, f.get(cx, "rtt_for"), Duration::ZERO, d.rtt_for);
    let loss = match f.get(cx, "loss") {
        Some(n) => match cx.integer(n, 0, 100) {
            Some(0) => Some(None),
            Some(p) => Some(Some(p as u8)),
            None => None,
        },
        None => Some(d.loss),
    };
    let idle_for = duration_or(
        cx,
        f.get(cx, "idle_for"),
        Duration::from_secs(1),
        d.idle_for,
    );
    let tenant_rtt = match f.get(cx, "tenant_rtt") {
        Some(n) => crate::guard::duration(cx, n, Duration::from_micros(1)).map(|d| Some(d.value)),
        None => Some(None),
    };
    let tenant_rtt_for = duration_or(
        cx,
        f.get(cx, "tenant_rtt_for"),
        Duration::ZERO,
        d.tenant_rtt_for,
    );
    f.finish(cx);
    Some(LatencyAlarms {
        queue_delay: queue_delay?,
        queue_for: queue_for?,
        rtt: rtt?,
        rtt_factor: rtt_factor?,
        rtt_floor: rtt_floor?,
        rtt_for: rtt_for?,
        loss: loss?,
        idle_for: idle_for?,
        tenant_rtt: tenant_rtt?,
        tenant_rtt_for: tenant_rtt_for?,
    })
}

fn probe(
    cx: &mut Cx,
    mut f: crate::reader::Fields<'_>,
    realms: &mut Vec<Spanned<String>>,
) -> Option<Probe> {
    let span = f.span;
    let realm = f
        .require(cx, "realm", "\"national\"")
        .and_then(|n| cx.string(n).map(|s| Spanned::new(s, n.span)));
    realms.extend(realm.clone());
    let target = f.require(cx, "target", "\"192.0.2.1\"").and_then(|n| {
        let s = cx.string(n)?;
        match s.parse::<IpAddr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() => Some(a),
            Ok(_) => {
                cx.error(n.span, format!("`{s}` cannot answer a probe"), "name one host's address (not 0.0.0.0, ::, or a multicast group)");
                None
            }
            Err(_) => {
                cx.error(n.span, format!("`{s}` is not an IP address"), "write an IPv4 or IPv6 address, e.g. \"192.0.2.1\" or \"2001:db8::1\" (names are not resolved)");
                None
            }
        }
    });
    let port = f.get(cx, "port").map(|n| (cx.integer(n, 1, 65535), n.span));
    let kind = match f.get(cx, "kind") {
        None => Some(ProbeKind::Icmp),
        Some(n) => match cx.string(n).as_deref() {
            Some("icmp") => Some(ProbeKind::Icmp),
            Some("tcp") => Some(ProbeKind::Tcp { port: 0 }),
            Some(other) => {
                cx.error(
                    n.span,
                    format!("unknown probe kind `{other}`"),
                    "use \"icmp\" (echo) or \"tcp\" (a connect, with `port`)",
                );
                None
            }
            None => None,
        },
    };
    let kind = match (kind, port) {
        (Some(ProbeKind::Icmp), Some((_, pspan))) => {
            cx.error(
                pspan,
                "an icmp probe has no `port`",
                "remove `port`, or set kind = \"tcp\"",
            );
            None
        }
        (Some(ProbeKind::Icmp), None) => Some(ProbeKind::Icmp),
        (Some(ProbeKind::Tcp { .. }), Some((Some(p), _))) => {
            Some(ProbeKind::Tcp { port: p as u16 })
        }
        (Some(ProbeKind::Tcp { .. }), None) => {
            cx.error(span, "a tcp probe needs `port`", "add port = 443 (a port the target answers on, or refuses: a refusal is an answer too)");
            None
        }
        _ => None,
    };
    let interval = duration_or(
        cx,
        f.get(cx, "interval"),
        MIN_SAMPLE,
        Duration::from_secs(1),
    );
    let timeout = duration_or(
        cx,
        f.get(cx, "timeout"),
        Duration::from_millis(10),
        Duration::from_secs(2),
    );
    f.finish(cx);
    Some(Probe {
        realm: realm?,
        target: target?,
        kind: kind?,
        interval: interval?,
        timeout: timeout?,
        span,
    })
}

/// Checks `[latency]` against the rest of the policy: passive TCP RTT
/// runs in the eBPF classifier, and its alarm needs it.
pub(crate) fn check(p: &crate::model::Policy, diags: &mut Vec<crate::diagnostic::Diagnostic>) {
    use crate::diagnostic::Diagnostic;
    let Some(l) = &p.latency else {
        return;
    };
    if l.tcp_rtt && p.site.classifier != Some(crate::model::ClassifierKind::Ebpf) {
        diags.push(
            Diagnostic::error(
                l.tcp_rtt_span.or(Some(l.span)),
                "tcp_rtt = true needs the eBPF classifier, and [site] does not choose it",
            )
            .with_hint("set classifier = \"ebpf\" in [site] (the programs match TCP timestamps), or remove tcp_rtt"),
        );
    }
    if l.alarms.tenant_rtt.is_some() && !l.tcp_rtt {
        diags.push(
            Diagnostic::error(
                Some(l.span),
                "[latency.alarms] tenant_rtt needs passive TCP RTT, and tcp_rtt is off",
            )
            .with_hint("add tcp_rtt = true to [latency] (with classifier = \"ebpf\" in [site]), or remove tenant_rtt"),
        );
    }
}
