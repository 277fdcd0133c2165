//! Why each object of a plan exists.
//!
//! Provenance is recorded for every object, so it is kept small: ids and an
//! enum, no text. [`Serves::describe`] turns it into a sentence when a
//! person asks (`tollgate explain`).

use net_types::{RealmId, TenantId};
use plan::ObjectId;
use policy::{Band, Direction, Policy};
use serde::Serialize;
use std::collections::HashMap;

/// The part an object plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An IFB device holding one direction's trees.
    ShardDevice,
    /// The root HTB qdisc of an IFB, with one class per shard.
    OuterQdisc,
    /// The root tree's filter that picks the shard class from the mark.
    ShardClassifier,
    /// A shard's class in the root tree, holding the shard's own HTB.
    ShardClass,
    /// The HTB qdisc of one shard.
    ShardQdisc,
    /// A tree's root class: the link's capacity.
    ShardRoot,
    /// A shard's default class: traffic of no tenant.
    DefaultClass,
    /// A parent's class, which lends its surplus to its children.
    ParentClass,
    /// A shared plan's pool class.
    PoolClass,
    /// A tenant's own class.
    TenantClass,
    /// A tenant's class for one realm, capped by its plan.
    CappedRealmClass,
    /// A tenant's class for one realm, counted separately, up to its ceil.
    RealmClass,
    /// A band leaf under a tenant × realm.
    BandClass,
    /// A prefix → realm element.
    RealmPrefix,
    /// An address (or vif) × realm → class element.
    TenantClassifier,
    /// A class range → shard mark element.
    ShardSteering,
    /// A registry element recording an owner's block.
    Registry,
    /// The chain that picks realm, tenant and class.
    ClassifyChain,
    /// The chain that adds the band.
    BandsChain,
    /// A base chain on an interface's egress.
    HookChain,
    /// The clsact qdisc holding the redirect.
    Clsact,
    /// A filter redirecting to a shard's IFB.
    Redirect,
    /// The guard's throttle class in a root tree (issue 15): the rung's
    /// rate, for the addresses in its set.
    GuardThrottleClass,
}

/// What one object serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Serves {
    /// The part it plays.
    pub role: Role,
    /// The tenant, if the object is a tenant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The parent or pool node id, if the object is a node's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<u16>,
    /// The realm, if the object is per realm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<RealmId>,
    /// The band, if the object is per band.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    /// The direction, if the object is per direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The shard, if the object belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u16>,
}

impl Serves {
    /// An object playing `role` for nobody in particular.
    pub fn new(role: Role) -> Serves {
        Serves {
            role,
            tenant: None,
            node: None,
            realm: None,
            band: None,
            direction: None,
            shard: None,
        }
    }

    /// The same, for a tenant.
    pub fn tenant(mut self, t: TenantId) -> Serves {
        self.tenant = Some(t);
        self
    }

    /// The same, in a direction.
    pub fn dir(mut self, d: Direction) -> Serves {
        self.direction = Some(d);
        self
    }

    /// The realm's name, if the object has a realm.
    pub fn realm_name<'p>(&self, policy: &'p Policy) -> Option<&'p str> {
        self.realm
            .and_then(|r| policy.realms.by_id(r))
            .map(|r| r.name.as_str())
    }

    /// Why the object exists, in a sentence.
    pub fn describe(&self, policy: &Policy) -> String {
        let realm = self.realm_name(policy).unwrap_or("(no realm)");
        let node = || {
            let id = self.node.unwrap_or(0);
            policy
                .parents
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.name.clone())
                .or_else(|| {
                    policy
                        .plans
                        .iter()
                        .find(|p| p.pool_id == Some(id))
                        .map(|p| p.name.clone())
                })
                .unwrap_or_else(|| id.to_string())
        };
        let tenant = self.tenant.and_then(|t| policy.tenant(t));
        match self.role {
            Role::ShardDevice => "holds this direction's shaping trees".into(),
            Role::OuterQdisc => {
                "root HTB: one class per shard, so no qdisc holds many classes".into()
            }
            Role::ShardClassifier => {
                "picks the shard class from the packet mark (one classic BPF program)".into()
            }
            Role::ShardClass => format!(
                "holds shaping tree {}; borrows up to the link's capacity",
                self.shard.unwrap_or(0)
            ),
            Role::ShardQdisc => {
                "HTB tree; packets are classified by skb->priority, no filter walk".into()
            }
            Role::ShardRoot => "the link's capacity".into(),
            Role::DefaultClass => "traffic of no tenant (ARP, routing, management)".into(),
            Role::ParentClass => format!("parent `{}`: its children borrow its surplus", node()),
            Role::PoolClass => format!(
                "pool of shared plan `{}`: its tenants share it fairly",
                node()
            ),
            Role::TenantClass => match tenant {
                Some(t) => format!("tenant {} `{}` on plan `{}`", t.id, t.name, t.plan),
                None => "a tenant's class".into(),
            },
            Role::CappedRealmClass => {
                let cap = tenant
                    .and_then(|t| policy.plan(&t.plan))
                    .zip(self.realm.zip(self.direction))
                    .and_then(|(p, (r, d))| p.realm_cap(r, d))
                    .map_or(String::new(), |c| format!(" at {}", c.ceil));
                format!("realm `{realm}`, capped{cap} by the plan")
            }
            Role::RealmClass => {
                format!("realm `{realm}`, counted separately, up to the tenant's ceil")
            }
            Role::BandClass => match (self.band, &policy.bands) {
                (Some(b), Some(bands)) => format!(
                    "{} band: {}% guaranteed, served in priority order",
                    b.as_str(),
                    bands.shares[b.index()]
                ),
                _ => "a band".into(),
            },
            Role::RealmPrefix => format!("a prefix of realm `{realm}`"),
            Role::TenantClassifier => match self.realm_name(policy) {
                Some(r) => format!("sends the tenant's `{r}` traffic to its class"),
                None => "maps the tenant's addresses to the tenant, the first step of its classification".into(),
            },
            Role::ShardSteering => "marks packets with their shard".into(),
            Role::GuardThrottleClass => {
                "the guard's throttle rung: addresses under attack, held to the rung's rate".into()
            }
            Role::Registry => "records which classes belong to whom, read back on restart".into(),
            Role::ClassifyChain => {
                "realm, then tenant, then band: writes the HTB class into skb->priority".into()
            }
            Role::BandsChain => {
                "adds the band to the class: interactive +1, normal +2, bulk +3".into()
            }
            Role::HookChain => "sees traffic leaving this interface".into(),
            Role::Clsact => "holds the redirect to the shaping IFB".into(),
            Role::Redirect => "redirects to the shaping IFB".into(),
        }
    }
}

/// Every object's [`Serves`], in the order the compiler made them.
///
/// A list rather than a map: it is written once per object on every
/// compile and read only when a person asks, so appending is what matters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Provenance {
    /// Each object and what it serves.
    pub objects: Vec<(ObjectId, Serves)>,
}

impl Provenance {
    /// Records why an object exists.
    pub fn add(&mut self, id: ObjectId, serves: Serves) {
        self.objects.push((id, serves));
    }

    /// What one object serves, if the compiler made it.
    pub fn get(&self, id: &ObjectId) -> Option<&Serves> {
        self.objects.iter().find(|(o, _)| o == id).map(|(_, s)| s)
    }

    /// An index for many lookups.
    pub fn index(&self) -> HashMap<&ObjectId, &Serves> {
        self.objects.iter().map(|(o, s)| (o, s)).collect()
    }

    /// Every object that serves a tenant.
    pub fn of_tenant(&self, tenant: TenantId) -> impl Iterator<Item = (&ObjectId, &Serves)> {
        self.objects
            .iter()
            .filter(move |(_, s)| s.tenant == Some(tenant))
            .map(|(o, s)| (o, s))
    }
}
