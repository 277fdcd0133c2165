//! Exported flow records → per tenant × realm × direction usage.
//!
//! A router that tollgate does not run on reports what it forwarded as flow
//! records (NetFlow, IPFIX) or packet samples (sFlow); `flow-wire` decodes
//! them. This crate decides what each record means for billing:
//!
//! - **whose** it is: the tenant whose prefix holds the source address sent
//!   it (direction up), the tenant whose prefix holds the destination
//!   received it (direction down); traffic between two tenants counts for
//!   both, as it would on each tenant's own link;
//! - **which realm**: the realm of the *other* end's address, by longest
//!   match over the policy's realm prefixes and the routes' realms, as the
//!   kernel classifies shaped traffic;
//! - **how much**: bytes and packets scaled by the sampling (the
//!   exporter's own, or the policy's override for that exporter), and
//!   believed only up to what a link can carry: a record beyond
//!   [`SLOT_BYTES_LIMIT`] or [`SLOT_PACKETS_LIMIT`] in a slot is
//!   quarantined (kept aside and counted), never summed, so no exporter can
//!   push a slot past what the history stores;
//! - **when**: in the 5-minute slots the flow's time span covers, split in
//!   proportion to time with [`accounting::spread`], so the parts add up to
//!   the whole to the byte.
//!
//! Only tenants with `measured_by = "flows"` are attributed: a tenant this
//! box shapes is already counted by its kernel classes, and counting its
//! flows too would bill it twice. Such records are counted as
//! `kernel_measured` instead. A record without an address this collector
//! can read is `unattributed`: a missing address is nobody's.
//!
//! Everything here is pure: the receive time is passed in, and the
//! [`Tally`] is plain memory that the collector drains into the history
//! store.

mod attribution;
mod cache;
mod coverage;
pub mod fuzzing;
mod quarantine;
mod tally;

pub use attribution::{Attribution, AttributionError, Owner};
pub use coverage::SlotClock;
pub use quarantine::{
    Counter, QuarantineReason, Quarantined, SLOT_BYTES_LIMIT, SLOT_PACKETS_LIMIT,
};
pub use tally::{Outcome, Tally, TallyStats, CLOCK_SKEW_MILLIS, QUARANTINE_KEEP};
