//! The `[guard]` section: DDoS detection thresholds, host groups and the
//! mitigation ladder (docs/guard.md).
//!
//! Parsing reads each value on its own with its place; [`check`] builds
//! the detector's configuration ([`Guard::config`]) and maps every
//! mistake `guard::Config::check` finds back to the line it came from, so
//! the rules live in one place (the `guard` crate) and the diagnostics
//! still say file:line:col.

use std::time::Duration;

use ::guard::{
    Action, Community, ConfigError, Direction, GroupConfig, Limit, Metric, RungConfig, Thresholds,
    METRICS,
};
use net_types::Prefix;
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::model::{Policy, Spanned};
use crate::reader::{closest, Cx, Fields, Node};
use crate::source::Span;

/// The `[guard]` section.
#[derive(Clone, Debug, Serialize)]
pub struct Guard {
    /// The protected networks; `None` is every tenant's prefixes.
    pub networks: Option<Vec<(Prefix, Span)>>,
    /// The EWMA time constant (5 s unless set).
    pub ewma: Spanned<Duration>,
    /// The instantaneous trigger; `None` (`"off"`, the default) is off.
    pub instant: Option<Duration>,
    /// Calm means every rate at or under threshold × this (0.8 unless set).
    pub hysteresis: f64,
    /// How long traffic must stay calm before a rung ends (30 s unless set).
    pub calm: Duration,
    /// No IPv4 prefix shorter than this is announced (24 unless set).
    pub min_prefix_v4: u8,
    /// No IPv6 prefix shorter than this is announced (48 unless set).
    pub min_prefix_v6: u8,
    /// The most addresses tracked at once (1,000,000 unless set).
    pub max_hosts: usize,
    /// An address without traffic this long is forgotten (60 s unless set).
    pub idle: Duration,
    /// Whether each tenant's prefixes form a group (true unless set).
    pub tenant_groups: bool,
    /// A remote source that reaches this many of our addresses in one
    /// 10 s window is reported as a scan (64 unless set; 0: off).
    pub scan_targets: u64,
    /// What happens to traffic towards addresses of `networks` that no
    /// tenant holds (`off` unless set).
    pub unused: Spanned<Unused>,
    /// The global profile.
    pub thresholds: Thresholds,
    /// The global ladder.
    pub ladder: Vec<GuardRung>,
    /// The host groups, in file order.
    pub groups: Vec<GuardGroup>,
    /// Packet capture on this box's interfaces, if asked for.
    pub capture: Option<GuardCapture>,
    /// Whether the detector takes the flow collector's decoded records
    /// (false unless set): needs `[flows]`. Beside `[guard.capture]` both
    /// feed the detector, merged per address (the larger input wins, so
    /// traffic both see is counted once).
    pub flows: Spanned<bool>,
    /// Where `[guard]` was declared.
    pub span: Span,
    /// Where `networks` was written (the section if absent).
    pub networks_span: Span,
    /// Whether a group failed to parse (so an unknown parent may be that
    /// group, already reported).
    #[serde(skip)]
    pub(crate) incomplete: bool,
}

/// `[guard] unused`: traffic towards an address of the networks that no
/// tenant holds (the seed's "unused addresses").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unused {
    /// Forwarded like any other (the default).
    Off,
    /// Dropped by a rule in tollgate's nftables table on the download
    /// hooks, before it reaches the LAN (with the eBPF classifier: by the
    /// XDP drop list, before the stack).
    Drop,
    /// Null-routed: a kernel blackhole route per prefix of the networks
    /// minus the tenants' prefixes (either classifier).
    Blackhole,
}

/// Where `[guard.capture]` counts packets (`source = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureSource {
    /// AF_PACKET sockets on the named interfaces (the default).
    AfPacket,
    /// The eBPF classifier's per-address counters (`tg_addrs`), on the
    /// classifier's own hooks: needs `[site] classifier = "ebpf"`.
    Ebpf,
}

/// `[guard.capture]`: where the detector's packets come from on this box.
#[derive(Clone, Debug, Serialize)]
pub struct GuardCapture {
    /// Where the packets are counted.
    pub source: Spanned<CaptureSource>,
    /// The interfaces to capture on (AF_PACKET, TPACKET_V3, fanout);
    /// empty with `source = "ebpf"`.
    pub interfaces: Vec<net_types::IfName>,
    /// Sockets (reader threads) per interface, in one fanout group (1
    /// unless set).
    pub threads: u16,
    /// Parse one packet in N and count it N times (1 unless set).
    pub sample_one_in: u32,
    /// How often the counts are read (100 ms unless set).
    pub tick: Duration,
    /// Where `[guard.capture]` was declared.
    pub span: Span,
}

/// A `[[guard.group]]`.
#[derive(Clone, Debug, Serialize)]
pub struct GuardGroup {
    /// Its name.
    pub name: Spanned<String>,
    /// Its prefixes.
    pub prefixes: Vec<(Prefix, Span)>,
    /// The group (or `global`) it inherits from.
    pub inherit: Spanned<String>,
    /// Per-host thresholds; unset ones inherit.
    pub thresholds: Thresholds,
    /// Thresholds on the group's total.
    pub totals: Thresholds,
    /// Its own ladder, if it has one.
    pub ladder: Option<Vec<GuardRung>>,
    /// Where it was declared.
    pub span: Span,
}

/// A `[[guard.ladder]]` rung.
#[derive(Clone, Debug, Serialize)]
pub struct GuardRung {
    /// The rung as the detector takes it.
    pub rung: RungConfig,
    /// Where it was declared.
    pub span: Span,
    /// Where `after` was written (the rung if absent).
    pub after_span: Span,
}

impl Guard {
    /// The detector's configuration: the section, with `networks`
    /// defaulting to every tenant's prefixes and, unless `tenant_groups`
    /// is false, one group per tenant with prefixes (named
    /// `tenant-<id>`, inheriting from `global`). A tenant prefix that an
    /// explicit group lists too, or that lies outside explicit `networks`,
    /// is left out of the tenant's group.
    pub fn config(&self, policy: &Policy) -> ::guard::Config {
        let tenant_prefixes = || {
            policy
                .tenants
                .iter()
                .flat_map(|t| t.prefixes.iter().map(|(p, _)| *p))
        };
        let networks: Vec<Prefix> = match &self.networks {
            Some(n) => n.iter().map(|(p, _)| *p).collect(),
            None => tenant_prefixes().collect(),
        };
        let mut c = ::guard::Config::new(networks.clone());
        c.ewma = self.ewma.value;
        c.instant = self.instant;
        c.hysteresis = self.hysteresis;
        c.calm = self.calm;
        c.min_prefix_v4 = self.min_prefix_v4;
        c.min_prefix_v6 = self.min_prefix_v6;
        c.max_hosts = self.max_hosts;
        c.idle = self.idle;
        c.global = self.thresholds;
        c.ladder = self.ladder.iter().map(|r| r.rung.clone()).collect();
        c.groups = self
            .groups
            .iter()
            .map(|g| GroupConfig {
                name: g.name.value.clone(),
                prefixes: g.prefixes.iter().map(|(p, _)| *p).collect(),
                parent: Some(g.inherit.value.clone()),
                thresholds: g.thresholds,
                totals: g.totals,
                ladder: g
                    .ladder
                    .as_ref()
                    .map(|l| l.iter().map(|r| r.rung.clone()).collect()),
            })
            .collect();
        if self.tenant_groups {
            let explicit: std::collections::HashSet<Prefix> = c
                .groups
                .iter()
                .flat_map(|g| g.prefixes.iter().copied())
                .collect();
            let names: std::collections::HashSet<String> =
                c.groups.iter().map(|g| g.name.clone()).collect();
            let covered = ::guard::PrefixSet::new(networks.iter().copied());
            for t in &policy.tenants {
                let prefixes: Vec<Prefix> = t
                    .prefixes
                    .iter()
                    .map(|(p, _)| *p)
                    .filter(|p| !explicit.contains(p))
                    .filter(|p| covered.covers(*p))
                    .collect();
                let name = format!("tenant-{}", t.id);
                if prefixes.is_empty() || names.contains(&name) {
                    continue;
                }
                c.groups.push(GroupConfig::new(&name, prefixes, None));
            }
        }
        c
    }
}

const DEFAULT_EWMA: Duration = Duration::from_secs(5);
const DEFAULT_CALM: Duration = Duration::from_secs(30);
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
const DEFAULT_MAX_HOSTS: i64 = 1_000_000;

/// Reads the `[guard]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<Guard> {
    let mut f = cx.table(node, "guard")?;
    let section = f.span;
    let (networks, networks_span) = match f.get(cx, "networks") {
        Some(n) => (Some(cx.prefixes(n)), n.span),
        None => (None, section),
    };
    let ewma = match f.get(cx, "ewma") {
        Some(n) => duration(cx, n, Duration::from_millis(100)),
        None => Some(Spanned::new(DEFAULT_EWMA, section)),
    };
    let instant = match f.get(cx, "instant") {
        Some(n) if n.item.as_str() == Some("off") => Some(None),
        Some(n) => match n.item.as_str().map(net_types::parse_duration) {
            Some(Ok(d)) => Some(Some(d)),
            Some(Err(e)) => {
                cx.error(
                    n.span,
                    format!(
                        "`{}` is not a duration or \"off\"",
                        n.item.as_str().unwrap_or("")
                    ),
                    format!(
                        "{}; \"off\" (the default) leaves only the smoothed check",
                        e.hint()
                    ),
                );
                None
            }
            None => crate::billing::duration(cx, n, Duration::ZERO).map(|d| Some(d.value)),
        },
        None => Some(None),
    };
    let hysteresis = match f.get(cx, "hysteresis") {
        Some(n) => fraction(cx, n),
        None => Some(0.8),
    };
    let calm = match f.get(cx, "calm") {
        Some(n) => crate::billing::duration(cx, n, Duration::ZERO).map(|d| d.value),
        None => Some(DEFAULT_CALM),
    };
    let min_v4 = match f.get(cx, "min_prefix_v4") {
        Some(n) => cx.integer(n, 8, 32).map(|v| v as u8),
        None => Some(24),
    };
    let min_v6 = match f.get(cx, "min_prefix_v6") {
        Some(n) => cx.integer(n, 16, 128).map(|v| v as u8),
        None => Some(48),
    };
    let max_hosts = match f.get(cx, "max_hosts") {
        Some(n) => cx.integer(n, 1, 100_000_000),
        None => Some(DEFAULT_MAX_HOSTS),
    };
    let idle = match f.get(cx, "idle") {
        Some(n) => duration(cx, n, Duration::from_secs(1)).map(|d| d.value),
        None => Some(DEFAULT_IDLE),
    };
    let scan_targets = match f.get(cx, "scan_targets") {
        Some(n) => cx.integer(n, 0, 1_000_000_000).map(|v| v as u64),
        None => Some(64),
    };
    let unused = match f.get(cx, "unused") {
        Some(n) => cx.string(n).and_then(|s| match s.as_str() {
            "off" => Some(Spanned::new(Unused::Off, n.span)),
            "drop" => Some(Spanned::new(Unused::Drop, n.span)),
            "blackhole" => Some(Spanned::new(Unused::Blackhole, n.span)),
            _ => {
                cx.error(
                    n.span,
                    format!("unknown `unused` setting `{s}`"),
                    "use \"drop\" (traffic to addresses no tenant holds is dropped), \"blackhole\" (null-routed) or \"off\" (the default)",
                );
                None
            }
        }),
        None => Some(Spanned::new(Unused::Off, section)),
    };
    let tenant_groups = match f.get(cx, "tenant_groups") {
        Some(n) => cx.boolean(n),
        None => Some(true),
    };
    let thresholds = match f.get(cx, "thresholds") {
        Some(n) => cx
            .table(n, "guard.thresholds")
            .and_then(|t| table_thresholds(cx, t)),
        None => {
            cx.error(
                section,
                "[guard] has no [guard.thresholds]",
                "add the global profile, e.g. [guard.thresholds] with pps_in = 20000 and bps_in = \"1gbit\": without thresholds nothing is ever detected",
            );
            None
        }
    };
    let ladder = match f.get(cx, "ladder") {
        Some(n) => ladder(cx, n, "guard.ladder"),
        None => {
            cx.error(
                section,
                "[guard] has no [[guard.ladder]]",
                "add at least one rung, e.g. [[guard.ladder]] with rung = \"notify\" and hold = \"5m\": without one an attack is detected but nothing is done",
            );
            None
        }
    };
    let capture = match f.get(cx, "capture") {
        Some(n) => capture(cx, n).map(Some),
        None => Some(None),
    };
    let flows = match f.get(cx, "flows") {
        Some(n) => cx.boolean(n).map(|b| Spanned::new(b, n.span)),
        None => Some(Spanned::new(false, section)),
    };
    let mut groups = Vec::new();
    let mut groups_ok = true;
    if let Some(n) = f.get(cx, "group") {
        crate::parse::each_table(cx, n, "guard.group", |cx, gf| match group(cx, gf) {
            Some(g) => groups.push(g),
            None => groups_ok = false,
        });
    }
    f.finish(cx);
    Some(Guard {
        networks,
        ewma: ewma?,
        instant: instant?,
        hysteresis: hysteresis?,
        calm: calm?,
        min_prefix_v4: min_v4?,
        min_prefix_v6: min_v6?,
        max_hosts: max_hosts? as usize,
        idle: idle?,
        tenant_groups: tenant_groups?,
        scan_targets: scan_targets?,
        unused: unused?,
        thresholds: thresholds?,
        ladder: ladder?,
        groups,
        capture: capture?,
        flows: flows?,
        span: section,
        networks_span,
        incomplete: !groups_ok,
    })
}

fn capture(cx: &mut Cx, n: Node<'_>) -> Option<GuardCapture> {
    let mut f = cx.table(n, "guard.capture")?;
    let source = match f.get(cx, "source") {
        Some(n) => cx.string(n).and_then(|s| match s.as_str() {
            "af_packet" => Some(Spanned::new(CaptureSource::AfPacket, n.span)),
            "ebpf" => Some(Spanned::new(CaptureSource::Ebpf, n.span)),
            _ => {
                cx.error(
                    n.span,
                    format!("unknown capture source `{s}`"),
                    "use \"af_packet\" (sockets on `interfaces`) or \"ebpf\" (the eBPF classifier's per-address counters)",
                );
                None
            }
        }),
        None => Some(Spanned::new(CaptureSource::AfPacket, f.span)),
    };
    if let Some(s) = source.filter(|s| s.value == CaptureSource::Ebpf) {
        // The counters run on the classifier's hooks: the interfaces,
        // threads and sampling of AF_PACKET have no meaning there.
        for key in ["interfaces", "threads", "sample_one_in"] {
            if let Some(n) = f.get(cx, key) {
                cx.error(
                    n.span,
                    format!("`{key}` is for source = \"af_packet\""),
                    "source = \"ebpf\" counts on the eBPF classifier's own hooks (uplink and LAN or VM interfaces): remove it",
                );
            }
        }
        let tick = match f.get(cx, "tick") {
            Some(n) => duration(cx, n, Duration::from_millis(10)).map(|d| d.value),
            None => Some(Duration::from_millis(100)),
        };
        let span = f.span;
        f.finish(cx);
        return Some(GuardCapture {
            source: s,
            interfaces: Vec::new(),
            threads: 1,
            sample_one_in: 1,
            tick: tick?,
            span,
        });
    }
    let interfaces = f.require(cx, "interfaces", "[\"eth0\"]").and_then(|n| {
        let mut ok = true;
        let mut v = Vec::new();
        let key = n.key;
        cx.array(n, |cx, item, span| {
            let node = Node {
                item: &toml_edit::Item::Value(item.clone()),
                span,
                key,
            };
            match cx.ifname(node) {
                Some(i) => v.push(i),
                None => ok = false,
            }
        });
        if ok && v.is_empty() {
            cx.error(
                n.span,
                "`interfaces` is empty",
                "name the interfaces whose packets the guard counts, e.g. [\"eth0\"]",
            );
            ok = false;
        }
        ok.then_some(v)
    });
    let threads = match f.get(cx, "threads") {
        Some(n) => cx.integer(n, 1, 64).map(|v| v as u16),
        None => Some(1),
    };
    let sample_one_in = match f.get(cx, "sample_one_in") {
        Some(n) => cx.integer(n, 1, 1_000_000).map(|v| v as u32),
        None => Some(1),
    };
    let tick = match f.get(cx, "tick") {
        Some(n) => duration(cx, n, Duration::from_millis(10)).map(|d| d.value),
        None => Some(Duration::from_millis(100)),
    };
    let span = f.span;
    f.finish(cx);
    Some(GuardCapture {
        source: source?,
        interfaces: interfaces?,
        threads: threads?,
        sample_one_in: sample_one_in?,
        tick: tick?,
        span,
    })
}

/// A duration of at least `min` (which may be under a second, unlike the
/// billing keys').
pub(crate) fn duration(cx: &mut Cx, n: Node<'_>, min: Duration) -> Option<Spanned<Duration>> {
    let d = crate::billing::duration(cx, n, Duration::ZERO)?;
    if d.value >= min {
        return Some(d);
    }
    let least = if min.subsec_millis() != 0 || min.as_secs() == 0 {
        format!("{}ms", min.as_millis())
    } else {
        format!("{}s", min.as_secs())
    };
    cx.error(
        n.span,
        format!(
            "`{}` = \"{}\" is too short",
            n.key,
            n.item.as_str().unwrap_or("")
        ),
        format!("use at least {least}"),
    );
    None
}

/// A fraction in (0, 1]: `0.8`, or `1`.
fn fraction(cx: &mut Cx, n: Node<'_>) -> Option<f64> {
    let v = match (n.item.as_float(), n.item.as_integer()) {
        (Some(v), _) => v,
        (None, Some(v)) => v as f64,
        _ => {
            cx.error(
                n.span,
                format!(
                    "`{}` must be a number, found {}",
                    n.key,
                    crate::reader::type_name(n.item)
                ),
                "write a fraction without quotes, e.g. 0.8",
            );
            return None;
        }
    };
    if v > 0.0 && v <= 1.0 {
        Some(v)
    } else {
        cx.error(
            n.span,
            format!("`{}` = {v} is not between 0 and 1", n.key),
            "write the share of the threshold traffic must fall under before a ban ends, e.g. 0.8",
        );
        None
    }
}

/// Every threshold key: `pps_in`, `pps_out`, `bps_in`, … in a fixed order.
fn threshold_keys() -> Vec<(&'static str, Direction, Metric)> {
    let mut v = Vec::with_capacity(METRICS * 2);
    for m in Metric::ALL {
        for d in Direction::ALL {
            let key: &'static str = match (m, d) {
                (Metric::Pps, Direction::In) => "pps_in",
                (Metric::Pps, Direction::Out) => "pps_out",
                (Metric::Bps, Direction::In) => "bps_in",
                (Metric::Bps, Direction::Out) => "bps_out",
                (Metric::Flows, Direction::In) => "flows_in",
                (Metric::Flows, Direction::Out) => "flows_out",
                (Metric::Syn, Direction::In) => "syn_in",
                (Metric::Syn, Direction::Out) => "syn_out",
                (Metric::TcpPps, Direction::In) => "tcp_pps_in",
                (Metric::TcpPps, Direction::Out) => "tcp_pps_out",
                (Metric::UdpPps, Direction::In) => "udp_pps_in",
                (Metric::UdpPps, Direction::Out) => "udp_pps_out",
                (Metric::IcmpPps, Direction::In) => "icmp_pps_in",
                (Metric::IcmpPps, Direction::Out) => "icmp_pps_out",
                (Metric::Frag, Direction::In) => "frag_in",
                (Metric::Frag, Direction::Out) => "frag_out",
                (Metric::TcpBps, Direction::In) => "tcp_bps_in",
                (Metric::TcpBps, Direction::Out) => "tcp_bps_out",
                (Metric::UdpBps, Direction::In) => "udp_bps_in",
                (Metric::UdpBps, Direction::Out) => "udp_bps_out",
                (Metric::IcmpBps, Direction::In) => "icmp_bps_in",
                (Metric::IcmpBps, Direction::Out) => "icmp_bps_out",
            };
            v.push((key, d, m));
        }
    }
    v
}

/// Reads the threshold keys of `f` (other keys are left for the caller).
fn thresholds(cx: &mut Cx, f: &mut Fields<'_>) -> Option<Thresholds> {
    let mut t = Thresholds::new();
    let mut ok = true;
    for (key, d, m) in threshold_keys() {
        if let Some(n) = f.get(cx, key) {
            match limit(cx, n, m) {
                Some(l) => t.set(d, m, l),
                None => ok = false,
            }
        }
    }
    ok.then_some(t)
}

/// A table holding only thresholds.
fn table_thresholds(cx: &mut Cx, mut f: Fields<'_>) -> Option<Thresholds> {
    let t = thresholds(cx, &mut f);
    f.finish(cx);
    t
}

/// One threshold: a whole number per second, a rate for the bit
/// metrics, or `"off"`.
fn limit(cx: &mut Cx, n: Node<'_>, m: Metric) -> Option<Limit> {
    if n.item.as_str() == Some("off") {
        return Some(Limit::Off);
    }
    if m.is_bits() {
        if n.item.is_integer() {
            cx.error(
                n.span,
                format!("`{}` is a bit rate and needs a unit", n.key),
                format!(
                    "write it with a unit, e.g. {} = \"1gbit\", or \"off\"",
                    n.key
                ),
            );
            return None;
        }
        return cx.rate(n).map(|r| Limit::At(r.bps()));
    }
    let what = match m {
        Metric::Flows => "new flows",
        _ => "packets",
    };
    match n.item.as_integer() {
        Some(v) if v >= 1 => Some(Limit::At(v as u64)),
        Some(_) => {
            cx.error(
                n.span,
                format!("`{}` = {} would make every packet an attack", n.key, n.item.as_integer().unwrap_or(0)),
                format!("give a whole number of {what} per second of at least 1, or write \"off\" for no check"),
            );
            None
        }
        None => {
            cx.error(
                n.span,
                format!(
                    "`{}` must be a whole number of {what} per second, found {}",
                    n.key,
                    crate::reader::type_name(n.item)
                ),
                format!(
                    "write it without quotes or units, e.g. {} = 20000, or \"off\" for no check",
                    n.key
                ),
            );
            None
        }
    }
}

fn group(cx: &mut Cx, mut f: Fields<'_>) -> Option<GuardGroup> {
    let name = f.require(cx, "name", "\"voip\"").and_then(|n| {
        let s = cx.string(n)?;
        Some(Spanned::new(s, n.span))
    });
    let prefixes = f
        .require(cx, "prefixes", "[\"203.0.113.64/26\"]")
        .map(|n| cx.prefixes(n));
    let inherit = match f.get(cx, "inherit") {
        Some(n) => cx.string(n).map(|s| Spanned::new(s, n.span)),
        None => {
            cx.error(
                f.span,
                "the group does not say what it inherits from",
                "add inherit = \"global\" (or the name of a parent group): every threshold the group leaves unset is taken from there",
            );
            None
        }
    };
    let thresholds = thresholds(cx, &mut f);
    let totals = match f.get(cx, "total") {
        Some(n) => cx
            .table(n, "guard.group.total")
            .and_then(|t| table_thresholds(cx, t)),
        None => Some(Thresholds::new()),
    };
    let ladder = match f.get(cx, "ladder") {
        Some(n) => ladder(cx, n, "guard.group.ladder").map(Some),
        None => Some(None),
    };
    let span = f.span;
    f.finish(cx);
    Some(GuardGroup {
        name: name?,
        prefixes: prefixes?,
        inherit: inherit?,
        thresholds: thresholds?,
        totals: totals?,
        ladder: ladder?,
        span,
    })
}

fn ladder(cx: &mut Cx, n: Node<'_>, what: &str) -> Option<Vec<GuardRung>> {
    let mut rungs = Vec::new();
    let mut ok = true;
    crate::parse::each_table(cx, n, what, |cx, f| match rung(cx, f) {
        Some(r) => rungs.push(r),
        None => ok = false,
    });
    ok.then_some(rungs)
}

fn rung(cx: &mut Cx, mut f: Fields<'_>) -> Option<GuardRung> {
    let kind = f.require(cx, "rung", "\"notify\"").and_then(|n| {
        let s = cx.string(n)?;
        match ::guard::Rung::from_name(&s) {
            Some(r) => Some(r),
            None => {
                let names: Vec<&str> = ::guard::Rung::ALL.iter().map(|r| r.name()).collect();
                let hint = match closest(&s, &names) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("use one of: {}", names.join(", ")),
                };
                cx.error(n.span, format!("unknown rung `{s}`"), hint);
                None
            }
        }
    });
    let (after, after_span) = match f.get(cx, "after") {
        Some(n) => (
            crate::billing::duration(cx, n, Duration::ZERO).map(|d| d.value),
            n.span,
        ),
        None => (Some(Duration::ZERO), f.span),
    };
    let hold = f
        .require(cx, "hold", "\"5m\"")
        .and_then(|n| crate::billing::duration(cx, n, Duration::ZERO).map(|d| d.value));
    let action = kind.and_then(|k| action(cx, &mut f, k));
    let span = f.span;
    f.finish(cx);
    Some(GuardRung {
        rung: RungConfig::new(action?, after?, hold?),
        span,
        after_span,
    })
}

/// The rung's own settings (only its own keys are read, so another
/// rung's key is reported as unknown here).
fn action(cx: &mut Cx, f: &mut Fields<'_>, rung: ::guard::Rung) -> Option<Action> {
    use ::guard::Rung::*;
    match rung {
        Notify => {
            let script = f.get(cx, "script").map(|n| cx.string(n));
            let webhook = match f.get(cx, "webhook") {
                Some(n) => Some(cx.webhook(n, "https://hooks.example.net/guard")?),
                None => None,
            };
            let script = script.flatten();
            if script.is_none() && webhook.is_none() {
                cx.error(
                    f.span,
                    "the notify rung names neither a script nor a webhook",
                    "add script = \"/usr/local/bin/notify_about_attack.sh\" (called as FastNetMon calls it: ip direction pps ban|unban) or webhook = \"https://…\"",
                );
                return None;
            }
            let every = match f.get(cx, "every") {
                None => None,
                Some(n) => Some(duration(cx, n, Duration::from_secs(1))?.value),
            };
            Some(Action::Notify {
                script,
                webhook,
                every,
            })
        }
        Throttle => {
            let rate = f
                .require(cx, "rate", "\"10mbit\"")
                .and_then(|n| cx.rate(n))?;
            Some(Action::Throttle { rate })
        }
        Drop => {
            let signature = match f.get(cx, "match") {
                None => Some(false),
                Some(n) => {
                    let s = cx.string(n)?;
                    match s.as_str() {
                        "victim" => Some(false),
                        "signature" => Some(true),
                        _ => {
                            cx.error(n.span, format!("unknown drop match `{s}`"), "use \"victim\" (all traffic to the address) or \"signature\" (only the attack's protocol and source ports)");
                            None
                        }
                    }
                }
            }?;
            Some(Action::Drop { signature })
        }
        Blackhole => Some(Action::Blackhole),
        Rtbh => {
            let communities = match f.get(cx, "communities") {
                None => Some(vec![Community::BLACKHOLE]),
                Some(n) => {
                    let mut ok = true;
                    let mut v = Vec::new();
                    for (s, span) in cx.strings(n) {
                        match community(&s) {
                            Some(c) => v.push(c),
                            None => {
                                ok = false;
                                cx.error(span, format!("`{s}` is not a BGP community"), "write it as two numbers up to 65535, e.g. \"65535:666\" (or \"blackhole\", RFC 7999)");
                            }
                        }
                    }
                    if ok && v.is_empty() {
                        cx.error(n.span, "`communities` is empty", "leave it out for RFC 7999 BLACKHOLE (65535:666), or name the communities your upstream asks for");
                        ok = false;
                    }
                    ok.then_some(v)
                }
            };
            let next_hop = match f.get(cx, "next_hop") {
                None => Some(None),
                Some(n) => {
                    let s = cx.string(n)?;
                    match s.parse::<std::net::IpAddr>() {
                        Ok(a) => Some(Some(a)),
                        Err(_) => {
                            cx.error(n.span, format!("`{s}` is not an IP address"), "give the next hop's address, e.g. \"192.0.2.1\", or leave it out to use the speaker's own");
                            None
                        }
                    }
                }
            };
            Some(Action::Rtbh {
                communities: communities?,
                next_hop: next_hop?,
            })
        }
        Flowspec => {
            let rate = match f.get(cx, "action") {
                None => None,
                Some(n) => {
                    let s = cx.string(n)?;
                    if s == "discard" {
                        None
                    } else {
                        cx.error(n.span, format!("unknown FlowSpec action `{s}`"), "use \"discard\", or leave `action` out and give `rate = \"10mbit\"` to rate-limit");
                        return None;
                    }
                }
            };
            let rate = match (rate, f.get(cx, "rate")) {
                (_, Some(n)) => Some(cx.rate(n)?),
                (r, None) => r,
            };
            Some(Action::Flowspec { rate })
        }
    }
}

/// A standard community, as the route rules spell them (`65535:666`,
/// `blackhole`, `no-export`…).
fn community(s: &str) -> Option<Community> {
    let v = crate::route_rules::parse_community(s).ok()?;
    Some(Community((v >> 16) as u16, v as u16))
}

/// Checks `[guard]` against the rest of the policy: the detector's own
/// rules (`guard::Config::check`), reported where they were written.
pub(crate) fn check(p: &Policy, diags: &mut Vec<Diagnostic>) {
    let Some(g) = &p.guard else {
        return;
    };
    if g.flows.value && p.flows.is_none() {
        diags.push(
            Diagnostic::error(
                Some(g.flows.span),
                "`flows = true` needs the flow collector, and the policy has no [flows]",
            )
            .with_hint("add [flows] with `listen` and [[flows.exporters]] (docs/flows.md), or remove `flows`"),
        );
    }
    if let Some(c) = &g.capture {
        if c.source.value == CaptureSource::Ebpf
            && p.site.classifier != Some(crate::model::ClassifierKind::Ebpf)
        {
            diags.push(
                Diagnostic::error(
                    Some(c.source.span),
                    "source = \"ebpf\" needs the eBPF classifier, and [site] does not choose it",
                )
                .with_hint("set classifier = \"ebpf\" in [site], or use source = \"af_packet\" with interfaces = [\"eth0\"]"),
            );
        }
    }
    prepared_rungs(p, g, diags);
    unused_addresses(p, g, diags);
    if g.capture.is_none() && !g.flows.value {
        diags.push(
            Diagnostic::warning(Some(g.span), "[guard] has no input: no [guard.capture]")
                .with_hint("add [guard.capture] with interfaces = [\"eth0\"]: without it only bans by hand work"),
        );
    }
    let config = g.config(p);
    if let Some(networks) = &g.networks {
        let set = ::guard::PrefixSet::new(networks.iter().map(|(n, _)| *n));
        for t in &p.tenants {
            for (prefix, span) in &t.prefixes {
                if !set.covers(*prefix) {
                    diags.push(
                        Diagnostic::warning(
                            Some(*span),
                            format!("tenant {}'s prefix {prefix} is outside [guard] `networks`: the guard does not watch it", t.id),
                        )
                        .with_hint("add it to `networks`, or leave `networks` out to protect every tenant's prefixes"),
                    );
                }
            }
        }
    }
    let mut error = |span: Span, message: String, hint: String| {
        diags.push(Diagnostic::error(Some(span), message).with_hint(hint));
    };
    let group = |i: usize| g.groups.get(i);
    let rung_span = |ladder: Option<usize>, rung: usize| -> Span {
        let l = match ladder {
            None => Some(&g.ladder),
            Some(i) => group(i).and_then(|gr| gr.ladder.as_ref()),
        };
        l.and_then(|l| l.get(rung)).map_or(g.span, |r| r.span)
    };
    for e in config.check() {
        match e {
            ConfigError::ZeroEwma
            | ConfigError::Hysteresis
            | ConfigError::MinPrefix { .. }
            | ConfigError::NoHosts => {
                // Refused when read.
            }
            ConfigError::NoNetworks => error(
                g.networks_span,
                "[guard] protects no address".into(),
                if g.networks.is_some() {
                    "list the networks to protect in `networks`".into()
                } else {
                    "no tenant has prefixes: list the networks to protect in `networks = [\"203.0.113.0/24\"]`".into()
                },
            ),
            ConfigError::DefaultRoute { network } => {
                let span = g
                    .networks
                    .as_ref()
                    .and_then(|n| n.get(network))
                    .map_or(g.networks_span, |n| n.1);
                error(
                    span,
                    "a guard network is a default route".into(),
                    "list your own prefixes: the guard must never act on the whole Internet".into(),
                );
            }
            ConfigError::EmptyLadder { group: gi } => {
                let span = gi.and_then(group).map_or(g.span, |gr| gr.span);
                error(span, "the ladder has no rung".into(), "add at least one [[guard.ladder]] (or leave a group's ladder out to inherit its parent's)".into());
            }
            ConfigError::RungTwice { group: gi, rung } => {
                let name = rung_name(&g.ladder, gi.and_then(group), rung);
                error(
                    rung_span(gi, rung),
                    format!("rung `{name}` is on the ladder twice"),
                    "each rung appears once; change its `after` and `hold` in one place".into(),
                );
            }
            ConfigError::FirstRungAfter { group: gi } => {
                let l = match gi {
                    None => Some(&g.ladder),
                    Some(i) => group(i).and_then(|gr| gr.ladder.as_ref()),
                };
                let span = l.and_then(|l| l.first()).map_or(g.span, |r| r.after_span);
                error(span, "the first rung has an `after`".into(), "the first rung starts at detection; remove `after` (raise the thresholds or set `instant` to wait longer)".into());
            }
            ConfigError::DuplicateGroup { group: gi } => {
                if let Some(gr) = group(gi) {
                    error(
                        gr.name.span,
                        format!("group `{}` is declared twice", gr.name.value),
                        "give each group its own name".into(),
                    );
                }
            }
            ConfigError::ReservedName { group: gi } => {
                if let Some(gr) = group(gi) {
                    error(
                        gr.name.span,
                        format!("`{}` cannot name a group", gr.name.value),
                        format!(
                            "`{}` is the global profile's name; choose another",
                            ::guard::GLOBAL
                        ),
                    );
                }
            }
            ConfigError::NoPrefixes { group: gi } => {
                if let Some(gr) = group(gi) {
                    error(
                        gr.span,
                        format!("group `{}` has no prefixes", gr.name.value),
                        "list the addresses it covers in `prefixes`".into(),
                    );
                }
            }
            ConfigError::OutsideNetworks { group: gi, prefix } => {
                if let Some((p, span)) = group(gi).and_then(|gr| gr.prefixes.get(prefix)) {
                    error(*span, format!("{p} is outside the guard's networks"), "add a network that covers it to [guard] `networks` (the default is every tenant's prefixes), or remove it".into());
                }
            }
            ConfigError::PrefixInTwoGroups {
                group: gi,
                prefix,
                other,
            } => {
                if let Some((p, span)) = group(gi).and_then(|gr| gr.prefixes.get(prefix)) {
                    let other = group(other).map_or("another group", |o| o.name.value.as_str());
                    error(*span, format!("{p} is also in group `{other}`"), "longest match cannot choose between equal prefixes: keep it in one group (a longer prefix may sit inside another group's)".into());
                }
            }
            ConfigError::UnknownParent { group: gi } => {
                if let Some(gr) = group(gi).filter(|_| !g.incomplete) {
                    let mut known: Vec<&str> =
                        g.groups.iter().map(|o| o.name.value.as_str()).collect();
                    known.push(::guard::GLOBAL);
                    let (message, hint) =
                        crate::validate::unknown("group", &gr.inherit.value, &known);
                    error(gr.inherit.span, message, hint);
                }
            }
            ConfigError::InheritanceCycle { group: gi } => {
                if let Some(gr) = group(gi) {
                    error(
                        gr.inherit.span,
                        format!(
                            "group `{}` inherits from itself through its parents",
                            gr.name.value
                        ),
                        "make one group of the cycle inherit from \"global\"".into(),
                    );
                }
            }
        }
    }
}

fn rung_name(global: &[GuardRung], group: Option<&GuardGroup>, rung: usize) -> &'static str {
    let l = match group {
        None => Some(global),
        Some(g) => g.ladder.as_deref(),
    };
    l.and_then(|l| l.get(rung))
        .map_or("?", |r| r.rung.rung().name())
}

/// The most distinct `throttle` rates the ladders may use: each is a
/// class in the root tree of both IFBs (`1:fffe` down).
pub const MAX_THROTTLE_RATES: usize = 16;

/// The most prefixes the unused addresses may take as XDP drop list
/// entries (eBPF classifier) or blackhole routes (`[guard] networks`
/// minus every tenant's prefixes, split along the tenants' edges).
pub const MAX_UNUSED_PREFIXES: usize = 4096;

/// The unused addresses as prefixes: `[guard] networks` minus every
/// tenant's prefixes (what the eBPF classifier's XDP drop list holds for
/// `unused = "drop"`). Empty without `[guard]`, `networks` or `unused`.
pub fn unused_prefixes(p: &Policy) -> Result<Vec<Prefix>, net_types::TooManyPrefixes> {
    let Some(g) = &p.guard else {
        return Ok(Vec::new());
    };
    if g.unused.value == Unused::Off {
        return Ok(Vec::new());
    }
    let networks: Vec<Prefix> = g.networks.iter().flatten().map(|(n, _)| *n).collect();
    let held: Vec<Prefix> = p
        .tenants
        .iter()
        .flat_map(|t| t.prefixes.iter().map(|(q, _)| *q))
        .collect();
    net_types::subtract(&networks, &held, MAX_UNUSED_PREFIXES)
}

/// `unused = "drop"` is a rule in tollgate's nftables table over the
/// explicit `networks`, or with the eBPF classifier the XDP drop list's
/// entries for `networks` minus the tenants' prefixes (bounded by
/// [`MAX_UNUSED_PREFIXES`]); refused without `networks` (every address
/// would be a tenant's).
fn unused_addresses(p: &Policy, g: &Guard, diags: &mut Vec<Diagnostic>) {
    let setting = match g.unused.value {
        Unused::Off => return,
        Unused::Drop => "drop",
        Unused::Blackhole => "blackhole",
    };
    if g.networks.is_none() {
        diags.push(
            Diagnostic::error(
                Some(g.unused.span),
                format!("unused = \"{setting}\" needs [guard] networks"),
            )
            .with_hint("without `networks` the guard protects the tenants' own prefixes, so no address is unused: list the networks you announce, e.g. networks = [\"203.0.113.0/24\"]"),
        );
        return;
    }
    let ebpf = p.site.classifier == Some(crate::model::ClassifierKind::Ebpf);
    if g.unused.value == Unused::Drop && !ebpf {
        return;
    }
    let by = if g.unused.value == Unused::Blackhole {
        "as kernel routes"
    } else {
        "with classifier = \"ebpf\""
    };
    // Routes and the XDP list know tenants by their prefixes only: a
    // tenant known by its interface alone would have all its traffic
    // dropped.
    if let Some(t) = p
        .tenants
        .iter()
        .find(|t| t.prefixes.is_empty() && t.interface.is_some())
    {
        diags.push(
            Diagnostic::error(
                Some(g.unused.span),
                format!("unused = \"{setting}\" {by} needs every tenant's prefixes, and tenant {} has only an interface", t.name),
            )
            .with_hint("the addresses of `networks` no tenant's prefix holds are dropped: give the tenant its `prefixes`, or use unused = \"drop\" with classifier = \"nftables\""),
        );
        return;
    }
    if let Err(e) = unused_prefixes(p) {
        diags.push(
            Diagnostic::error(
                Some(g.unused.span),
                format!("the unused addresses of [guard] networks take {e} {by}"),
            )
            .with_hint(format!("at most {MAX_UNUSED_PREFIXES} prefixes (XDP list entries or routes) hold them: list narrower `networks`, or align the tenants' prefixes (an IPv6 /32 minus one /128 is 96 prefixes)")),
        );
    }
}

/// The `throttle` and `drop` rungs are sets and rules in tollgate's
/// nftables table and classes in its root trees, prepared by the
/// compiler; with the eBPF classifier, `drop` is the XDP drop list's
/// entries and `throttle` a BPF map of victims in front of the tenant
/// lookup. Either way, the throttle rates are bounded.
fn prepared_rungs(p: &Policy, g: &Guard, diags: &mut Vec<Diagnostic>) {
    let ladders =
        std::iter::once(&g.ladder).chain(g.groups.iter().filter_map(|gr| gr.ladder.as_ref()));
    let mut rates = Vec::new();
    for r in ladders.flatten() {
        let rung = r.rung.rung();
        if !matches!(rung, ::guard::Rung::Throttle | ::guard::Rung::Drop) {
            continue;
        }
        if let ::guard::Action::Throttle { rate } = r.rung.action {
            if !rates.contains(&rate) {
                rates.push(rate);
                // The eBPF classifier tells rates apart in kbit/s.
                let ebpf = p.site.classifier == Some(crate::model::ClassifierKind::Ebpf);
                if ebpf
                    && rates[..rates.len() - 1]
                        .iter()
                        .any(|o| o.bps() / 1000 == rate.bps() / 1000)
                {
                    diags.push(
                        Diagnostic::error(Some(r.span), "two throttle rates within the same kbit/s")
                            .with_hint("with classifier = \"ebpf\" the rungs' rates are told apart in whole kbit/s: make them differ by at least 1kbit"),
                    );
                }
                if rates.len() > MAX_THROTTLE_RATES {
                    diags.push(
                        Diagnostic::error(Some(r.span), format!("more than {MAX_THROTTLE_RATES} different throttle rates"))
                            .with_hint("each rate is a class prepared in both directions' root trees: use fewer rates"),
                    );
                }
            }
        }
    }
}
