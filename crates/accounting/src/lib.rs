//! Accounting: kernel class counters in, 5-minute usage samples out.
//!
//! The daemon reads the byte and packet counters of every class the
//! dataplane owns at an interval (10 s by default) and hands them to an
//! [`Accountant`], keyed by [`UsageKey`] (tenant × realm × direction ×
//! band × [`Source`], which is [`Source::Kernel`] for class counters) and
//! tagged with an [`ObjectIdentity`] that changes when the kernel
//! object is recreated. The accountant
//! 1. turns raw counters into deltas across 32-bit packet wraps, resets and
//!    object changes ([`counter`] documents which cases are exact and which
//!    are heuristics);
//! 2. splits each read interval's delta over the fixed 5-minute [`Slot`]s it
//!    spans, in proportion to time, without losing or creating a byte
//!    ([`spread`]);
//! 3. hands back the [`Sample`]s and [`SlotCoverage`] of every slot that has
//!    closed.
//!
//! # No loss, no double count across restarts
//!
//! [`Accountant::state`] holds the last reading of every counter and the
//! traffic already attributed to slots that have not closed. The daemon
//! writes it **in the same transaction** as the samples the same
//! [`Accountant::observe`] returned, and on start resumes from the last
//! committed state with [`Accountant::resume`]. A crash before the commit
//! loses both the samples and the state, so the next read after the
//! restart computes the same traffic again from the older state; a crash
//! after it loses neither. Either way every byte the kernel counted lands
//! in exactly one committed sample. Traffic during the downtime is counted
//! too (the counters kept running): it is spread evenly over the gap and
//! those slots are marked [`SlotStatus::Estimated`].
//!
//! This crate is pure: no I/O and no clock. Time is passed in.

mod accountant;
pub mod counter;
pub mod fuzzing;
mod key;
mod slot;
pub mod spread;
mod state;

pub use accountant::{
    Accountant, AccountingError, Closed, Config, Sample, SlotCoverage, SlotStatus,
};
pub use counter::{CounterEvent, CounterWidth, FirstSight, ObjectIdentity, Reading, Usage};
pub use key::{Band, Direction, Source, UsageKey};
pub use slot::{Slot, SAMPLE_MILLIS, SAMPLE_SECONDS};
pub use state::{AccountantState, CounterState, OpenCoverage, OpenSample, StateError};
