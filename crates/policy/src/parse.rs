//! From TOML text to the policy's items, one section at a time.
//!
//! This stage checks each value on its own (types, units, names). Checks
//! that relate items to each other live in `validate`.

use crate::model::*;
use crate::reader::{Cx, Fields, Node};
use crate::source::Span;
use net_types::{Prefix, Rate, RealmId, TenantId};
use toml_edit::Item;

/// What the parse stage found; references between items are not yet checked.
pub(crate) struct Parsed {
    pub site: Option<Site>,
    pub realms: Vec<Realm>,
    pub default_realm: Option<(String, Span)>,
    pub prefix_files: Vec<(RealmId, String, Span)>,
    pub bands: Option<Bands>,
    pub plans: Vec<ServicePlan>,
    /// Names of plans that were declared, even those that failed to parse,
    /// so that a bad plan does not also make every tenant on it "unknown".
    pub plan_names: Vec<String>,
    pub parents: Vec<Parent>,
    pub parent_names: Vec<String>,
    /// Names of realms that were declared, even those that failed to parse.
    pub realm_names: Vec<String>,
    pub tenants: Vec<Tenant>,
    /// Realm names found inside plans, to be resolved once all realms are known.
    pub plan_realm_refs: Vec<(String, String, Direction, RealmCap, Span)>,
    /// Where each realm id was written.
    pub realm_id_spans: Vec<(RealmId, Span)>,
    /// The flow collector.
    pub flows: Option<Flows>,
    /// How tenants are billed.
    pub billing: Option<Billing>,
    /// The overage automation.
    pub overage: Option<Overage>,
    /// The API.
    pub api: Option<crate::model::Api>,
    /// The history store.
    pub history: Option<crate::model::History>,
    /// DDoS detection.
    pub guard: Option<crate::guard::Guard>,
    /// The site's own commits.
    pub transit: Option<crate::transit::Transit>,
    /// The BGP speaker.
    pub bgp: Option<crate::bgp::Bgp>,
    /// The central tollgate this daemon ships to.
    pub central: Option<crate::central::Central>,
    /// Queueing delay, probes and their alarms.
    pub latency: Option<crate::latency::Latency>,
    /// Every latency probe's realm, as written.
    pub probe_realms: Vec<crate::model::Spanned<String>>,
}

const TOP_KEYS: &[&str] = &[
    "site", "realms", "bands", "plans", "parents", "tenants", "flows", "billing", "overage", "api",
    "history", "guard", "transit", "bgp", "central", "latency",
];

pub(crate) fn document(cx: &mut Cx, root: &dyn toml_edit::TableLike, whole: Span) -> Parsed {
    let mut p = Parsed {
        site: None,
        realms: Vec::new(),
        default_realm: None,
        prefix_files: Vec::new(),
        bands: None,
        plans: Vec::new(),
        plan_names: Vec::new(),
        parents: Vec::new(),
        parent_names: Vec::new(),
        realm_names: Vec::new(),
        tenants: Vec::new(),
        plan_realm_refs: Vec::new(),
        realm_id_spans: Vec::new(),
        flows: None,
        billing: None,
        overage: None,
        api: None,
        history: None,
        guard: None,
        transit: None,
        bgp: None,
        central: None,
        latency: None,
        probe_realms: Vec::new(),
    };
    let mut top = Fields::new(root, whole, "the policy");
    match top.get(cx, "site") {
        Some(n) => p.site = site(cx, n),
        None => cx.error(
            whole,
            "the policy has no [site] section",
            "add [site] with mode, uplink and capacity; see examples/",
        ),
    }
    if let Some(n) = top.get(cx, "realms") {
        realms(cx, n, &mut p);
    }
    if let Some(n) = top.get(cx, "bands") {
        p.bands = bands(cx, n);
    }
    if let Some(n) = top.get(cx, "plans") {
        if let Some(mut plans) = cx.table(n, "plans") {
            for entry in plans.entries(cx) {
                p.plan_names.push(entry.key.to_owned());
                if let Some(plan) = service_plan(cx, entry, &mut p.plan_realm_refs) {
                    p.plans.push(plan);
                }
            }
        }
    }
    if let Some(n) = top.get(cx, "parents") {
        each_table(cx, n, "parents", |cx, f| {
            if let Some(name) = peek_name(cx, &f) {
                p.parent_names.push(name);
            }
            if let Some(parent) = parent(cx, f) {
                p.parents.push(parent);
            }
        });
    }
    if let Some(n) = top.get(cx, "tenants") {
        each_table(cx, n, "tenants", |cx, f| {
            if let Some(t) = tenant(cx, f) {
                p.tenants.push(t);
            }
        });
    }
    if let Some(n) = top.get(cx, "api") {
        p.api = crate::api::section(cx, n);
    }
    if let Some(n) = top.get(cx, "flows") {
        p.flows = crate::flows::section(cx, n);
    }
    if let Some(n) = top.get(cx, "history") {
        p.history = crate::history::section(cx, n);
    }
    if let Some(n) = top.get(cx, "billing") {
        p.billing = crate::billing::billing(cx, n);
    }
    if let Some(n) = top.get(cx, "overage") {
        p.overage = crate::billing::overage(cx, n);
    }
    if let Some(n) = top.get(cx, "guard") {
        p.guard = crate::guard::section(cx, n);
    }
    if let Some(n) = top.get(cx, "transit") {
        p.transit = crate::transit::section(cx, n);
    }
    if let Some(n) = top.get(cx, "bgp") {
        p.bgp = crate::bgp::section(cx, n);
    }
    if let Some(n) = top.get(cx, "central") {
        p.central = crate::central::section(cx, n);
    }
    if let Some(n) = top.get(cx, "latency") {
        p.latency = crate::latency::section(cx, n, &mut p.probe_realms);
    }
    for key in TOP_KEYS {
        top.get(cx, key);
    }
    top.finish(cx);
    p
}

/// Runs `each` on every table of an array of tables (`[[tenants]]`).
pub(crate) fn each_table<'a>(
    cx: &mut Cx,
    node: Node<'a>,
    what: &str,
    mut each: impl FnMut(&mut Cx, Fields<'a>),
) {
    match node.item {
        Item::ArrayOfTables(arr) => {
            for t in arr.iter() {
                let span = cx.span(t.span(), node.span);
                each(cx, Fields::new(t, span, &format!("[[{what}]]")));
            }
        }
        Item::Value(toml_edit::Value::Array(arr)) => {
            for v in arr.iter() {
                let span = cx.span(v.span(), node.span);
                match v.as_inline_table() {
                    Some(t) => each(cx, Fields::new(t, span, &format!("[[{what}]]"))),
                    None => cx.error(
                        span,
                        format!("every entry of `{what}` must be a table"),
                        format!("write each entry as [[{what}]]"),
                    ),
                }
            }
        }
        _ => cx.error(
            node.span,
            format!("`{what}` must be a list of tables"),
            format!("write each entry as [[{what}]]"),
        ),
    }
}

fn peek_name(cx: &Cx, f: &Fields<'_>) -> Option<String> {
    f.peek(cx, "name")
        .and_then(|n| n.item.as_str().map(str::to_owned))
}

fn site(cx: &mut Cx, node: Node<'_>) -> Option<Site> {
    let mut f = cx.table(node, "site")?;
    let mode = f.require(cx, "mode", "\"router\"").and_then(|n| {
        let s = cx.string(n)?;
        match s.as_str() {
            "router" => Some(Mode::Router),
            "hypervisor" => Some(Mode::Hypervisor),
            _ => {
                cx.error(n.span, format!("unknown mode `{s}`"), "use \"router\" (tenants are address blocks) or \"hypervisor\" (each tenant has its own interface)");
                None
            }
        }
    });
    let uplink_node = f.require(cx, "uplink", "\"eth0\"");
    let uplink = uplink_node.and_then(|n| cx.ifname(n));
    // A bad `lan` fails the site, so that "router mode needs `lan`" does
    // not follow the error about its name.
    let lan = match f.get(cx, "lan") {
        Some(n) => cx.ifname(n).map(Some),
        None => Some(None),
    };
    let capacity = f
        .require(cx, "capacity", "{ down = \"1gbit\", up = \"1gbit\" }")
        .and_then(|n| per_direction_rate(cx, n, "site.capacity"));
    let shards = match f.get(cx, "shards") {
        Some(n) => cx.integer(n, 1, 64).map(|v| v as u16),
        None => Some(1),
    };
    let default_rate = match f.get(cx, "default_rate") {
        Some(n) => per_direction_rate(cx, n, "site.default_rate"),
        None => capacity.map(|c| PerDirection {
            down: default_share(c.down),
            up: default_share(c.up),
        }),
    };
    let bill_broadcast = match f.get(cx, "bill_broadcast") {
        Some(n) => cx.boolean(n),
        None => Some(false),
    };
    let bill_multicast = match f.get(cx, "bill_multicast") {
        Some(n) => cx.boolean(n),
        None => Some(false),
    };
    let classifier = match f.get(cx, "classifier") {
        Some(n) => cx.string(n).and_then(|s| match s.as_str() {
            "ebpf" => Some(Some(crate::model::ClassifierKind::Ebpf)),
            "nftables" => Some(Some(crate::model::ClassifierKind::Nftables)),
            _ => {
                cx.error(
                    n.span,
                    format!("unknown classifier `{s}`"),
                    "use \"ebpf\" (one BPF program per hook) or \"nftables\" (nftables maps)",
                );
                None
            }
        }),
        None => Some(None),
    };
    let shape_on_node = f.get(cx, "shape_on");
    let shape_on = match shape_on_node {
        Some(n) => cx.string(n).and_then(|s| match s.as_str() {
            "ifb" => Some(crate::model::ShapeOn::Ifb),
            "interface" => Some(crate::model::ShapeOn::Interface),
            _ => {
                cx.error(
                    n.span,
                    format!("unknown shape_on `{s}`"),
                    "use \"ifb\" (tollgate's own IFB devices, the default) or \"interface\" (the LAN's and uplink's root qdiscs: faster, but tollgate owns them)",
                );
                None
            }
        }),
        None => Some(crate::model::ShapeOn::Ifb),
    };
    let span = f.span;
    f.finish(cx);
    Some(Site {
        classifier: classifier?,
        shape_on: shape_on?,
        shape_on_span: shape_on_node.map(|n| n.span),
        mode: mode?,
        uplink: uplink?,
        uplink_span: uplink_node.map_or(span, |n| n.span),
        lan: lan?,
        capacity: capacity?,
        shards: shards?,
        default_rate: default_rate?,
        bill_broadcast: bill_broadcast?,
        bill_multicast: bill_multicast?,
        span,
    })
}

/// Traffic that belongs to no tenant is guaranteed 1% of the link unless the
/// policy says otherwise: enough for ARP, routing protocols and management.
fn default_share(capacity: Rate) -> Rate {
    capacity
        .scaled(1, 100)
        .max(Rate::from_bps(8_000).unwrap_or(capacity))
        .min(capacity)
}

fn per_direction_rate(cx: &mut Cx, node: Node<'_>, what: &str) -> Option<PerDirection<Rate>> {
    let mut f = cx.table(node, what)?;
    let down = f
        .require(cx, "down", "\"100mbit\"")
        .and_then(|n| cx.rate(n));
    let up = f.require(cx, "up", "\"100mbit\"").and_then(|n| cx.rate(n));
    f.finish(cx);
    Some(PerDirection {
        down: down?,
        up: up?,
    })
}

fn realms(cx: &mut Cx, node: Node<'_>, p: &mut Parsed) {
    let Some(mut f) = cx.table(node, "realms") else {
        return;
    };
    if let Some(n) = f.get(cx, "default") {
        if n.item.is_table_like() {
            cx.error(
                n.span,
                "`default` cannot be a realm's name: under [realms] it says which realm is the default",
                "rename the realm (e.g. [realms.other]) and write default = \"other\" under [realms]",
            );
        } else if let Some(s) = cx.string(n) {
            p.default_realm = Some((s, n.span));
        }
    }
    for entry in f.entries(cx) {
        if entry.key == "default" {
            continue;
        }
        p.realm_names.push(entry.key.to_owned());
        let Some(mut r) = cx.table(entry, format!("realms.{}", entry.key)) else {
            continue;
        };
        let id_node = r.require(cx, "id", "1");
        let id = id_node.and_then(|n| {
            let v = cx.integer(n, 1, u16::MAX as i64);
            if v.is_none() {
                if let Some(raw) = n.item.as_integer() {
                    if raw == 0 || raw > u16::MAX as i64 {
                        // Replace the generic range message with the realm-specific reason.
                        cx.diags.pop();
                        cx.error(n.span, format!("realm id {raw} is out of range"), "realm ids are 16-bit, from 1 to 65535 (0 means \"no realm\" to the kernel)");
                    }
                }
            }
            v.map(|v| RealmId(v as u16))
        });
        let prefixes = r
            .get(cx, "prefixes")
            .map(|n| cx.prefixes(n))
            .unwrap_or_default();
        let files = r
            .get(cx, "prefix_files")
            .map(|n| cx.strings(n))
            .unwrap_or_default();
        let rules = crate::route_rules::read(cx, &mut r);
        let order = p.realm_names.len();
        let span = r.span;
        r.finish(cx);
        if let Some(id) = id {
            if let Some(n) = id_node {
                p.realm_id_spans.push((id, n.span));
            }
            for (file, span) in files {
                p.prefix_files.push((id, file, span));
            }
            p.realms.push(Realm {
                id,
                name: entry.key.to_owned(),
                prefixes,
                rules,
                order,
                span,
            });
        }
    }
    f.finish(cx);
}

fn dscp(cx: &mut Cx, node: Node<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    cx.array(node, |cx, v, span| {
        let code = match (v.as_str(), v.as_integer()) {
            (Some(name), _) => dscp_name(name),
            (_, Some(n)) if (0..64).contains(&n) => Some(n as u8),
            _ => None,
        };
        match code {
            Some(c) => out.push(c),
            None => cx.error(
                span,
                format!("`{}` is not a DSCP code point", v.to_string().trim()),
                "use a name (ef, cs0–cs7, af11–af43, va) or a number from 0 to 63",
            ),
        }
    });
    out
}

fn dscp_name(name: &str) -> Option<u8> {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "ef" => Some(46),
        "va" => Some(44),
        "be" | "df" => Some(0),
        _ => {
            if let Some(n) = name.strip_prefix("cs") {
                let n: u8 = n.parse().ok()?;
                (n <= 7).then_some(n << 3)
            } else if let Some(n) = name.strip_prefix("af") {
                let (class, drop) = (n.as_bytes().first()?, n.as_bytes().get(1)?);
                let (class, drop) = (class.checked_sub(b'0')?, drop.checked_sub(b'0')?);
                ((1..=4).contains(&class) && (1..=3).contains(&drop) && n.len() == 2)
                    .then_some((class << 3) | (drop << 1))
            } else {
                None
            }
        }
    }
}

fn band_match(cx: &mut Cx, node: Node<'_>, what: &str) -> Option<BandMatch> {
    let mut f = cx.table(node, what)?;
    let mut m = BandMatch::default();
    if let Some(n) = f.get(cx, "dscp") {
        m.dscp = dscp(cx, n);
    }
    if let Some(n) = f.get(cx, "protocols") {
        for (s, span) in cx.strings(n) {
            match s.as_str() {
                "icmp" | "ipv6-icmp" | "tcp" | "udp" | "gre" | "esp" => m.protocols.push(s),
                _ => cx.error(
                    span,
                    format!("unknown protocol `{s}`"),
                    "use icmp, ipv6-icmp, tcp, udp, gre or esp",
                ),
            }
        }
    }
    if let Some(n) = f.get(cx, "ports") {
        for (s, span) in cx.strings(n) {
            match port_range(&s) {
                Some(r) => m.ports.push(r),
                None => cx.error(
                    span,
                    format!("`{s}` is not a port rule"),
                    "write `udp/53`, `tcp/22` or a range such as `udp/5060-5061`",
                ),
            }
        }
    }
    if let Some(n) = f.get(cx, "small_tcp_acks") {
        m.small_tcp_acks = match n.item.as_bool() {
            Some(false) => None,
            Some(true) => Some(128),
            None => cx.integer(n, 40, 1500).map(|v| v as u16),
        };
    }
    f.finish(cx);
    Some(m)
}

fn port_range(s: &str) -> Option<PortRange> {
    let (proto, ports) = s.split_once('/')?;
    let protocol = match proto {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        _ => return None,
    };
    let (from, to) = match ports.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = ports.parse().ok()?;
            (p, p)
        }
    };
    (from <= to && from > 0).then_some(PortRange { protocol, from, to })
}

fn bands(cx: &mut Cx, node: Node<'_>) -> Option<Bands> {
    let mut f = cx.table(node, "bands")?;
    let interactive = match f.get(cx, "interactive") {
        Some(n) => band_match(cx, n, "bands.interactive"),
        None => Some(BandMatch::default()),
    };
    let bulk = match f.get(cx, "bulk") {
        Some(n) => band_match(cx, n, "bands.bulk"),
        None => Some(BandMatch::default()),
    };
    let shares = match f.get(cx, "shares") {
        Some(n) => shares(cx, n),
        None => Some([10, 60, 30]),
    };
    f.finish(cx);
    Some(Bands {
        interactive: interactive?,
        bulk: bulk?,
        shares: shares?,
    })
}

fn shares(cx: &mut Cx, node: Node<'_>) -> Option<[u8; 3]> {
    let mut f = cx.table(node, "bands.shares")?;
    let mut out = [0u8; 3];
    let mut ok = true;
    for band in Band::ALL {
        match f
            .require(cx, band_key(band), "30")
            .and_then(|n| cx.integer(n, 1, 100))
        {
            Some(v) => out[band.index()] = v as u8,
            None => ok = false,
        }
    }
    let span = f.span;
    f.finish(cx);
    if ok && out.iter().map(|v| *v as u32).sum::<u32>() != 100 {
        cx.error(
            span,
            format!(
                "band shares add up to {}%, not 100%",
                out.iter().map(|v| *v as u32).sum::<u32>()
            ),
            "make interactive + normal + bulk equal 100",
        );
        return None;
    }
    ok.then_some(out)
}

fn band_key(band: Band) -> &'static str {
    match band {
        Band::Interactive => "interactive",
        Band::Normal => "normal",
        Band::Bulk => "bulk",
    }
}

/// Reads `{ rate, ceil, burst, cburst }`. Rate is required; ceil defaults to rate.
fn shape(cx: &mut Cx, node: Node<'_>, what: &str) -> Option<Shape> {
    let o = shape_override(cx, node, what, true)?;
    let rate = o.rate?;
    Some(Shape {
        rate,
        ceil: o.ceil.unwrap_or(rate),
        burst: o.burst,
        cburst: o.cburst,
    })
}

fn shape_override(
    cx: &mut Cx,
    node: Node<'_>,
    what: &str,
    rate_required: bool,
) -> Option<ShapeOverride> {
    let mut f = cx.table(node, what)?;
    let rate_node = if rate_required {
        f.require(cx, "rate", "\"10mbit\"")
    } else {
        f.get(cx, "rate")
    };
    let rate = rate_node.and_then(|n| cx.rate(n));
    let ceil_node = f.get(cx, "ceil");
    let ceil = ceil_node.and_then(|n| cx.rate(n));
    let burst = f.get(cx, "burst").and_then(|n| cx.size(n));
    let cburst = f.get(cx, "cburst").and_then(|n| cx.size(n));
    f.finish(cx);
    if let (Some(r), Some(c), Some(n)) = (rate, ceil, ceil_node) {
        if c < r {
            cx.error(
                n.span,
                format!("ceil ({c}) is below rate ({r}) in {what}"),
                format!("raise ceil to at least {r}, or lower rate"),
            );
            return None;
        }
    }
    if rate_required && rate.is_none() {
        return None;
    }
    Some(ShapeOverride {
        rate,
        ceil,
        burst,
        cburst,
    })
}

fn both_shapes(cx: &mut Cx, f: &mut Fields<'_>, what: &str) -> Option<PerDirection<Shape>> {
    let down = f
        .require(cx, "down", "{ rate = \"10mbit\", ceil = \"20mbit\" }")
        .and_then(|n| shape(cx, n, &format!("{what}.down")));
    let up = f
        .require(cx, "up", "{ rate = \"10mbit\", ceil = \"20mbit\" }")
        .and_then(|n| shape(cx, n, &format!("{what}.up")));
    Some(PerDirection {
        down: down?,
        up: up?,
    })
}

fn service_plan(
    cx: &mut Cx,
    node: Node<'_>,
    refs: &mut Vec<(String, String, Direction, RealmCap, Span)>,
) -> Option<ServicePlan> {
    let name = node.key.to_owned();
    let what = format!("plans.{name}");
    let mut f = cx.table(node, what.clone())?;
    let shared = f
        .get(cx, "shared")
        .and_then(|n| cx.boolean(n))
        .unwrap_or(false);
    let id_node = f.get(cx, "id");
    let id = id_node.and_then(|n| cx.integer(n, 1, NODE_ID_MAX).map(|v| v as u16));
    let parent_node = f.get(cx, "parent");
    let parent = parent_node.and_then(|n| cx.string(n));
    let shape = both_shapes(cx, &mut f, &what);
    if let Some(n) = f.get(cx, "realms") {
        if let Some(mut realms) = cx.table(n, format!("{what}.realms")) {
            for r in realms.entries(cx) {
                let Some(mut rf) = cx.table(r, format!("{what}.realms.{}", r.key)) else {
                    continue;
                };
                for dir in Direction::BOTH {
                    if let Some(n) = rf.get(cx, dir.as_str()) {
                        let w = format!("{what}.realms.{}.{}", r.key, dir.as_str());
                        if let Some(o) = shape_override(cx, n, &w, false) {
                            match o.ceil {
                                Some(ceil) => refs.push((
                                    name.clone(),
                                    r.key.to_owned(),
                                    dir,
                                    RealmCap { rate: o.rate, ceil },
                                    n.span,
                                )),
                                None => cx.error(
                                    n.span,
                                    format!("{w} has no ceil"),
                                    "a realm cap needs `ceil`, e.g. { ceil = \"3mbit\" }",
                                ),
                            }
                        }
                    }
                }
                rf.finish(cx);
            }
        }
    }
    let span = f.span;
    f.finish(cx);
    if shared && id_node.is_none() {
        cx.error(span, format!("shared plan `{name}` has no `id`"), "a shared plan is one pooled class and needs an id in the same space as parents' ids, e.g. id = 200");
        return None;
    }
    if !shared {
        if let Some(n) = id_node {
            cx.error(
                n.span,
                format!("plan `{name}` has an `id` but is not shared"),
                "only shared plans have an id; remove it or add `shared = true`",
            );
        }
        if let Some(n) = parent_node {
            cx.error(
                n.span,
                format!("plan `{name}` has a `parent` but is not shared"),
                "a tenant's parent is set on the tenant; only a shared plan's pool has a parent",
            );
        }
    }
    Some(ServicePlan {
        name,
        pool_id: if shared { Some(id?) } else { None },
        parent,
        shape: shape?,
        realm_caps: Vec::new(),
        span,
    })
}

/// Node ids (parents and shared plans) share one space.
pub(crate) const NODE_ID_MAX: i64 = 65_535;

fn parent(cx: &mut Cx, mut f: Fields<'_>) -> Option<Parent> {
    let name = f
        .require(cx, "name", "\"rack-1\"")
        .and_then(|n| cx.string(n));
    let id = f
        .require(cx, "id", "1")
        .and_then(|n| cx.integer(n, 1, NODE_ID_MAX))
        .map(|v| v as u16);
    let up_parent = f.get(cx, "parent").and_then(|n| cx.string(n));
    let what = format!("parent `{}`", name.as_deref().unwrap_or("?"));
    let shape = both_shapes(cx, &mut f, &what);
    let span = f.span;
    f.finish(cx);
    Some(Parent {
        name: name?,
        id: id?,
        parent: up_parent,
        shape: shape?,
        span,
    })
}

fn tenant(cx: &mut Cx, mut f: Fields<'_>) -> Option<Tenant> {
    let id_node = f.require(cx, "id", "1");
    let id = id_node
        .and_then(|n| cx.integer(n, 1, u32::MAX as i64))
        .map(|v| TenantId(v as u32));
    let name = match f.get(cx, "name") {
        Some(n) => cx.string(n),
        None => id.map(|i| format!("tenant-{i}")),
    };
    let plan_node = f.require(cx, "plan", "\"basic\"");
    let plan = plan_node.and_then(|n| cx.string(n));
    let parent = f.get(cx, "parent").and_then(|n| cx.string(n));
    let prefixes: Vec<(Prefix, Span)> = f
        .get(cx, "prefixes")
        .map(|n| cx.prefixes(n))
        .unwrap_or_default();
    let interface = f.get(cx, "interface").and_then(|n| cx.ifname(n));
    let measured_node = f.get(cx, "measured_by");
    let measured_by = match measured_node {
        Some(n) => crate::flows::measure(cx, n),
        None => Some(Measure::Kernel),
    };
    let commit = f.get(cx, "commit").and_then(|n| cx.rate(n));
    let who = format!("tenant {}", id.map_or("?".into(), |i| i.to_string()));
    let down = f
        .get(cx, "down")
        .map(|n| shape_override(cx, n, &format!("{who}.down"), false));
    let up = f
        .get(cx, "up")
        .map(|n| shape_override(cx, n, &format!("{who}.up"), false));
    let span = f.span;
    f.finish(cx);
    Some(Tenant {
        id: id?,
        name: name?,
        plan: plan?,
        parent,
        prefixes,
        interface,
        commit,
        overrides: PerDirection {
            down: down.unwrap_or(Some(ShapeOverride::default()))?,
            up: up.unwrap_or(Some(ShapeOverride::default()))?,
        },
        span,
        plan_span: plan_node.map_or(span, |n| n.span),
        id_span: id_node.map_or(span, |n| n.span),
        measured_by: measured_by?,
        measured_by_span: measured_node.map_or(span, |n| n.span),
    })
}

/// What was read from a prefix-list file.
pub(crate) struct PrefixList {
    /// Every prefix before the first bad line.
    pub prefixes: Vec<(Prefix, Span)>,
    /// The text diagnostics may show: the lines read, and of the first bad
    /// line at most a short excerpt that looks like an attempted prefix.
    pub shown: String,
}

/// The longest bad line shown in a diagnostic: an IPv4-mapped IPv6 address
/// with its length is 49 characters. Anything longer is not a typo.
const EXCERPT_MAX: usize = 50;

/// Parses a prefix-list file: one prefix per line, `#` starts a comment.
///
/// Reading stops at the first line that is not a prefix (or not UTF-8):
/// a file that is not a prefix list (`/etc/shadow`, a binary) gets one
/// error at that line and nothing of it past that line is kept or echoed.
/// The bad line itself is shown only if it is short and made of the
/// characters of an address (a typo such as `192.0.2.0/33`).
pub(crate) fn prefix_file(cx: &mut Cx, name: &str, bytes: &[u8]) -> PrefixList {
    let (valid, utf8_error) = match std::str::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => (
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
            Some(e.valid_up_to()),
        ),
    };
    let mut out = Vec::new();
    let mut offset = 0;
    for (n, line) in valid.split_inclusive('\n').enumerate() {
        if utf8_error.is_some() && !line.ends_with('\n') {
            break; // the start of the line with the bad byte
        }
        let content = line.split('#').next().unwrap_or("");
        let trimmed = content.trim();
        if !trimmed.is_empty() {
            let lead = content.len() - content.trim_start().len();
            let start = offset + lead;
            match Prefix::parse(trimmed) {
                Ok(p) => out.push((p, Span::new(cx.file, start..start + trimmed.len()))),
                Err(e) => {
                    let shown_line = looks_like_an_address(trimmed).then_some(trimmed);
                    let excerpt = shown_line.unwrap_or("");
                    let shown = format!("{}{}{excerpt}", &valid[..offset], &content[..lead]);
                    let span = Span::new(cx.file, start..start + excerpt.len());
                    match shown_line {
                        Some(_) => cx.error(
                            span,
                            format!("{}; the rest of the prefix list was not read", e.message),
                            e.hint,
                        ),
                        None => cx.error(
                            span,
                            format!("`{name}` does not look like a prefix list: line {} is not an address, and is not shown", n + 1),
                            "a prefix list has one prefix per line (`192.0.2.0/24`, `2001:db8::/32`) and `#` comments; check that prefix_files names the right file",
                        ),
                    }
                    return PrefixList {
                        prefixes: out,
                        shown,
                    };
                }
            }
        }
        offset += line.len();
    }
    if let Some(at) = utf8_error {
        // Keep the bad line's width, not its text, so the column is right.
        let width = valid[offset..at].chars().count();
        let shown = format!("{}{}", &valid[..offset], " ".repeat(width));
        let span = Span::new(cx.file, shown.len()..shown.len());
        let line = valid[..offset].matches('\n').count() + 1;
        cx.error(
            span,
            format!("`{name}` does not look like a prefix list: line {line} is not UTF-8 text, and is not shown"),
            "a prefix list is plain text with one prefix per line; check that prefix_files names the right file",
        );
        return PrefixList {
            prefixes: out,
            shown,
        };
    }
    PrefixList {
        prefixes: out,
        shown: valid.to_owned(),
    }
}

/// Whether a bad line is short and made only of what addresses are
/// written with, so that showing it reveals nothing but a typo.
fn looks_like_an_address(s: &str) -> bool {
    s.len() <= EXCERPT_MAX
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/'))
}
