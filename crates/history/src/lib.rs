//! The history store: the only crate that touches the database.
//!
//! - [`Store`]: the port. Append a [`Batch`] (samples, slot coverage and the
//!   accounting state) in one transaction, each sample accepted or refused
//!   on its own, refused ones kept in a bounded quarantine
//!   ([`refusal`]); read samples, coverage and usage totals exact to the
//!   5-minute slot in any zone ([`Store::usage`]); read a tenant's hourly
//!   totals for graphs ([`Store::hourly_totals`]); rank tenants by traffic
//!   ([`Store::top_tenants`]); apply
//!   [`Retention`]; freeze a closed period's bill; load the last accounting
//!   state; [`Store::add`] samples from another writer (a flow collector)
//!   that sum with what is stored, under that writer's own sequence and
//!   state; [`Store::compact`] finished days into one row per tenant (the
//!   samples, and the hourly rollup beside its hour rows);
//!   [`Store::append_latency`] and [`Store::latency`] keep per-minute
//!   latency rows ([`latency`]: TCP RTT, probes, queues);
//!   [`Store::record_attack`] and [`Store::attacks`] keep the guard's
//!   ended attacks ([`attacks`]). `history-clickhouse` implements the
//!   same trait.
//! - [`SqliteStore`]: the default, one SQLite file (by default
//!   [`DEFAULT_PATH`]) in WAL mode with `synchronous = FULL` (see
//!   [`sqlite`](crate::SqliteStore) for why), a versioned schema with a
//!   migration table, samples packed one row per tenant per hour (per UTC
//!   day once compacted), and hourly and daily rollups (per tenant, and
//!   every tenant's totals for ranking) kept up to date inside the same
//!   append transaction; a compacted tenant's month is about 31 row reads
//!   whether read as samples, hourly totals or daily totals.
//!
//! # Exactly once
//!
//! The daemon's loop is: read counters → [`accounting::Accountant::observe`]
//! → [`Store::append`] with the returned samples and the accountant's new
//! state, under a sequence number one above the last. After a crash it
//! resumes from [`Store::last_state`]. Because samples and state commit
//! together, every byte lands in exactly one committed sample; the
//! `batches` table refuses a sequence number twice, so a retried append
//! cannot double count either. [`Store::add`] works the same way for
//! other writers, with the `writers` table holding each one's last
//! sequence and state ([`Store::writer_state`]).

pub mod attacks;
mod error;
pub mod flows;
pub mod fuzzing;
pub mod latency;
pub mod refusal;
mod sqlite;
mod store;

/// How a range of slots is cut into rollup rows and raw samples so that
/// every slot counts in its own bucket, and the retention marks that say
/// which data is gone: shared by every store, so that all of them answer
/// [`Store::usage`] and [`Store::top_tenants`] from the same pieces.
pub mod planning {
    pub use crate::sqlite::plan::{plan, Marks, Piece, Planned};
}

/// The suite every [`Store`] must pass, run against the SQLite store by
/// this crate's tests and against other stores by theirs.
#[cfg(feature = "conformance")]
pub mod conformance;

pub use attacks::{AttackRow, MAX_ATTACKS};
pub use error::StoreError;
pub use flows::{FlowBy, FlowKey, FlowRetention, FlowRow, FlowTopQuery, Talker};
pub use latency::{LatencyQuery, LatencyRefusal, LatencyReport};
pub use refusal::{
    Quarantine, QuarantinedSample, Refusal, RefusalReason, WriteReport, ACCOUNTANT_WRITER,
    MAX_SAMPLE_BYTES, MAX_SAMPLE_PACKETS, QUARANTINE_CAP,
};
pub use sqlite::{SqliteOptions, SqliteStore, COMPACT_GRACE, DEFAULT_PATH, SCHEMA_VERSION};
pub use store::{
    latency_cutoff, AddBatch, Batch, Bucket, CompactReport, FrozenPeriod, HourTotal, HourTotals,
    RankBy, Retention, RetentionReport, SampleQuery, Store, StoredState, TenantTotal, Tenants,
    TopQuery, UsageQuery, UsageTotal, WriterSequence,
};
