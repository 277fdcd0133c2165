//! Building the plan: devices, HTB trees, and classification.

use crate::alloc::{self, Want};
use crate::facts::{HostFacts, Live, Owner, Placement};
use crate::provenance::{Provenance, Serves};
use crate::{ifb_name, shard_major, Compiled, DEFAULT_MINOR, REG_NODES, REG_TENANTS, ROOT_MINOR};
use net_types::{ClassId, IfName, Rate, RealmId};
use plan::*;
use policy::{Band, BandMatch, Diagnostic, Direction, Mode, Policy, Shape, Tenant};
use std::collections::BTreeMap;

/// The smallest rate tollgate gives a class: HTB cannot shape at zero, and
/// 8 kbit/s still lets a starved class send a packet now and then.
const MIN_RATE: u64 = 8_000;

fn min_rate() -> Rate {
    Rate::from_bps(MIN_RATE).expect("nonzero")
}

/// HTB's quantum: how many bytes a class sends per round when borrowing.
/// It follows the rate (as HTB's own r2q would) but stays between one MTU
/// and 60 kB, so that slow classes are not starved and fast ones do not
/// trigger the kernel's "quantum is big" warning.
fn quantum(rate: Rate) -> u32 {
    (rate.bytes_per_second() / 10).clamp(1514, 60_000) as u32
}

fn class(parent: ClassId, rate: Rate, ceil: Rate, prio: u8) -> Class {
    let rate = rate.min(ceil);
    Class {
        parent,
        rate,
        ceil,
        burst: None,
        cburst: None,
        prio,
        quantum: quantum(rate),
    }
}

fn shaped(parent: ClassId, s: Shape, prio: u8) -> Class {
    Class {
        burst: s.burst,
        cburst: s.cburst,
        ..class(parent, s.rate, s.ceil, prio)
    }
}

struct Builder<'p> {
    policy: &'p Policy,
    plan: Plan,
    prov: Provenance,
    /// Realms in id order; empty if the policy has none.
    realms: Vec<(RealmId, String)>,
    bands: bool,
    /// How many tenants each plan has, for sharing a pool.
    members: BTreeMap<&'p str, u64>,
}

/// The realm scratch values a tenant's classification elements are keyed by.
fn realm_keys(b: &Builder<'_>) -> Vec<(u16, Option<String>)> {
    if b.realms.is_empty() {
        vec![(0, None)]
    } else {
        b.realms
            .iter()
            .map(|(id, name)| (id.0, Some(name.clone())))
            .collect()
    }
}

pub(crate) fn build(policy: &Policy, facts: &HostFacts) -> Result<Compiled, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let present = |i: &IfName| facts.interfaces.as_ref().is_none_or(|set| set.contains(i));
    let site = &policy.site;
    for i in std::iter::once(&site.uplink).chain(site.lan.as_ref()) {
        if !present(i) {
            errors.push(
                Diagnostic::error(
                    Some(site.span),
                    format!("interface `{i}` does not exist on this host"),
                )
                .with_hint("create it, or fix the name in [site]; nothing was changed"),
            );
        }
    }

    let realms: Vec<(RealmId, String)> = policy
        .realms
        .list
        .iter()
        .map(|r| (r.id, r.name.clone()))
        .collect();
    let tenant_cells = 1 + realms.len() as u16 * u16::from(!realms.is_empty());

    // Owners, parents before children: parents in dependency order, then
    // shared pools, then tenants by id.
    let mut wants: Vec<Want> = Vec::new();
    let node_id = |name: &str| policy.parent(name).map(|p| Owner::Node(p.id));
    let mut done: Vec<&str> = Vec::new();
    while done.len() < policy.parents.len() {
        let before = done.len();
        for p in &policy.parents {
            if done.contains(&p.name.as_str()) {
                continue;
            }
            if p.parent.as_deref().is_none_or(|up| done.contains(&up)) {
                wants.push(Want {
                    owner: Owner::Node(p.id),
                    parent: p.parent.as_deref().and_then(node_id),
                    cells: 1,
                });
                done.push(&p.name);
            }
        }
        if done.len() == before {
            break; // a cycle; validation has reported it
        }
    }
    for plan in &policy.plans {
        if let Some(id) = plan.pool_id {
            wants.push(Want {
                owner: Owner::Node(id),
                parent: plan.parent.as_deref().and_then(node_id),
                cells: 1,
            });
        }
    }
    for t in &policy.tenants {
        let Some(plan) = policy.plan(&t.plan) else {
            continue;
        };
        let parent = match plan.pool_id {
            Some(id) => Some(Owner::Node(id)),
            None => t.parent.as_deref().and_then(node_id),
        };
        wants.push(Want {
            owner: Owner::Tenant(t.id),
            parent,
            cells: tenant_cells,
        });
    }
    // The size of each top-level owner's subtree, to spread them over shards.
    let mut subtree: BTreeMap<Owner, u32> = BTreeMap::new();
    let parent_of: BTreeMap<Owner, Option<Owner>> =
        wants.iter().map(|w| (w.owner, w.parent)).collect();
    for w in &wants {
        let mut top = w.owner;
        let mut guard = 0;
        while let Some(Some(p)) = parent_of.get(&top) {
            top = *p;
            guard += 1;
            if guard > wants.len() {
                break;
            }
        }
        *subtree.entry(top).or_default() += w.cells as u32;
    }

    let placed = alloc::place(&wants, site.shards, &facts.live, &subtree);
    for (owner, shard) in &placed.full {
        let span = match owner {
            Owner::Tenant(id) => policy.tenant(*id).map(|t| t.span),
            Owner::Node(_) => None,
        };
        let who = match owner {
            Owner::Tenant(id) => format!("tenant {id}"),
            Owner::Node(id) => format!("node {id}"),
        };
        let needed: u32 =
            wants.iter().map(|w| w.cells as u32).sum::<u32>() / alloc::MAX_CELL as u32 + 1;
        errors.push(
            Diagnostic::error(span, format!("more classes than the kernel can address: {who} does not fit in shard {shard}, whose HTB tree has room for {} blocks of 4 classes", alloc::MAX_CELL))
                .with_hint(format!("each tenant needs {tenant_cells} blocks here (one, plus one per realm); set site.shards to at least {needed}, or move tenants under another top-level parent")),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut members: BTreeMap<&str, u64> = BTreeMap::new();
    for t in &policy.tenants {
        *members.entry(t.plan.as_str()).or_default() += 1;
    }
    let mut b = Builder {
        policy,
        plan: Plan::default(),
        prov: Provenance::default(),
        realms,
        bands: policy.bands.is_some(),
        members,
    };
    b.shards();
    b.nodes(&placed.placements);
    let mut hooked_vifs = Vec::new();
    for t in &policy.tenants {
        let Some(p) = placed.placements.get(&Owner::Tenant(t.id)) else {
            continue;
        };
        b.tenant(t, p);
        if site.mode == Mode::Hypervisor {
            if let Some(vif) = &t.interface {
                if present(vif) {
                    hooked_vifs.push((t, vif.clone(), p.shard));
                } else {
                    notes.push(
                        Diagnostic::warning(Some(t.span), format!("interface `{vif}` of tenant {} is absent; its download hook is left out", t.id))
                            .with_hint(format!("run `tollgate hook vif online {vif}` when the VM starts")),
                    );
                }
            }
        }
    }
    b.classification(&hooked_vifs, &placed.placements);
    b.registry(&placed.placements);
    Ok(Compiled {
        plan: b.plan,
        provenance: b.prov,
        placements: Live {
            placements: placed.placements,
        },
        notes,
    })
}

impl Builder<'_> {
    fn add_class(&mut self, dir: Direction, shard: u16, minor: u16, c: Class, serves: Serves) {
        let key = ClassKey {
            dev: ifb_name(dir, shard),
            id: ClassId::new(shard_major(shard), minor),
        };
        self.prov.add(
            ObjectId::Class(key.clone()),
            Serves {
                direction: Some(dir),
                ..serves
            },
        );
        self.plan.classes.insert(key, c);
    }

    /// One IFB, HTB qdisc, root class and default class per shard and direction.
    fn shards(&mut self) {
        let site = &self.policy.site;
        let k = site.shards as u64;
        for dir in Direction::BOTH {
            for shard in 0..site.shards {
                let dev = ifb_name(dir, shard);
                let major = shard_major(shard);
                self.plan.links.insert(dev.clone(), Link::Ifb);
                self.prov.add(
                    ObjectId::Link(dev.clone()),
                    Serves {
                        direction: Some(dir),
                        why: format!("holds {} shaping tree {shard}", dir.as_str()),
                        ..Default::default()
                    },
                );
                let qk = QdiscKey {
                    dev: dev.clone(),
                    attach: Attach::Root,
                };
                self.plan.qdiscs.insert(
                    qk.clone(),
                    Qdisc::Htb {
                        major,
                        default_minor: DEFAULT_MINOR,
                    },
                );
                self.prov.add(
                    ObjectId::Qdisc(qk),
                    Serves {
                        direction: Some(dir),
                        why: format!("HTB tree {shard}; packets are classified by skb->priority"),
                        ..Default::default()
                    },
                );
                let cap = *site.capacity.get(dir);
                let root = class(ClassId::new(major, 0), cap.scaled(1, k), cap, 0);
                self.add_class(
                    dir,
                    shard,
                    ROOT_MINOR,
                    root,
                    Serves {
                        why: "the link's capacity (shared by all shards)".into(),
                        ..Default::default()
                    },
                );
                let def = *site.default_rate.get(dir);
                let default = class(ClassId::new(major, ROOT_MINOR), def.scaled(1, k), cap, 7);
                self.add_class(
                    dir,
                    shard,
                    DEFAULT_MINOR,
                    default,
                    Serves {
                        why: "traffic of no tenant (ARP, routing, management)".into(),
                        ..Default::default()
                    },
                );
            }
        }
    }

    fn nodes(&mut self, placements: &BTreeMap<Owner, Placement>) {
        let policy = self.policy;
        for p in &policy.parents {
            let Some(pl) = placements.get(&Owner::Node(p.id)) else {
                continue;
            };
            for dir in Direction::BOTH {
                let c = shaped(pl.parent, *p.shape.get(dir), 0);
                self.add_class(
                    dir,
                    pl.shard,
                    pl.cell * 4,
                    c,
                    Serves {
                        node: Some(p.name.clone()),
                        why: format!("parent `{}`: its children borrow its surplus", p.name),
                        ..Default::default()
                    },
                );
            }
        }
        for plan in &policy.plans {
            let Some(id) = plan.pool_id else { continue };
            let Some(pl) = placements.get(&Owner::Node(id)) else {
                continue;
            };
            for dir in Direction::BOTH {
                let c = shaped(pl.parent, *plan.shape.get(dir), 0);
                self.add_class(
                    dir,
                    pl.shard,
                    pl.cell * 4,
                    c,
                    Serves {
                        node: Some(plan.name.clone()),
                        why: format!(
                            "pool of shared plan `{}`: its tenants share it fairly",
                            plan.name
                        ),
                        ..Default::default()
                    },
                );
            }
        }
    }

    fn tenant(&mut self, t: &Tenant, p: &Placement) {
        let policy = self.policy;
        let Some(plan) = policy.plan(&t.plan) else {
            return;
        };
        let members = self.members.get(t.plan.as_str()).copied().unwrap_or(1);
        for dir in Direction::BOTH {
            let Some(mut s) = policy.tenant_shape(t, dir) else {
                continue;
            };
            if plan.is_shared() {
                // Members of a pool get an equal guaranteed share and may each
                // borrow up to the pool's ceil; equal rates give equal quanta,
                // which is what makes HTB share fairly between them.
                let o = t.overrides.get(dir);
                s.rate = o
                    .rate
                    .unwrap_or_else(|| s.rate.scaled(1, members.max(1)).max(min_rate()));
                s.ceil = o.ceil.unwrap_or(s.ceil);
            }
            let base = p.cell * 4;
            let serves = |why: String| Serves {
                tenant: Some(t.id),
                why,
                ..Default::default()
            };
            self.add_class(
                dir,
                p.shard,
                base,
                shaped(p.parent, s, 0),
                serves(format!("tenant {} `{}` on plan `{}`", t.id, t.name, t.plan)),
            );
            let leaf_parent = ClassId::new(shard_major(p.shard), base);
            if self.realms.is_empty() {
                self.bands_under(dir, p.shard, base, s.rate, s.ceil, t, None);
                continue;
            }
            let n = self.realms.len() as u64;
            for (g, (realm, name)) in self.realms.clone().into_iter().enumerate() {
                let cap = plan.realm_cap(realm, dir);
                let ceil = cap.map_or(s.ceil, |c| c.ceil.min(s.ceil));
                let rate = cap
                    .and_then(|c| c.rate)
                    .unwrap_or_else(|| s.rate.scaled(1, n))
                    .min(ceil);
                let minor = base + 4 * (g as u16 + 1);
                let why = match cap {
                    Some(c) => format!(
                        "realm `{name}` capped at {} by plan `{}`",
                        c.ceil, plan.name
                    ),
                    None => format!("realm `{name}`, counted separately, up to the tenant's ceil"),
                };
                self.add_class(
                    dir,
                    p.shard,
                    minor,
                    class(leaf_parent, rate, ceil, 1),
                    Serves {
                        realm: Some(name.clone()),
                        ..serves(why)
                    },
                );
                self.bands_under(dir, p.shard, minor, rate, ceil, t, Some(name));
            }
        }
    }

    /// The three band leaves at `minor + 1..=3`, if bands are enabled.
    #[allow(clippy::too_many_arguments)]
    fn bands_under(
        &mut self,
        dir: Direction,
        shard: u16,
        minor: u16,
        rate: Rate,
        ceil: Rate,
        t: &Tenant,
        realm: Option<String>,
    ) {
        let Some(bands) = &self.policy.bands else {
            return;
        };
        let parent = ClassId::new(shard_major(shard), minor);
        for band in Band::ALL {
            let share = bands.shares[band.index()] as u64;
            let c = class(
                parent,
                rate.scaled(share, 100).max(min_rate()),
                ceil,
                band.index() as u8,
            );
            self.add_class(
                dir,
                shard,
                minor + 1 + band.index() as u16,
                c,
                Serves {
                    tenant: Some(t.id),
                    realm: realm.clone(),
                    band: Some(band),
                    why: format!(
                        "{} band: {share}% guaranteed, served in priority order",
                        band.as_str()
                    ),
                    ..Default::default()
                },
            );
        }
    }

    fn map(&mut self, name: &str, kind: MapKind) -> &mut NftMap {
        self.plan
            .maps
            .entry(name.to_owned())
            .or_insert_with(|| NftMap {
                kind,
                elements: BTreeMap::new(),
            })
    }

    fn element(&mut self, map: &str, kind: MapKind, key: MapKey, value: MapValue, serves: Serves) {
        self.map(map, kind).elements.insert(key.clone(), value);
        self.prov
            .add(ObjectId::Element(map.to_owned(), key), serves);
    }

    fn classification(
        &mut self,
        vifs: &[(&Tenant, IfName, u16)],
        placements: &BTreeMap<Owner, Placement>,
    ) {
        let policy = self.policy;
        let site = &policy.site;
        // Realm maps: remote address → realm scratch value.
        self.map("realm4", MapKind::Realm4);
        self.map("realm6", MapKind::Realm6);
        for r in &policy.realms.list {
            for (pfx, _) in &r.prefixes {
                let (map, kind) = if pfx.is_ipv4() {
                    ("realm4", MapKind::Realm4)
                } else {
                    ("realm6", MapKind::Realm6)
                };
                self.element(
                    map,
                    kind,
                    MapKey::Prefix(*pfx),
                    MapValue::Class(ClassId::new(0, r.id.0)),
                    Serves {
                        realm: Some(r.name.clone()),
                        why: format!("{pfx} is in realm `{}`", r.name),
                        ..Default::default()
                    },
                );
            }
        }
        // Tenant maps: local address (or vif) . realm → class.
        let keys = realm_keys(self);
        for dir in Direction::BOTH {
            let (m4, m6) = match dir {
                Direction::Up => ("up4", "up6"),
                Direction::Down => ("down4", "down6"),
            };
            let by_vif = dir == Direction::Down && site.mode == Mode::Hypervisor;
            if by_vif {
                self.map("down_if", MapKind::Oif);
            } else {
                let (k4, k6) = match dir {
                    Direction::Up => (MapKind::Saddr4, MapKind::Saddr6),
                    Direction::Down => (MapKind::Daddr4, MapKind::Daddr6),
                };
                self.map(m4, k4);
                self.map(m6, k6);
            }
            for t in &policy.tenants {
                let Some(base) = placements.get(&Owner::Tenant(t.id)).map(Placement::base) else {
                    continue;
                };
                for (g, (realm, rname)) in keys.iter().enumerate() {
                    let minor = if self.realms.is_empty() {
                        base.minor
                    } else {
                        base.minor + 4 * (g as u16 + 1)
                    };
                    let value = MapValue::Class(ClassId::new(base.major, minor));
                    let serves = Serves {
                        tenant: Some(t.id),
                        realm: rname.clone(),
                        direction: Some(dir),
                        why: "classifies the tenant's packets into its class".into(),
                        ..Default::default()
                    };
                    if by_vif {
                        if let Some(vif) = &t.interface {
                            self.element(
                                "down_if",
                                MapKind::Oif,
                                MapKey::IfRealm(vif.clone(), *realm),
                                value,
                                serves,
                            );
                        }
                        continue;
                    }
                    for (pfx, _) in &t.prefixes {
                        let (map, kind) = match (dir, pfx.is_ipv4()) {
                            (Direction::Up, true) => (m4, MapKind::Saddr4),
                            (Direction::Up, false) => (m6, MapKind::Saddr6),
                            (Direction::Down, true) => (m4, MapKind::Daddr4),
                            (Direction::Down, false) => (m6, MapKind::Daddr6),
                        };
                        self.element(
                            map,
                            kind,
                            MapKey::PrefixRealm(*pfx, *realm),
                            value,
                            serves.clone(),
                        );
                    }
                }
            }
            self.classify_chain(dir, by_vif);
        }
        if self.bands {
            self.bands_chain();
        }
        if site.shards > 1 {
            for s in 0..site.shards {
                let major = shard_major(s);
                self.element(
                    "shards",
                    MapKind::Shard,
                    MapKey::ClassRange(ClassId::new(major, 0), ClassId::new(major, 0xffff)),
                    MapValue::Mark(major as u32),
                    Serves {
                        why: format!("steers shard {s}'s packets to its IFB"),
                        ..Default::default()
                    },
                );
            }
            // Packets of no tenant carry major 0; they go to the first shard's default class.
            self.element(
                "shards",
                MapKind::Shard,
                MapKey::ClassRange(ClassId::new(0, 0), ClassId::new(0, 0xffff)),
                MapValue::Mark(1),
                Serves {
                    why: "traffic of no tenant goes to shard 0".into(),
                    ..Default::default()
                },
            );
        }
        // Hooks: where traffic is seen, per direction.
        let up_dev = site.uplink.clone();
        self.hook(Direction::Up, &up_dev, None);
        match site.mode {
            Mode::Router => {
                if let Some(lan) = site.lan.clone() {
                    self.hook(Direction::Down, &lan, None);
                }
            }
            Mode::Hypervisor => {
                for (t, vif, shard) in vifs {
                    self.hook(Direction::Down, vif, Some((t, *shard)));
                }
            }
        }
    }

    fn classify_chain(&mut self, dir: Direction, by_vif: bool) {
        let default = self.policy.realms.default.0;
        let (remote, local) = match dir {
            Direction::Up => ("daddr", "saddr"),
            Direction::Down => ("saddr", "daddr"),
        };
        let d = dir.as_str();
        let mut rules = vec![format!("meta priority set 0:{default:x}")];
        if !self.realms.is_empty() {
            rules.push(format!("meta priority set ip {remote} map @realm4"));
            rules.push(format!("meta priority set ip6 {remote} map @realm6"));
        }
        if by_vif {
            rules.push("meta priority set meta oifname . meta priority map @down_if".into());
        } else {
            rules.push(format!(
                "meta priority set ip {local} . meta priority map @{d}4"
            ));
            rules.push(format!(
                "meta priority set ip6 {local} . meta priority map @{d}6"
            ));
        }
        if self.bands {
            rules.push("goto bands".into());
        }
        let name = format!("classify_{d}");
        self.prov.add(
            ObjectId::Chain(name.clone()),
            Serves {
                direction: Some(dir),
                why: "realm, then tenant, then band: writes the HTB class into skb->priority"
                    .into(),
                ..Default::default()
            },
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
            Serves {
                why: "adds the band to the class: interactive +1, normal +2, bulk +3".into(),
                ..Default::default()
            },
        );
        self.plan
            .chains
            .insert("bands".into(), Chain { hook: None, rules });
    }

    /// The base chain and the redirect filters on one interface's egress.
    fn hook(&mut self, dir: Direction, dev: &IfName, vif: Option<(&Tenant, u16)>) {
        let shards = self.policy.site.shards;
        let d = dir.as_str();
        let mut rules = vec![format!("jump classify_{d}")];
        if shards > 1 && vif.is_none() {
            rules.push("meta mark set meta priority map @shards".into());
        }
        let name = format!("{d}_{dev}");
        let tenant = vif.map(|(t, _)| t.id);
        self.prov.add(
            ObjectId::Chain(name.clone()),
            Serves {
                tenant,
                direction: Some(dir),
                why: format!("sees {d}load traffic leaving {dev}"),
                ..Default::default()
            },
        );
        self.plan.chains.insert(
            name,
            Chain {
                hook: Some(ChainHook { dev: dev.clone() }),
                rules,
            },
        );
        let qk = QdiscKey {
            dev: dev.clone(),
            attach: Attach::Clsact,
        };
        self.prov.add(
            ObjectId::Qdisc(qk.clone()),
            Serves {
                tenant,
                direction: Some(dir),
                why: "holds the redirect to the shaping IFB".into(),
                ..Default::default()
            },
        );
        self.plan.qdiscs.insert(qk, Qdisc::Clsact);
        let targets: Vec<(u16, Select)> = match vif {
            Some((_, shard)) => vec![(shard, Select::All)],
            None if shards == 1 => vec![(0, Select::All)],
            None => (0..shards)
                .map(|s| (s, Select::Mark(shard_major(s) as u32)))
                .collect(),
        };
        for (shard, select) in targets {
            let key = FilterKey {
                dev: dev.clone(),
                hook: Hook::Egress,
                prio: FILTER_PRIO_BASE + shard,
            };
            self.prov.add(
                ObjectId::Filter(key.clone()),
                Serves {
                    tenant,
                    direction: Some(dir),
                    why: format!("redirects to {}", ifb_name(dir, shard)),
                    ..Default::default()
                },
            );
            self.plan.filters.insert(
                key,
                Filter {
                    select,
                    redirect_to: ifb_name(dir, shard),
                },
            );
        }
    }

    fn registry(&mut self, placements: &BTreeMap<Owner, Placement>) {
        self.map(REG_NODES, MapKind::Registry);
        self.map(REG_TENANTS, MapKind::Registry);
        for (owner, p) in placements {
            let (map, id, serves) = match owner {
                Owner::Node(n) => (
                    REG_NODES,
                    *n as u32,
                    Serves {
                        why: format!("records node {n}'s block"),
                        ..Default::default()
                    },
                ),
                Owner::Tenant(t) => (
                    REG_TENANTS,
                    t.0,
                    Serves {
                        tenant: Some(*t),
                        why: "records the tenant's block of classes".into(),
                        ..Default::default()
                    },
                ),
            };
            self.element(
                map,
                MapKind::Registry,
                MapKey::Number(id),
                MapValue::Class(p.base()),
                serves,
            );
        }
    }
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
    for proto in [policy::Transport::Tcp, policy::Transport::Udp] {
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
            let name = match proto {
                policy::Transport::Tcp => "tcp",
                policy::Transport::Udp => "udp",
            };
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
