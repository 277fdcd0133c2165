//! Appending batches and freezing periods.

use super::codec::{self, SLOTS_PER_HOUR};
use super::rollup::Rollups;
use crate::error::StoreError;
use crate::store::{Batch, FrozenPeriod};
use accounting::{Sample, UsageKey};
use net_types::TenantId;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

fn to_i64(v: u64, field: impl FnOnce() -> String) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(field(), format!("{v} is above 2^63 − 1")))
}

/// A run of consecutive samples of one batch that share an hour and a
/// tenant.
struct Run {
    hour: i64,
    tenant: u32,
    start: usize,
    end: usize,
}

/// Checks the batch's values and cuts it into runs of one hour and tenant,
/// sorted by hour, tenant and position. The accountant's batches are
/// ordered by slot then key, so a run is one tenant's keys of one slot and
/// sorting runs is much cheaper than sorting samples.
fn runs(samples: &[Sample]) -> Result<Vec<Run>, StoreError> {
    let mut runs: Vec<Run> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        // Bytes and packets stay below 2⁶³ so that the sums SQL and other
        // tools compute from them stay in SQLite's signed integers.
        to_i64(s.bytes, || format!("batch.samples[{i}].bytes"))?;
        to_i64(s.packets, || format!("batch.samples[{i}].packets"))?;
        let hour = s.slot.0.div_euclid(SLOTS_PER_HOUR);
        let tenant = s.key.tenant.0;
        match runs.last_mut() {
            Some(r) if r.hour == hour && r.tenant == tenant => r.end = i + 1,
            _ => {
                codec::new_row_id(hour, tenant).map_err(|e| match e {
                    StoreError::Invalid { problem, .. } => {
                        StoreError::invalid(format!("batch.samples[{i}].slot"), problem)
                    }
                    e => e,
                })?;
                runs.push(Run {
                    hour,
                    tenant,
                    start: i,
                    end: i + 1,
                });
            }
        }
    }
    runs.sort_unstable_by_key(|r| (r.hour, r.tenant, r.start));
    Ok(runs)
}

/// The error for a key and slot given twice in one batch.
fn twice_in_batch(samples: &[Sample], dup: &Sample) -> StoreError {
    let i = samples
        .iter()
        .enumerate()
        .filter(|(_, s)| (s.slot, s.key) == (dup.slot, dup.key))
        .nth(1)
        .map_or(0, |(i, _)| i);
    StoreError::invalid(
        format!("batch.samples[{i}]"),
        format!("{} at {} appears twice in the batch", dup.key, dup.slot),
    )
}

fn already_stored(sequence: u64, key: &UsageKey, s: &Sample) -> StoreError {
    StoreError::invalid(
        format!("batch {sequence}"),
        format!("the sample of {key} at {} is already stored", s.slot),
    )
}

/// Stores one tenant's new samples of one hour, sorted by slot and key:
/// a new row, or merged into the row an earlier batch left (the daemon
/// appends an hour one slot at a time).
pub(super) fn store_hour(
    tx: &Transaction<'_>,
    sequence: u64,
    (hour, tenant): (i64, u32),
    samples: &[Sample],
    blob: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let ctx = || format!("append batch {sequence}: store the samples");
    let id = codec::new_row_id(hour, tenant)?;
    blob.clear();
    codec::encode_samples(hour, samples, blob);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO samples (id, count, samples) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut st| st.execute(params![id, samples.len() as i64, &blob[..]]))
        .map_err(StoreError::db(ctx()))?;
    if inserted == 1 {
        return Ok(());
    }
    let old: Vec<u8> = tx
        .prepare_cached("SELECT samples FROM samples WHERE id = ?1")
        .and_then(|mut st| st.query_row([id], |r| r.get(0)))
        .map_err(StoreError::db(ctx()))?;
    let mut merged = Vec::with_capacity(samples.len() * 2);
    let everything = (accounting::Slot(i64::MIN), accounting::Slot(i64::MAX));
    codec::decode_samples(hour, TenantId(tenant), &old, everything, &mut merged)?;
    merged.extend_from_slice(samples);
    merged.sort_by_key(|s| (s.slot, s.key));
    if let Some(w) = merged
        .windows(2)
        .find(|w| (w[0].slot, w[0].key) == (w[1].slot, w[1].key))
    {
        return Err(already_stored(sequence, &w[0].key, &w[0]));
    }
    blob.clear();
    codec::encode_samples(hour, &merged, blob);
    tx.prepare_cached("UPDATE samples SET count = ?2, samples = ?3 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![id, merged.len() as i64, &blob[..]]))
        .map_err(StoreError::db(ctx()))?;
    Ok(())
}

pub(super) fn append(conn: &mut Connection, b: &Batch<'_>) -> Result<(), StoreError> {
    let ctx = |what: &str| format!("append batch {}: {what}", b.sequence);
    let sequence = to_i64(b.sequence, || "batch.sequence".into())?;
    let runs = runs(b.samples)?;
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
    let mut rollups = Rollups::default();
    let mut hour_samples: Vec<Sample> = Vec::new();
    let mut blob = Vec::new();
    for group in runs.chunk_by(|a, b| (a.hour, a.tenant) == (b.hour, b.tenant)) {
        let key = (group[0].hour, group[0].tenant);
        hour_samples.clear();
        for r in group {
            hour_samples.extend_from_slice(&b.samples[r.start..r.end]);
        }
        if !hour_samples.is_sorted_by_key(|s| (s.slot, s.key)) {
            hour_samples.sort_by_key(|s| (s.slot, s.key));
        }
        let same = |w: &[Sample]| (w[0].slot, w[0].key) == (w[1].slot, w[1].key);
        if let Some(w) = hour_samples.windows(2).find(|w| same(w)) {
            return Err(twice_in_batch(b.samples, &w[0]));
        }
        store_hour(&tx, b.sequence, key, &hour_samples, &mut blob)?;
        rollups.add_hour(&tx, key, &hour_samples)?;
    }
    rollups.store(&tx)?;
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
