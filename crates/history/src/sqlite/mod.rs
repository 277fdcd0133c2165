//! The default store: one SQLite file.
//!
//! # Durability settings
//!
//! - `journal_mode = WAL`: a commit appends to the write-ahead log and
//!   readers (the CLI) never block the daemon's writes.
//! - `synchronous = FULL`: every commit fsyncs the log before returning.
//!   Against `kill -9` alone, `NORMAL` would already be enough in WAL mode
//!   (a committed transaction is in the log file, which the kernel keeps
//!   when the process dies). `FULL` also keeps committed batches across a
//!   power cut or kernel crash, which is what "committed" should mean for
//!   billing data. The cost is one fsync per batch, and the daemon commits
//!   one batch per read interval (at most a few per minute), so it is
//!   invisible; bulk ingest amortises it over large batches.
//! - `wal_autocheckpoint` at 40 MB of pages: a bulk append of an hour of
//!   80,000 keys writes about 15 MB, so the default of 1000 pages (16 MB
//!   at 16 kB) would checkpoint after every batch.
//! - `page_size = 65536` (new databases, and older ones by the `VACUUM`
//!   of [`vacuum`]): a compacted row of one tenant's day is 0.5 to 10 kB
//!   (3.5 kB on average on the bench's traffic), and a page is filled in
//!   id order until the next row does not fit, so about half a row per
//!   page is unused: 13.5% of the `samples_days` pages at 16 kB (0.50
//!   bytes per sample), about 3% at 64 kB. Reading a tenant's month reads
//!   31 pages either way (about 2 MB from the cache at 64 kB).
//! - `auto_vacuum = INCREMENTAL` (schema 9 on; an older file is switched
//!   by one `VACUUM` when opened): compaction and retention give the pages
//!   they free back to the file system (see [`vacuum`]).
//! - SQLite's own locking and rollback make a transaction all-or-nothing:
//!   a process killed inside one leaves no part of it behind, and the next
//!   open recovers the log.

mod attacks;
pub(crate) mod codec;
mod compact;
mod convert;
mod hours;
mod latency;
pub(crate) mod marks;
pub(crate) mod plan;
mod quarantine;
mod read;
mod retention;
mod rollup;
mod schema;
mod series;
mod vacuum;
mod write;

pub use compact::COMPACT_GRACE;
pub use schema::SCHEMA_VERSION;

use crate::error::StoreError;
use crate::refusal::{Quarantine, Refusal, WriteReport};
use crate::store::*;
use accounting::{Sample, Slot, SlotCoverage};
use jiff::Timestamp;
use rusqlite::Connection;
use std::path::Path;

/// The page size of new files, and of files switched by [`vacuum`].
const PAGE_SIZE: u32 = 65536;

/// How much of the write-ahead log triggers a checkpoint.
const WAL_CHECKPOINT_BYTES: u32 = 40 << 20;

/// Where the daemon keeps its history unless told otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/tollgate/history.sqlite";

/// Tuning for [`SqliteStore::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// SQLite's page cache, in MiB. Appends touch the current hour's rows
    /// (about 10 MiB for 80,000 keys) and today's rollups; reads of a
    /// tenant's compacted month touch about 31 scattered pages per table
    /// (744 before compaction), which the operating system's cache holds
    /// as well.
    pub cache_mib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { cache_mib: 256 }
    }
}

/// The SQLite history store.
pub struct SqliteStore {
    conn: Connection,
}

/// Switches the connection to WAL and returns the mode it is in. SQLite
/// answers "database is locked" without waiting when two connections
/// switch a new file at the same moment (the busy handler is not called
/// where waiting could deadlock), so the switch is tried again for a
/// bounded time.
fn wal_mode(conn: &Connection) -> Result<String, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other.map_err(StoreError::db("set journal_mode = WAL")),
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and migrates it.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path).map_err(StoreError::db(format!(
            "open the history database {}",
            path.display()
        )))?;
        // Wait for other connections' locks from the first statement on:
        // switching a new database to WAL takes an exclusive lock, and
        // another connection opening it at the same moment holds one.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(StoreError::db("set busy_timeout"))?;
        // Only takes effect on a new database: a page size cannot change
        // once the database is in WAL mode.
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))
            .map_err(StoreError::db("set page_size"))?;
        // The same: a file from before schema 9 is switched below.
        vacuum::for_new_files(&conn)?;
        let mode = wal_mode(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::invalid(
                path.display().to_string(),
                format!("the database refused WAL mode (journal_mode is {mode})"),
            ));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 10000;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -{};
             PRAGMA wal_autocheckpoint = {};",
            u64::from(options.cache_mib) * 1024,
            WAL_CHECKPOINT_BYTES / PAGE_SIZE
        ))
        .map_err(StoreError::db("set the connection's pragmas"))?;
        let found = schema::version(&conn)?;
        schema::migrate(&mut conn)?;
        vacuum::incremental(&conn)?;
        if found > 0 && found < schema::SCHEMA_VERSION {
            // What a migration deleted (schema 10: built days' `hourly`
            // rows) back to the file system.
            vacuum::reclaim(&conn)?;
        }
        Ok(SqliteStore { conn })
    }

    /// The database's schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::version(&self.conn)
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the file is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(StoreError::db("integrity check"))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(StoreError::db("integrity check"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::db("integrity check"))
    }

    /// The sequence numbers of every stored batch, in order.
    pub fn batch_sequences(&self) -> Result<Vec<u64>, StoreError> {
        read::batch_sequences(&self.conn)
    }

    /// Bytes summed over every row of each rollup table (`hourly`,
    /// `daily`, `tenants_hourly`, `tenants_daily`; the first and third
    /// with the hours of built tenant-days, in `hours_by_day` instead),
    /// for consistency checks:
    /// each equals the sum of the raw samples they were built from.
    pub fn rollup_bytes(&self) -> Result<Vec<(&'static str, u128)>, StoreError> {
        read::rollup_bytes(&self.conn)
    }

    /// The underlying connection, for read-only inspection in tests and
    /// tools.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Store for SqliteStore {
    fn append(&mut self, batch: &Batch<'_>) -> Result<WriteReport, StoreError> {
        write::append(&mut self.conn, batch)
    }

    fn last_state(&self) -> Result<Option<StoredState>, StoreError> {
        read::last_state(&self.conn)
    }

    fn add(&mut self, batch: &AddBatch<'_>) -> Result<WriteReport, StoreError> {
        write::add(&mut self.conn, batch)
    }

    fn quarantine(
        &mut self,
        writer: &str,
        sequence: u64,
        refused: &[Refusal],
    ) -> Result<(usize, usize), StoreError> {
        quarantine::quarantine(&mut self.conn, writer, sequence, refused)
    }

    fn quarantined(&self, limit: usize) -> Result<Quarantine, StoreError> {
        quarantine::list(&self.conn, limit)
    }

    fn clear_quarantine(&mut self, through: u64) -> Result<u64, StoreError> {
        quarantine::clear(&mut self.conn, through)
    }

    fn writer_state(&self, writer: &str) -> Result<Option<StoredState>, StoreError> {
        read::writer_state(&self.conn, writer)
    }

    fn writers(&self) -> Result<Vec<crate::WriterSequence>, StoreError> {
        read::writers(&self.conn)
    }

    fn compact(&mut self, now: Timestamp, limit: usize) -> Result<CompactReport, StoreError> {
        compact::compact(&mut self.conn, now, limit)
    }

    fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
        read::samples(&self.conn, query)
    }

    fn coverage(&self, from: Slot, to: Slot) -> Result<Vec<SlotCoverage>, StoreError> {
        read::coverage(&self.conn, from, to)
    }

    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError> {
        read::usage(&self.conn, query)
    }

    fn hourly_totals(
        &self,
        tenant: net_types::TenantId,
        hours: std::ops::Range<i64>,
    ) -> Result<HourTotals, StoreError> {
        read::hourly_totals(&self.conn, tenant, hours)
    }

    fn apply_retention(
        &mut self,
        now: Timestamp,
        retention: &Retention,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = retention::apply(&mut self.conn, now, retention)?;
        let cut = crate::store::latency_cutoff(now, retention)?;
        report.latency_deleted = latency::forget_before(&mut self.conn, cut)?;
        vacuum::reclaim(&self.conn)?;
        Ok(report)
    }

    fn append_latency(
        &mut self,
        minutes: &::latency::Minutes,
    ) -> Result<crate::LatencyReport, StoreError> {
        latency::append(&mut self.conn, minutes)
    }

    fn latency(&self, query: &crate::LatencyQuery) -> Result<::latency::Minutes, StoreError> {
        latency::read(&self.conn, query)
    }

    fn freeze(&mut self, period: &FrozenPeriod) -> Result<(), StoreError> {
        write::freeze(&mut self.conn, period)
    }

    fn frozen(&self, label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
        read::frozen(&self.conn, label)
    }

    fn top_tenants(&self, query: &TopQuery) -> Result<Vec<TenantTotal>, StoreError> {
        read::top_tenants(&self.conn, query)
    }

    fn record_attack(&mut self, attack: &crate::AttackRow) -> Result<bool, StoreError> {
        attacks::record(&mut self.conn, attack)
    }

    fn attacks(&self, since: Timestamp, limit: usize) -> Result<Vec<crate::AttackRow>, StoreError> {
        attacks::read(&self.conn, since, limit)
    }
}
