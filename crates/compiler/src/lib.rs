//! The compiler: `Policy + HostFacts → Plan`, plus provenance.
//!
//! It decides every kernel object a policy needs and records, for each, which
//! tenant × realm × band it serves and why. It is pure and deterministic: the
//! same policy and facts always give a byte-identical plan.
//!
//! # The dataplane it targets
//!
//! (`docs/dataplane.md` has the measurements behind each choice.)
//!
//! - Each direction is shaped by `site.shards` HTB trees, each on its own IFB
//!   device (`tg-down0`, `tg-up0`, …), so tollgate never replaces a qdisc on
//!   an interface it does not own and each tree stays small enough for the
//!   kernel's per-qdisc costs.
//! - An nftables `netdev` table hooks the egress of the interfaces where
//!   traffic is seen (uplink, LAN, or each VM's vif) and writes the HTB class
//!   straight into `skb->priority` through interval maps: first the remote
//!   address's realm, then the tenant address (or vif) with that realm, then
//!   the band bits. HTB picks the class from `skb->priority` with no tc filter
//!   walk at all.
//! - A one-line classic-BPF tc filter on the same egress hook redirects each
//!   packet to its shard's IFB; with several shards, nftables also writes the
//!   shard into the packet mark for that filter to read.
//!
//! # Stable handles
//!
//! Each owner (a parent, a shared plan's pool, a tenant) gets a block of
//! consecutive minors. Blocks already live (from [`HostFacts::live`]) are
//! kept, so adding, removing or changing one tenant touches only that
//! tenant's objects. A tenant that must move (a new parent, a new plan shape)
//! gets a fresh block: the change set creates it, repoints classification,
//! and only then removes the old one.

mod alloc;
mod depth;
mod facts;
mod provenance;
pub mod realm_ranges;
pub mod synthetic;
pub use tree::guard::{Prepared as GuardPrepared, MAX_THROTTLE_RATES, THROTTLE_TOP_MINOR};
mod tree;

pub use depth::HTB_MAX_DEPTH;
pub use facts::{HostFacts, Live, Owner, Placement};
pub use provenance::{Provenance, Role, Serves};

use net_types::IfName;
use plan::Plan;
use policy::{Diagnostic, Direction, Policy};

/// The minor of each shard's root class.
pub const ROOT_MINOR: u16 = 1;
/// The minor of each shard's default class (traffic of no tenant).
pub const DEFAULT_MINOR: u16 = 2;
/// The registry map that records each node's block.
pub const REG_NODES: &str = "owners_nodes";
/// The registry map that records each tenant's block.
pub const REG_TENANTS: &str = "owners_tenants";

/// The HTB major of the root qdisc on each IFB, which holds one class per
/// shard and nothing else.
pub const OUTER_MAJOR: u16 = 1;

/// The minor of the root tree's default class. Shard classes use minors
/// 2 and up (the shard's major), so the default sits at the far end.
pub const OUTER_DEFAULT_MINOR: u16 = 0xffff;

/// The HTB major number of a shard: the handle of the HTB qdisc nested
/// under the shard's class in the root tree.
pub fn shard_major(shard: u16) -> u16 {
    shard + 2
}

/// The shard whose nested HTB qdisc has this major, if any.
pub fn shard_of_major(major: u16) -> Option<u16> {
    major.checked_sub(2)
}

/// The IFB device that holds a direction's shaping trees.
pub fn ifb_name(dir: Direction) -> IfName {
    IfName::new(&format!("tg-{}", dir.as_str())).expect("IFB names are short and plain")
}

/// A plan and the reasons for each of its objects.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// What must exist.
    pub plan: Plan,
    /// Why each object exists.
    pub provenance: Provenance,
    /// Where each owner's block is.
    pub placements: Live,
    /// Non-fatal notes (e.g. a VM's interface is absent, so its hook is skipped).
    pub notes: Vec<Diagnostic>,
}

/// Compiles a validated policy for a host.
///
/// Errors are diagnostics that only the host or the kernel's limits can
/// reveal: a missing interface, or more classes than an HTB tree can address.
///
/// Tenants measured by flows get nothing in the kernel: a router elsewhere
/// carries their traffic, and this box only attributes its flow records.
pub fn compile(policy: &Policy, facts: &HostFacts) -> Result<Compiled, Vec<Diagnostic>> {
    if policy
        .tenants
        .iter()
        .any(|t| t.measured_by == policy::Measure::Flows)
    {
        let mut shaped = policy.clone();
        shaped
            .tenants
            .retain(|t| t.measured_by == policy::Measure::Kernel);
        return tree::build(&shaped, facts);
    }
    tree::build(policy, facts)
}
