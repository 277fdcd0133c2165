//! The kernel plan: what must exist in the kernel, in the kernel's own
//! vocabulary, and how to get there from what exists now.
//!
//! A [`Plan`] is desired (or observed) state: IFB devices, qdiscs, HTB
//! classes, tc filters and the objects of tollgate's nftables table. It
//! knows nothing about tenants; the compiler decides what a tenant needs and
//! records why in its own provenance table.
//!
//! [`diff`] compares two plans and returns a [`ChangeSet`]: an ordered list
//! of [`Change`]s that is safe to apply top to bottom. The order is
//! make-before-break: everything new is created, then classification is
//! switched to it, and only then is anything old removed. A tenant being
//! moved therefore never falls into a default class, and the old classes
//! drain before they are deleted.
//!
//! [`render`] prints a plan or a change set as `tc -batch` text and as an
//! `nft -f` script, for people and for snapshot tests.
//!
//! This crate is pure: no I/O, no clock.

mod diff;
pub mod guard;
mod model;
pub mod render;

pub use diff::{diff, Change, ChangeSet, Step};
pub use model::*;
