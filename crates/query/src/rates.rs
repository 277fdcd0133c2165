//! Live rates from two readings of the same class counters: per tenant ×
//! realm (`top`) and per class (`status`). The readings are taken by the
//! caller (the command line reads the kernel twice; the daemon keeps its
//! last two reads), so both answer with the same arithmetic.

use crate::names::{realm_name, tenant_name};
use accounting::{Direction, UsageKey};
use compiler::Compiled;
use plan::{ClassKey, ObjectId};
use policy::Policy;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Bytes per class at one instant.
pub type Reading = HashMap<ClassKey, u64>;

/// Bits per second between two readings `secs` apart; a class missing
/// from either (created or deleted in between) has no rate rather than a
/// spike.
fn bps(prev: &Reading, cur: &Reading, key: &ClassKey, secs: f64) -> Option<f64> {
    let (a, b) = (prev.get(key)?, cur.get(key)?);
    Some(b.saturating_sub(*a) as f64 * 8.0 / secs.max(1e-3))
}

/// One tenant × realm's rates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantRate {
    /// The tenant's id.
    pub tenant: u32,
    /// Its name.
    pub name: String,
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub realm_name: String,
    /// Toward the tenant, bit/s.
    pub down_bps: f64,
    /// From the tenant, bit/s.
    pub up_bps: f64,
}

/// Rates per tenant × realm, busiest first, at most `limit` rows. `extra`
/// are rates measured elsewhere (the flow collector's), added in.
pub fn top(
    policy: Option<&Policy>,
    feeds: &BTreeMap<ClassKey, UsageKey>,
    prev: &Reading,
    cur: &Reading,
    secs: f64,
    extra: &[(u32, u16, f64, f64)],
    limit: usize,
) -> Vec<TenantRate> {
    let mut sums: BTreeMap<(u32, u16), (f64, f64)> = BTreeMap::new();
    for (class, key) in feeds {
        let e = sums.entry((key.tenant.0, key.realm.0)).or_default();
        let Some(r) = bps(prev, cur, class, secs) else {
            continue;
        };
        match key.direction {
            Direction::Down => e.0 += r,
            Direction::Up => e.1 += r,
        }
    }
    for &(t, r, down, up) in extra {
        let e = sums.entry((t, r)).or_default();
        e.0 += down;
        e.1 += up;
    }
    let mut rows: Vec<TenantRate> = sums
        .into_iter()
        .map(|((t, r), (down, up))| TenantRate {
            tenant: t,
            name: tenant_name(policy, t),
            realm: r,
            realm_name: realm_name(policy, r),
            down_bps: down.round(),
            up_bps: up.round(),
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.down_bps + b.up_bps)
            .total_cmp(&(a.down_bps + a.up_bps))
            .then(a.tenant.cmp(&b.tenant))
            .then(a.realm.cmp(&b.realm))
    });
    rows.truncate(limit);
    rows
}

/// One of a tenant's classes, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassRow {
    /// The tenant's id.
    pub tenant: u32,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: String,
    /// `down` or `up`.
    pub direction: Option<&'static str>,
    /// The realm's name, if the class is a realm's.
    pub realm: Option<String>,
    /// The class handle.
    pub class: String,
    /// The device.
    pub device: String,
    /// Guaranteed rate.
    pub rate: String,
    /// Ceiling.
    pub ceil: String,
    /// Whether the kernel has it.
    pub present: bool,
    /// The current rate.
    pub bits_per_second: f64,
    /// Bytes counted so far.
    pub bytes: u64,
}

/// Every tenant's own and realm classes with their rates.
pub fn classes(
    policy: &Policy,
    compiled: &Compiled,
    present: &BTreeSet<ClassKey>,
    prev: &Reading,
    cur: &Reading,
    secs: f64,
) -> Vec<ClassRow> {
    // One pass over the objects (not one per tenant: at 10,000 tenants
    // that was 600 million visits), rows kept in the policy's tenant order.
    let order: HashMap<net_types::TenantId, usize> = policy
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i))
        .collect();
    let mut rows: Vec<(usize, ClassRow)> = Vec::new();
    for (id, s) in &compiled.provenance.objects {
        let Some((i, t)) = s
            .tenant
            .and_then(|t| order.get(&t))
            .map(|&i| (i, &policy.tenants[i]))
        else {
            continue;
        };
        let ObjectId::Class(key) = id else { continue };
        if !matches!(
            s.role,
            compiler::Role::TenantClass
                | compiler::Role::RealmClass
                | compiler::Role::CappedRealmClass
        ) {
            continue;
        }
        let Some(class) = compiled.plan.classes.get(key) else {
            continue;
        };
        rows.push((
            i,
            ClassRow {
                tenant: t.id.0,
                name: t.name.clone(),
                plan: t.plan.clone(),
                direction: s.direction.map(|d| d.as_str()),
                realm: s.realm_name(policy).map(str::to_owned),
                class: key.id.to_string(),
                device: key.dev.as_str().to_string(),
                rate: class.rate.to_string(),
                ceil: class.ceil.to_string(),
                present: present.contains(key),
                bits_per_second: bps(prev, cur, key, secs).unwrap_or(0.0),
                bytes: cur.get(key).copied().unwrap_or(0),
            },
        ));
    }
    // Stable: each tenant's classes stay in the objects' order.
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<ClassRow> = rows.into_iter().map(|(_, r)| r).collect();
    rows
}
