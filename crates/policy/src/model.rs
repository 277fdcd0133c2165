//! The validated policy: what each tenant gets, in the operator's terms.
//!
//! These types hold no kernel vocabulary (no handles, no qdiscs); the
//! compiler turns them into a kernel plan. Every item keeps the [`Span`] it
//! was read from so that later stages can still point at the policy file.

use crate::source::Span;
use net_types::{IfName, Prefix, Rate, RealmId, Size, TenantId};
use serde::Serialize;

/// The prefix of every name tollgate gives its own objects: its IFB
/// devices (`tg-down`, `tg-up`), which it owns, observes and deletes on
/// `tollgate down` by this prefix. No interface or tenant in a policy may
/// use it.
pub const RESERVED_PREFIX: &str = "tg-";

/// Traffic direction, seen from the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Toward the tenant (download).
    Down,
    /// From the tenant (upload).
    Up,
}

impl Direction {
    /// Both directions, download first.
    pub const BOTH: [Direction; 2] = [Direction::Down, Direction::Up];

    /// `down` or `up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Down => "down",
            Direction::Up => "up",
        }
    }
}

/// A value per direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PerDirection<T> {
    /// Toward the tenant.
    pub down: T,
    /// From the tenant.
    pub up: T,
}

impl<T> PerDirection<T> {
    /// The value for one direction.
    pub fn get(&self, dir: Direction) -> &T {
        match dir {
            Direction::Down => &self.down,
            Direction::Up => &self.up,
        }
    }

    /// The value for one direction, to change.
    pub fn get_mut(&mut self, dir: Direction) -> &mut T {
        match dir {
            Direction::Down => &mut self.down,
            Direction::Up => &mut self.up,
        }
    }
}

/// Where tenants sit relative to the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each tenant has its own interface (a Xen vif, a tap).
    Hypervisor,
    /// Tenants are address blocks behind the box.
    Router,
}

/// The box itself: its mode, its interfaces and their capacity.
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    /// Hypervisor or router.
    pub mode: Mode,
    /// The interface toward the upstream.
    pub uplink: IfName,
    /// Where `uplink` was written.
    pub uplink_span: Span,
    /// The interface toward the tenants (router mode only).
    pub lan: Option<IfName>,
    /// What the uplink can carry, per direction.
    pub capacity: PerDirection<Rate>,
    /// How many HTB trees each direction is split into.
    pub shards: u16,
    /// The guaranteed rate of traffic that belongs to no tenant.
    pub default_rate: PerDirection<Rate>,
    /// Whether broadcast (to every host on the link: Ethernet
    /// `ff:ff:ff:ff:ff:ff`, IPv4 `255.255.255.255`) counts toward tenants.
    /// False unless set: a bridge floods it to every VM, and no VM asked
    /// for it. Unbilled broadcast goes to the default class, unshaped per
    /// tenant and counted to nobody.
    pub bill_broadcast: bool,
    /// Whether multicast (Ethernet group addresses, `224.0.0.0/4`,
    /// `ff00::/8`) counts toward tenants. False unless set, for the same
    /// reason: IPv6 neighbour discovery and mDNS reach every VM.
    pub bill_multicast: bool,
    /// Which classifier writes each packet's class: `classifier = "ebpf"`
    /// or `"nftables"`; `None` when the policy does not say (nftables).
    pub classifier: Option<ClassifierKind>,
    /// Which device holds the HTB trees: tollgate's own IFBs (the default)
    /// or the seen interfaces' root qdiscs (`shape_on = "interface"`).
    pub shape_on: ShapeOn,
    /// Where `shape_on` was written, if it was.
    pub shape_on_span: Option<Span>,
    /// Where `site` was written.
    pub span: Span,
}

/// Where the HTB trees live (docs/dataplane.md, "Layout").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeOn {
    /// On two IFB devices tollgate creates (`tg-down`, `tg-up`), reached by
    /// a mirred redirect from the seen interfaces' clsact egress: tollgate
    /// never replaces a root qdisc of the interfaces.
    #[default]
    Ifb,
    /// On the root qdisc of the seen interfaces themselves (the LAN for
    /// download, the uplink for upload): no IFB crossing per packet, but
    /// tollgate owns those interfaces' root qdiscs (router mode only).
    Interface,
}

impl ShapeOn {
    /// The policy's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShapeOn::Ifb => "ifb",
            ShapeOn::Interface => "interface",
        }
    }
}

/// The classifier that puts packets into their classes (docs/dataplane.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassifierKind {
    /// One eBPF program per hook with LPM tries and hash maps.
    Ebpf,
    /// nftables maps and chains in the `netdev tollgate` table.
    Nftables,
}

/// A destination realm (national, international…).
#[derive(Clone, Debug, Serialize)]
pub struct Realm {
    /// Its 16-bit id.
    pub id: RealmId,
    /// Its name in the policy.
    pub name: String,
    /// Prefixes that belong to it, from inline lists and prefix-list files.
    pub prefixes: Vec<(Prefix, Span)>,
    /// BGP attributes that put a learned route into it.
    pub rules: crate::RouteRules,
    /// Its position in the file: route rules are tried in this order.
    pub order: usize,
    /// Where it was declared.
    pub span: Span,
}

/// The realms and which one catches everything else.
#[derive(Clone, Debug, Serialize)]
pub struct Realms {
    /// Every realm, ordered by id.
    pub list: Vec<Realm>,
    /// The realm of destinations no prefix matches.
    pub default: RealmId,
}

impl Realms {
    /// The realm with a given name.
    pub fn by_name(&self, name: &str) -> Option<&Realm> {
        self.list.iter().find(|r| r.name == name)
    }

    /// The realm with a given id.
    pub fn by_id(&self, id: RealmId) -> Option<&Realm> {
        self.list.iter().find(|r| r.id == id)
    }

    /// The realm a BGP route belongs to: the first realm, in file order,
    /// whose rules match it, or the default realm.
    pub fn for_route(&self, route: &crate::RouteView<'_>) -> RealmId {
        self.list
            .iter()
            .filter(|r| r.rules.matches(route))
            .min_by_key(|r| r.order)
            .map_or(self.default, |r| r.id)
    }
}

/// The three priority bands inside each tenant × realm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// Small, latency-sensitive packets: DNS, SSH, VoIP, TCP ACKs.
    Interactive,
    /// Everything not otherwise classified.
    Normal,
    /// Background transfers.
    Bulk,
}

impl Band {
    /// All bands, highest priority first.
    pub const ALL: [Band; 3] = [Band::Interactive, Band::Normal, Band::Bulk];

    /// The band's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Interactive => "interactive",
            Band::Normal => "normal",
            Band::Bulk => "bulk",
        }
    }

    /// Position from 0 (highest priority).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A transport protocol and port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PortRange {
    /// `tcp` or `udp`.
    pub protocol: Transport,
    /// First port.
    pub from: u16,
    /// Last port (inclusive).
    pub to: u16,
}

/// A transport protocol that has ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// What sends a packet to a band.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BandMatch {
    /// DSCP code points (0–63).
    pub dscp: Vec<u8>,
    /// Protocols matched whole: `icmp`, `ipv6-icmp`.
    pub protocols: Vec<String>,
    /// Transport ports (destination or source).
    pub ports: Vec<PortRange>,
    /// Pure TCP ACKs no longer than this many bytes, if set.
    pub small_tcp_acks: Option<u16>,
}

/// Priority bands: which traffic is interactive or bulk, and each band's share.
#[derive(Clone, Debug, Serialize)]
pub struct Bands {
    /// What makes a packet interactive.
    pub interactive: BandMatch,
    /// What makes a packet bulk.
    pub bulk: BandMatch,
    /// Each band's share of its tenant × realm rate, in percent, by [`Band::index`].
    pub shares: [u8; 3],
}

/// Rate, ceil and bursts of one HTB class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Guaranteed rate.
    pub rate: Rate,
    /// The most it may borrow up to.
    pub ceil: Rate,
    /// Bytes it may send at link speed above `rate`.
    pub burst: Option<Size>,
    /// Bytes it may send at link speed above `ceil`.
    pub cburst: Option<Size>,
}

/// Per-tenant changes to a plan's shape. Every field is optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShapeOverride {
    /// Replaces the rate.
    pub rate: Option<Rate>,
    /// Replaces the ceil.
    pub ceil: Option<Rate>,
    /// Replaces the burst.
    pub burst: Option<Size>,
    /// Replaces the cburst.
    pub cburst: Option<Size>,
}

impl ShapeOverride {
    /// `base` with this override's fields applied.
    pub fn apply(&self, base: Shape) -> Shape {
        Shape {
            rate: self.rate.unwrap_or(base.rate),
            ceil: self.ceil.unwrap_or(base.ceil),
            burst: self.burst.or(base.burst),
            cburst: self.cburst.or(base.cburst),
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ShapeOverride::default()
    }
}

/// A cap on one realm inside a plan, e.g. international at most 3mbit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RealmCap {
    /// Guaranteed rate for this realm; defaults to a fair share of the plan's rate.
    pub rate: Option<Rate>,
    /// The most this realm may use.
    pub ceil: Rate,
}

/// A service plan (service class): what a tenant on it gets.
#[derive(Clone, Debug, Serialize)]
pub struct ServicePlan {
    /// Its name.
    pub name: String,
    /// For a shared plan, the id of its pooled class (in the node id space).
    pub pool_id: Option<u16>,
    /// For a shared plan, the parent its pooled class sits under.
    pub parent: Option<String>,
    /// Shape per direction (for a shared plan: of the whole pool).
    pub shape: PerDirection<Shape>,
    /// Per-realm caps, by realm id, per direction.
    pub realm_caps: Vec<(RealmId, Direction, RealmCap, Span)>,
    /// Where it was declared.
    pub span: Span,
}

impl ServicePlan {
    /// Whether tenants on this plan share one pooled class.
    pub fn is_shared(&self) -> bool {
        self.pool_id.is_some()
    }

    /// The cap on a realm in a direction, if the plan has one.
    pub fn realm_cap(&self, realm: RealmId, dir: Direction) -> Option<RealmCap> {
        self.realm_caps
            .iter()
            .find(|(r, d, _, _)| *r == realm && *d == dir)
            .map(|(_, _, c, _)| *c)
    }
}

/// An inner node of the hierarchy (uplink → rack or reseller → tenant).
#[derive(Clone, Debug, Serialize)]
pub struct Parent {
    /// Its name.
    pub name: String,
    /// Its id in the node id space (shared with pooled plans).
    pub id: u16,
    /// The parent it sits under, or the site's root.
    pub parent: Option<String>,
    /// Shape per direction.
    pub shape: PerDirection<Shape>,
    /// Where it was declared.
    pub span: Span,
}

/// A tenant: a VM or a customer.
#[derive(Clone, Debug, Serialize)]
pub struct Tenant {
    /// The operator's id.
    pub id: TenantId,
    /// A human name.
    pub name: String,
    /// The plan it is on.
    pub plan: String,
    /// The parent it sits under (not for shared plans, whose pool decides).
    pub parent: Option<String>,
    /// Its addresses.
    pub prefixes: Vec<(Prefix, Span)>,
    /// Its own interface (hypervisor mode).
    pub interface: Option<IfName>,
    /// The rate it commits to pay for, for billing.
    pub commit: Option<Rate>,
    /// Changes to its plan's shape.
    pub overrides: PerDirection<ShapeOverride>,
    /// Where it was declared.
    pub span: Span,
    /// Where its `plan` value was written.
    pub plan_span: Span,
    /// Where its `id` value was written.
    pub id_span: Span,
    /// Whether this box's kernel counters or exported flows measure it.
    pub measured_by: Measure,
    /// Where its `measured_by` value was written (its declaration if absent).
    pub measured_by_span: Span,
}

/// Where a tenant's usage comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// This box shapes the tenant; its HTB class counters are the measure.
    #[default]
    Kernel,
    /// A router elsewhere carries the tenant's traffic and exports flow
    /// records (NetFlow, IPFIX, sFlow) about it. This box does not shape
    /// the tenant; it attributes the flows to it by address.
    Flows,
}

/// The flow collector: where it listens and whom it believes.
#[derive(Clone, Debug, Serialize)]
pub struct Flows {
    /// UDP addresses to listen on, each with where it was written. One port
    /// takes every protocol: the collector tells NetFlow v5/v9, IPFIX and
    /// sFlow apart by their first bytes.
    pub listen: Vec<(std::net::SocketAddr, Span)>,
    /// The kernel receive buffer asked for on each socket.
    pub receive_buffer: Size,
    /// Sockets (and threads) per listen address; `None` is one per core.
    pub workers: Option<u16>,
    /// The exporters whose datagrams are accepted. Datagrams from any other
    /// address are dropped and counted.
    pub exporters: Vec<Exporter>,
    /// Memory and template limits.
    pub limits: FlowLimits,
    /// Where `[flows]` was declared.
    pub span: Span,
}

pub use crate::flows::FlowLimits;
pub use crate::history::{
    History, HistoryFlows, HistoryStore, DEFAULT_CLICKHOUSE_DATABASE, DEFAULT_CLICKHOUSE_URL,
    DEFAULT_FLOW_DAYS,
};

impl Flows {
    /// The exporter with this address, if it is allowed.
    pub fn exporter(&self, address: std::net::IpAddr) -> Option<&Exporter> {
        self.exporters.iter().find(|e| e.address == address)
    }
}

/// One device allowed to send flow records.
#[derive(Clone, Debug, Serialize)]
pub struct Exporter {
    /// The source address its datagrams come from.
    pub address: std::net::IpAddr,
    /// A human name for status and logs.
    pub name: String,
    /// One in how many packets it samples, overriding what the exporter
    /// reports (some devices report it wrongly or not at all).
    pub sampling: Option<u32>,
    /// Where it was declared.
    pub span: Span,
}

/// A value and where it was written. A value the policy left out has its
/// default and the span of its section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// `value` written at `span`.
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }
}

/// How tenants are billed: the `[billing]` section. The vocabulary is the
/// billing crate's (docs/accounting.md); the binary maps it one to one.
#[derive(Clone, Debug, Serialize)]
pub struct Billing {
    /// Periods start on this day of the month (1–28) at local midnight.
    pub day: Spanned<u8>,
    /// The IANA time zone of periods and of days in reports (`UTC` unless
    /// set). Only its shape is checked here: the policy crate has no
    /// time-zone database, so the binary looks the name up.
    pub timezone: Spanned<String>,
    /// The percentile billed, 1–99 (95 unless set).
    pub percentile: Spanned<u8>,
    /// How the two directions combine.
    pub method: Spanned<BillingMethod>,
    /// Which sample is the percentile.
    pub rank: Spanned<RankRule>,
    /// What a sample nobody observed counts as.
    pub missing: Spanned<MissingSamples>,
    /// Which directions count toward volume.
    pub volume: Spanned<VolumeCounts>,
    /// The volume quota of the `total` line, for every tenant.
    pub quota: Option<Spanned<Size>>,
    /// Bill lines besides `total`, in file order.
    pub charges: Vec<Charge>,
    /// Where `[billing]` was declared.
    pub span: Span,
}

/// How a percentile combines the two directions (the billing crate's
/// `Method`, with the same spellings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingMethod {
    /// `max_of_directions`: the percentile of each direction on its own,
    /// the larger billed (the usual transit rule).
    MaxOfDirections,
    /// `sum_of_directions`: the percentile of in + out per sample.
    SumOfDirections,
    /// `per_sample_max`: the percentile of max(in, out) per sample.
    PerSampleMax,
}

/// Which sorted sample is the percentile (the billing crate's `RankRule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankRule {
    /// `nearest_rank`: the ⌈p·n/100⌉-th smallest.
    NearestRank,
    /// `vnstat`: round(p·n/100), halves down, as vnStat.
    VnStat,
    /// `librenms`: round(p·n/100) − 1, halves up, at least 1, as LibreNMS.
    LibreNms,
}

/// What a missing sample counts as (the billing crate's `MissingSamples`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingSamples {
    /// `zero_against_expected`: zero, against the expected count.
    ZeroAgainstExpected,
    /// `skip`: left out; n is the samples seen.
    Skip,
}

/// Which directions count toward a volume (the billing crate's
/// `VolumeCounts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeCounts {
    /// `both`: down + up.
    Both,
    /// `down`: toward the tenant only.
    Down,
    /// `up`: from the tenant only.
    Up,
}

/// One extra bill line, `[[billing.charges]]`.
#[derive(Clone, Debug, Serialize)]
pub struct Charge {
    /// The line's name on bills.
    pub name: Spanned<String>,
    /// Only these realms (empty: see `except`).
    pub realms: Vec<Spanned<String>>,
    /// Every realm but these (empty with `realms` empty: every realm).
    pub except: Vec<Spanned<String>>,
    /// Whether the line has a percentile figure (true unless set).
    pub percentile: Spanned<bool>,
    /// The committed rate, for every tenant.
    pub commit: Option<Spanned<Rate>>,
    /// The volume quota, for every tenant.
    pub quota: Option<Spanned<Size>>,
    /// Where it was declared.
    pub span: Span,
}

/// The overage automation: the `[overage]` section.
#[derive(Clone, Debug, Serialize)]
pub struct Overage {
    /// Whether the daemon moves tenants at all (false unless set).
    pub enabled: Spanned<bool>,
    /// The plan tenants are moved into (`overage` unless set).
    pub plan: Spanned<String>,
    /// Move when the projection exceeds the commit (or quota) by this many
    /// percent (10 unless set).
    pub margin_percent: Spanned<u32>,
    /// No projection is trusted before this much of the period has passed
    /// (1 day unless set).
    pub min_elapsed: Spanned<std::time::Duration>,
    /// How often the daemon checks (5 minutes unless set).
    pub check_every: Spanned<std::time::Duration>,
    /// Where `[overage]` was declared.
    pub span: Span,
}

/// A whole validated policy.
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    /// The box.
    pub site: Site,
    /// Destination realms.
    pub realms: Realms,
    /// Priority bands, if enabled.
    pub bands: Option<Bands>,
    /// Service plans, ordered by name.
    pub plans: Vec<ServicePlan>,
    /// Inner nodes of the hierarchy, in file order.
    pub parents: Vec<Parent>,
    /// Tenants, ordered by id.
    pub tenants: Vec<Tenant>,
    /// The flow collector, if the policy has one.
    pub flows: Option<Flows>,
    /// How tenants are billed, if the policy says.
    pub billing: Option<Billing>,
    /// The overage automation, if the policy has it.
    pub overage: Option<Overage>,
    /// Where the daemon serves its API, if the policy says.
    pub api: Option<Api>,
    /// Which store keeps the history, if the policy says (SQLite if not).
    pub history: Option<History>,
    /// DDoS detection and mitigation, if the policy has it.
    pub guard: Option<Guard>,
    /// The site's own transit commits, if the policy has them.
    pub transit: Option<Transit>,
    /// The BGP speaker and its peers, if the policy has them.
    pub bgp: Option<Bgp>,
    /// The central tollgate this daemon ships its closed slots to, if any.
    pub central: Option<Central>,
    /// Queueing delay, active probes and their alarms, if the policy has them.
    pub latency: Option<Latency>,
}

pub use crate::bgp::{Bgp, BgpFamily, BgpPeer};
pub use crate::central::{valid_writer, Central, CentralTarget};
pub use crate::latency::{Latency, LatencyAlarms, Probe, ProbeKind};

pub use crate::guard::{
    unused_prefixes, CaptureSource, Guard, GuardCapture, GuardGroup, GuardRung, Unused,
    MAX_THROTTLE_RATES, MAX_UNUSED_PREFIXES,
};
pub use crate::transit::{GuardMode as TransitGuardMode, Transit, Upstream, UpstreamMethod};

/// The `[api]` section.
#[derive(Clone, Debug, Serialize)]
pub struct Api {
    /// Where to listen (default 127.0.0.1:9188).
    pub listen: Option<std::net::SocketAddr>,
    /// The tokens file, relative to the policy's folder.
    pub tokens: Option<String>,
    /// Whether `/metrics` needs no token from other hosts.
    pub metrics_public: bool,
    /// TLS, needed to listen beyond this box.
    pub tls: Option<ApiTls>,
    /// Where `[api]` was declared.
    pub span: Span,
}

/// The API's certificate and key (PEM files).
#[derive(Clone, Debug, Serialize)]
pub struct ApiTls {
    /// The certificate chain.
    pub certificate: String,
    /// The private key.
    pub key: String,
}

impl Policy {
    /// The plan with a given name.
    pub fn plan(&self, name: &str) -> Option<&ServicePlan> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The parent with a given name.
    pub fn parent(&self, name: &str) -> Option<&Parent> {
        self.parents.iter().find(|p| p.name == name)
    }

    /// The tenant with a given id.
    pub fn tenant(&self, id: TenantId) -> Option<&Tenant> {
        self.tenants
            .binary_search_by_key(&id, |t| t.id)
            .ok()
            .map(|i| &self.tenants[i])
    }

    /// A tenant's effective shape in one direction: its plan's with its overrides.
    /// For a tenant on a shared plan this is its share inside the pool.
    pub fn tenant_shape(&self, tenant: &Tenant, dir: Direction) -> Option<Shape> {
        let plan = self.plan(&tenant.plan)?;
        Some(tenant.overrides.get(dir).apply(*plan.shape.get(dir)))
    }
}
