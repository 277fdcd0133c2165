//! The objects of a kernel plan.

use net_types::{ClassId, IfName, Prefix, Rate, Size};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The name of tollgate's nftables table (family `netdev`). Tollgate owns
/// everything in it and nothing outside it.
pub const NFT_TABLE: &str = "tollgate";

/// The names of the eBPF classifier's maps begin with this; no nftables map
/// of tollgate's does, so a change to an element names its backend.
pub const BPF_MAP_PREFIX: &str = "tg_";

/// Where tollgate pins its BPF programs and maps (bpffs), one folder per
/// network namespace below it.
pub const BPF_PIN_DIR: &str = "/sys/fs/bpf/tollgate";

/// Whether the map named `name` is one of the eBPF classifier's.
pub fn is_bpf_map(name: &str) -> bool {
    name.starts_with(BPF_MAP_PREFIX)
}

/// The first tc filter priority tollgate uses on a clsact hook. Filters at
/// `FILTER_PRIO_BASE..FILTER_PRIO_BASE + 256` are tollgate's; others are not.
pub const FILTER_PRIO_BASE: u16 = 0xc000;

/// Serializes a map as a list of `{ "key": …, "value": … }`, because most
/// of the plan's keys are structures and JSON object keys must be strings.
pub fn as_entries<K: Serialize, V: Serialize, S: serde::Serializer>(
    map: &BTreeMap<K, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a, K, V> {
        key: &'a K,
        value: &'a V,
    }
    s.collect_seq(map.iter().map(|(key, value)| Entry { key, value }))
}

/// Reads what [`as_entries`] wrote.
pub fn from_entries<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Entry<K, V> {
        key: K,
        value: V,
    }
    let list: Vec<Entry<K, V>> = Deserialize::deserialize(d)?;
    Ok(list.into_iter().map(|e| (e.key, e.value)).collect())
}

/// Everything tollgate wants to exist in the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Devices tollgate creates (IFBs).
    pub links: BTreeMap<IfName, Link>,
    /// Qdiscs, by device and attachment point.
    #[serde(serialize_with = "as_entries")]
    pub qdiscs: BTreeMap<QdiscKey, Qdisc>,
    /// HTB classes, by device and handle.
    #[serde(serialize_with = "as_entries")]
    pub classes: BTreeMap<ClassKey, Class>,
    /// tc filters on clsact hooks.
    #[serde(serialize_with = "as_entries")]
    pub filters: BTreeMap<FilterKey, Filter>,
    /// nftables chains in tollgate's table, by name.
    pub chains: BTreeMap<String, Chain>,
    /// nftables maps in tollgate's table, by name.
    pub maps: BTreeMap<String, NftMap>,
}

/// A device tollgate creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// An intermediate functional block: a device that only exists to hold a qdisc.
    Ifb,
}

/// Where a qdisc is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attach {
    /// The device's root (egress) qdisc.
    Root,
    /// The clsact pseudo-qdisc that holds ingress and egress filters.
    Clsact,
    /// The leaf qdisc of an HTB class: how one HTB tree nests inside
    /// another, so that no single qdisc holds many classes.
    Class(ClassId),
}

/// Identifies a qdisc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct QdiscKey {
    /// The device.
    pub dev: IfName,
    /// Where on it.
    pub attach: Attach,
}

/// A qdisc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qdisc {
    /// A hierarchical token bucket.
    Htb {
        /// Its handle's major number.
        major: u16,
        /// The minor of the class that catches unclassified packets.
        default_minor: u16,
    },
    /// clsact, for filters on the egress and ingress hooks.
    Clsact,
}

/// Identifies an HTB class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClassKey {
    /// The device whose qdisc holds it.
    pub dev: IfName,
    /// Its handle.
    pub id: ClassId,
}

/// An HTB class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Class {
    /// The class (or qdisc, minor 0) it sits under. HTB cannot change this
    /// in place: a new parent means a new class.
    pub parent: ClassId,
    /// Guaranteed rate.
    pub rate: Rate,
    /// Borrowing limit.
    pub ceil: Rate,
    /// Burst at above `rate`, if not the kernel's default.
    pub burst: Option<Size>,
    /// Burst at above `ceil`, if not the kernel's default.
    pub cburst: Option<Size>,
    /// HTB priority: lower is served first when borrowing.
    pub prio: u8,
    /// Bytes served per round when borrowing; equal quanta share fairly.
    pub quantum: u32,
}

/// Where a filter sits: a clsact hook, or the device's root HTB qdisc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// Packets leaving the device (clsact).
    Egress,
    /// Packets arriving on the device (clsact).
    Ingress,
    /// The classifier list of the device's root HTB qdisc.
    Root,
}

/// Identifies a tc filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FilterKey {
    /// The device.
    pub dev: IfName,
    /// The hook.
    pub hook: Hook,
    /// The filter priority (tollgate uses [`FILTER_PRIO_BASE`] and up).
    pub prio: u16,
}

/// A tc filter: which packets go where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// Which packets, or which class.
    pub select: Select,
    /// The IFB they are redirected to; `None` for a filter that only picks
    /// a class.
    pub redirect_to: Option<IfName>,
}

/// How a filter selects packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// Every packet.
    All,
    /// Packets whose `skb->mark` equals this value. Tollgate's nftables
    /// chain sets it from the HTB major the packet was classified into.
    Mark(u32),
    /// Every packet with a nonzero mark, classified into
    /// `major:(mark & 0xffff)`: the program returns the class handle
    /// itself, which cls_bpf hands to HTB.
    MarkToClass(u16),
    /// tollgate's eBPF classifier (crates/bpf-classify): the program writes
    /// the class into `skb->priority` and the shard into the mark, and the
    /// filter's redirect takes every packet to the IFB.
    Ebpf(Program),
}

/// Which of the eBPF classifier's programs a filter runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    /// Upload where it leaves the host: the tenant by source address.
    Up,
    /// Download: the tenant by destination address.
    Down,
    /// Download leaving a VM's interface: the tenant by the interface.
    DownVif,
    /// A VM's upload where it enters the host (the vif's ingress): only
    /// its tenant's packets are redirected, and marked as shaped so the
    /// uplink's program lets them pass.
    UpVm,
}

impl Program {
    /// Every program.
    pub const ALL: [Program; 4] = [Program::Up, Program::Down, Program::DownVif, Program::UpVm];

    /// The program's (function's) name in the object and in the kernel.
    pub fn name(self) -> &'static str {
        match self {
            Program::Up => "tg_up",
            Program::Down => "tg_down",
            Program::DownVif => "tg_down_vif",
            Program::UpVm => "tg_up_vm",
        }
    }

    /// The program named `name`, if it is one of tollgate's.
    pub fn from_name(name: &str) -> Option<Program> {
        Program::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl Select {
    /// The selector as classic BPF bytecode in `tc … bpf bytecode` notation.
    ///
    /// Classic BPF is used because this kernel has neither cls_fw nor u32
    /// mark matching, and a four-instruction program needs no compiler.
    pub fn bytecode(self) -> String {
        match self {
            // Not classic BPF: loaded from the embedded object, never from
            // text; `tc` names it by its pinned path (see render).
            Select::Ebpf(_) => String::new(),
            // ret #-1: match, use the filter's default class.
            Select::All => "1,6 0 0 4294967295".into(),
            // ld #mark (SKF_AD_OFF + SKF_AD_MARK); jeq #v ? next : skip; ret #-1; ret #0
            Select::Mark(v) => format!("4,32 0 0 4294963220,21 0 1 {v},6 0 0 4294967295,6 0 0 0"),
            // ld #mark; and #0xffff; jeq #0 ? ret #0 : next; or #major<<16; ret a; ret #0
            // (masked first: the eBPF classifier's flags in the high bits
            // leave a packet of no shard unclassified, as mark 0 does)
            Select::MarkToClass(major) => format!(
                "6,32 0 0 4294963220,84 0 0 65535,21 2 0 0,68 0 0 {},22 0 0 0,6 0 0 0",
                (major as u32) << 16
            ),
        }
    }

    /// The same program as (code, jt, jf, k) instructions, for netlink.
    pub fn instructions(self) -> Vec<(u16, u8, u8, u32)> {
        let text = self.bytecode();
        text.split(',')
            .skip(1)
            .filter_map(|ins| {
                let mut f = ins.split(' ').map(|n| n.parse::<u64>().ok());
                Some((
                    f.next()?? as u16,
                    f.next()?? as u8,
                    f.next()?? as u8,
                    f.next()?? as u32,
                ))
            })
            .collect()
    }
}

/// Which netdev hook a base chain is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChainHook {
    /// The device.
    pub dev: IfName,
}

/// An nftables chain in tollgate's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// For a base chain, the device whose egress it hooks.
    pub hook: Option<ChainHook>,
    /// Its rules, in nft syntax, in order.
    pub rules: Vec<String>,
}

/// What an nftables map is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// IPv4 destination or source prefix → realm (`0:realm`).
    Realm4,
    /// IPv6 prefix → realm.
    Realm6,
    /// A tenant's IPv4 prefix → its tenant id, as a packet mark. One map
    /// serves both directions (looked up by source or destination).
    Tenants4,
    /// A tenant's IPv6 prefix → its tenant id.
    Tenants6,
    /// A VM's interface → its tenant id (download, hypervisor mode).
    VifTenants,
    /// Tenant id . realm → class. Moving a tenant changes only its
    /// elements here: a hash map, where an element changes in constant
    /// time, unlike an interval map keyed by address (see docs/dataplane.md).
    TenantClasses,
    /// HTB class range → packet mark, to steer packets to their shard.
    Shard,
    /// Owner id → first class of its block: tollgate's record of which
    /// classes belong to whom, read back on restart. No rule uses it.
    Registry,
    /// eBPF classifier (not nftables): IPv4 prefix → tenant id (LPM trie).
    BpfTenants4,
    /// eBPF: IPv6 prefix → tenant id (LPM trie).
    BpfTenants6,
    /// eBPF: remote IPv4 prefix → realm (`0:realm`, LPM trie).
    BpfRealms4,
    /// eBPF: remote IPv6 prefix → realm (LPM trie).
    BpfRealms6,
    /// eBPF: a VM's interface → tenant id (hash, by ifindex in the kernel).
    BpfVifs,
    /// eBPF: tenant id . realm → the realm's class (hash).
    BpfClasses,
    /// eBPF: the program's settings and band rules as numbered 32-bit
    /// words (array; a word not listed is zero).
    BpfConfig,
    /// The guard's set of IPv4 prefixes (an nftables *set*, interval):
    /// the `drop` rung's victims or a `throttle` rung's (crate::guard).
    /// Its elements are the guard's, never the plan's: diff leaves them.
    GuardAddr4,
    /// The guard's set of IPv6 prefixes.
    GuardAddr6,
    /// The guard's set of IPv4 prefix . protocol . source port (interval),
    /// the `drop` rung's signatures.
    GuardSig4,
    /// The same for IPv6.
    GuardSig6,
}

impl MapKind {
    /// Whether this is a map of the eBPF classifier (a BPF map in the
    /// kernel) rather than one in tollgate's nftables table.
    pub fn is_bpf(self) -> bool {
        matches!(
            self,
            MapKind::BpfTenants4
                | MapKind::BpfTenants6
                | MapKind::BpfRealms4
                | MapKind::BpfRealms6
                | MapKind::BpfVifs
                | MapKind::BpfClasses
                | MapKind::BpfConfig
        )
    }

    /// Whether this is one of the guard's sets: an nftables set (no
    /// value) whose elements the guard adds and removes while its rungs
    /// hold, so that the plan declares it empty and diff never touches
    /// its elements.
    pub fn is_guard_set(self) -> bool {
        matches!(
            self,
            MapKind::GuardAddr4 | MapKind::GuardAddr6 | MapKind::GuardSig4 | MapKind::GuardSig6
        )
    }

    /// The map's `typeof` declaration in nft syntax.
    pub fn declaration(self) -> &'static str {
        match self {
            MapKind::Realm4 => "typeof ip daddr : meta priority; flags interval",
            MapKind::Realm6 => "typeof ip6 daddr : meta priority; flags interval",
            MapKind::Tenants4 => "typeof ip daddr : meta mark; flags interval",
            MapKind::Tenants6 => "typeof ip6 daddr : meta mark; flags interval",
            MapKind::VifTenants => "typeof meta oifname : meta mark",
            MapKind::TenantClasses => "typeof meta mark . meta priority : meta priority",
            MapKind::Shard => "typeof meta priority : meta mark; flags interval",
            MapKind::Registry => "typeof meta mark : meta priority",
            MapKind::GuardAddr4 => "typeof ip daddr; flags interval",
            MapKind::GuardAddr6 => "typeof ip6 daddr; flags interval",
            // `typeof … th sport` is refused by nft 1.0.6: data type names.
            MapKind::GuardSig4 => "type ipv4_addr . inet_proto . inet_service; flags interval",
            MapKind::GuardSig6 => "type ipv6_addr . inet_proto . inet_service; flags interval",
            // Never rendered into the nftables table (see `is_bpf`).
            MapKind::BpfTenants4
            | MapKind::BpfTenants6
            | MapKind::BpfRealms4
            | MapKind::BpfRealms6
            | MapKind::BpfVifs
            | MapKind::BpfClasses
            | MapKind::BpfConfig => "",
        }
    }
}

/// An nftables map and its elements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NftMap {
    /// Key and value types.
    pub kind: MapKind,
    /// The elements.
    #[serde(serialize_with = "as_entries")]
    pub elements: BTreeMap<MapKey, MapValue>,
}

/// A map element's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKey {
    /// A prefix.
    Prefix(Prefix),
    /// An interface name.
    Interface(IfName),
    /// A tenant id and a realm scratch value.
    TenantRealm(u32, u16),
    /// A range of class handles, both ends included.
    ClassRange(ClassId, ClassId),
    /// A plain number.
    Number(u32),
}

/// A map element's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapValue {
    /// A class handle (`meta priority`).
    Class(ClassId),
    /// A packet mark.
    Mark(u32),
}

impl fmt::Display for MapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapKey::Prefix(p) => write!(f, "{p}"),
            MapKey::Interface(i) => write!(f, "\"{i}\""),
            MapKey::TenantRealm(t, r) => write!(f, "{t} . 0:{r:x}"),
            MapKey::ClassRange(a, b) => write!(f, "{a}-{b}"),
            MapKey::Number(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for MapValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapValue::Class(c) => write!(f, "{c}"),
            MapValue::Mark(m) => write!(f, "0x{m:x}"),
        }
    }
}

/// Names one object of a plan, for provenance and change sets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectId {
    /// A device.
    Link(IfName),
    /// A qdisc.
    Qdisc(QdiscKey),
    /// A class.
    Class(ClassKey),
    /// A filter.
    Filter(FilterKey),
    /// A chain.
    Chain(String),
    /// A map.
    Map(String),
    /// One element of a map.
    Element(String, MapKey),
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectId::Link(n) => write!(f, "link {n}"),
            ObjectId::Qdisc(k) => match k.attach {
                Attach::Class(c) => write!(f, "qdisc under class {c} on {}", k.dev),
                a => write!(f, "qdisc {a:?} on {}", k.dev),
            },
            ObjectId::Class(k) => write!(f, "class {} on {}", k.id, k.dev),
            ObjectId::Filter(k) => write!(f, "filter {:?} prio {} on {}", k.hook, k.prio, k.dev),
            ObjectId::Chain(c) => write!(f, "nft chain {c}"),
            ObjectId::Map(m) => write!(f, "nft map {m}"),
            ObjectId::Element(m, k) => write!(f, "nft element {m}[{k}]"),
        }
    }
}

impl Plan {
    /// The number of objects, counting each map element as one.
    pub fn object_count(&self) -> usize {
        self.links.len()
            + self.qdiscs.len()
            + self.classes.len()
            + self.filters.len()
            + self.chains.len()
            + self.maps.len()
            + self.maps.values().map(|m| m.elements.len()).sum::<usize>()
    }

    /// Whether the object exists in this plan.
    pub fn contains(&self, id: &ObjectId) -> bool {
        match id {
            ObjectId::Link(n) => self.links.contains_key(n),
            ObjectId::Qdisc(k) => self.qdiscs.contains_key(k),
            ObjectId::Class(k) => self.classes.contains_key(k),
            ObjectId::Filter(k) => self.filters.contains_key(k),
            ObjectId::Chain(c) => self.chains.contains_key(c),
            ObjectId::Map(m) => self.maps.contains_key(m),
            ObjectId::Element(m, k) => self.maps.get(m).is_some_and(|m| m.elements.contains_key(k)),
        }
    }
}
