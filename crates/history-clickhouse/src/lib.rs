//! The history store on a ClickHouse server, behind [`history::Store`].
//!
//! [`ClickHouseStore::open`] takes a URL (`http://host:port`) and a
//! database, reads the server's version, creates the database and
//! migrates its schema (a `schema_version` table; `SCHEMA_VERSION`). It
//! speaks ClickHouse's HTTP interface through a small blocking client of
//! its own (`http`) and the `RowBinary` format both ways (`rowbinary`):
//! no async runtime, no new dependency, and formats that work on the
//! 18.16 server Debian 12 ships as on current ones.
//!
//! # Tables
//!
//! - `samples`: the 5-minute samples, `MergeTree` partitioned by month,
//!   ordered by tenant then slot (one tenant's period is one range);
//!   several writers' rows of one slot and key are summed when read.
//! - `hourly`, `daily`: rollups per tenant × realm × direction,
//!   `SummingMergeTree`: the store adds up each batch's rows (a `GROUP BY`
//!   inside a view cost 0.5 s per 20,000 samples on 18.16) and views copy
//!   them in the same `INSERT`; `daily` is ordered by day first, which is what ranking a
//!   month of every tenant reads.
//! - `slots` (coverage, best status wins at read), `writers` (each
//!   writer's last sequence and state, `ReplacingMergeTree`; the
//!   accountant's under the empty name), `quarantine` and its counts,
//!   `frozen` (bills), `marks` (retention).
//! - `latency` (schema 2): the latency minutes of every kind in one table,
//!   so a close is one `INSERT`; `latency_marks` the retention's cut,
//!   honoured by every read (`latency.rs`).
//! - `attacks` (schema 3): the guard's ended attacks, one row per
//!   (start, target, direction): the store looks for the key before its
//!   insert and reads keep one row per key.
//! - `flows`, `flows_1m`, `flows_5m`, `flows_1h` (schema 4): the flow
//!   records kept (`[history.flows]`) and their sums per minute, 5 minutes
//!   and hour, one `flow_batches` row per batch like the samples'
//!   (`flows.rs`); top talkers tile the range with the coarsest tables.
//!
//! Usage and ranking are planned exactly as in the SQLite store
//! ([`history::planning`]): whole UTC days from `daily`, whole hours from
//! `hourly`, ragged edges and hours a local boundary cuts from `samples`,
//! so both stores give the same figures to the byte in every zone.
//!
//! # Exactly once without transactions
//!
//! ClickHouse has no multi-statement transactions, so a batch is written
//! as **one row of one `INSERT`**: a `Null` table (it keeps nothing)
//! takes a row whose parallel arrays hold every item of the batch (its
//! samples, coverage, rollup rows, refusals and the writer's state), and
//! materialized views fill `samples`, the rollups, `slots`, `quarantine`
//! and `writers` from it while the server runs that one insert. A batch
//! with nothing refused goes to `sample_batches` (schema 5, `lean.rs`: 7
//! numbers per item, half the bytes to parse), the others and the
//! quarantine to `batches` (schema 1, every item with all 15 columns). So:
//!
//! - The samples and the state that produced them land together: there is
//!   no window between "samples inserted" and "sequence recorded" in which
//!   a crash of tollgate could leave samples without their state (and a
//!   resumed accountant count them again).
//! - A body cut short inserts nothing. Measured on 18.16: when a client
//!   dies in the middle of an `INSERT … FORMAT RowBinary` body, the server
//!   inserts the rows that arrived whole. With the whole batch in one row,
//!   a cut body ends inside that row, which is a parse error. The insert
//!   is one block (`max_insert_block_size` above any batch).
//! - A batch delivered twice counts once: before inserting, the store
//!   reads the writer's last sequence from `writers` and refuses a
//!   sequence at or below it ([`history::StoreError::AlreadyAppended`]),
//!   like the SQLite store. Once the store has committed a writer's
//!   batch itself, it knows that writer's last sequence
//!   (`write::Sequences`) and skips this read and the running-insert
//!   check below for the next batch: it is the only writer of its history.
//!   If the server refuses that insert because one with the same id still
//!   runs, the store forgets what it knew and asks the server after all.
//! - A timeout whose insert did in fact land: every insert carries a
//!   `query_id` derived from the database, writer and sequence. A retry
//!   first waits until no query with that id runs on the server
//!   (`system.processes`), then reads `writers`: if the first insert
//!   landed, the retry is refused as already appended; if it failed, the
//!   retry inserts. While the first still runs, the server itself refuses
//!   a second query with the same id.
//! - What is left: the views are applied one after another inside the
//!   server's insert. If the *server* fails in the middle of one insert
//!   (out of disk, killed), some tables may have the batch and others
//!   not, and the client gets an error; the retry then sees no sequence
//!   and inserts again, doubling what had landed. Servers with
//!   `insert_deduplication_token` (22.2+) and transactions (experimental,
//!   22.7+) can close that; 18.16 cannot. This is the same guarantee
//!   as any ClickHouse pipeline built on materialized views.
//!
//! The accountant's refusals (already stored, twice in a batch) and an
//! add's (a slot and key past 2^50) are decided before the insert by
//! reading what is stored for the batch's slots and tenants; one writer at
//! a time per writer name is assumed, as with SQLite's write lock.
//!
//! # Exact sums
//!
//! Every stored value is a `UInt64` at most 2^50 per slot and key, and a
//! rollup row at most 288 × 8 × 2^50 < 2^62, so no stored value wraps.
//! Sums over many rows can pass 2^64 (a tenant's month of one realm), and
//! ClickHouse's `sum(UInt64)` would wrap: every read sums
//! `toDecimal128(bytes, 0)` (exact to 38 digits, present in 18.16) and the
//! store carries the result in `u128`.
//!
//! # Limits
//!
//! Slots are kept from 1970 to 2106 (months of `DateTime`); others are
//! refused as [`history::RefusalReason::SlotOutOfRange`]. `compact` does
//! nothing (the default): ClickHouse merges parts itself.

mod attacks;
mod client;
mod flows;
pub mod fuzzing;
mod http;
mod latency;
mod lean;
mod read;
mod retention;
mod rowbinary;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod write;

pub use client::Version;
pub use flows::FlowRetentionReport;
pub use schema::SCHEMA_VERSION;
pub use write::LAST_SLOT;

use accounting::{Sample, Slot, SlotCoverage};
use history::{
    AddBatch, Batch, FrozenPeriod, HourTotals, Quarantine, Refusal, Retention, RetentionReport,
    SampleQuery, Store, StoreError, StoredState, TenantTotal, TopQuery, UsageQuery, UsageTotal,
    WriteReport,
};
use jiff::Timestamp;
use net_types::TenantId;
use std::sync::OnceLock;
use std::time::Duration;
use write::Kind;

/// The `query_id` the store gives the insert of a batch (`None`: the
/// accountant's), for tests that imitate an insert still running on the
/// server when its client gave up.
pub fn batch_query_id(database: &str, writer: Option<&str>, sequence: u64) -> String {
    match writer {
        None => write::query_id(database, Kind::Append, "", sequence),
        Some(w) => write::query_id(database, Kind::Add, w, sequence),
    }
}

/// Where the store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickHouseOptions {
    /// `http://host:port` of the server's HTTP interface.
    pub url: String,
    /// The database (created if absent): letters, digits and `_`.
    pub database: String,
    /// How long one request may take (connect, send, answer).
    pub timeout: Duration,
}

impl Default for ClickHouseOptions {
    fn default() -> Self {
        ClickHouseOptions {
            url: "http://127.0.0.1:8123".into(),
            database: "tollgate".into(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// The ClickHouse history store.
pub struct ClickHouseStore {
    options: ClickHouseOptions,
    /// Set once the server answered and the database is migrated: at
    /// [`ClickHouseStore::open`], or at the first call after
    /// [`ClickHouseStore::open_lazily`].
    client: OnceLock<client::Client>,
    /// Each writer's last sequence as this store committed it.
    sequences: write::Sequences,
}

impl ClickHouseStore {
    /// Connects, creates the database if needed and migrates it.
    pub fn open(options: &ClickHouseOptions) -> Result<ClickHouseStore, StoreError> {
        let store = ClickHouseStore::open_lazily(options)?;
        store.client()?;
        Ok(store)
    }

    /// Checks the options (the URL and the database's name) and leaves
    /// connecting to the first call, which retries at every call until
    /// the server answers; until then each call fails, with
    /// [`StoreError::Unreachable`] while the connection is refused. For
    /// the daemon, which must shape and account while the server is away
    /// (docs/clickhouse.md, "When the server is away").
    pub fn open_lazily(options: &ClickHouseOptions) -> Result<ClickHouseStore, StoreError> {
        client::Client::check(&options.url, &options.database, options.timeout)?;
        Ok(ClickHouseStore {
            options: options.clone(),
            client: OnceLock::new(),
            sequences: write::Sequences::default(),
        })
    }

    /// The connection, made (and the database migrated) on first use.
    fn client(&self) -> Result<&client::Client, StoreError> {
        connected(&self.client, &self.options)
    }

    /// The server's version (connecting if not yet connected).
    pub fn server_version(&self) -> Result<Version, StoreError> {
        Ok(self.client()?.version)
    }

    /// The database's schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::version(self.client()?)
    }

    /// Keeps a batch of flow records (`[history.flows]`) once: a
    /// `sequence` at or below `writer`'s last is refused as
    /// [`StoreError::AlreadyAppended`] (a retry of a batch that landed).
    pub fn keep_flows(
        &self,
        writer: &str,
        sequence: u64,
        rows: &[history::FlowRow],
    ) -> Result<(), StoreError> {
        flows::write(self.client()?, writer, sequence, rows)
    }

    /// The last batch of flow records `writer` kept, if any.
    pub fn flows_last_sequence(&self, writer: &str) -> Result<Option<u64>, StoreError> {
        flows::last_sequence(self.client()?, writer)
    }

    /// Drops the kept flow records' partitions older than their retention.
    pub fn forget_flows(
        &self,
        now: Timestamp,
        retention: &history::FlowRetention,
    ) -> Result<FlowRetentionReport, StoreError> {
        flows::forget(self.client()?, now, retention)
    }

    /// Runs a statement (for tests and tools) and returns the answer.
    pub fn raw_query(&self, sql: &str) -> Result<Vec<u8>, StoreError> {
        self.client()?.query(sql, "query")
    }
}

/// `cell`'s connection, made (and the database migrated) if not yet. Two
/// threads racing here both connect; one connection is kept.
fn connected<'a>(
    cell: &'a OnceLock<client::Client>,
    options: &ClickHouseOptions,
) -> Result<&'a client::Client, StoreError> {
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let client = client::Client::connect(&options.url, &options.database, options.timeout)?;
    schema::migrate(&client)?;
    Ok(cell.get_or_init(|| client))
}

impl Store for ClickHouseStore {
    fn append(&mut self, b: &Batch<'_>) -> Result<WriteReport, StoreError> {
        write::write(
            connected(&self.client, &self.options)?,
            &mut self.sequences,
            Kind::Append,
            ("", b.sequence),
            b.samples,
            b.coverage,
            b.state,
        )
    }

    fn last_state(&self) -> Result<Option<StoredState>, StoreError> {
        read::state(self.client()?, "")
    }

    fn add(&mut self, b: &AddBatch<'_>) -> Result<WriteReport, StoreError> {
        write::write(
            connected(&self.client, &self.options)?,
            &mut self.sequences,
            Kind::Add,
            (b.writer, b.sequence),
            b.samples,
            b.coverage,
            b.state,
        )
    }

    fn quarantine(
        &mut self,
        writer: &str,
        sequence: u64,
        refused: &[Refusal],
    ) -> Result<(usize, usize), StoreError> {
        write::quarantine(self.client()?, writer, sequence, refused)
    }

    fn quarantined(&self, limit: usize) -> Result<Quarantine, StoreError> {
        read::quarantined(self.client()?, limit)
    }

    fn clear_quarantine(&mut self, through: u64) -> Result<u64, StoreError> {
        let client = self.client()?;
        let db = &client.db;
        let cleared = read::cleared(client)?;
        if through <= cleared {
            return Ok(0);
        }
        let out = client.query(
            &format!(
                "SELECT count() FROM {db}.quarantine WHERE id > {cleared} AND id <= {through} FORMAT TSV"
            ),
            "clear the quarantine",
        )?;
        let n: u64 = String::from_utf8_lossy(&out).trim().parse().unwrap_or(0);
        client.query(
            &format!("INSERT INTO {db}.quarantine_cleared VALUES ({through})"),
            "clear the quarantine",
        )?;
        // The rows themselves go in the background (a mutation); readers
        // already skip them.
        client.query(
            &format!("ALTER TABLE {db}.quarantine DELETE WHERE id <= {through}"),
            "clear the quarantine",
        )?;
        Ok(n)
    }

    fn writer_state(&self, writer: &str) -> Result<Option<StoredState>, StoreError> {
        if writer.is_empty() {
            return Ok(None);
        }
        read::state(self.client()?, writer)
    }

    fn writers(&self) -> Result<Vec<history::WriterSequence>, StoreError> {
        read::writers(self.client()?)
    }

    fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
        read::samples(self.client()?, query)
    }

    fn coverage(&self, from: Slot, to: Slot) -> Result<Vec<SlotCoverage>, StoreError> {
        read::coverage(self.client()?, from, to)
    }

    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError> {
        read::usage(self.client()?, query)
    }

    fn hourly_totals(
        &self,
        tenant: TenantId,
        hours: std::ops::Range<i64>,
    ) -> Result<HourTotals, StoreError> {
        read::hourly_totals(self.client()?, tenant, hours)
    }

    fn apply_retention(
        &mut self,
        now: Timestamp,
        retention: &Retention,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = retention::apply(self.client()?, now, retention)?;
        let cut = history::latency_cutoff(now, retention)?;
        report.latency_deleted = latency::forget_before(self.client()?, cut)?;
        Ok(report)
    }

    fn append_latency(
        &mut self,
        minutes: &::latency::Minutes,
    ) -> Result<history::LatencyReport, StoreError> {
        latency::append(self.client()?, minutes)
    }

    fn latency(&self, query: &history::LatencyQuery) -> Result<::latency::Minutes, StoreError> {
        latency::read(self.client()?, query)
    }

    fn freeze(&mut self, period: &FrozenPeriod) -> Result<(), StoreError> {
        write::freeze(self.client()?, period)
    }

    fn frozen(&self, label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
        read::frozen(self.client()?, label)
    }

    fn record_attack(&mut self, attack: &history::AttackRow) -> Result<bool, StoreError> {
        attacks::record(self.client()?, attack)
    }

    fn attacks(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<history::AttackRow>, StoreError> {
        attacks::read(self.client()?, since, limit)
    }

    fn top_tenants(&self, query: &TopQuery) -> Result<Vec<TenantTotal>, StoreError> {
        read::top_tenants(self.client()?, query)
    }

    fn flow_top(&self, query: &history::FlowTopQuery) -> Result<Vec<history::Talker>, StoreError> {
        flows::top(self.client()?, query)
    }
}
