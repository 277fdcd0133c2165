//! The daemon's decisions, as pure code.
//!
//! - [`feeds`]: which kernel class counts whose traffic;
//! - [`records`]: the overage automation's records (who was moved, from
//!   where, why).

pub mod edit;
pub mod feeds;
pub mod records;
