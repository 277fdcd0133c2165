//! Removing old data, never the raw samples of a period not yet frozen.

use super::codec::{self, Span, HOURS_PER_DAY};
use super::hours;
use super::marks::{self, Marks};
use crate::error::StoreError;
use crate::store::{Retention, RetentionReport};
use accounting::{Sample, Slot};
use jiff::{SignedDuration, Timestamp};
use net_types::TenantId;
use rusqlite::{params, Connection, TransactionBehavior};

fn cutoff(now: Timestamp, keep: SignedDuration, field: &str) -> Result<Timestamp, StoreError> {
    if keep <= SignedDuration::ZERO {
        return Err(StoreError::invalid(
            format!("retention.{field}"),
            format!("{keep:#} is not a positive duration"),
        ));
    }
    Ok(now.checked_sub(keep).unwrap_or(Timestamp::MIN))
}

/// Runs `sql` with `args` in its own transaction and returns the rows changed.
fn delete(conn: &mut Connection, what: &str, sql: &str, args: &[i64]) -> Result<u64, StoreError> {
    let ctx = format!("retention: delete {what}");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx.clone()))?;
    let n = tx
        .execute(sql, rusqlite::params_from_iter(args.iter()))
        .map_err(StoreError::db(ctx.clone()))?;
    tx.commit().map_err(StoreError::db(ctx))?;
    Ok(n as u64)
}

pub(super) fn apply(
    conn: &mut Connection,
    now: Timestamp,
    r: &Retention,
) -> Result<RetentionReport, StoreError> {
    let raw = Slot::containing(cutoff(now, r.raw, "raw")?);
    let hourly = cutoff(now, r.hourly, "hourly")?;
    let daily = cutoff(now, r.daily, "daily")?;
    let mut report = RetentionReport::default();
    let frozen_end: Option<i64> = conn
        .query_row("SELECT MAX(end_ms) FROM frozen_periods", [], |row| {
            row.get(0)
        })
        .map_err(StoreError::db("retention: read frozen periods"))?;
    // Raw samples go only up to the end of the last frozen period: anything
    // later may still be billed.
    let raw = match frozen_end {
        None => {
            report.raw_held_back = Some("no period is frozen yet; raw samples are kept".into());
            None
        }
        Some(end) => {
            let frozen = Slot(end.div_euclid(accounting::SAMPLE_MILLIS));
            if frozen < raw {
                report.raw_held_back = Some(format!(
                    "raw samples after {} belong to a period that is not frozen",
                    frozen
                ));
            }
            Some(raw.min(frozen))
        }
    };
    let hour = hour_of(hourly);
    let day = hour_of(daily).div_euclid(HOURS_PER_DAY);
    // The marks first: a crash before the deletes below leaves data that
    // reads as removed (inexact edges), never removed data that reads as
    // kept (edges short of traffic).
    {
        let ctx = "retention: write the marks";
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::db(ctx))?;
        let to = Marks {
            raw,
            hourly: Some(hour),
            daily: Some(day),
        };
        marks::advance(&tx, &to)?;
        tx.commit().map_err(StoreError::db(ctx))?;
    }
    if let Some(cut) = raw {
        report.samples_deleted = delete_samples_before(conn, cut)?;
        delete(
            conn,
            "slot coverage",
            "DELETE FROM slots WHERE slot < ?1",
            &[cut.0],
        )?;
        report.raw_cutoff = Some(cut);
    }
    report.hourly_deleted = delete_hourly_before(conn, hour)?;
    delete(
        conn,
        "hourly rollups",
        "DELETE FROM tenants_hourly WHERE hour < ?1",
        &[hour],
    )?;
    report.daily_deleted = delete(
        conn,
        "daily rollups",
        "DELETE FROM daily WHERE id < ?1",
        &[codec::first_row_id(day)],
    )?;
    delete(
        conn,
        "daily rollups",
        "DELETE FROM tenants_daily WHERE day < ?1",
        &[day],
    )?;
    Ok(report)
}

/// Deletes the `hourly` rows before `hour` and, in the same transaction,
/// the `hours_by_day` rows of the days before the one `hour` falls in
/// (see [`super::hours`]); returns how many `hourly` rows.
fn delete_hourly_before(conn: &mut Connection, hour: i64) -> Result<u64, StoreError> {
    let ctx = "retention: delete hourly rollups";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx))?;
    let n = tx
        .execute(
            "DELETE FROM hourly WHERE id < ?1",
            [codec::first_row_id(hour)],
        )
        .map_err(StoreError::db(ctx))?;
    hours::remove_before(&tx, hour)?;
    tx.commit().map_err(StoreError::db(ctx))?;
    Ok(n as u64)
}

fn hour_of(t: Timestamp) -> i64 {
    t.as_second().div_euclid(3600)
}

/// Deletes the samples of slots before `cut`, from hour rows and
/// compacted day rows, and returns how many.
fn delete_samples_before(conn: &mut Connection, cut: Slot) -> Result<u64, StoreError> {
    Ok(delete_rows_before(conn, Span::Hour, cut)? + delete_rows_before(conn, Span::Day, cut)?)
}

/// Deletes the samples of slots before `cut` from the rows of one table
/// and returns how many: whole rows by id, a day per transaction to keep
/// the write-ahead log small, and the row `cut` falls in (a period
/// boundary in a zone whose offset is not whole hours, or any boundary
/// inside a compacted day) by rewriting it.
fn delete_rows_before(conn: &mut Connection, span: Span, cut: Slot) -> Result<u64, StoreError> {
    let ctx = "retention: delete raw samples";
    let table = span.table();
    let cut_time = span.of(cut);
    let first: Option<i64> = conn
        .query_row(&format!("SELECT MIN(id) FROM {table}"), [], |row| {
            row.get(0)
        })
        .map_err(StoreError::db(ctx))?;
    let Some(first) = first.map(|id| codec::split_row_id(id).0) else {
        return Ok(0);
    };
    let per_transaction = match span {
        Span::Hour => HOURS_PER_DAY,
        Span::Day => 1,
    };
    let mut deleted = 0;
    let mut time = first;
    while time < cut_time {
        let end = (time + per_transaction).min(cut_time);
        let range = params![codec::first_row_id(time), codec::first_row_id(end)];
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::db(ctx))?;
        let n: i64 = tx
            .query_row(
                &format!("SELECT COALESCE(SUM(count), 0) FROM {table} WHERE id >= ?1 AND id < ?2"),
                range,
                |r| r.get(0),
            )
            .map_err(StoreError::db(ctx))?;
        tx.execute(
            &format!("DELETE FROM {table} WHERE id >= ?1 AND id < ?2"),
            range,
        )
        .map_err(StoreError::db(ctx))?;
        tx.commit().map_err(StoreError::db(ctx))?;
        deleted += n as u64;
        time = end;
    }
    if cut.0 == cut_time * span.slots() {
        return Ok(deleted);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx))?;
    let rows: Vec<(i64, Vec<u8>)> = {
        let mut st = tx
            .prepare(&format!(
                "SELECT id, samples FROM {table} WHERE id >= ?1 AND id < ?2"
            ))
            .map_err(StoreError::db(ctx))?;
        let range = params![
            codec::first_row_id(cut_time),
            codec::first_row_id(cut_time + 1)
        ];
        st.query_map(range, |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(StoreError::db(ctx))?
    };
    let mut kept: Vec<Sample> = Vec::new();
    let mut blob = Vec::new();
    for (id, old) in rows {
        let tenant = TenantId(codec::split_row_id(id).1);
        let mut all = Vec::new();
        codec::decode_samples(
            (span, cut_time),
            tenant,
            &old,
            (Slot(i64::MIN), Slot(i64::MAX)),
            &mut all,
        )?;
        kept.clear();
        kept.extend(all.iter().filter(|s| s.slot >= cut));
        deleted += (all.len() - kept.len()) as u64;
        if kept.is_empty() {
            tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])
        } else {
            blob.clear();
            codec::encode_samples(span, cut_time, &kept, &mut blob);
            tx.execute(
                &format!("UPDATE {table} SET count = ?2, samples = ?3 WHERE id = ?1"),
                params![id, kept.len() as i64, blob],
            )
        }
        .map_err(StoreError::db(ctx))?;
    }
    tx.commit().map_err(StoreError::db(ctx))?;
    Ok(deleted)
}
