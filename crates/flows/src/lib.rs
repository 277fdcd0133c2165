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
//! - **how much**: bytes and packets multiplied by the sampling interval
//!   (the exporter's own, or the policy's override for that exporter);
//! - **when**: in the 5-minute slots the flow's time span covers, split in
//!   proportion to time with [`accounting::spread`], so the parts add up to
//!   the whole to the byte.
//!
//! Only tenants with `measured_by = "flows"` are attributed: a tenant this
//! box shapes is already counted by its kernel classes, and counting its
//! flows too would bill it twice. Such records are counted as
//! `kernel_measured` instead.
//!
//! Everything here is pure: the receive time is passed in, and the
//! [`Tally`] is plain memory that the collector drains into the history
//! store.

mod attribution;
mod cache;
mod coverage;
mod tally;

pub use attribution::{Attribution, AttributionError, Owner};
pub use coverage::SlotClock;
pub use tally::{Tally, TallyStats, CLOCK_SKEW_MILLIS};
