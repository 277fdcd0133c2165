//! Classification: the nftables maps and chains that write each packet's
//! class into `skb->priority`, the redirect filters, and the registry.

use super::{dir_index, Builder};
use crate::facts::{Owner, Placement};
use crate::provenance::{Role, Serves};
use crate::{shard_major, REG_NODES, REG_TENANTS};
use net_types::{ClassId, IfName, RealmId};
use plan::*;
use policy::{Band, BandMatch, Direction, Mode, Tenant};
use std::collections::BTreeMap;

impl Builder<'_> {
    pub(super) fn map(&mut self, name: &str, kind: MapKind) -> &mut NftMap {
        self.plan
            .maps
            .entry(name.to_owned())
            .or_insert_with(|| NftMap {
                kind,
                elements: BTreeMap::new(),
            })
    }

    fn element(&mut self, map: &'static str, key: MapKey, value: MapValue, serves: Serves) {
        self.prov
            .add(ObjectId::Element(map.to_owned(), key.clone()), serves);
        self.elements.entry(map).or_default().push((key, value));
    }

    pub(super) fn classification(
        &mut self,
        vifs: &[(&Tenant, IfName, u16)],
        placements: &BTreeMap<Owner, Placement>,
    ) {
        let policy = self.policy;
        let site = &policy.site;
        let ebpf = site.classifier == Some(policy::ClassifierKind::Ebpf);
        // The eBPF classifier holds the same contents in BPF maps of its
        // own (crates/bpf-classify): same keys, same values.
        let nm = |name: &'static str| -> &'static str {
            if !ebpf {
                return name;
            }
            match name {
                "realm4" => "tg_realms4",
                "realm6" => "tg_realms6",
                "tenants4" => "tg_tenants4",
                "tenants6" => "tg_tenants6",
                "vif_tenants" => "tg_vifs",
                "tenant_classes" => "tg_classes",
                other => other,
            }
        };
        let kind = |k: MapKind| -> MapKind {
            if !ebpf {
                return k;
            }
            match k {
                MapKind::Realm4 => MapKind::BpfRealms4,
                MapKind::Realm6 => MapKind::BpfRealms6,
                MapKind::Tenants4 => MapKind::BpfTenants4,
                MapKind::Tenants6 => MapKind::BpfTenants6,
                MapKind::VifTenants => MapKind::BpfVifs,
                MapKind::TenantClasses => MapKind::BpfClasses,
                other => other,
            }
        };
        // Realm maps: remote address → realm scratch value. The policy's
        // prefix lists and the routes' realms may nest, and an interval map
        // holds no overlaps, so they are flattened to disjoint prefixes
        // first (see `realm_ranges`).
        self.map(nm("realm4"), kind(MapKind::Realm4));
        self.map(nm("realm6"), kind(MapKind::Realm6));
        let from_policy = policy.realms.list.iter().flat_map(|r| {
            r.prefixes
                .iter()
                .map(move |(pfx, _)| (*pfx, r.id, crate::realm_ranges::Source::Policy))
        });
        let from_routes = self
            .route_realms
            .iter()
            .map(|(pfx, realm)| (*pfx, *realm, crate::realm_ranges::Source::Route));
        let flat =
            crate::realm_ranges::flatten(from_policy.chain(from_routes), policy.realms.default);
        for (pfx, realm) in flat {
            let map = nm(if pfx.is_ipv4() { "realm4" } else { "realm6" });
            let serves = Serves {
                realm: Some(realm),
                ..Serves::new(Role::RealmPrefix)
            };
            self.element(
                map,
                MapKey::Prefix(pfx),
                MapValue::Class(ClassId::new(0, realm.0)),
                serves,
            );
        }
        // Tenant maps, in two steps so that moving a tenant changes hash
        // map elements only: its addresses (or its vif) → its id, as a
        // mark, then id . realm → class. Without realms, the realm scratch
        // value is always 0. Both directions share the maps: only the
        // address looked up differs.
        let keys: Vec<u16> = if self.realms.is_empty() {
            vec![0]
        } else {
            self.realms.iter().map(|r| r.0).collect()
        };
        let hypervisor = site.mode == Mode::Hypervisor;
        self.map(nm("tenants4"), kind(MapKind::Tenants4));
        self.map(nm("tenants6"), kind(MapKind::Tenants6));
        if hypervisor {
            self.map(nm("vif_tenants"), kind(MapKind::VifTenants));
        }
        self.map(nm("tenant_classes"), kind(MapKind::TenantClasses));
        for t in &policy.tenants {
            let Some(base) = placements.get(&Owner::Tenant(t.id)).map(Placement::base) else {
                continue;
            };
            let id = MapValue::Mark(t.id.0);
            let serves = Serves::new(Role::TenantClassifier).tenant(t.id);
            for (pfx, _) in &t.prefixes {
                let map = nm(if pfx.is_ipv4() {
                    "tenants4"
                } else {
                    "tenants6"
                });
                self.element(map, MapKey::Prefix(*pfx), id, serves);
            }
            if let (true, Some(vif)) = (hypervisor, t.interface) {
                self.element(nm("vif_tenants"), MapKey::Interface(vif), id, serves);
            }
            for (g, realm) in keys.iter().enumerate() {
                let minor = if self.realms.is_empty() {
                    base.minor
                } else {
                    base.minor + 4 * (g as u16 + 1)
                };
                let serves = Serves {
                    realm: (*realm != 0).then_some(RealmId(*realm)),
                    ..serves
                };
                self.element(
                    nm("tenant_classes"),
                    MapKey::TenantRealm(t.id.0, *realm),
                    MapValue::Class(ClassId::new(base.major, minor)),
                    serves,
                );
            }
        }
        if ebpf {
            self.ebpf_classification(vifs);
            return;
        }
        for dir in Direction::BOTH {
            let by_vif = dir == Direction::Down && hypervisor;
            self.classify_chain(dir, by_vif);
        }
        if policy.bands.is_some() {
            self.bands_chain();
        }
        {
            self.map("shards", MapKind::Shard);
            for s in 0..self.shards {
                let major = shard_major(s);
                let key = MapKey::ClassRange(ClassId::new(major, 0), ClassId::new(major, 0xffff));
                self.element(
                    "shards",
                    key,
                    MapValue::Mark(major as u32),
                    Serves {
                        shard: Some(s),
                        ..Serves::new(Role::ShardSteering)
                    },
                );
            }
            // Packets of no tenant carry major 0. Mark 0 sends them to the
            // root tree's default class, and clears any mark that could
            // otherwise be mistaken for a shard.
            let key = MapKey::ClassRange(ClassId::new(0, 0), ClassId::new(0, 0xffff));
            self.element(
                "shards",
                key,
                MapValue::Mark(0),
                Serves {
                    shard: Some(0),
                    ..Serves::new(Role::ShardSteering)
                },
            );
        }
        // Hooks: where traffic is seen, per direction.
        self.hook(Direction::Up, site.uplink, None);
        match site.mode {
            Mode::Router => {
                if let Some(lan) = site.lan {
                    self.hook(Direction::Down, lan, None);
                }
            }
            Mode::Hypervisor => {
                for (t, vif, _) in vifs {
                    self.hook(Direction::Down, *vif, Some(t));
                }
            }
        }
    }

    /// The eBPF classifier's settings and its filters: one program per
    /// hook replaces the nftables chains, the shard map and the classic
    /// BPF redirect (the program writes the shard into the mark itself).
    fn ebpf_classification(&mut self, vifs: &[(&Tenant, IfName, u16)]) {
        let site = &self.policy.site;
        self.map("tg_config", MapKind::BpfConfig);
        let throttle = self.guard.throttle_classes();
        for (word, value) in
            bpf_classify::config_words(self.policy, !self.realms.is_empty(), &throttle)
        {
            self.element(
                "tg_config",
                MapKey::Number(word),
                MapValue::Mark(value),
                Serves::new(Role::BandsChain),
            );
        }
        self.ebpf_hook(Direction::Up, site.uplink, Hook::Egress, Program::Up, None);
        match site.mode {
            Mode::Router => {
                if let Some(lan) = site.lan {
                    self.ebpf_hook(Direction::Down, lan, Hook::Egress, Program::Down, None);
                }
            }
            Mode::Hypervisor => {
                for (t, vif, _) in vifs {
                    self.ebpf_hook(
                        Direction::Down,
                        *vif,
                        Hook::Egress,
                        Program::DownVif,
                        Some(t),
                    );
                    // The VM's upload where it enters the host, so that
                    // traffic to another VM on this host is shaped too.
                    self.ebpf_hook(Direction::Up, *vif, Hook::Ingress, Program::UpVm, Some(t));
                }
            }
        }
    }

    fn ebpf_hook(
        &mut self,
        dir: Direction,
        dev: IfName,
        hook: Hook,
        program: Program,
        vif: Option<&Tenant>,
    ) {
        let owner = |s: Serves| match vif {
            Some(t) => s.tenant(t.id),
            None => s,
        };
        let qk = QdiscKey {
            dev,
            attach: Attach::Clsact,
        };
        self.prov.add(
            ObjectId::Qdisc(qk),
            owner(Serves::new(Role::Clsact).dir(dir)),
        );
        self.plan.qdiscs.insert(qk, Qdisc::Clsact);
        let key = FilterKey {
            dev,
            hook,
            prio: FILTER_PRIO_BASE,
        };
        self.prov.add(
            ObjectId::Filter(key),
            owner(Serves::new(Role::Redirect).dir(dir)),
        );
        self.plan.filters.insert(
            key,
            Filter {
                select: Select::Ebpf(program),
                redirect_to: self.redirect(dir, dev),
            },
        );
    }

    /// Where a hook on `dev` sends its packets: the direction's IFB, or
    /// nowhere when the tree is on `dev` itself (`shape_on = "interface"`:
    /// the clsact egress hook runs before the root qdisc's enqueue, so
    /// the class and mark it writes are what the root HTB reads).
    fn redirect(&self, dir: Direction, dev: IfName) -> Option<IfName> {
        let tree = self.devs[dir_index(dir)];
        (tree != dev).then_some(tree)
    }

    fn classify_chain(&mut self, dir: Direction, by_vif: bool) {
        let default = self.policy.realms.default.0;
        let (remote, local) = match dir {
            Direction::Up => ("daddr", "saddr"),
            Direction::Down => ("saddr", "daddr"),
        };
        let d = dir.as_str();
        let mut rules = vec![format!("meta priority set 0:{default:x}")];
        // Unbilled broadcast and multicast stop here, with no tenant: the
        // hook chain then marks them for the root tree's default class.
        rules.extend(unbilled_rules(&self.policy.site));
        if !self.realms.is_empty() {
            rules.push(format!("meta priority set ip {remote} map @realm4"));
            rules.push(format!("meta priority set ip6 {remote} map @realm6"));
        }
        // The mark carries the tenant id from one lookup to the next; it is
        // cleared first so that no foreign mark is mistaken for a tenant,
        // and the hook chain overwrites it with the shard's afterwards.
        rules.push("meta mark set 0".into());
        if by_vif {
            rules.push("meta mark set meta oifname map @vif_tenants".into());
        } else {
            rules.push(format!("meta mark set ip {local} map @tenants4"));
            rules.push(format!("meta mark set ip6 {local} map @tenants6"));
        }
        rules.push("meta priority set meta mark . meta priority map @tenant_classes".into());
        if self.policy.bands.is_some() {
            rules.push("goto bands".into());
        }
        let name = format!("classify_{d}");
        self.prov.add(
            ObjectId::Chain(name.clone()),
            Serves::new(Role::ClassifyChain).dir(dir),
        );
        self.plan.chains.insert(name, Chain { hook: None, rules });
    }

    fn bands_chain(&mut self) {
        let Some(bands) = &self.policy.bands else {
            return;
        };
        let mut rules = Vec::new();
        for (band, m) in [
            (Band::Interactive, &bands.interactive),
            (Band::Bulk, &bands.bulk),
        ] {
            let set = format!(
                "meta priority set meta priority | 0x{:x} return",
                band.index() + 1
            );
            rules.extend(match_rules(m).into_iter().map(|r| format!("{r} {set}")));
        }
        rules.push(format!(
            "meta priority set meta priority | 0x{:x}",
            Band::Normal.index() + 1
        ));
        self.prov.add(
            ObjectId::Chain("bands".into()),
            Serves::new(Role::BandsChain),
        );
        self.plan
            .chains
            .insert("bands".into(), Chain { hook: None, rules });
    }

    /// The base chain and the redirect filters on one interface's egress.
    fn hook(&mut self, dir: Direction, dev: IfName, vif: Option<&Tenant>) {
        let d = dir.as_str();
        // The guard's drops first (nothing else to do for those packets),
        // its throttle classes last (they win over the tenant's class).
        let mut rules = self.guard_drop_rules(dir);
        rules.push(format!("jump classify_{d}"));
        // Still holding the tenant id (0: none) until the shard's mark.
        rules.extend(self.guard_unused_rules(dir));
        rules.push("meta mark set meta priority map @shards".into());
        rules.extend(self.guard_throttle_rules(dir));
        let name = format!("{d}_{dev}");
        let owner = |s: Serves| match vif {
            Some(t) => s.tenant(t.id),
            None => s,
        };
        self.prov.add(
            ObjectId::Chain(name.clone()),
            owner(Serves::new(Role::HookChain).dir(dir)),
        );
        self.plan.chains.insert(
            name,
            Chain {
                hook: Some(ChainHook { dev }),
                rules,
            },
        );
        // With the tree on `dev` itself, nftables' egress hook (which runs
        // before tc's) has written the class and the shard's mark before
        // the root qdisc's enqueue: no clsact and no redirect are needed.
        let Some(redirect_to) = self.redirect(dir, dev) else {
            return;
        };
        let qk = QdiscKey {
            dev,
            attach: Attach::Clsact,
        };
        self.prov.add(
            ObjectId::Qdisc(qk),
            owner(Serves::new(Role::Clsact).dir(dir)),
        );
        self.plan.qdiscs.insert(qk, Qdisc::Clsact);
        let key = FilterKey {
            dev,
            hook: Hook::Egress,
            prio: FILTER_PRIO_BASE,
        };
        self.prov.add(
            ObjectId::Filter(key),
            owner(Serves::new(Role::Redirect).dir(dir)),
        );
        self.plan.filters.insert(
            key,
            Filter {
                select: Select::All,
                redirect_to: Some(redirect_to),
            },
        );
    }

    pub(super) fn registry(&mut self, placements: &BTreeMap<Owner, Placement>) {
        self.map(REG_NODES, MapKind::Registry);
        self.map(REG_TENANTS, MapKind::Registry);
        for (owner, p) in placements {
            let (map, id, serves) = match owner {
                Owner::Node(n) => (
                    REG_NODES,
                    *n as u32,
                    Serves {
                        node: Some(*n),
                        ..Serves::new(Role::Registry)
                    },
                ),
                Owner::Tenant(t) => (REG_TENANTS, t.0, Serves::new(Role::Registry).tenant(*t)),
            };
            self.element(map, MapKey::Number(id), MapValue::Class(p.base()), serves);
        }
    }
}

/// The Ethernet destination's first 48 bits: all ones is broadcast.
const LL_BROADCAST: &str = "@ll,0,48 0xffffffffffff";
/// The I/G bit of the Ethernet destination: set for every group address,
/// broadcast included.
const LL_GROUP: &str = "@ll,0,8 & 0x1 == 0x1";

/// The rules that keep broadcast and multicast out of tenant classes, as
/// `[site] bill_broadcast` and `bill_multicast` say.
///
/// The Ethernet destination is matched with raw link-layer payload: on a
/// netdev egress hook `meta pkttype` is only right for frames that came in
/// on another port (a frame the host itself sends is `host`), and
/// `ether daddr` would add an `iiftype` check that never matches on egress.
/// On a device without a link-layer header (a tunnel) the raw match does not
/// apply, so the IP destinations are matched as well.
pub(crate) fn unbilled_rules(site: &policy::Site) -> Vec<String> {
    let mut out = Vec::new();
    if !site.bill_broadcast {
        out.push(format!("{LL_BROADCAST} return"));
        out.push("ip daddr 255.255.255.255 return".into());
    }
    if !site.bill_multicast {
        // Broadcast is a group address too: when it is billed, spare it.
        let group = if site.bill_broadcast {
            format!("@ll,0,48 != 0xffffffffffff {LL_GROUP}")
        } else {
            LL_GROUP.to_string()
        };
        out.push(format!("{group} return"));
        out.push("ip daddr 224.0.0.0/4 return".into());
        out.push("ip6 daddr ff00::/8 return".into());
    }
    out
}

/// The nft match expressions for one band's rules, one per line.
fn match_rules(m: &BandMatch) -> Vec<String> {
    let mut out = Vec::new();
    if !m.dscp.is_empty() {
        let set = m
            .dscp
            .iter()
            .map(|d| format!("0x{d:02x}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(format!("ip dscp {{ {set} }}"));
        out.push(format!("ip6 dscp {{ {set} }}"));
    }
    if !m.protocols.is_empty() {
        out.push(format!("meta l4proto {{ {} }}", m.protocols.join(", ")));
    }
    for (proto, name) in [
        (policy::Transport::Tcp, "tcp"),
        (policy::Transport::Udp, "udp"),
    ] {
        let ports: Vec<String> = m
            .ports
            .iter()
            .filter(|p| p.protocol == proto)
            .map(|p| {
                if p.from == p.to {
                    p.from.to_string()
                } else {
                    format!("{}-{}", p.from, p.to)
                }
            })
            .collect();
        if !ports.is_empty() {
            // Either end: the server's port is the destination on the way
            // out and the source on the way back.
            out.push(format!("{name} dport {{ {} }}", ports.join(", ")));
            out.push(format!("{name} sport {{ {} }}", ports.join(", ")));
        }
    }
    if let Some(len) = m.small_tcp_acks {
        out.push(format!(
            "tcp flags & (fin | syn | rst | ack) == ack meta length <= {len}"
        ));
    }
    out
}
