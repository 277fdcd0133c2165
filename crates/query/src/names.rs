//! Tenants and realms by id or name, for answers people read. A history
//! can be read without a policy (names then fall back to numbers).

use crate::QueryError;
use net_types::{RealmId, TenantId};
use policy::Policy;

/// A realm's name, or `realm N`.
pub fn realm_name(policy: Option<&Policy>, realm: u16) -> String {
    policy
        .and_then(|p| p.realms.by_id(RealmId(realm)))
        .map_or_else(|| format!("realm {realm}"), |r| r.name.clone())
}

/// A tenant's name, or `tenant N`.
pub fn tenant_name(policy: Option<&Policy>, tenant: u32) -> String {
    policy
        .and_then(|p| p.tenant(TenantId(tenant)))
        .map_or_else(|| format!("tenant {tenant}"), |t| t.name.clone())
}

/// A tenant's id from its id or name. Without a policy only ids can be
/// looked up.
pub fn tenant_id(policy: Option<&Policy>, who: &str) -> Result<u32, QueryError> {
    if let Some(t) = policy.and_then(|p| p.tenants.iter().find(|t| t.name == who)) {
        return Ok(t.id.0);
    }
    who.parse().map_err(|_| match policy {
        Some(_) => QueryError::invalid(
            "tenant",
            format!("no tenant has the id or name `{who}`; `tollgate status` lists them"),
        ),
        None => QueryError::invalid(
            "tenant",
            format!("`{who}` is not a tenant id, and without a readable policy (-c) names cannot be looked up"),
        ),
    })
}
