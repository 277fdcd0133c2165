//! Why each object of a plan exists.

use net_types::TenantId;
use plan::ObjectId;
use policy::{Band, Direction};
use serde::Serialize;
use std::collections::BTreeMap;

/// What one object serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Serves {
    /// The tenant, if the object is a tenant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The parent or pool, if the object is a node's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The realm, if the object is per realm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// The band, if the object is per band.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    /// The direction, if the object is per direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Why it exists, in a sentence.
    pub why: String,
}

/// Every object's [`Serves`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Provenance {
    /// By object.
    #[serde(serialize_with = "plan::as_entries")]
    pub objects: BTreeMap<ObjectId, Serves>,
}

impl Provenance {
    /// Records why an object exists.
    pub fn add(&mut self, id: ObjectId, serves: Serves) {
        self.objects.insert(id, serves);
    }

    /// Every object that serves a tenant.
    pub fn of_tenant(&self, tenant: TenantId) -> impl Iterator<Item = (&ObjectId, &Serves)> {
        self.objects
            .iter()
            .filter(move |(_, s)| s.tenant == Some(tenant))
    }
}
