//! Building the plan: devices, HTB trees, and classification.

use crate::alloc::{self, Want};
use crate::facts::{HostFacts, Live, Owner, Placement};
use crate::provenance::{Provenance, Role, Serves};
use crate::{
    ifb_name, shard_major, Compiled, DEFAULT_MINOR, OUTER_DEFAULT_MINOR, OUTER_MAJOR, ROOT_MINOR,
};
use net_types::{ClassId, IfName, Rate, RealmId};
use plan::*;
use policy::{Band, Diagnostic, Direction, Mode, Policy, Shape, Tenant};
use std::collections::{BTreeMap, HashMap};

mod classify;
pub(crate) mod guard;

/// The smallest rate tollgate gives a class: HTB cannot shape at zero, and
/// 8 kbit/s still lets a starved class send a packet now and then.
fn min_rate() -> Rate {
    Rate::from_bps(8_000).expect("nonzero")
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
    realms: Vec<RealmId>,
    /// The IFB of each direction.
    devs: [IfName; 2],
    /// How many shards (nested HTB trees) each direction has.
    shards: u16,
    /// How many tenants each plan has, for sharing a pool.
    members: HashMap<&'p str, u64>,
    /// Classes and map elements are gathered in lists and sorted once at the
    /// end: building a large `BTreeMap` from sorted input is several times
    /// cheaper than inserting into it one key at a time. The class list is
    /// sized exactly up front and sorted in place, so that building the plan
    /// holds the list, the sort's scratch and the map at once, no more (at
    /// 100,000 tenants the classes alone are 150 MiB).
    classes: Vec<(ClassKey, Class)>,
    elements: BTreeMap<&'static str, Vec<(MapKey, MapValue)>>,
    /// What the guard's ladders need prepared (throttle classes, sets).
    guard: guard::Prepared,
    /// The routes' realms, from the host facts.
    route_realms: &'p [(net_types::Prefix, RealmId)],
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Down => 0,
        Direction::Up => 1,
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

    errors.extend(bridge_uplink(policy, facts));
    let devs = tree_devices(site);
    if site.shape_on == policy::ShapeOn::Interface {
        errors.extend(foreign_roots(policy, &devs, facts));
    }

    let realms: Vec<RealmId> = policy.realms.list.iter().map(|r| r.id).collect();
    let tenant_cells = 1 + realms.len() as u16;
    let by_name: HashMap<&str, u16> = policy
        .parents
        .iter()
        .map(|p| (p.name.as_str(), p.id))
        .collect();
    let node_of = |name: Option<&str>| name.and_then(|n| by_name.get(n)).map(|id| Owner::Node(*id));
    let plans: HashMap<&str, &policy::ServicePlan> =
        policy.plans.iter().map(|p| (p.name.as_str(), p)).collect();

    // Owners, parents before children: parents in dependency order, then
    // shared pools, then tenants by id.
    let mut wants: Vec<Want> = Vec::with_capacity(policy.tenants.len() + policy.parents.len() + 4);
    let mut done: std::collections::HashSet<&str> = Default::default();
    while done.len() < policy.parents.len() {
        let before = done.len();
        for p in &policy.parents {
            if !done.contains(p.name.as_str())
                && p.parent.as_deref().is_none_or(|up| done.contains(up))
            {
                wants.push(Want {
                    owner: Owner::Node(p.id),
                    parent: node_of(p.parent.as_deref()),
                    cells: 1,
                });
                done.insert(&p.name);
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
                parent: node_of(plan.parent.as_deref()),
                cells: 1,
            });
        }
    }
    for t in &policy.tenants {
        let Some(plan) = plans.get(t.plan.as_str()) else {
            continue;
        };
        let parent = match plan.pool_id {
            Some(id) => Some(Owner::Node(id)),
            None => node_of(t.parent.as_deref()),
        };
        wants.push(Want {
            owner: Owner::Tenant(t.id),
            parent,
            cells: tenant_cells,
        });
    }
    // HTB refuses trees deeper than 8 classes; say which chain, before
    // anything is placed.
    errors.extend(crate::depth::check(policy, &wants));
    // The size of each top-level owner's subtree, to spread them over shards.
    let parent_of: HashMap<Owner, Option<Owner>> =
        wants.iter().map(|w| (w.owner, w.parent)).collect();
    let mut subtree: BTreeMap<Owner, u32> = BTreeMap::new();
    for w in &wants {
        let mut top = w.owner;
        for _ in 0..=wants.len() {
            match parent_of.get(&top) {
                Some(Some(p)) => top = *p,
                _ => break,
            }
        }
        *subtree.entry(top).or_default() += w.cells as u32;
    }

    let shards = shard_count(site.shards, &wants, &facts.live);
    let placed = alloc::place(&wants, shards, &facts.live, &subtree);
    if let Some((owner, shard)) = placed.full.first() {
        let span = match owner {
            Owner::Tenant(id) => policy.tenant(*id).map(|t| t.span),
            Owner::Node(_) => None,
        };
        let who = match owner {
            Owner::Tenant(id) => format!("tenant {id}"),
            Owner::Node(id) => format!("node {id}"),
        };
        errors.push(
            Diagnostic::error(span, format!("more classes than the kernel can address: {who} and {} more owners do not fit in shard {shard}, whose HTB tree has room for {} blocks of 4 classes", placed.full.len() - 1, alloc::MAX_CELL))
                .with_hint(format!("each tenant needs {tenant_cells} blocks here (one, plus one per realm), and a top-level parent keeps all its descendants in one tree; spread them over more top-level parents")),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut members: HashMap<&str, u64> = HashMap::new();
    for t in &policy.tenants {
        *members.entry(t.plan.as_str()).or_default() += 1;
    }
    // Provenance has one entry per object; sized up front, it does not
    // double past what it needs (at 100,000 tenants an entry is 70 bytes
    // and there are 2.3 million).
    let classes = class_count(policy, shards, &placed.placements);
    let elements: usize = policy
        .tenants
        .iter()
        .map(|t| t.prefixes.len() + 3 + policy.realms.list.len())
        .sum::<usize>()
        + policy
            .realms
            .list
            .iter()
            .map(|r| r.prefixes.len())
            .sum::<usize>()
        + facts.route_realms.len();
    let mut prov = Provenance::default();
    prov.objects
        .reserve(classes + elements + 64 + 8 * shards as usize);
    let mut b = Builder {
        policy,
        plan: Plan::default(),
        prov,
        realms,
        devs,
        shards,
        members,
        classes: Vec::with_capacity(classes),
        elements: BTreeMap::new(),
        route_realms: &facts.route_realms,
        // The eBPF classifier has no nftables table to hold the sets: it
        // gets the throttle classes only (its victims are a BPF map; the
        // drop rung and the unused addresses are the XDP drop list).
        guard: if site.classifier == Some(policy::ClassifierKind::Ebpf) {
            guard::Prepared {
                throttle: guard::Prepared::of(policy).throttle,
                ebpf: true,
                ..guard::Prepared::default()
            }
        } else {
            guard::Prepared::of(policy)
        },
    };
    b.shards();
    b.nodes(&placed.placements);
    let mut hooked_vifs = Vec::new();
    for t in &policy.tenants {
        let Some(p) = placed.placements.get(&Owner::Tenant(t.id)) else {
            continue;
        };
        let Some(plan) = plans.get(t.plan.as_str()) else {
            continue;
        };
        b.tenant(t, plan, p);
        if site.mode == Mode::Hypervisor {
            if let Some(vif) = &t.interface {
                if present(vif) {
                    hooked_vifs.push((t, *vif, p.shard));
                } else if !facts.offline.contains(vif) {
                    notes.push(
                        Diagnostic::warning(Some(t.span), format!("interface `{vif}` of tenant {} is absent; its download hook is left out", t.id))
                            .with_hint(format!("run `tollgate hook vif online {vif}` when the VM starts")),
                    );
                }
            }
        }
    }
    b.classification(&hooked_vifs, &placed.placements);
    b.guard_prepared();
    b.registry(&placed.placements);
    b.finish();
    Ok(Compiled {
        plan: b.plan,
        provenance: b.prov,
        placements: Live {
            placements: placed.placements,
        },
        notes,
    })
}

/// The device that holds each direction's tree, download first: the IFBs
/// tollgate creates, or with `shape_on = "interface"` the LAN (download
/// leaves there) and the uplink (upload leaves there). Validation keeps
/// that option to router mode, where `lan` is always set.
fn tree_devices(site: &policy::Site) -> [IfName; 2] {
    match (site.shape_on, site.lan) {
        (policy::ShapeOn::Interface, Some(lan)) => [lan, site.uplink],
        _ => [Direction::Down, Direction::Up].map(ifb_name),
    }
}

/// With `shape_on = "interface"`, tollgate takes the root qdisc of the
/// LAN and the uplink. It takes one only if it is the kernel's default or
/// tollgate's own tree; an operator's (fq_codel, a tree of their own…) is
/// refused here, before anything is sent.
fn foreign_roots(policy: &Policy, devs: &[IfName; 2], facts: &HostFacts) -> Vec<Diagnostic> {
    let site = &policy.site;
    devs.iter()
        .filter_map(|dev| facts.foreign_roots.get(dev).map(|what| (dev, what)))
        .map(|(dev, what)| {
            Diagnostic::error(
                Some(site.shape_on_span.unwrap_or(site.span)),
                format!(
                    "interface `{dev}` has a root qdisc tollgate did not create ({what}); shape_on = \"interface\" puts tollgate's HTB tree there and would replace it"
                ),
            )
            .with_hint(format!(
                "to let tollgate take it, remove yours (`tc qdisc del dev {dev} root`); to keep it, use shape_on = \"ifb\"; nothing was changed"
            ))
        })
        .collect()
}

/// In hypervisor mode the VMs' upload is shaped where it leaves the uplink.
/// If the uplink is a bridge whose ports include the VMs' vifs, the bridge
/// forwards their frames from port to port and they never leave the bridge
/// device itself: nothing would be shaped, while every check passed. The
/// physical port is where upload leaves the host. (In router mode the
/// tenants' traffic is routed, and routed traffic does leave through the
/// bridge device, so a bridge works there.)
fn bridge_uplink(policy: &Policy, facts: &HostFacts) -> Option<Diagnostic> {
    let site = &policy.site;
    if site.mode != Mode::Hypervisor {
        return None;
    }
    let ports = facts.bridges.as_ref()?.get(&site.uplink)?;
    let vifs: std::collections::HashSet<IfName> =
        policy.tenants.iter().filter_map(|t| t.interface).collect();
    let physical: Vec<String> = ports
        .iter()
        .filter(|p| {
            !vifs.contains(p) && !p.as_str().starts_with("vif") && !p.as_str().starts_with("tap")
        })
        .map(|p| format!("`{p}`"))
        .collect();
    let listed: Vec<String> = ports.iter().map(|p| format!("`{p}`")).collect();
    let suggestion = match physical.as_slice() {
        [] => "set uplink to the physical interface the bridge reaches the network through"
            .to_string(),
        [one] => format!(
            "set uplink = {one}, the bridge's physical port: VM upload leaves the host there"
        ),
        many => format!(
            "set uplink to the bridge's physical port ({}): VM upload leaves the host there",
            many.join(" or ")
        ),
    };
    Some(
        Diagnostic::error(
            Some(site.uplink_span),
            format!(
                "uplink `{}` is a bridge (ports: {}): the VMs' upload is forwarded between its ports and never leaves `{}` itself, so none of it would be shaped",
                site.uplink,
                if listed.is_empty() { "none yet".to_string() } else { listed.join(", ") },
                site.uplink
            ),
        )
        .with_hint(suggestion),
    )
}

/// How many classes the plan will have: per direction, the root tree's
/// root, default and one class per shard; each shard's root and default;
/// one per node; and each tenant's own, realm and band classes.
fn class_count(policy: &Policy, shards: u16, placements: &BTreeMap<Owner, Placement>) -> usize {
    let bands = if policy.bands.is_some() { 3 } else { 0 };
    let realms = policy.realms.list.len();
    let per_tenant = if realms == 0 {
        1 + bands
    } else {
        1 + realms * (1 + bands)
    };
    let (mut nodes, mut tenants) = (0, 0);
    for owner in placements.keys() {
        match owner {
            Owner::Node(_) => nodes += 1,
            Owner::Tenant(_) => tenants += 1,
        }
    }
    let shards = shards as usize;
    2 * (2 + shards + 2 * shards + nodes + tenants * per_tenant)
}

/// How many classes a shard's HTB tree is meant to hold, in blocks of 4.
///
/// Creating a class makes the kernel walk every class already in the same
/// qdisc (`tc_bind_tclass`), so one big tree costs O(N²) to build: 10,000
/// classes in one HTB took 6.3 s here, the same classes in nested trees of
/// 64 took 0.47 s (docs/dataplane.md). 64 blocks is 256 classes.
pub(crate) const SHARD_CELLS: u32 = 64;

/// The most shards: majors 2..=0xfffe, so that shard classes in the root
/// tree (minor = major) never reach its default class at 0xffff.
const MAX_SHARDS: u32 = 0xfffd;

/// How many shards a direction gets: enough for [`SHARD_CELLS`] each, at
/// least what the policy asks for, and never fewer than are live (so that
/// nothing in use moves when tenants leave).
fn shard_count(minimum: u16, wants: &[Want], live: &Live) -> u16 {
    let cells: u32 = wants.iter().map(|w| w.cells as u32).sum();
    let needed = cells.div_ceil(SHARD_CELLS);
    let in_use = live
        .placements
        .values()
        .map(|p| p.shard as u32 + 1)
        .max()
        .unwrap_or(0);
    needed.max(in_use).max(minimum as u32).clamp(1, MAX_SHARDS) as u16
}

impl Builder<'_> {
    fn add_class(&mut self, dir: Direction, shard: u16, minor: u16, c: Class, serves: Serves) {
        let key = ClassKey {
            dev: self.devs[dir_index(dir)],
            id: ClassId::new(shard_major(shard), minor),
        };
        self.prov.add(
            ObjectId::Class(key),
            Serves {
                shard: Some(shard),
                ..serves.dir(dir)
            },
        );
        self.classes.push((key, c));
    }

    /// A class of the root tree (major 1) on a direction's IFB.
    fn add_outer_class(&mut self, dir: Direction, minor: u16, c: Class, serves: Serves) {
        let key = ClassKey {
            dev: self.devs[dir_index(dir)],
            id: ClassId::new(OUTER_MAJOR, minor),
        };
        self.prov.add(ObjectId::Class(key), serves.dir(dir));
        self.classes.push((key, c));
    }

    /// Moves the gathered classes and elements into the plan's maps.
    fn finish(&mut self) {
        // Sorted in place (no scratch; keys are unique, so an unstable sort
        // gives the same order), then collected: the collect reuses the
        // list's allocation and finds it sorted.
        let mut classes = std::mem::take(&mut self.classes);
        classes.sort_unstable_by_key(|(k, _)| *k);
        self.plan.classes = classes.into_iter().collect();
        self.prov.objects.shrink_to_fit();
        for (name, elements) in std::mem::take(&mut self.elements) {
            if let Some(m) = self.plan.maps.get_mut(name) {
                m.elements = elements.into_iter().collect();
            }
        }
    }

    /// Per direction: one IFB (or, with `shape_on = "interface"`, the
    /// interface itself) whose root HTB holds a class per shard, and
    /// under each of those the shard's own HTB with its root and default
    /// classes. A filter on the root HTB picks the shard class from the
    /// packet mark; inside a shard, HTB finds the class from
    /// `skb->priority` by itself.
    fn shards(&mut self) {
        let site = &self.policy.site;
        let k = self.shards as u64;
        for dir in Direction::BOTH {
            let dev = self.devs[dir_index(dir)];
            let cap = *site.capacity.get(dir);
            let def = *site.default_rate.get(dir);
            if site.shape_on == policy::ShapeOn::Ifb {
                self.plan.links.insert(dev, Link::Ifb);
                self.prov
                    .add(ObjectId::Link(dev), Serves::new(Role::ShardDevice).dir(dir));
            }
            let qk = QdiscKey {
                dev,
                attach: Attach::Root,
            };
            self.plan.qdiscs.insert(
                qk,
                Qdisc::Htb {
                    major: OUTER_MAJOR,
                    default_minor: OUTER_DEFAULT_MINOR,
                },
            );
            self.prov
                .add(ObjectId::Qdisc(qk), Serves::new(Role::OuterQdisc).dir(dir));
            let root = class(ClassId::new(OUTER_MAJOR, 0), cap, cap, 0);
            self.add_outer_class(dir, ROOT_MINOR, root, Serves::new(Role::ShardRoot));
            let outer_root = ClassId::new(OUTER_MAJOR, ROOT_MINOR);
            let default = class(outer_root, def, cap, 7);
            self.add_outer_class(
                dir,
                OUTER_DEFAULT_MINOR,
                default,
                Serves::new(Role::DefaultClass),
            );
            let fk = FilterKey {
                dev,
                hook: Hook::Root,
                prio: FILTER_PRIO_BASE,
            };
            self.plan.filters.insert(
                fk,
                Filter {
                    select: Select::MarkToClass(OUTER_MAJOR),
                    redirect_to: None,
                },
            );
            self.prov.add(
                ObjectId::Filter(fk),
                Serves::new(Role::ShardClassifier).dir(dir),
            );
            for shard in 0..self.shards {
                let major = shard_major(shard);
                let serves = |role| Serves {
                    shard: Some(shard),
                    ..Serves::new(role)
                };
                // Each shard is guaranteed an equal part of the link and may
                // borrow all of it; equal rates give equal quanta, so busy
                // shards share the link fairly.
                let holder = class(outer_root, cap.scaled(1, k), cap, 0);
                self.add_outer_class(dir, major, holder, serves(Role::ShardClass));
                let nk = QdiscKey {
                    dev,
                    attach: Attach::Class(ClassId::new(OUTER_MAJOR, major)),
                };
                self.plan.qdiscs.insert(
                    nk,
                    Qdisc::Htb {
                        major,
                        default_minor: DEFAULT_MINOR,
                    },
                );
                self.prov
                    .add(ObjectId::Qdisc(nk), serves(Role::ShardQdisc).dir(dir));
                let root = class(ClassId::new(major, 0), cap, cap, 0);
                self.add_class(dir, shard, ROOT_MINOR, root, Serves::new(Role::ShardRoot));
                let default = class(ClassId::new(major, ROOT_MINOR), def.scaled(1, k), cap, 7);
                self.add_class(
                    dir,
                    shard,
                    DEFAULT_MINOR,
                    default,
                    Serves::new(Role::DefaultClass),
                );
            }
        }
    }

    fn nodes(&mut self, placements: &BTreeMap<Owner, Placement>) {
        let policy = self.policy;
        let nodes = policy
            .parents
            .iter()
            .map(|p| (p.id, p.shape, Role::ParentClass))
            .chain(
                policy
                    .plans
                    .iter()
                    .filter_map(|p| p.pool_id.map(|id| (id, p.shape, Role::PoolClass))),
            );
        for (id, shape, role) in nodes {
            let Some(pl) = placements.get(&Owner::Node(id)) else {
                continue;
            };
            for dir in Direction::BOTH {
                let c = shaped(pl.parent, *shape.get(dir), 0);
                self.add_class(
                    dir,
                    pl.shard,
                    pl.cell * 4,
                    c,
                    Serves {
                        node: Some(id),
                        ..Serves::new(role)
                    },
                );
            }
        }
    }

    fn tenant(&mut self, t: &Tenant, plan: &policy::ServicePlan, p: &Placement) {
        let policy = self.policy;
        let members = self.members.get(t.plan.as_str()).copied().unwrap_or(1);
        let base = p.cell * 4;
        let leaf_parent = ClassId::new(shard_major(p.shard), base);
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
            let serves = Serves::new(Role::TenantClass).tenant(t.id);
            self.add_class(dir, p.shard, base, shaped(p.parent, s, 0), serves);
            if self.realms.is_empty() {
                self.bands_under(dir, p.shard, base, s.rate, s.ceil, serves);
                continue;
            }
            let n = self.realms.len() as u64;
            for g in 0..self.realms.len() {
                let realm = self.realms[g];
                let cap = plan.realm_cap(realm, dir);
                let ceil = cap.map_or(s.ceil, |c| c.ceil.min(s.ceil));
                let rate = cap
                    .and_then(|c| c.rate)
                    .unwrap_or_else(|| s.rate.scaled(1, n))
                    .min(ceil);
                let minor = base + 4 * (g as u16 + 1);
                let role = if cap.is_some() {
                    Role::CappedRealmClass
                } else {
                    Role::RealmClass
                };
                let serves = Serves {
                    realm: Some(realm),
                    ..Serves::new(role).tenant(t.id)
                };
                self.add_class(
                    dir,
                    p.shard,
                    minor,
                    class(leaf_parent, rate, ceil, 1),
                    serves,
                );
                self.bands_under(dir, p.shard, minor, rate, ceil, serves);
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
        serves: Serves,
    ) {
        let Some(bands) = &self.policy.bands else {
            return;
        };
        let shares = bands.shares;
        let parent = ClassId::new(shard_major(shard), minor);
        for band in Band::ALL {
            let share = shares[band.index()] as u64;
            let c = class(
                parent,
                rate.scaled(share, 100).max(min_rate()),
                ceil,
                band.index() as u8,
            );
            let s = Serves {
                band: Some(band),
                role: Role::BandClass,
                ..serves
            };
            self.add_class(dir, shard, minor + 1 + band.index() as u16, c, s);
        }
    }
}
