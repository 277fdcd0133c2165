//! The realm table: which realm every destination belongs to, derived from
//! routes.
//!
//! Routes arrive from two places: BGP sessions (through the `bgp-speaker`
//! crate, as [`bgp::session::Event`]s) and MRT RIB dumps (through
//! `tollgate routes import`). Either way this crate does the same three
//! things, as pure code with no I/O and no clock:
//!
//! 1. **Best path.** Several peers may announce the same prefix; one route
//!    is chosen by the documented, deterministic rules of [`selection`].
//! 2. **Realm.** The chosen route's attributes go through the policy's
//!    realm rules ([`RealmRules`]): realms are tried in policy order, the
//!    first whose rules match wins, and a route no rule matches belongs to
//!    the default realm. The rule that matched is kept, so that `tollgate
//!    routes lookup` can say why.
//! 3. **Lookup tables.** Every prefix with a route is stored with its realm
//!    in a `prefix-map` table per family, which answers "which realm is
//!    this address in" by longest-prefix match.
//!
//! [`RouteTable`] is the live version: it applies session events and
//! returns the [`RealmChange`]s they caused, so that the dataplane can
//! update its classification incrementally instead of rebuilding it.
//! [`import::Importer`] is the batch version for MRT dumps, producing a
//! [`snapshot::Snapshot`]: a compact, versioned file image that the CLI
//! stores in the state directory and reads back for `lookup` and `stats`.
//!
//! Realms from the policy's static prefix lists are not this crate's
//! business: it only classifies routes.

pub mod fuzzing;
pub mod import;
mod realms;
pub mod selection;
pub mod snapshot;
mod table;

pub use net_types::RealmId;
pub use realms::{Classification, MatchedRule, RealmRules};
pub use table::{BestRoute, FamilyCounts, PeerInfo, RealmChange, RouteTable};
