//! What the detector is told: the protected networks, the thresholds (a
//! global profile and host groups that inherit from it explicitly), the
//! smoothing, and the mitigation ladder.
//!
//! The policy's `[guard]` section is converted into a [`Config`]; other
//! callers (tests, benches) build one directly. [`Config::check`] reports
//! every mistake at once as [`ConfigError`]s that name the group, prefix or
//! rung by index, so the policy crate can point at the line it came from.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use net_types::{Prefix, Rate};
use serde::{Deserialize, Serialize};

use crate::sample::{Direction, HostCounters};

/// What a threshold measures, per second, in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// All packets per second.
    Pps,
    /// All bits per second.
    Bps,
    /// New flows (5-tuples) per second.
    Flows,
    /// TCP packets per second.
    TcpPps,
    /// TCP bits per second.
    TcpBps,
    /// UDP packets per second.
    UdpPps,
    /// UDP bits per second.
    UdpBps,
    /// ICMP packets per second.
    IcmpPps,
    /// ICMP bits per second.
    IcmpBps,
    /// TCP SYN (without ACK) packets per second.
    Syn,
    /// IP fragments per second.
    Frag,
}

/// How many [`Metric`]s there are.
pub const METRICS: usize = 11;

impl Metric {
    /// Every metric, in the order thresholds are checked (the first one
    /// over its threshold is reported as the trigger).
    pub const ALL: [Metric; METRICS] = [
        Metric::Pps,
        Metric::Bps,
        Metric::Flows,
        Metric::Syn,
        Metric::TcpPps,
        Metric::UdpPps,
        Metric::IcmpPps,
        Metric::Frag,
        Metric::TcpBps,
        Metric::UdpBps,
        Metric::IcmpBps,
    ];

    /// The name used in the policy (`pps`, `tcp_bps`, `syn`…), to which
    /// `_in` or `_out` is appended.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Pps => "pps",
            Metric::Bps => "bps",
            Metric::Flows => "flows",
            Metric::TcpPps => "tcp_pps",
            Metric::TcpBps => "tcp_bps",
            Metric::UdpPps => "udp_pps",
            Metric::UdpBps => "udp_bps",
            Metric::IcmpPps => "icmp_pps",
            Metric::IcmpBps => "icmp_bps",
            Metric::Syn => "syn",
            Metric::Frag => "frag",
        }
    }

    /// Whether the metric counts bits (its threshold is a [`Rate`]);
    /// otherwise it counts packets or flows.
    pub fn is_bits(self) -> bool {
        matches!(
            self,
            Metric::Bps | Metric::TcpBps | Metric::UdpBps | Metric::IcmpBps
        )
    }

    /// The metric's position in [`Metric::ALL`].
    pub fn index(self) -> usize {
        match self {
            Metric::Pps => 0,
            Metric::Bps => 1,
            Metric::Flows => 2,
            Metric::Syn => 3,
            Metric::TcpPps => 4,
            Metric::UdpPps => 5,
            Metric::IcmpPps => 6,
            Metric::Frag => 7,
            Metric::TcpBps => 8,
            Metric::UdpBps => 9,
            Metric::IcmpBps => 10,
        }
    }

    /// The metric's count in one tick's counters (bits for the bit metrics).
    pub(crate) fn counts(c: &HostCounters) -> [f64; METRICS] {
        // Same order as `ALL`.
        [
            c.packets as f64,
            c.bytes as f64 * 8.0,
            c.flows as f64,
            c.tcp_syn as f64,
            c.tcp_packets as f64,
            c.udp_packets as f64,
            c.icmp_packets as f64,
            c.fragments as f64,
            c.tcp_bytes as f64 * 8.0,
            c.udp_bytes as f64 * 8.0,
            c.icmp_bytes as f64 * 8.0,
        ]
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One threshold as written: inherited, explicitly off, or a limit per
/// second (packets, flows, or bits for the bit metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Not set here: take the parent's (for the global profile: no check).
    #[default]
    Inherit,
    /// Explicitly no check, even if the parent has one.
    Off,
    /// Over this many per second is an attack.
    At(u64),
}

/// A threshold per metric and direction. Unset entries inherit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    limits: [[Limit; METRICS]; 2],
}

impl Thresholds {
    /// Nothing set.
    pub fn new() -> Thresholds {
        Thresholds::default()
    }

    /// Sets one threshold.
    pub fn set(&mut self, direction: Direction, metric: Metric, limit: Limit) {
        self.limits[direction.index()][metric.index()] = limit;
    }

    /// Sets one threshold, builder style.
    pub fn with(mut self, direction: Direction, metric: Metric, limit: Limit) -> Thresholds {
        self.set(direction, metric, limit);
        self
    }

    /// Sets a bits-per-second threshold from a [`Rate`].
    pub fn with_rate(self, direction: Direction, metric: Metric, rate: Rate) -> Thresholds {
        self.with(direction, metric, Limit::At(rate.bps()))
    }

    /// One threshold as written.
    pub fn get(&self, direction: Direction, metric: Metric) -> Limit {
        self.limits[direction.index()][metric.index()]
    }

    /// Whether any threshold is set (to a limit or off).
    pub fn is_empty(&self) -> bool {
        self.limits
            .iter()
            .flatten()
            .all(|l| matches!(l, Limit::Inherit))
    }
}

/// A host group: addresses found by longest prefix match, with thresholds
/// that inherit from a named parent group or from the global profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// Its name (a tenant's name for the tenants' default groups).
    pub name: String,
    /// Its prefixes; each must lie inside [`Config::networks`].
    pub prefixes: Vec<Prefix>,
    /// The group it inherits unset thresholds (and the ladder) from;
    /// `None` is the global profile.
    pub parent: Option<String>,
    /// Per-host thresholds; unset entries inherit.
    pub thresholds: Thresholds,
    /// Thresholds on the sum over the group's hosts. These do not inherit
    /// (a parent's total is about other hosts): unset is no check.
    pub totals: Thresholds,
    /// Its own ladder; `None` inherits the parent's.
    pub ladder: Option<Vec<RungConfig>>,
}

impl GroupConfig {
    /// A group with no thresholds of its own, inheriting from `parent`.
    pub fn new(name: &str, prefixes: Vec<Prefix>, parent: Option<&str>) -> GroupConfig {
        GroupConfig {
            name: name.to_owned(),
            prefixes,
            parent: parent.map(str::to_owned),
            thresholds: Thresholds::new(),
            totals: Thresholds::new(),
            ladder: None,
        }
    }
}

/// The rungs of the mitigation ladder, mildest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rung {
    /// Call a script or webhook; nothing is changed.
    Notify,
    /// Put the victim in a prepared rate limit.
    Throttle,
    /// Drop the victim's traffic (or the attack's signature) in nftables.
    Drop,
    /// A kernel blackhole route for the victim.
    Blackhole,
    /// A BGP announcement of the victim with the BLACKHOLE community.
    Rtbh,
    /// A BGP FlowSpec rule built from the attack's signature.
    Flowspec,
}

impl Rung {
    /// Every rung, mildest first.
    pub const ALL: [Rung; 6] = [
        Rung::Notify,
        Rung::Throttle,
        Rung::Drop,
        Rung::Blackhole,
        Rung::Rtbh,
        Rung::Flowspec,
    ];

    /// The name used in the policy.
    pub fn name(self) -> &'static str {
        match self {
            Rung::Notify => "notify",
            Rung::Throttle => "throttle",
            Rung::Drop => "drop",
            Rung::Blackhole => "blackhole",
            Rung::Rtbh => "rtbh",
            Rung::Flowspec => "flowspec",
        }
    }

    /// The rung named `name`.
    pub fn from_name(name: &str) -> Option<Rung> {
        Rung::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the rung announces or routes a prefix, and so must respect
    /// the networks and the shortest-prefix limits.
    pub fn announces(self) -> bool {
        matches!(self, Rung::Blackhole | Rung::Rtbh | Rung::Flowspec)
    }
}

impl fmt::Display for Rung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A BGP community, `high:low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Community(pub u16, pub u16);

impl Community {
    /// RFC 7999 BLACKHOLE, 65535:666.
    pub const BLACKHOLE: Community = Community(65535, 666);
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// What a rung does, with the settings the shell needs to carry it out.
/// The detector only decides *when*; these ride along in its decisions'
/// config lookup ([`Config::rung`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rung", rename_all = "lowercase")]
pub enum Action {
    /// Run `script ip direction pps ban|unban` (JSON report on stdin),
    /// and/or POST the report to `webhook`.
    Notify {
        /// The script's path.
        script: Option<String>,
        /// The webhook's URL.
        webhook: Option<String>,
        /// While the attack lasts, send the report again this often
        /// ([`crate::Decision::Update`]); `None`: only at start and end.
        every: Option<Duration>,
    },
    /// Rate-limit the victim to `rate`.
    Throttle {
        /// The limit.
        rate: Rate,
    },
    /// Drop in nftables: everything to the victim, or only the attack's
    /// signature (protocol, source ports) when `signature` is set.
    Drop {
        /// Drop only the signature.
        signature: bool,
    },
    /// A kernel blackhole route.
    Blackhole,
    /// A BGP announcement of the victim's /32 or /128.
    Rtbh {
        /// The communities (RFC 7999 BLACKHOLE unless set).
        communities: Vec<Community>,
        /// The next hop; `None` lets the speaker use its own.
        next_hop: Option<IpAddr>,
    },
    /// A FlowSpec rule: discard, or rate-limit to `rate`.
    Flowspec {
        /// `None` discards.
        rate: Option<Rate>,
    },
}

impl Action {
    /// Which rung this is.
    pub fn rung(&self) -> Rung {
        match self {
            Action::Notify { .. } => Rung::Notify,
            Action::Throttle { .. } => Rung::Throttle,
            Action::Drop { .. } => Rung::Drop,
            Action::Blackhole => Rung::Blackhole,
            Action::Rtbh { .. } => Rung::Rtbh,
            Action::Flowspec { .. } => Rung::Flowspec,
        }
    }
}

/// One rung of a ladder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RungConfig {
    /// What it does.
    pub action: Action,
    /// How long the attack must persist on the previous rung before this
    /// one is added. Zero for the first rung (it starts at detection).
    pub after: Duration,
    /// The least time the rung stays in place once added, even if the
    /// attack stops at once.
    pub hold: Duration,
}

impl RungConfig {
    /// A rung.
    pub fn new(action: Action, after: Duration, hold: Duration) -> RungConfig {
        RungConfig {
            action,
            after,
            hold,
        }
    }

    /// Which rung this is.
    pub fn rung(&self) -> Rung {
        self.action.rung()
    }
}

/// Everything the detector needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The protected networks. Traffic of any other address is ignored
    /// (counted), and no decision ever names an address outside them.
    pub networks: Vec<Prefix>,
    /// The EWMA time constant τ: each tick of length Δt keeps
    /// `exp(-Δt/τ)` of the smoothed rate.
    pub ewma: Duration,
    /// The instantaneous trigger: an address whose rate over *every* tick
    /// has been above a threshold for this long is attacked, whatever its
    /// smoothed rate. Zero fires on the first tick over; `None` is off.
    pub instant: Option<Duration>,
    /// A rung ends only once every rate stayed at or under this fraction
    /// of its threshold (0 < h ≤ 1)…
    pub hysteresis: f64,
    /// …for this long (and the rung's hold time has passed).
    pub calm: Duration,
    /// No IPv4 prefix shorter than this is ever blackholed or announced.
    pub min_prefix_v4: u8,
    /// No IPv6 prefix shorter than this is ever blackholed or announced.
    pub min_prefix_v6: u8,
    /// The most addresses tracked at once; samples of further addresses
    /// are counted as overflow (they still count in group totals).
    pub max_hosts: usize,
    /// An address with no traffic for this long is forgotten.
    pub idle: Duration,
    /// The global profile: every address without a group, and the root
    /// every group inherits from. Unset here is no check.
    pub global: Thresholds,
    /// The global ladder.
    pub ladder: Vec<RungConfig>,
    /// Host groups.
    pub groups: Vec<GroupConfig>,
}

impl Config {
    /// A configuration for `networks` with FastNetMon's well-known
    /// defaults (τ = 5 s, no instantaneous trigger, hysteresis 0.8 for
    /// 30 s, /24 and /48 limits, a million hosts, 60 s idle), no
    /// thresholds and a notify-only ladder held 5 minutes.
    pub fn new(networks: Vec<Prefix>) -> Config {
        Config {
            networks,
            ewma: Duration::from_secs(5),
            instant: None,
            hysteresis: 0.8,
            calm: Duration::from_secs(30),
            min_prefix_v4: 24,
            min_prefix_v6: 48,
            max_hosts: 1_000_000,
            idle: Duration::from_secs(60),
            global: Thresholds::new(),
            ladder: vec![RungConfig::new(
                Action::Notify {
                    script: None,
                    webhook: None,
                    every: None,
                },
                Duration::ZERO,
                Duration::from_secs(300),
            )],
            groups: Vec::new(),
        }
    }

    /// Every mistake in the configuration (empty when it is usable).
    pub fn check(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.ewma.is_zero() {
            errors.push(ConfigError::ZeroEwma);
        }
        if !(self.hysteresis > 0.0 && self.hysteresis <= 1.0) {
            errors.push(ConfigError::Hysteresis);
        }
        if self.min_prefix_v4 > 32 {
            errors.push(ConfigError::MinPrefix { v6: false });
        }
        if self.min_prefix_v6 > 128 {
            errors.push(ConfigError::MinPrefix { v6: true });
        }
        if self.max_hosts == 0 {
            errors.push(ConfigError::NoHosts);
        }
        if self.networks.is_empty() {
            errors.push(ConfigError::NoNetworks);
        }
        for (i, n) in self.networks.iter().enumerate() {
            if n.is_empty() {
                errors.push(ConfigError::DefaultRoute { network: i });
            }
        }
        check_ladder(&self.ladder, None, &mut errors);
        let networks = PrefixSet::new(self.networks.iter().copied());
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut seen_prefixes: HashMap<Prefix, usize> = HashMap::new();
        for (g, group) in self.groups.iter().enumerate() {
            if group.name.is_empty() || group.name == GLOBAL {
                errors.push(ConfigError::ReservedName { group: g });
            } else if names.insert(&group.name, g).is_some() {
                errors.push(ConfigError::DuplicateGroup { group: g });
            }
            if group.prefixes.is_empty() {
                errors.push(ConfigError::NoPrefixes { group: g });
            }
            for (p, prefix) in group.prefixes.iter().enumerate() {
                if !networks.covers(*prefix) {
                    errors.push(ConfigError::OutsideNetworks {
                        group: g,
                        prefix: p,
                    });
                }
                if let Some(&other) = seen_prefixes.get(prefix) {
                    errors.push(ConfigError::PrefixInTwoGroups {
                        group: g,
                        prefix: p,
                        other,
                    });
                } else {
                    seen_prefixes.insert(*prefix, g);
                }
            }
            if let Some(ladder) = &group.ladder {
                check_ladder(ladder, Some(g), &mut errors);
            }
        }
        for (g, group) in self.groups.iter().enumerate() {
            if let Some(parent) = &group.parent {
                if parent != GLOBAL && !names.contains_key(parent.as_str()) {
                    errors.push(ConfigError::UnknownParent { group: g });
                }
            }
        }
        // Cycles: follow parents from each group; a walk longer than the
        // number of groups has looped.
        let mut reported: HashSet<usize> = HashSet::new();
        for g in 0..self.groups.len() {
            let mut at = g;
            let mut steps = 0;
            while let Some(p) = self.groups[at].parent.as_deref() {
                let Some(&next) = names.get(p) else { break };
                at = next;
                steps += 1;
                if at == g || steps > self.groups.len() {
                    if at == g && reported.insert(g) {
                        errors.push(ConfigError::InheritanceCycle { group: g });
                    }
                    break;
                }
            }
        }
        errors
    }
}

/// The name of the global profile, which a group may name as its parent.
pub const GLOBAL: &str = "global";

/// A set of prefixes that answers "does one of them contain all of this
/// prefix?" in at most 33 (IPv4) or 129 (IPv6) hash lookups, whatever its
/// size: ten thousand tenants' prefixes checked against ten thousand
/// networks one by one would be 10^8 comparisons.
#[derive(Clone, Debug, Default)]
pub struct PrefixSet {
    set: HashSet<Prefix>,
}

impl PrefixSet {
    /// The set of `prefixes`.
    pub fn new(prefixes: impl IntoIterator<Item = Prefix>) -> PrefixSet {
        PrefixSet {
            set: prefixes.into_iter().map(Prefix::network).collect(),
        }
    }

    /// Whether a prefix of the set contains all of `p`.
    pub fn covers(&self, p: Prefix) -> bool {
        (0..=p.len())
            .rev()
            .any(|len| self.set.contains(&truncate(p, len)))
    }
}

/// `p` cut to `len` bits.
pub(crate) fn truncate(p: Prefix, len: u8) -> Prefix {
    match p {
        Prefix::V4(a, _) => Prefix::V4(a, len),
        Prefix::V6(a, _) => Prefix::V6(a, len),
    }
    .network()
}

fn check_ladder(ladder: &[RungConfig], group: Option<usize>, errors: &mut Vec<ConfigError>) {
    if ladder.is_empty() {
        errors.push(ConfigError::EmptyLadder { group });
    }
    for (i, r) in ladder.iter().enumerate() {
        if ladder[..i].iter().any(|o| o.rung() == r.rung()) {
            errors.push(ConfigError::RungTwice { group, rung: i });
        }
        if i == 0 && !r.after.is_zero() {
            errors.push(ConfigError::FirstRungAfter { group });
        }
    }
}

/// A mistake in a [`Config`]. Indices point into [`Config::groups`],
/// a group's `prefixes`, [`Config::networks`] or a ladder (`group: None`
/// is the global ladder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The EWMA time constant is zero.
    ZeroEwma,
    /// The hysteresis is not in (0, 1].
    Hysteresis,
    /// A shortest-prefix limit is longer than the address.
    MinPrefix {
        /// For IPv6.
        v6: bool,
    },
    /// `max_hosts` is zero.
    NoHosts,
    /// No networks: nothing would be protected.
    NoNetworks,
    /// A network is `0.0.0.0/0` or `::/0`.
    DefaultRoute {
        /// Which network.
        network: usize,
    },
    /// A ladder has no rung.
    EmptyLadder {
        /// Whose ladder.
        group: Option<usize>,
    },
    /// A rung appears twice in a ladder.
    RungTwice {
        /// Whose ladder.
        group: Option<usize>,
        /// The second one.
        rung: usize,
    },
    /// The first rung has an `after`: it starts at detection.
    FirstRungAfter {
        /// Whose ladder.
        group: Option<usize>,
    },
    /// Two groups share a name, or a group is named `global`.
    DuplicateGroup {
        /// The second one.
        group: usize,
    },
    /// A group is named `global` or has no name.
    ReservedName {
        /// Which group.
        group: usize,
    },
    /// A group has no prefixes.
    NoPrefixes {
        /// Which group.
        group: usize,
    },
    /// A group's prefix is not inside the networks.
    OutsideNetworks {
        /// Which group.
        group: usize,
        /// Which of its prefixes.
        prefix: usize,
    },
    /// The same prefix is in two groups (longest match could not choose).
    PrefixInTwoGroups {
        /// The later group.
        group: usize,
        /// Which of its prefixes.
        prefix: usize,
        /// The earlier group.
        other: usize,
    },
    /// A group's parent is not a group.
    UnknownParent {
        /// Which group.
        group: usize,
    },
    /// A group inherits from itself through its parents.
    InheritanceCycle {
        /// A group on the cycle.
        group: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ladder = |g: &Option<usize>| match g {
            None => "the global ladder".to_string(),
            Some(g) => format!("group #{g}'s ladder"),
        };
        match self {
            ConfigError::ZeroEwma => write!(f, "the EWMA time constant is zero"),
            ConfigError::Hysteresis => write!(f, "the hysteresis is not in (0, 1]"),
            ConfigError::MinPrefix { v6 } => write!(
                f,
                "the shortest {} prefix limit is longer than an address",
                if *v6 { "IPv6" } else { "IPv4" }
            ),
            ConfigError::NoHosts => write!(f, "max_hosts is zero"),
            ConfigError::NoNetworks => write!(f, "no networks are protected"),
            ConfigError::DefaultRoute { network } => {
                write!(f, "network #{network} is a default route")
            }
            ConfigError::EmptyLadder { group } => write!(f, "{} has no rung", ladder(group)),
            ConfigError::RungTwice { group, rung } => {
                write!(f, "rung #{rung} appears twice in {}", ladder(group))
            }
            ConfigError::FirstRungAfter { group } => {
                write!(f, "the first rung of {} has an `after`", ladder(group))
            }
            ConfigError::DuplicateGroup { group } => write!(f, "group #{group}'s name is taken"),
            ConfigError::ReservedName { group } => {
                write!(f, "group #{group} has no name or is named `{GLOBAL}`")
            }
            ConfigError::NoPrefixes { group } => write!(f, "group #{group} has no prefixes"),
            ConfigError::OutsideNetworks { group, prefix } => write!(
                f,
                "prefix #{prefix} of group #{group} is outside the protected networks"
            ),
            ConfigError::PrefixInTwoGroups {
                group,
                prefix,
                other,
            } => write!(
                f,
                "prefix #{prefix} of group #{group} is also in group #{other}"
            ),
            ConfigError::UnknownParent { group } => {
                write!(f, "group #{group} inherits from an unknown group")
            }
            ConfigError::InheritanceCycle { group } => {
                write!(f, "group #{group} inherits from itself")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// An invalid configuration given to [`crate::Detector::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidConfig(pub Vec<ConfigError>);

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the guard configuration is invalid: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidConfig {}
