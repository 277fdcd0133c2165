//! Daily compaction: a tenant's 24 hour rows of a finished UTC day folded
//! into one day row (`samples_days`), so that reading a tenant's month is
//! 31 point reads instead of 744; then the same for its hourly rollup
//! (`hours_by_day`, whose rows replace the day's `hourly` rows: see
//! [`super::hours`]), with what is left of the call's limit.
//!
//! A UTC day is compacted once it is complete and at least
//! [`COMPACT_GRACE`] old, so that late flow data normally lands in its
//! hour rows first; data that comes later still is merged into the day row
//! ([`crate::Store::add`] and [`crate::Store::append`] both look for it).
//! Each step is one transaction that writes the day rows of up to
//! [`STEP`] tenants and deletes their hour rows, so a crash leaves either
//! the hours or the day, never both or neither. The samples are decoded
//! and re-encoded unchanged: reads give the same samples before and after.

use super::codec::{self, Span, HOURS_PER_DAY};
use super::hours;
use super::write::move_row;
use crate::error::StoreError;
use crate::store::CompactReport;
use accounting::{Sample, Slot};
use jiff::{SignedDuration, Timestamp};
use net_types::TenantId;
use rusqlite::{params, Connection, TransactionBehavior};

/// How long after its end a UTC day is left in hour rows.
pub const COMPACT_GRACE: SignedDuration = SignedDuration::from_hours(24);

/// Tenant-days per transaction: about 24 MB of rows rewritten at 8 keys
/// per tenant, so the write-ahead log stays small.
const STEP: usize = 1_000;

const CONTEXT: &str = "compact samples into day rows";

/// The first day that is not yet old enough to compact at `now`.
fn first_open_day(now: Timestamp) -> i64 {
    let secs = now.as_second().saturating_sub(COMPACT_GRACE.as_secs());
    secs.div_euclid(24 * 3600)
}

pub(super) fn compact(
    conn: &mut Connection,
    now: Timestamp,
    limit: usize,
) -> Result<CompactReport, StoreError> {
    let open_day = first_open_day(now);
    let mut report = CompactReport::default();
    let mut samples_done = false;
    while (report.tenant_days as usize) < limit {
        let chunk = STEP.min(limit - report.tenant_days as usize);
        if !step(conn, open_day, chunk, &mut report)? {
            samples_done = true;
            break;
        }
    }
    if !samples_done {
        // Says whether anything is left, for a caller that loops.
        let first: Option<i64> = conn
            .query_row("SELECT MIN(id) FROM samples", [], |r| r.get(0))
            .map_err(StoreError::db(CONTEXT))?;
        samples_done =
            first.is_none_or(|id| codec::split_row_id(id).0.div_euclid(HOURS_PER_DAY) >= open_day);
    }
    // The same days' hourly rollup, a row per tenant-day, with what is
    // left of the limit.
    let left = limit.saturating_sub(report.tenant_days as usize);
    let (hour_days, hours_done) = hours::build(conn, open_day, left)?;
    report.hour_days = hour_days;
    report.done = samples_done && hours_done;
    // The deleted hour rows' (and built days' `hourly` rows') pages back
    // to the file system.
    if report.tenant_days + report.hour_days > 0 {
        super::vacuum::reclaim(conn)?;
    }
    Ok(report)
}

/// Compacts up to `chunk` tenants of the oldest day that still has hour
/// rows, if it is before `open_day`, in one transaction. `false` when
/// there was nothing to do.
fn step(
    conn: &mut Connection,
    open_day: i64,
    chunk: usize,
    report: &mut CompactReport,
) -> Result<bool, StoreError> {
    let db = || StoreError::db(CONTEXT);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db())?;
    let first: Option<i64> = tx
        .query_row("SELECT MIN(id) FROM samples", [], |r| r.get(0))
        .map_err(db())?;
    let Some(first) = first else {
        return Ok(false);
    };
    let day = codec::split_row_id(first).0.div_euclid(HOURS_PER_DAY);
    if day >= open_day {
        return Ok(false);
    }
    let hours = day * HOURS_PER_DAY..(day + 1) * HOURS_PER_DAY;
    // The rows of the day's first `chunk` tenants (by number): in each
    // hour, the tenants up to its chunk-th, then the lowest `chunk` of
    // their union.
    let mut last = u32::MAX;
    {
        let mut nth = tx
            .prepare_cached(
                "SELECT id FROM samples WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 1 OFFSET ?3",
            )
            .map_err(db())?;
        for hour in hours.clone() {
            let range = (codec::first_row_id(hour), codec::first_row_id(hour + 1));
            let mut rows = nth
                .query(params![range.0, range.1, chunk as i64 - 1])
                .map_err(db())?;
            if let Some(r) = rows.next().map_err(db())? {
                let id: i64 = r.get(0).map_err(db())?;
                last = last.min(codec::split_row_id(id).1);
            }
        }
    }
    // (tenant, hour, blob) of every row up to `last`.
    let mut rows: Vec<(u32, i64, Vec<u8>)> = Vec::new();
    {
        let mut select = tx
            .prepare_cached("SELECT id, samples FROM samples WHERE id >= ?1 AND id <= ?2")
            .map_err(db())?;
        for hour in hours.clone() {
            let lo = codec::first_row_id(hour);
            let hi = lo + i64::from(last);
            let mut q = select.query(params![lo, hi]).map_err(db())?;
            while let Some(r) = q.next().map_err(db())? {
                let id: i64 = r.get(0).map_err(db())?;
                rows.push((codec::split_row_id(id).1, hour, r.get(1).map_err(db())?));
            }
        }
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1));
    let mut tenants: Vec<u32> = rows.iter().map(|r| r.0).collect();
    tenants.dedup();
    tenants.truncate(chunk);
    let Some(&last) = tenants.last() else {
        return Ok(false);
    };
    rows.retain(|r| r.0 <= last);
    let mut samples: Vec<Sample> = Vec::new();
    let mut blob = Vec::new();
    let everything = (Slot(i64::MIN), Slot(i64::MAX));
    for one in rows.chunk_by(|a, b| a.0 == b.0) {
        let tenant = one[0].0;
        samples.clear();
        // Hours in order, each sorted by slot then key: the day is too.
        for (_, hour, b) in one {
            let at = (Span::Hour, *hour);
            codec::decode_samples(at, TenantId(tenant), b, everything, &mut samples)?;
        }
        // A day row cannot exist beside hour rows; if one did, it is merged
        // and a slot and key in both is an error rather than summed.
        move_row(&tx, (Span::Day, day, tenant), &samples, &mut blob)?;
        report.tenant_days += 1;
        report.hour_rows += one.len() as u64;
        report.samples += samples.len() as u64;
    }
    {
        let mut delete = tx
            .prepare_cached("DELETE FROM samples WHERE id >= ?1 AND id <= ?2")
            .map_err(db())?;
        for hour in hours {
            let lo = codec::first_row_id(hour);
            delete
                .execute(params![lo, lo + i64::from(last)])
                .map_err(db())?;
        }
    }
    tx.commit().map_err(db())?;
    Ok(true)
}
