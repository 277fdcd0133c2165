//! The daemon's decisions, as pure code: `handle(now, input) -> effects`.
//!
//! The engine decides when to reconcile and read the kernel, what to
//! account and store, when to move a tenant to the overage plan and back,
//! how to carry out a command, and what to report. It does no I/O and
//! reads no clock: the shell (the `tollgate run` daemon) feeds it inputs
//! (timers, signals, the answers to its effects, API commands) and does
//! what the effects say. Inputs and effects are serialisable, so a
//! recorded run replays to identical effects (`tests/replay.rs`).
//!
//! - [`Engine`]: the state machine ([`core`]);
//! - [`io`]: every input and effect;
//! - [`books`]: the accountant and its batches;
//! - [`overage`]: the overage automation's decisions;
//! - [`records`]: the automation's records and their crash safety;
//! - [`edit`]: edits of the policy file, shared with the command line;
//! - [`feeds`]: which kernel class counts whose traffic;
//! - [`snapshot`]: what the API and metrics read;
//! - [`guard`]: the DDoS detector inside the daemon, its inputs and effects;
//! - [`latency`]: queueing delay, probes and their alarms, as inputs and effects.

pub mod books;
mod core;
pub mod edit;
pub mod feeds;
pub mod guard;
pub mod io;
pub mod latency;
mod overage;
pub mod records;
pub mod shipped;
pub mod shipping;
pub mod snapshot;
pub mod transit;
pub mod transit_guard;
pub mod transit_run;

pub use crate::core::Engine;
pub use io::{Effect, Input};
