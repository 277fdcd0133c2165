//! HTB's depth limit, checked before anything is built.
//!
//! The kernel gives an HTB root class level `TC_HTB_MAXDEPTH - 1` (7) and
//! each inner class one less than its parent, and refuses a class whose
//! grandparent is below level 2 ("sch_htb: tree is too deep"): a tree holds
//! at most [`HTB_MAX_DEPTH`] (8) classes from root to leaf. The limit is
//! per HTB qdisc, and tollgate nests one qdisc per shard under the IFB's
//! root tree, so the root tree's two levels do not count; inside a shard's
//! tree the levels are:
//!
//! | level | class | when |
//! |---|---|---|
//! | 1 | the shard's root (`major:1`) | always |
//! | +1 each | parents, from the top-level one down | a tenant (or pool) names a parent |
//! | +1 | a shared plan's pool | the tenant is on a shared plan |
//! | +1 | the tenant | always |
//! | +1 | one class per realm | the policy declares realms |
//! | +1 | three band leaves | the policy has `[bands]` |
//!
//! So a tenant can sit under at most `8 - 2 - realms - bands` parents and
//! pools together: 4 with realms and bands, 6 with neither.

use crate::alloc::Want;
use crate::facts::Owner;
use policy::{Diagnostic, Policy};
use std::collections::{BTreeMap, HashMap};

/// The most classes from an HTB tree's root to a leaf (`TC_HTB_MAXDEPTH`).
pub const HTB_MAX_DEPTH: usize = 8;

/// One error per chain of parents that makes some class deeper than HTB
/// allows, naming the chain, at the innermost parent or pool.
pub(crate) fn check(policy: &Policy, wants: &[Want]) -> Vec<Diagnostic> {
    let below_tenant =
        usize::from(!policy.realms.list.is_empty()) + usize::from(policy.bands.is_some());
    let parent_of: HashMap<Owner, Option<Owner>> =
        wants.iter().map(|w| (w.owner, w.parent)).collect();
    // Depth of an owner's own class, the shard root being 1. Wants list
    // parents before children, so one pass fills it.
    let mut depth: HashMap<Owner, usize> = HashMap::with_capacity(wants.len());
    // The deepest class under each innermost node, and who reaches it.
    let mut worst: BTreeMap<Option<Owner>, (usize, Owner, usize)> = BTreeMap::new();
    for w in wants {
        let d = 1 + w.parent.map_or(1, |p| depth.get(&p).copied().unwrap_or(1));
        depth.insert(w.owner, d);
        let (deepest, group) = match w.owner {
            Owner::Tenant(_) => (d + below_tenant, w.parent),
            Owner::Node(_) => (d, Some(w.owner)),
        };
        // Only the first class past the limit on each chain is reported:
        // everything under a node that is too deep is too deep as well.
        let above_too_deep = w
            .parent
            .is_some_and(|p| depth.get(&p).is_some_and(|&pd| pd > HTB_MAX_DEPTH));
        if deepest > HTB_MAX_DEPTH && !above_too_deep {
            let e = worst.entry(group).or_insert((deepest, w.owner, 0));
            e.2 += 1;
        }
    }
    worst
        .into_iter()
        .map(|(group, (deepest, first, count))| {
            let mut chain = Vec::new();
            let mut cur = group;
            while let Some(o) = cur {
                if chain.len() > parent_of.len() {
                    break; // a loop; validation has reported it
                }
                chain.push(describe(policy, o));
                cur = parent_of.get(&o).copied().flatten();
            }
            chain.reverse();
            let mut path = vec!["shard root".to_owned()];
            path.extend(chain.iter().cloned());
            if let Owner::Tenant(t) = first {
                path.push(format!("tenant {t}"));
                if !policy.realms.list.is_empty() {
                    path.push("realm".into());
                }
                if policy.bands.is_some() {
                    path.push("band".into());
                }
            }
            let who = match first {
                Owner::Tenant(t) if count > 1 => {
                    format!("tenant {t} and {} more tenants", count - 1)
                }
                Owner::Tenant(t) => format!("tenant {t}"),
                Owner::Node(_) => describe(policy, first),
            };
            let room = HTB_MAX_DEPTH - 2 - below_tenant;
            let span = group.and_then(|g| span_of(policy, g)).or_else(|| match first {
                Owner::Tenant(t) => policy.tenant(t).map(|t| t.span),
                Owner::Node(_) => None,
            });
            Diagnostic::error(
                span,
                format!(
                    "{who}: classes would be {deepest} levels deep, and HTB allows {HTB_MAX_DEPTH}: {}",
                    path.join(" → ")
                ),
            )
            .with_hint(format!(
                "the kernel refuses deeper classes (\"sch_htb: tree is too deep\"); with this policy's realms and bands a tenant may sit under at most {room} parents and pools in all: nest fewer parents"
            ))
        })
        .collect()
}

fn describe(policy: &Policy, owner: Owner) -> String {
    match owner {
        Owner::Node(id) => {
            if let Some(p) = policy.parents.iter().find(|p| p.id == id) {
                format!("parent `{}`", p.name)
            } else if let Some(p) = policy.plans.iter().find(|p| p.pool_id == Some(id)) {
                format!("pool of shared plan `{}`", p.name)
            } else {
                format!("node {id}")
            }
        }
        Owner::Tenant(t) => format!("tenant {t}"),
    }
}

fn span_of(policy: &Policy, owner: Owner) -> Option<policy::Span> {
    match owner {
        Owner::Node(id) => policy
            .parents
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.span)
            .or_else(|| {
                policy
                    .plans
                    .iter()
                    .find(|p| p.pool_id == Some(id))
                    .map(|p| p.span)
            }),
        Owner::Tenant(t) => policy.tenant(t).map(|t| t.span),
    }
}
