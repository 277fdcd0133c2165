//! A tenant's hourly totals of a UTC day in one row (`hours_by_day`), so
//! that a tenant's month at hourly resolution
//! ([`crate::Store::hourly_totals`], what a graph reads) is 31 point reads
//! instead of 744: the `hourly` rows are keyed hour first, so one
//! tenant's hours of a month lie on 744 different pages.
//!
//! # What a row holds
//!
//! The row of `(day, tenant)` (keyed [`codec::row_id`]`(day, tenant)`)
//! holds the tenant's `hourly` rows of the day's 24 hours, hour by hour
//! ([`codec::encode_day_hours`]). Rows are built in the order of their
//! ids (day, then tenant), and `hours_by_day_mark` holds the first id not
//! built yet: a tenant-day below it is **built**. A built tenant-day's
//! hourly totals are in its row only (present when it has any, absent when
//! it has none): it has no `hourly` rows and no entries in the day's
//! `tenants_hourly` rows. A tenant-day at or above the mark has no row and
//! is in `hourly` and `tenants_hourly` only. Every reader of hourly
//! totals (a tenant's, or every tenant's for a ranking) reads both forms
//! and counts each tenant-day from one of them.
//!
//! # How it stays exact
//!
//! - Building ([`build`], from [`crate::Store::compact`]): one transaction
//!   gathers the `hourly` rows of the next tenants of the day at the mark
//!   (at most [`STEP`]) into their rows, deletes those `hourly` rows and
//!   the tenants' entries in the day's 24 `tenants_hourly` rows, and
//!   moves the mark past them, so a crash leaves either form. Only
//!   days compaction may compact are built (a day [`super::COMPACT_GRACE`]
//!   after its end), so late flow data has normally landed and a row is
//!   written once. A store from before this table catches up the same way,
//!   from its first day, a bounded number of tenant-days per call.
//! - Writes ([`crate::Store::append`], [`crate::Store::add`]) into a built
//!   tenant-day (late flow data) add their totals to its row, creating it
//!   if absent, instead of to `hourly` and `tenants_hourly` (see
//!   [`super::rollup`]). Writes into
//!   days not built (the usual case, the current hour) cost one read of the
//!   mark per batch.
//! - Schema 10 deleted the `hourly` rows and `tenants_hourly` entries of
//!   the tenant-days schemas 6 to 9 had built ([`remove_built_hourly`]):
//!   they kept both forms.
//! - Retention removes the rows of the days before the one its hourly cut
//!   falls in, in the transaction that removes the `hourly` rows. The
//!   entries of that day before the cut stay until a later pass; every read
//!   ignores hours before the hourly retention mark (see [`super::marks`]),
//!   whichever table it reads them from, so they are never seen.
//!
//! Nothing else writes `hourly` (the version 1 conversion runs before this
//! table exists, and its rows are built like any others).

use super::codec::{self, DayHourTotal, RealmTotal, HOURS_PER_DAY};
use crate::error::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// Tenant-days per transaction: a row is about 2 kB at 8 keys, so about
/// 4 MB written.
const STEP: usize = 2_000;

const PLACE: &str = "hours_by_day.totals";

/// The first row id not built yet (`None`: nothing built).
pub(super) fn mark(conn: &Connection) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT before FROM hours_by_day_mark WHERE id = 1")
        .and_then(|mut st| st.query_row([], |r| r.get(0)).optional())
        .map_err(StoreError::db("read the mark of hours_by_day"))
}

/// Whether `tenant`'s `day` is built as of `mark`.
pub(super) fn built(mark: Option<i64>, day: i64, tenant: u32) -> bool {
    codec::row_id(day, tenant).is_some_and(|id| mark.is_some_and(|m| id < m))
}

/// Hands the entries of hours `hours` (of the day, `0..24`) of a built
/// tenant-day's row to `each`, in order; an absent row has none.
pub(super) fn read(
    conn: &Connection,
    (day, tenant): (i64, u32),
    hours: std::ops::Range<u8>,
    each: impl FnMut(DayHourTotal),
) -> Result<(), StoreError> {
    let ctx = || "read hours_by_day".to_string();
    let Some(id) = codec::row_id(day, tenant) else {
        return Ok(());
    };
    let mut st = conn
        .prepare_cached("SELECT totals FROM hours_by_day WHERE id = ?1")
        .map_err(StoreError::db(ctx()))?;
    let mut rows = st.query([id]).map_err(StoreError::db(ctx()))?;
    if let Some(r) = rows.next().map_err(StoreError::db(ctx()))? {
        let blob = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
        codec::each_day_hour(blob.map_err(StoreError::db(ctx()))?, PLACE, hours, each)?;
    }
    Ok(())
}

/// Adds a write's totals (`add`, sorted by hour, realm and direction) to
/// a built tenant-day's row, creating it if absent (the tenant had no
/// `hourly` rows that day before this write).
pub(super) fn add(
    tx: &Transaction<'_>,
    (day, tenant): (i64, u32),
    add: &[DayHourTotal],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let ctx = || "update hours_by_day".to_string();
    let id = codec::new_row_id(day, tenant)?;
    let old: Option<Vec<u8>> = tx
        .prepare_cached("SELECT totals FROM hours_by_day WHERE id = ?1")
        .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
        .map_err(StoreError::db(ctx()))?;
    let mut day_totals = Vec::new();
    if let Some(old) = old {
        codec::decode_day_hours(&old, PLACE, 0..HOURS_PER_DAY as u8, &mut day_totals)?;
    }
    let mut realms: Vec<RealmTotal> = Vec::new();
    for hour in add.chunk_by(|a, b| a.hour == b.hour) {
        realms.clear();
        realms.extend(hour.iter().map(|t| t.total));
        codec::add_day_hours(&mut day_totals, hour[0].hour, &realms)?;
    }
    buf.clear();
    codec::encode_day_hours(&day_totals, buf);
    tx.prepare_cached(
        "INSERT INTO hours_by_day (id, totals) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET totals = excluded.totals",
    )
    .and_then(|mut st| st.execute(params![id, &buf[..]]))
    .map_err(StoreError::db(ctx()))?;
    Ok(())
}

/// Removes the rows of the days before the one `hour` (the first hour
/// whose `hourly` rows retention keeps) falls in; returns how many.
pub(super) fn remove_before(tx: &Transaction<'_>, hour: i64) -> Result<u64, StoreError> {
    let day = hour.div_euclid(HOURS_PER_DAY);
    tx.execute(
        "DELETE FROM hours_by_day WHERE id < ?1",
        [codec::first_row_id(day)],
    )
    .map(|n| n as u64)
    .map_err(StoreError::db("retention: delete hours_by_day"))
}

const CONTEXT: &str = "build hours_by_day";

/// Removes the entries of `tenants` from the `tenants_hourly` rows of
/// `day`'s hours (a row left empty is deleted).
fn drop_from_tenants_hourly(
    tx: &Transaction<'_>,
    day: i64,
    tenants: std::ops::RangeInclusive<u32>,
) -> Result<(), StoreError> {
    let db = || StoreError::db("remove built tenant-days from tenants_hourly");
    let place = "tenants_hourly.totals";
    let mut select = tx
        .prepare_cached("SELECT totals FROM tenants_hourly WHERE hour = ?1")
        .map_err(db())?;
    let mut kept = Vec::new();
    let mut blob = Vec::new();
    for hour in day * HOURS_PER_DAY..(day + 1) * HOURS_PER_DAY {
        let old: Option<Vec<u8>> = select
            .query_row([hour], |r| r.get(0))
            .optional()
            .map_err(db())?;
        let Some(old) = old else {
            continue;
        };
        kept.clear();
        let mut dropped = false;
        codec::decode_tenant_totals(&old, place, |t| {
            if tenants.contains(&t.tenant.0) {
                dropped = true;
            } else {
                kept.push(t);
            }
        })?;
        if !dropped {
            continue;
        }
        if kept.is_empty() {
            tx.prepare_cached("DELETE FROM tenants_hourly WHERE hour = ?1")
                .and_then(|mut st| st.execute([hour]))
                .map_err(db())?;
        } else {
            blob.clear();
            codec::encode_tenant_totals(&kept, &mut blob);
            tx.prepare_cached("UPDATE tenants_hourly SET totals = ?2 WHERE hour = ?1")
                .and_then(|mut st| st.execute(params![hour, &blob[..]]))
                .map_err(db())?;
        }
    }
    Ok(())
}

/// Deletes the `hourly` rows of every built tenant-day and its entries in
/// `tenants_hourly` (schema 10: the builds of schema 6 to 9 kept them
/// beside its `hours_by_day` row).
pub(super) fn remove_built_hourly(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let db = || StoreError::db("remove the hourly rows of built tenant-days");
    let Some(mark) = mark(tx)? else {
        return Ok(0);
    };
    let (day, before) = codec::split_row_id(mark);
    // Whole days before the mark's, then its tenants below the mark.
    let mut removed = tx
        .execute(
            "DELETE FROM hourly WHERE id < ?1",
            [codec::first_row_id(day * HOURS_PER_DAY)],
        )
        .map_err(db())?;
    tx.execute(
        "DELETE FROM tenants_hourly WHERE hour < ?1",
        [day * HOURS_PER_DAY],
    )
    .map_err(db())?;
    if before > 0 {
        drop_from_tenants_hourly(tx, day, 0..=before - 1)?;
    }
    for hour in day * HOURS_PER_DAY..(day + 1) * HOURS_PER_DAY {
        let lo = codec::first_row_id(hour);
        removed += tx
            .execute(
                "DELETE FROM hourly WHERE id >= ?1 AND id < ?2",
                params![lo, lo + i64::from(before)],
            )
            .map_err(db())?;
    }
    Ok(removed as u64)
}

/// The first id at or after `from` in `hourly`, if any.
fn first_hourly_at(conn: &Connection, from: i64) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT MIN(id) FROM hourly WHERE id >= ?1")
        .and_then(|mut st| st.query_row([from], |r| r.get(0)))
        .map_err(StoreError::db(CONTEXT))
}

/// The first tenant-day not built that may have `hourly` rows: the day,
/// and the first tenant of it not built. `None` when `hourly` holds
/// nothing at or after the mark.
fn next(conn: &Connection, mark: Option<i64>) -> Result<Option<(i64, u32)>, StoreError> {
    let (day, from) = match mark {
        Some(m) => codec::split_row_id(m),
        None => match first_hourly_at(conn, i64::MIN)? {
            Some(id) => (codec::split_row_id(id).0.div_euclid(HOURS_PER_DAY), 0),
            None => return Ok(None),
        },
    };
    let mut any = conn
        .prepare_cached("SELECT 1 FROM hourly WHERE id >= ?1 AND id < ?2 LIMIT 1")
        .map_err(StoreError::db(CONTEXT))?;
    for hour in day * HOURS_PER_DAY..(day + 1) * HOURS_PER_DAY {
        let lo = codec::first_row_id(hour) + i64::from(from);
        if any
            .exists(params![lo, codec::first_row_id(hour + 1)])
            .map_err(StoreError::db(CONTEXT))?
        {
            return Ok(Some((day, from)));
        }
    }
    let later = first_hourly_at(conn, codec::first_row_id((day + 1) * HOURS_PER_DAY))?;
    Ok(later.map(|id| (codec::split_row_id(id).0.div_euclid(HOURS_PER_DAY), 0)))
}

/// Builds up to `limit` tenant-days of the days before `open_day`, a
/// transaction per [`STEP`]. Returns how many, and whether nothing is left
/// to build before `open_day`.
pub(super) fn build(
    conn: &mut Connection,
    open_day: i64,
    limit: usize,
) -> Result<(u64, bool), StoreError> {
    let mut built = 0u64;
    while (built as usize) < limit {
        let chunk = STEP.min(limit - built as usize);
        match step(conn, open_day, chunk)? {
            Some(n) => built += n,
            None => return Ok((built, true)),
        }
    }
    let left = next(conn, mark(conn)?)?;
    Ok((built, left.is_none_or(|(day, _)| day >= open_day)))
}

/// Builds the next `chunk` tenant-days (fewer at the end of a day) in one
/// transaction and moves the mark past them. `None` when there is nothing
/// to build before `open_day`.
fn step(conn: &mut Connection, open_day: i64, chunk: usize) -> Result<Option<u64>, StoreError> {
    let db = || StoreError::db(CONTEXT);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db())?;
    let Some((day, from)) = next(&tx, mark(&tx)?)? else {
        return Ok(None);
    };
    if day >= open_day {
        return Ok(None);
    }
    let hours = day * HOURS_PER_DAY..(day + 1) * HOURS_PER_DAY;
    // The day's next `chunk` tenants (by number) from `from`: in each
    // hour, the tenants up to its chunk-th, then the lowest `chunk` of
    // their union (as compaction does).
    let mut last = u32::MAX;
    {
        let mut nth = tx
            .prepare_cached(
                "SELECT id FROM hourly WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 1 OFFSET ?3",
            )
            .map_err(db())?;
        for hour in hours.clone() {
            let lo = codec::first_row_id(hour) + i64::from(from);
            let mut rows = nth
                .query(params![lo, codec::first_row_id(hour + 1), chunk as i64 - 1])
                .map_err(db())?;
            if let Some(r) = rows.next().map_err(db())? {
                let id: i64 = r.get(0).map_err(db())?;
                last = last.min(codec::split_row_id(id).1);
            }
        }
    }
    // (tenant, hour of the day, blob) of every row from `from` to `last`.
    let mut rows: Vec<(u32, u8, Vec<u8>)> = Vec::new();
    {
        let mut select = tx
            .prepare_cached("SELECT id, totals FROM hourly WHERE id >= ?1 AND id <= ?2")
            .map_err(db())?;
        for (of_day, hour) in hours.enumerate() {
            let lo = codec::first_row_id(hour);
            let range = params![lo + i64::from(from), lo + i64::from(last)];
            let mut q = select.query(range).map_err(db())?;
            while let Some(r) = q.next().map_err(db())? {
                let id: i64 = r.get(0).map_err(db())?;
                let tenant = codec::split_row_id(id).1;
                rows.push((tenant, of_day as u8, r.get(1).map_err(db())?));
            }
        }
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1));
    let mut tenants: Vec<u32> = rows.iter().map(|r| r.0).collect();
    tenants.dedup();
    if tenants.len() > chunk {
        tenants.truncate(chunk);
        last = tenants[chunk - 1];
        rows.retain(|r| r.0 <= last);
    }
    let mut realms: Vec<RealmTotal> = Vec::new();
    let mut day_totals: Vec<DayHourTotal> = Vec::new();
    let mut blob = Vec::new();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO hours_by_day (id, totals) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET totals = excluded.totals",
            )
            .map_err(db())?;
        for one in rows.chunk_by(|a, b| a.0 == b.0) {
            day_totals.clear();
            for (_, hour, b) in one {
                realms.clear();
                codec::decode_realm_totals(b, "hourly.totals", &mut realms)?;
                codec::add_day_hours(&mut day_totals, *hour, &realms)?;
            }
            blob.clear();
            codec::encode_day_hours(&day_totals, &mut blob);
            let id = codec::new_row_id(day, one[0].0)?;
            insert.execute(params![id, &blob[..]]).map_err(db())?;
        }
    }
    // Their `hourly` rows and their entries in the day's `tenants_hourly`
    // rows are in `hours_by_day` now: removed in the same transaction, so
    // a tenant-day's hours are in one form or the other.
    {
        let mut delete = tx
            .prepare_cached("DELETE FROM hourly WHERE id >= ?1 AND id <= ?2")
            .map_err(db())?;
        for hour in day * HOURS_PER_DAY..(day + 1) * HOURS_PER_DAY {
            let lo = codec::first_row_id(hour);
            delete
                .execute(params![lo + i64::from(from), lo + i64::from(last)])
                .map_err(db())?;
        }
    }
    drop_from_tenants_hourly(&tx, day, from..=last)?;
    // Every tenant of the day up to `last` is built now, with or without
    // rows; `last` = u32::MAX moves the mark to the next day.
    let mark = codec::first_row_id(day) + i64::from(last) + 1;
    tx.execute(
        "INSERT INTO hours_by_day_mark (id, before) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET before = max(before, excluded.before)",
        [mark],
    )
    .map_err(db())?;
    tx.commit().map_err(db())?;
    Ok(Some(tenants.len() as u64))
}
