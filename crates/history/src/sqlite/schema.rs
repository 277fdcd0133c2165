//! The schema and its migrations, recorded in `schema_migrations`.
//!
//! Each migration runs in its own transaction together with the row that
//! records it, so a crash mid-migration leaves the previous version intact.
//!
//! Table layout (version 2), chosen for the three hot paths: ingesting an
//! interval (or an hour of intervals) of every key, reading one tenant's
//! month, ranking every tenant's month. The packed tables and their blobs
//! are described in [`super::codec`].
//! - `samples`: one row per tenant per hour, keyed `hour << 32 | tenant`,
//!   holding that hour's samples of every key of the tenant and their
//!   count. An ingest appends at the end of the tree; a tenant's month is
//!   744 point reads of about 100 samples each.
//! - `hourly`, `daily`: one row per tenant per hour (day), keyed the same
//!   way, holding totals per realm and direction, summed over bands.
//! - `tenants_hourly`, `tenants_daily`: one row per hour (day) holding
//!   every tenant's totals, so ranking a month's tenants reads about 31
//!   rows instead of 310,000.
//! - `slots`: which slots the accountant observed and how well.
//! - `accounting_state`: one row, replaced with every batch.
//! - `batches`: one row per appended batch, so that a batch is never
//!   applied twice and a crash test can count them.
//! - `frozen_periods`: closed periods' bills; triggers refuse any update
//!   or delete.
//!
//! Version 1 kept one row per sample (`(day, tenant, realm, dir, band,
//! slot)`) and per rollup key; migrating to version 2 converts its rows.

use super::convert;
use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

/// Rewrites the data of the previous version inside the migration's
/// transaction.
type Convert = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// One schema version: SQL, then optionally a conversion of the data in
/// Rust, then more SQL, all in one transaction.
struct Migration {
    version: i64,
    description: &'static str,
    before: &'static str,
    convert: Option<Convert>,
    after: &'static str,
}

/// Applied in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "samples, slots, rollups, batches, accounting state, frozen periods",
        before: "
        CREATE TABLE samples (
            day INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            dir INTEGER NOT NULL,
            band INTEGER NOT NULL,
            slot INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            packets INTEGER NOT NULL,
            PRIMARY KEY (day, tenant, realm, dir, band, slot)
        ) WITHOUT ROWID;
        CREATE TABLE slots (
            slot INTEGER PRIMARY KEY,
            status INTEGER NOT NULL
        );
        CREATE TABLE hourly (
            hour INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            dir INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            packets INTEGER NOT NULL,
            PRIMARY KEY (hour, tenant, realm, dir)
        ) WITHOUT ROWID;
        CREATE TABLE daily (
            day INTEGER NOT NULL,
            tenant INTEGER NOT NULL,
            realm INTEGER NOT NULL,
            dir INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            packets INTEGER NOT NULL,
            PRIMARY KEY (day, tenant, realm, dir)
        ) WITHOUT ROWID;
        CREATE TABLE batches (
            sequence INTEGER PRIMARY KEY,
            samples INTEGER NOT NULL,
            slots INTEGER NOT NULL
        );
        CREATE TABLE accounting_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            sequence INTEGER NOT NULL,
            blob BLOB NOT NULL
        );
        CREATE TABLE frozen_periods (
            label TEXT PRIMARY KEY,
            start_ms INTEGER NOT NULL,
            end_ms INTEGER NOT NULL,
            frozen_at_ms INTEGER NOT NULL,
            bill TEXT NOT NULL
        );
        CREATE TRIGGER frozen_periods_no_update BEFORE UPDATE ON frozen_periods
            BEGIN SELECT RAISE(ABORT, 'frozen periods are immutable'); END;
        CREATE TRIGGER frozen_periods_no_delete BEFORE DELETE ON frozen_periods
            BEGIN SELECT RAISE(ABORT, 'frozen periods are immutable'); END;
        ",
        convert: None,
        after: "",
    },
    Migration {
        version: 2,
        description:
            "samples and rollups packed per tenant and hour; every tenant's totals per hour and day",
        before: "
        ALTER TABLE samples RENAME TO samples_v1;
        ALTER TABLE hourly RENAME TO hourly_v1;
        ALTER TABLE daily RENAME TO daily_v1;
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,
            samples BLOB NOT NULL
        );
        CREATE TABLE hourly (id INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE daily (id INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE tenants_hourly (hour INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        CREATE TABLE tenants_daily (day INTEGER PRIMARY KEY, totals BLOB NOT NULL);
        ",
        convert: Some(convert::from_v1),
        after: "
        DROP TABLE samples_v1;
        DROP TABLE hourly_v1;
        DROP TABLE daily_v1;
        ",
    },
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The database's schema version (0 for a new database).
pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            description TEXT NOT NULL
        );",
    )
    .map_err(StoreError::db("create schema_migrations"))?;
    conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .optional()
    .map_err(StoreError::db("read the schema version"))
    .map(|v| v.flatten().unwrap_or(0))
}

/// Brings the database to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the database to version `target` (tests build old databases
/// with it).
pub(super) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target);
    for m in pending {
        let context = format!(
            "migrate the history database to version {} ({})",
            m.version, m.description
        );
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::db(context.clone()))?;
        tx.execute_batch(m.before)
            .map_err(StoreError::db(context.clone()))?;
        if let Some(convert) = m.convert {
            convert(&tx)?;
        }
        tx.execute_batch(m.after)
            .map_err(StoreError::db(context.clone()))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES (?1, ?2)",
            (m.version, m.description),
        )
        .map_err(StoreError::db(context.clone()))?;
        tx.commit().map_err(StoreError::db(context))?;
    }
    Ok(())
}
