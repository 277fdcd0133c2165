//! What the compiler is told about the host, and about what is live.

use net_types::{ClassId, IfName, TenantId};
use plan::{MapKey, MapValue, Plan};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

impl Live {
    /// Reads the placements back out of a plan (usually one observed from the
    /// kernel): tollgate records each owner's block in its registry maps, and
    /// the classes themselves give the size and the parent.
    pub fn from_plan(plan: &Plan) -> Live {
        // Count, in one pass, the cell-aligned children of every class in the
        // download trees: a tenant's realm classes sit at the start of cells.
        let mut groups: BTreeMap<(&IfName, ClassId), u16> = BTreeMap::new();
        for (k, c) in &plan.classes {
            if k.id.minor % 4 == 0 && k.dev == crate::ifb_name(policy::Direction::Down) {
                *groups.entry((&k.dev, c.parent)).or_default() += 1;
            }
        }
        let mut placements = BTreeMap::new();
        for (map, node) in [(crate::REG_NODES, true), (crate::REG_TENANTS, false)] {
            let Some(m) = plan.maps.get(map) else {
                continue;
            };
            for (k, v) in &m.elements {
                let (MapKey::Number(id), MapValue::Class(base)) = (k, v) else {
                    continue;
                };
                if base.major == 0 || base.minor % 4 != 0 {
                    continue;
                }
                let Some(shard) = crate::shard_of_major(base.major) else {
                    continue;
                };
                let dev = crate::ifb_name(policy::Direction::Down);
                let Some(class) = plan.classes.get(&plan::ClassKey { dev, id: *base }) else {
                    continue;
                };
                let (owner, cells) = if node {
                    // A node's children are other owners' blocks, not its own.
                    match u16::try_from(*id) {
                        Ok(n) => (Owner::Node(n), 1),
                        Err(_) => continue,
                    }
                } else {
                    (
                        Owner::Tenant(TenantId(*id)),
                        1 + groups.get(&(&dev, *base)).copied().unwrap_or(0),
                    )
                };
                placements.insert(
                    owner,
                    Placement {
                        shard,
                        cell: base.minor / 4,
                        cells,
                        parent: class.parent,
                    },
                );
            }
        }
        Live { placements }
    }
}
