//! Appending batches and freezing periods.

use crate::error::StoreError;
use crate::store::{Batch, FrozenPeriod};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Slots per UTC day and per hour.
pub(super) const SLOTS_PER_DAY: i64 = 288;
pub(super) const SLOTS_PER_HOUR: i64 = 12;

fn to_i64(v: u64, field: impl FnOnce() -> String) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(field(), format!("{v} is above 2^63 − 1")))
}

/// Names the first sample of the staged batch that is already stored.
fn duplicate(tx: &rusqlite::Transaction<'_>, sequence: u64) -> Result<StoreError, StoreError> {
    let row: (i64, i64, i64, i64, i64) = tx
        .query_row(
            "SELECT s.tenant, s.realm, s.dir, s.band, s.slot FROM temp.staged AS s
             JOIN samples AS o USING (day, tenant, realm, dir, band, slot) LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .map_err(StoreError::db(format!(
            "append batch {sequence}: find the duplicate"
        )))?;
    let (tenant, realm, dir, band, slot) = row;
    let dir = if dir == 0 { "down" } else { "up" };
    let band = u8::try_from(band)
        .ok()
        .and_then(accounting::Band::from_code)
        .map_or("?", |b| b.as_str());
    Ok(StoreError::invalid(
        format!("batch {sequence}"),
        format!(
            "the sample of tenant {tenant} realm {realm} {dir} {band} at {} is already stored",
            accounting::Slot(slot)
        ),
    ))
}

pub(super) fn append(conn: &mut Connection, b: &Batch<'_>) -> Result<(), StoreError> {
    let ctx = |what: &str| format!("append batch {}: {what}", b.sequence);
    let sequence = to_i64(b.sequence, || "batch.sequence".into())?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx("begin")))?;
    let last: Option<i64> = tx
        .query_row("SELECT MAX(sequence) FROM batches", [], |r| r.get(0))
        .map_err(StoreError::db(ctx("read the last sequence")))?;
    if let Some(last) = last.filter(|&l| l >= sequence) {
        return Err(StoreError::AlreadyAppended {
            sequence: b.sequence,
            last: last as u64,
        });
    }
    // The batch goes into an in-memory staging table first, row by row;
    // from there one set-based statement each fills the samples and the
    // two rollups. That is one statement per sample instead of three.
    tx.execute("DELETE FROM temp.staged", [])
        .map_err(StoreError::db(ctx("clear the staging table")))?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO temp.staged (day, tenant, realm, dir, band, slot, bytes, packets)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(StoreError::db(ctx("prepare")))?;
        for (i, s) in b.samples.iter().enumerate() {
            let bytes = to_i64(s.bytes, || format!("batch.samples[{i}].bytes"))?;
            let packets = to_i64(s.packets, || format!("batch.samples[{i}].packets"))?;
            let k = &s.key;
            insert
                .execute(params![
                    s.slot.0.div_euclid(SLOTS_PER_DAY),
                    k.tenant.0,
                    k.realm.0,
                    k.direction.code(),
                    k.band.code(),
                    s.slot.0,
                    bytes,
                    packets
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::invalid(
                        format!("batch.samples[{i}]"),
                        format!("{k} at {} appears twice in the batch", s.slot),
                    ),
                    _ => StoreError::db(ctx("stage a sample"))(e),
                })?;
        }
    }
    tx.execute(
        "INSERT INTO samples (day, tenant, realm, dir, band, slot, bytes, packets)
         SELECT day, tenant, realm, dir, band, slot, bytes, packets FROM temp.staged
         ORDER BY day, tenant, realm, dir, band, slot",
        [],
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            duplicate(&tx, b.sequence).unwrap_or_else(|d| d)
        }
        _ => StoreError::db(ctx("store the samples"))(e),
    })?;
    for (table, time, expr) in [("hourly", "hour", "slot / 12"), ("daily", "day", "day")] {
        // `WHERE true` keeps SQLite from reading ON CONFLICT as a join.
        tx.execute(
            &format!(
                "INSERT INTO {table} ({time}, tenant, realm, dir, bytes, packets)
                 SELECT {expr}, tenant, realm, dir, SUM(bytes), SUM(packets)
                 FROM temp.staged WHERE true GROUP BY {expr}, tenant, realm, dir
                 ON CONFLICT ({time}, tenant, realm, dir) DO UPDATE
                 SET bytes = bytes + excluded.bytes, packets = packets + excluded.packets"
            ),
            [],
        )
        .map_err(StoreError::db(ctx(&format!("{table} rollup"))))?;
    }
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO slots (slot, status) VALUES (?1, ?2)")
            .map_err(StoreError::db(ctx("prepare")))?;
        for c in b.coverage {
            insert
                .execute(params![c.slot.0, c.status.code()])
                .map_err(StoreError::db(ctx(&format!("coverage of slot {}", c.slot))))?;
        }
    }
    tx.execute(
        "INSERT INTO accounting_state (id, sequence, blob) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, blob = excluded.blob",
        params![sequence, b.state],
    )
    .map_err(StoreError::db(ctx("accounting state")))?;
    tx.execute(
        "INSERT INTO batches (sequence, samples, slots) VALUES (?1, ?2, ?3)",
        params![sequence, b.samples.len() as i64, b.coverage.len() as i64],
    )
    .map_err(StoreError::db(ctx("batch record")))?;
    tx.commit().map_err(StoreError::db(ctx("commit")))
}

pub(super) fn freeze(conn: &mut Connection, p: &FrozenPeriod) -> Result<(), StoreError> {
    if p.start >= p.end {
        return Err(StoreError::invalid(
            format!("period {}", p.label),
            format!(
                "starts at {} which is not before its end {}",
                p.start, p.end
            ),
        ));
    }
    if p.frozen_at < p.end {
        return Err(StoreError::PeriodNotClosed {
            label: p.label.clone(),
        });
    }
    let ctx = format!("freeze period {}", p.label);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx.clone()))?;
    let exists = tx
        .query_row(
            "SELECT 1 FROM frozen_periods WHERE label = ?1",
            [&p.label],
            |_| Ok(()),
        )
        .optional()
        .map_err(StoreError::db(ctx.clone()))?;
    if exists.is_some() {
        return Err(StoreError::AlreadyFrozen(p.label.clone()));
    }
    tx.execute(
        "INSERT INTO frozen_periods (label, start_ms, end_ms, frozen_at_ms, bill)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            p.label,
            p.start.as_millisecond(),
            p.end.as_millisecond(),
            p.frozen_at.as_millisecond(),
            p.bill
        ],
    )
    .map_err(StoreError::db(ctx.clone()))?;
    tx.commit().map_err(StoreError::db(ctx))
}
