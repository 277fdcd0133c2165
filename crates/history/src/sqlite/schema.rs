//! The schema and its migrations, recorded in `schema_migrations`.
//!
//! Each migration runs in its own transaction together with the row that
//! records it, so a crash mid-migration leaves the previous version intact.
//!
//! Table layout, chosen for the two hot paths (appending one interval for
//! every key, reading one tenant's month):
//! - `samples`: primary key `(day, tenant, realm, dir, band, slot)`,
//!   `WITHOUT ROWID`, where `day = slot / 288` (UTC days). An interval's
//!   rows all fall in today's part of the tree, which stays small enough to
//!   be cached; a tenant's month is 31 short range reads, one per day.
//! - `hourly`, `daily`: rollups summed over bands, primary key time first
//!   for the same reasons.
//! - `slots`: which slots the accountant observed and how well.
//! - `accounting_state`: one row, replaced with every batch.
//! - `batches`: one row per appended batch, so that a batch is never
//!   applied twice and a crash test can count them.
//! - `frozen_periods`: closed periods' bills; triggers refuse any update
//!   or delete.

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// `(version, description, SQL)`, applied in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "samples, slots, rollups, batches, accounting state, frozen periods",
    "
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
)];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

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
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for &(v, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let context = format!("migrate the history database to version {v} ({description})");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::db(context.clone()))?;
        tx.execute_batch(sql)
            .map_err(StoreError::db(context.clone()))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES (?1, ?2)",
            (v, description),
        )
        .map_err(StoreError::db(context.clone()))?;
        tx.commit().map_err(StoreError::db(context))?;
    }
    Ok(())
}
