//! Billing: 95th percentile and volume per tenant per period, from the
//! 5-minute [`accounting::Sample`]s.
//!
//! - [`BillingCycle`] and [`Period`]: a billing day (1–28) at local midnight
//!   in an IANA zone; a period's expected sample count follows the calendar
//!   and daylight-saving changes.
//! - [`Series`]: one tenant's per-slot bytes in a period, for a
//!   [`RealmSelection`]; down + up of every slot stays within 64 bits (what
//!   does not is refused, tenant and slot named), so per-slot figures are
//!   exact, and sums over slots are [`ByteCount`]s (128-bit): a volume is
//!   never clamped.
//! - [`percentile`]: the figure under a [`PercentileRule`] (percentile,
//!   [`Method`], [`RankRule`], [`MissingSamples`]), always with its
//!   [`Coverage`] and its rule in words.
//! - [`Overage`] against a commit, [`VolumeFigure`] against a quota,
//!   [`bill_tenant`] for one line per [`ChargeRule`].
//! - [`project`] and [`decide`]: the overage automation; [`Watch`] and
//!   [`Tally`]: the same decision kept up to date from a few counters per
//!   tenant, slot by slot.
//! - [`site_series`] and [`assess`]: the site's own bill against an
//!   upstream's commit ([`UpstreamRule`]), with its burst budget.
//! - Rule names ([`Method`], [`RankRule`], [`MissingSamples`],
//!   [`VolumeCounts`]): one table each ([`Named`]) behind `Display`,
//!   `FromStr` and serde, the same spelling as the policy. Bills as text
//!   ([`TenantBill::to_text_named`], [`RealmSelection::describe`],
//!   [`Decision`]'s `Display`) use no Debug formatting.
//!
//! # Time zones: jiff with its bundled database
//!
//! Periods start at local midnight, so billing needs the IANA rules. `jiff`
//! is used with `tzdb-bundle-always`: the database is compiled in, so a
//! minimal host or container without `/usr/share/zoneinfo` bills the same
//! as a full one, and a test that checks a Berlin DST month runs anywhere.
//! Compared with `chrono-tz` (also compiled in), jiff's civil-time
//! arithmetic makes "the same day next month at midnight, in that zone" one
//! call, with an explicit rule for local times that a DST change skips.
//!
//! This crate is pure: no I/O, no clock. "Now" is an argument.

mod bill;
mod bytes;
mod commit;
mod error;
mod figure;
mod names;
mod percentile;
mod period;
mod projection;
mod rate;
mod series;
mod transit;
mod volume;
mod watch;

pub use bill::{bill_tenant, check_rules, ChargeLine, ChargeRule, TenantBill};
pub use bytes::ByteCount;
pub use commit::Overage;
pub use error::BillingError;
pub use figure::{
    percentile, Coverage, Method, MissingSamples, PercentileFigure, PercentileRule, RankedSample,
};
pub use names::Named;
pub use percentile::{rank_value, Percentile, RankRule};
pub use period::{BillingCycle, Period};
pub use projection::{decide, project, Decision, OveragePolicy, Projection};
pub use rate::BitRate;
pub use series::{RealmSelection, Series};
pub use transit::{
    above_commit, assess, site_series, TransitStatus, UpstreamMethod, UpstreamRule, UNCLASSIFIED,
};
pub use volume::{VolumeCounts, VolumeFigure, VolumeRule};
pub use watch::{slot_bytes, Limits, SlotBytes, Tally, Verdict, Watch};
