//! The tables a flow is attributed with: tenant prefixes and realm prefixes.

use flow_wire::{Sampling, SamplingOrigin};
use net_types::{Prefix, RealmId, TenantId};
use policy::{Measure, Policy};
use prefix_map::{PrefixMap4, PrefixMap6};
use std::fmt;
use std::net::IpAddr;

/// Whom an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A tenant measured by flows: its records are attributed.
    Flows(TenantId),
    /// A tenant this box shapes and counts in the kernel: its records are
    /// not attributed, or it would be billed twice.
    Kernel(TenantId),
}

/// Why the tables could not be built. A validated policy's prefixes always
/// fit, so this means a bug, reported rather than unwrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributionError {
    /// Why.
    pub problem: String,
}

impl fmt::Display for AttributionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "building the flow attribution tables: {}", self.problem)
    }
}

impl std::error::Error for AttributionError {}

/// Tenant and realm tables for attributing flows, built from one policy and
/// one routes table. Immutable once built: a new policy or routes table
/// builds a new one, with a new `generation` so that every [`crate::Tally`]
/// drops what it cached from the old one.
pub struct Attribution {
    tenants4: PrefixMap4<Owner>,
    tenants6: PrefixMap6<Owner>,
    realms4: PrefixMap4<RealmId>,
    realms6: PrefixMap6<RealmId>,
    default_realm: RealmId,
    generation: u32,
    /// What the tables were built from, to tell a reload that changes
    /// nothing (building them costs tens of megabytes of directories).
    inputs: Inputs,
}

/// Everything [`Attribution::new`] reads from the policy and routes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inputs {
    tenants4: Vec<(u32, u8, Owner)>,
    tenants6: Vec<(u128, u8, Owner)>,
    realms4: Vec<(u32, u8, RealmId)>,
    realms6: Vec<(u128, u8, RealmId)>,
    default_realm: RealmId,
    /// Per exporter address, the sampling interval the policy imposes.
    overrides: Vec<(IpAddr, u32)>,
}

impl Inputs {
    fn of(policy: &Policy, route_realms: &[(Prefix, RealmId)]) -> Inputs {
        let mut i = Inputs {
            tenants4: Vec::new(),
            tenants6: Vec::new(),
            realms4: Vec::new(),
            realms6: Vec::new(),
            default_realm: policy.realms.default,
            overrides: Vec::new(),
        };
        for t in &policy.tenants {
            let owner = match t.measured_by {
                Measure::Flows => Owner::Flows(t.id),
                Measure::Kernel => Owner::Kernel(t.id),
            };
            for (p, _) in &t.prefixes {
                split(*p, owner, &mut i.tenants4, &mut i.tenants6);
            }
        }
        // Routes first, then the policy: a later duplicate wins in `build`.
        for (p, realm) in route_realms {
            split(*p, *realm, &mut i.realms4, &mut i.realms6);
        }
        for r in &policy.realms.list {
            for (p, _) in &r.prefixes {
                split(*p, r.id, &mut i.realms4, &mut i.realms6);
            }
        }
        i.overrides = policy
            .flows
            .iter()
            .flat_map(|f| &f.exporters)
            .filter_map(|e| Some((e.address, e.sampling?)))
            .collect();
        i
    }
}

impl fmt::Debug for Attribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribution")
            .field("tenants4", &self.tenants4.len())
            .field("tenants6", &self.tenants6.len())
            .field("realms4", &self.realms4.len())
            .field("realms6", &self.realms6.len())
            .field("generation", &self.generation)
            .finish()
    }
}

impl Attribution {
    /// Builds the tables from the policy's tenants and realms and the
    /// routes' realms (`HostFacts::route_realms`). Where a route and a
    /// policy realm prefix are the same prefix, the policy wins, as in the
    /// kernel's realm map.
    pub fn new(
        policy: &Policy,
        route_realms: &[(Prefix, RealmId)],
        generation: u32,
    ) -> Result<Attribution, AttributionError> {
        let inputs = Inputs::of(policy, route_realms);
        let refuse = |e: prefix_map::PrefixError| AttributionError {
            problem: e.to_string(),
        };
        Ok(Attribution {
            tenants4: PrefixMap4::build(inputs.tenants4.clone()).map_err(refuse)?,
            tenants6: PrefixMap6::build(inputs.tenants6.clone()).map_err(refuse)?,
            realms4: PrefixMap4::build(inputs.realms4.clone()).map_err(refuse)?,
            realms6: PrefixMap6::build(inputs.realms6.clone()).map_err(refuse)?,
            default_realm: policy.realms.default,
            generation,
            inputs,
        })
    }

    /// Whether `policy` and `route_realms` would build these same tables,
    /// so that a reload that changes nothing here can keep them.
    pub fn same_inputs(&self, policy: &Policy, route_realms: &[(Prefix, RealmId)]) -> bool {
        Inputs::of(policy, route_realms) == self.inputs
    }

    /// Which generation of tables this is.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The owner and realm of an address, from the tables (no cache).
    pub fn resolve(&self, addr: IpAddr) -> (Option<Owner>, RealmId) {
        match addr {
            IpAddr::V4(a) => self.resolve4(u32::from(a)),
            IpAddr::V6(a) => {
                let a = u128::from(a);
                (
                    self.tenants6.lookup(a),
                    self.realms6.lookup(a).unwrap_or(self.default_realm),
                )
            }
        }
    }

    pub(crate) fn resolve4(&self, a: u32) -> (Option<Owner>, RealmId) {
        (
            self.tenants4.lookup(a),
            self.realms4.lookup(a).unwrap_or(self.default_realm),
        )
    }

    /// The realm of an address no realm prefix covers (and of a missing
    /// one).
    pub fn default_realm(&self) -> RealmId {
        self.default_realm
    }

    /// The sampling to apply to a record from `exporter` that reports
    /// `reported`: the policy's override (1 in N) if it has one, else the
    /// exporter's own.
    pub fn sampling(&self, exporter: IpAddr, reported: Sampling) -> Sampling {
        match self.inputs.overrides.iter().find(|(a, _)| *a == exporter) {
            Some((_, n)) => Sampling::one_in(u64::from(*n), SamplingOrigin::Configured),
            None => reported,
        }
    }
}

fn split<V>(p: Prefix, v: V, four: &mut Vec<(u32, u8, V)>, six: &mut Vec<(u128, u8, V)>) {
    match p.network() {
        Prefix::V4(a, len) => four.push((u32::from(a), len, v)),
        Prefix::V6(a, len) => six.push((u128::from(a), len, v)),
    }
}
