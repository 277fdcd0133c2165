//! What the policy says about the lab's traffic: which realm each upstream
//! address is in, and which ceil applies to a tenant × realm × direction.

use super::{Endpoint, LabError};
use net_types::{Prefix, TenantId};
use policy::{Direction, Policy};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The IPv4 addresses the upstream holds, one in each documentation network.
pub(super) const UPSTREAM_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(203, 0, 113, 1),
];

/// The IPv6 addresses the upstream holds: in the router example's national
/// range, in the hypervisor example's datacenter range, and in neither.
pub(super) const UPSTREAM_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0x5100, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0x9999, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1),
];

/// Loads a policy, reading prefix lists relative to `dir` (or as written,
/// when absolute), and records which relative files it read.
pub(super) fn load_reading(
    path: &Path,
    text: &str,
    dir: &Path,
    read: &mut Vec<String>,
) -> Result<Policy, LabError> {
    let mut read_file = |name: &str| -> Result<String, String> {
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            read.push(name.to_string());
            dir.join(name)
        };
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let loaded = policy::load(&path.display().to_string(), text, &mut read_file);
    loaded.policy.clone().ok_or_else(|| LabError::Policy {
        file: path.to_path_buf(),
        diagnostics: loaded.render(),
    })
}

/// Loads a policy, reading prefix lists relative to `dir`.
pub(super) fn load(path: &Path, text: &str, dir: &Path) -> Result<Policy, LabError> {
    load_reading(path, text, dir, &mut Vec::new())
}

/// The realm an address belongs to: its longest matching prefix's, or the default.
pub(super) fn realm_of(policy: &Policy, addr: IpAddr) -> &str {
    let best = policy
        .realms
        .list
        .iter()
        .flat_map(|r| r.prefixes.iter().map(move |(p, _)| (r, *p)))
        .filter(|(_, p)| p.contains(addr))
        .max_by_key(|(_, p)| p.len());
    match best {
        Some((r, _)) => &r.name,
        None => policy
            .realms
            .by_id(policy.realms.default)
            .map_or("default", |r| r.name.as_str()),
    }
}

/// One endpoint per realm that has an upstream address, in realm id order.
pub(super) fn endpoints(policy: &Policy) -> Vec<Endpoint> {
    policy
        .realms
        .list
        .iter()
        .map(|r| Endpoint {
            realm: r.name.clone(),
            v4: UPSTREAM_V4
                .into_iter()
                .find(|a| realm_of(policy, IpAddr::V4(*a)) == r.name),
            v6: UPSTREAM_V6
                .into_iter()
                .find(|a| realm_of(policy, IpAddr::V6(*a)) == r.name),
        })
        .filter(|e| e.v4.is_some() || e.v6.is_some())
        .collect()
}

/// The ceil the policy puts on a tenant's traffic with one realm in one
/// direction, in Mbit/s: the smallest of the tenant's own ceil, its plan's
/// cap on that realm, every parent's ceil above it and the site's capacity.
/// `None` if the policy does not cover the tenant's address `from`, because
/// then the traffic is nobody's and only the default class holds it.
pub(super) fn expected_ceil_mbit(
    policy: &Policy,
    tenant: u32,
    from: IpAddr,
    realm: &str,
    dir: Direction,
) -> Option<f64> {
    let t = policy.tenant(TenantId(tenant))?;
    if !t.prefixes.iter().any(|(p, _)| p.contains(from)) {
        return None;
    }
    let plan = policy.plan(&t.plan)?;
    let mut ceil = policy.tenant_shape(t, dir)?.ceil.bps();
    if let Some(cap) = policy
        .realms
        .by_name(realm)
        .and_then(|r| plan.realm_cap(r.id, dir))
    {
        ceil = ceil.min(cap.ceil.bps());
    }
    // A pooled plan's class sits under the plan's parent, not the tenant's.
    let mut parent = if plan.is_shared() {
        plan.parent.clone()
    } else {
        t.parent.clone()
    };
    // The policy refuses cycles; the bound only keeps a bug from looping.
    for _ in 0..policy.parents.len() {
        let Some(p) = parent.as_deref().and_then(|n| policy.parent(n)) else {
            break;
        };
        ceil = ceil.min(p.shape.get(dir).ceil.bps());
        parent = p.parent.clone();
    }
    ceil = ceil.min(policy.site.capacity.get(dir).bps());
    Some(ceil as f64 / 1e6)
}

/// The `n`-th address of a prefix (the prefix's own address for a host prefix).
pub(super) fn nth_host(p: Prefix, n: u32) -> IpAddr {
    match p.network() {
        Prefix::V4(a, 32) => IpAddr::V4(a),
        Prefix::V6(a, 128) => IpAddr::V6(a),
        Prefix::V4(a, _) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        Prefix::V6(a, _) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(n.into()))),
    }
}
