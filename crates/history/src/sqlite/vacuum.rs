//! Giving freed pages back to the file system.
//!
//! Compaction deletes a day's 24 hour rows once their day row is written,
//! and retention deletes old rows; SQLite keeps the freed pages in the
//! file for later rows, so a file grows to its largest size ever and
//! stays there (the 10,000-tenant store measured 13.56 bytes per sample
//! before compaction and 15.61 after, issue 16). With `auto_vacuum =
//! INCREMENTAL` (schema 9 on), [`reclaim`] after compaction and retention
//! moves the last pages into the free ones and truncates the file.
//!
//! A new database gets the mode when it is created ([`for_new_files`]). An
//! older one only by a `VACUUM`, which rewrites the whole file: done once,
//! by [`incremental`] when a store is opened, out of WAL mode because
//! SQLite changes `auto_vacuum` (and the page size) only there. The same
//! `VACUUM` moves a file to the current page size (64 kB since schema 10,
//! 16 kB before: see [`super`]). Its cost: a copy of the file
//! (after version 9's conversion, about a quarter of the old size) written
//! to a temporary file and back, so that much free disk space and, at the
//! 10,000-tenant size, minutes; it needs the only open connection, so if
//! another is open (a reader) it is left for the next open.

use crate::error::StoreError;
use rusqlite::Connection;

/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
const INCREMENTAL: i64 = 2;

/// Asks for `auto_vacuum = INCREMENTAL`, which takes effect only on a
/// database without tables yet (run before anything creates one).
pub(super) fn for_new_files(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
        .map_err(StoreError::db("set auto_vacuum"))
}

/// The file's `auto_vacuum` mode is INCREMENTAL.
pub(super) fn is_incremental(conn: &Connection) -> Result<bool, StoreError> {
    conn.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))
        .map(|mode| mode == INCREMENTAL)
        .map_err(StoreError::db("read auto_vacuum"))
}

/// The file's page size in bytes.
pub(super) fn page_size(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(StoreError::db("read page_size"))
}

/// Switches an existing file to `auto_vacuum = INCREMENTAL` and pages of
/// [`super::PAGE_SIZE`] with a `VACUUM` (see the module's notes on its
/// cost), unless it is already.
/// `false` when another connection is open, or the disk has no room for
/// the copy, and it must wait for a later open; the file works either
/// way.
pub(super) fn incremental(conn: &Connection) -> Result<bool, StoreError> {
    if is_incremental(conn)? && page_size(conn)? == i64::from(super::PAGE_SIZE) {
        return Ok(true);
    }
    let db = || StoreError::db("switch the history database to auto_vacuum = INCREMENTAL");
    // Leaving WAL mode needs the only connection: another one's open
    // is no error, just not now.
    let mode: String = match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)) {
        Ok(mode) => mode,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            return Ok(false)
        }
        Err(e) => return Err(db()(e)),
    };
    let vacuumed = if mode.eq_ignore_ascii_case("delete") {
        // The copy goes to a temporary file, not memory.
        conn.execute_batch(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA page_size = {};
             PRAGMA temp_store = FILE;
             VACUUM;
             PRAGMA temp_store = MEMORY;",
            super::PAGE_SIZE
        ))
        .map_err(db())
    } else {
        Ok(())
    };
    let back: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db())?;
    // No room for the copy: the file works as it is, and a later open
    // tries again; the daemon must not fail to start over it.
    if let Err(StoreError::Database { source, .. }) = &vacuumed {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return Ok(false);
        }
    }
    vacuumed?;
    if !back.eq_ignore_ascii_case("wal") {
        return Err(StoreError::invalid(
            "journal_mode",
            format!("the database went back to {back}, not WAL"),
        ));
    }
    Ok(is_incremental(conn)? && page_size(conn)? == i64::from(super::PAGE_SIZE))
}

/// Gives the file's free pages back to the file system (nothing when the
/// file is not INCREMENTAL yet). Returns how many pages were free.
pub(super) fn reclaim(conn: &Connection) -> Result<u64, StoreError> {
    let db = || StoreError::db("reclaim free pages");
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .map_err(db())?;
    if free > 0 && is_incremental(conn)? {
        // The pragma frees pages step by step: run it to its end.
        let mut st = conn.prepare("PRAGMA incremental_vacuum").map_err(db())?;
        let mut rows = st.query([]).map_err(db())?;
        while rows.next().map_err(db())?.is_some() {}
    }
    Ok(free.max(0) as u64)
}
