//! What the compiler is told about the host, and about what is live.

use net_types::{ClassId, IfName, TenantId};
use plan::{MapKey, MapValue, Plan};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Facts about the host the plan is for.
///
/// Offline (`tollgate plan --offline`) this is empty or read from a small
/// TOML file; on a live host the dataplane fills it from the kernel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostFacts {
    /// The interfaces present, or `None` if unknown (then every interface
    /// the policy names is assumed to exist).
    pub interfaces: Option<BTreeSet<IfName>>,
    /// Where each owner's classes are now, so that they stay there.
    #[serde(skip)]
    pub live: Live,
    /// The realm of every best route the host knows (from BGP or an MRT
    /// dump, classified by the policy's realm rules). They may nest; the
    /// longest match wins, and the policy's own prefix lists win over a
    /// route for the same prefix.
    #[serde(skip)]
    pub route_realms: Vec<(net_types::Prefix, net_types::RealmId)>,
    /// The bridges on the host, each with its ports, or `None` if unknown
    /// (then no uplink is refused for being a bridge). The dataplane reads
    /// them from the kernel (`IFLA_MASTER` of each link).
    #[serde(default)]
    pub bridges: Option<BTreeMap<IfName, Vec<IfName>>>,
    /// Interfaces taken offline on purpose (`tollgate hook vif offline`):
    /// absent from `interfaces` like any missing one, but left out without
    /// a warning, since their VM is going.
    #[serde(default)]
    pub offline: BTreeSet<IfName>,
    /// Interfaces whose root qdisc someone else configured (neither the
    /// kernel's default nor tollgate's marked tree), each with what it is
    /// (`fq_codel 8001:`). With `shape_on = "interface"` the compiler
    /// refuses to put a tree there.
    #[serde(default)]
    pub foreign_roots: BTreeMap<IfName, String>,
}

/// Who a block of classes belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Owner {
    /// A parent or a shared plan's pool, by node id.
    Node(u16),
    /// A tenant.
    Tenant(TenantId),
}

/// Where an owner's block of classes sits in the HTB trees.
///
/// Every owner has the same block in both directions: the download and
/// upload trees have the same shape, on different devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Which shard (HTB tree) per direction.
    pub shard: u16,
    /// The first cell; a cell is four consecutive minors.
    pub cell: u16,
    /// How many cells.
    pub cells: u16,
    /// The class the block's first class sits under.
    pub parent: ClassId,
}

impl Placement {
    /// The handle of the block's first class.
    pub fn base(&self) -> ClassId {
        ClassId::new(crate::shard_major(self.shard), self.cell * 4)
    }
}

/// The placements that exist in the kernel now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    /// Every owner's block.
    #[serde(
        serialize_with = "plan::as_entries",
        deserialize_with = "plan::from_entries"
    )]
    pub placements: BTreeMap<Owner, Placement>,
}

impl Placement {
    /// The parent of a block whose first class is missing from the observed
    /// plan in both directions (deleted by hand with everything under it).
    /// Major 0 is never a shard's, so it cannot be mistaken for a class; the
    /// compiler then rebuilds the block where it is, under whatever parent
    /// the policy says, since no class there has a parent to keep.
    pub const PARENT_UNKNOWN: ClassId = ClassId { major: 0, minor: 0 };
}

impl Live {
    /// Reads the placements back out of a plan (usually one observed from the
    /// kernel): tollgate records each owner's block in its registry maps, and
    /// the classes themselves give the size and the parent.
    ///
    /// Classes deleted by hand do not shrink or lose a block: its size is the
    /// furthest of its realm classes found in either direction's tree or
    /// named by the tenant's `tenant_classes` elements, and its parent is read
    /// from whichever tree still has its first class. So a repair recreates
    /// the missing classes with the same handles instead of moving the owner.
    pub fn from_plan(plan: &Plan) -> Live {
        // The devices that hold tollgate's trees: its IFBs, or the
        // interfaces themselves with `shape_on = "interface"` (an observed
        // plan holds only tollgate's own classes).
        let devs: Vec<IfName> = {
            let mut d: Vec<IfName> = plan.classes.keys().map(|k| k.dev).collect();
            d.dedup(); // sorted by device first
            d
        };
        // The furthest cell-aligned child of every class, in one pass over
        // both directions' trees: a tenant's realm classes sit at the start
        // of cells right after its own.
        let mut reach: HashMap<ClassId, u16> = HashMap::new();
        for (k, c) in &plan.classes {
            if k.id.minor % 4 == 0
                && devs.contains(&k.dev)
                && c.parent.major == k.id.major
                && k.id.minor > c.parent.minor
            {
                let cells = (k.id.minor - c.parent.minor) / 4;
                let e = reach.entry(c.parent).or_default();
                *e = (*e).max(cells);
            }
        }
        let class_of = |id: ClassId| {
            devs.iter()
                .find_map(|dev| plan.classes.get(&plan::ClassKey { dev: *dev, id }))
        };
        // The furthest class each tenant's elements point at, for blocks
        // whose last realm class is gone from both trees. An element counts
        // if its class is gone or is this block's: a stale element pointing
        // into another owner's block does not.
        let bases: HashMap<u32, ClassId> = registry(plan, crate::REG_TENANTS).collect();
        let mut named: HashMap<u32, u16> = HashMap::new();
        if let Some(m) = plan.maps.get("tenant_classes") {
            for (k, v) in &m.elements {
                let (MapKey::TenantRealm(t, _), MapValue::Class(c)) = (k, v) else {
                    continue;
                };
                let Some(base) = bases.get(t) else { continue };
                if c.major == base.major
                    && c.minor > base.minor
                    && class_of(*c).is_none_or(|cl| cl.parent == *base)
                {
                    let e = named.entry(*t).or_default();
                    *e = (*e).max((c.minor - base.minor) / 4);
                }
            }
        }
        let mut placements = BTreeMap::new();
        for (map, node) in [(crate::REG_NODES, true), (crate::REG_TENANTS, false)] {
            for (id, base) in registry(plan, map) {
                let Some(shard) = crate::shard_of_major(base.major) else {
                    continue;
                };
                let parent = class_of(base).map_or(Placement::PARENT_UNKNOWN, |c| c.parent);
                let (owner, cells) = if node {
                    // A node's children are other owners' blocks, not its own.
                    match u16::try_from(id) {
                        Ok(n) => (Owner::Node(n), 1),
                        Err(_) => continue,
                    }
                } else {
                    let from_classes = reach.get(&base).copied().unwrap_or(0);
                    let from_elements = named.get(&id).copied().unwrap_or(0);
                    (
                        Owner::Tenant(TenantId(id)),
                        1 + from_classes.max(from_elements),
                    )
                };
                placements.insert(
                    owner,
                    Placement {
                        shard,
                        cell: base.minor / 4,
                        cells,
                        parent,
                    },
                );
            }
        }
        Live { placements }
    }
}

/// The well-formed elements of a registry map: owner id → its block's first
/// class (a shard's major, a cell-aligned minor).
fn registry<'p>(plan: &'p Plan, map: &str) -> impl Iterator<Item = (u32, ClassId)> + 'p {
    plan.maps
        .get(map)
        .into_iter()
        .flat_map(|m| &m.elements)
        .filter_map(|(k, v)| match (k, v) {
            (MapKey::Number(id), MapValue::Class(base))
                if base.major != 0 && base.minor % 4 == 0 =>
            {
                Some((*id, *base))
            }
            _ => None,
        })
}
