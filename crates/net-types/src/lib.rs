//! Value types that carry their unit or their validity in the type.
//!
//! Every other tollgate crate speaks in these types instead of bare integers
//! and strings: a [`Rate`] is always bits per second, a [`Size`] is always
//! bytes, an [`IfName`] is always a name the kernel accepts, and a
//! [`ClassId`] is always a valid `major:minor` tc handle. Parsing lives here
//! too, so that `10mbit` (and `5m`, [`parse_duration`]) means the same thing
//! in the policy file, on the command line and in a test.
//!
//! This crate is pure: no I/O, no clock, no global state.

mod complement;
mod duration;
mod ids;
mod ifname;
mod prefix;
mod units;

pub use complement::{subtract, TooManyPrefixes};
pub use duration::{parse_duration, DurationError, MAX_DURATION};
pub use ids::{ClassId, RealmId, TenantId};
pub use ifname::{IfName, IfNameError};
pub use prefix::{Prefix, PrefixError};
pub use units::{Rate, Size, UnitError};
