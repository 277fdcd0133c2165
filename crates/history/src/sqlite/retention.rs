//! Removing old data, never the raw samples of a period not yet frozen.

use super::write::{SLOTS_PER_DAY, SLOTS_PER_HOUR};
use crate::error::StoreError;
use crate::store::{Retention, RetentionReport};
use accounting::Slot;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, TransactionBehavior};

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
    if let Some(cut) = raw {
        let cut_day = cut.0.div_euclid(SLOTS_PER_DAY);
        let first: Option<i64> = conn
            .query_row("SELECT MIN(day) FROM samples", [], |row| row.get(0))
            .map_err(StoreError::db("retention: read the oldest day"))?;
        // One transaction per day keeps the write-ahead log small.
        if let Some(first) = first {
            for day in first..cut_day {
                report.samples_deleted += delete(
                    conn,
                    "raw samples",
                    "DELETE FROM samples WHERE day = ?1",
                    &[day],
                )?;
            }
        }
        report.samples_deleted += delete(
            conn,
            "raw samples",
            "DELETE FROM samples WHERE day = ?1 AND slot < ?2",
            &[cut_day, cut.0],
        )?;
        delete(
            conn,
            "slot coverage",
            "DELETE FROM slots WHERE slot < ?1",
            &[cut.0],
        )?;
        report.raw_cutoff = Some(cut);
    }
    let hour = Slot::containing(hourly).0.div_euclid(SLOTS_PER_HOUR);
    report.hourly_deleted = delete(
        conn,
        "hourly rollups",
        "DELETE FROM hourly WHERE hour < ?1",
        &[hour],
    )?;
    let day = Slot::containing(daily).0.div_euclid(SLOTS_PER_DAY);
    report.daily_deleted = delete(
        conn,
        "daily rollups",
        "DELETE FROM daily WHERE day < ?1",
        &[day],
    )?;
    Ok(report)
}
