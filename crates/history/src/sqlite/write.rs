//! Appending batches and freezing periods.

use super::codec::{self, Span, HOURS_PER_DAY, SLOTS_PER_HOUR};
use super::rollup::Rollups;
use crate::error::StoreError;
use crate::store::{AddBatch, Batch, FrozenPeriod};
use accounting::{Sample, Slot, SlotCoverage, UsageKey};
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

/// What storing does with a slot and key that is already stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Merge {
    /// Refuses the batch: the accountant writes each slot and key once.
    Refuse,
    /// Adds bytes and packets: late data from another writer.
    Sum,
}

/// Adds up the samples of the same slot and key in `samples`, sorted by
/// slot then key. A sum must stay below 2⁶³, like every stored value.
pub(super) fn sum_same(samples: &mut Vec<Sample>) -> Result<(), StoreError> {
    let mut out: usize = 0;
    for i in 0..samples.len() {
        let s = samples[i];
        match out.checked_sub(1).map(|j| &mut samples[j]) {
            Some(last) if (last.slot, last.key) == (s.slot, s.key) => {
                let sum = |a: u64, b: u64, what: &str| {
                    a.checked_add(b)
                        .filter(|&v| v <= i64::MAX as u64)
                        .ok_or_else(|| {
                            StoreError::invalid(
                                format!("samples of {} at {}", s.key, s.slot),
                                format!("{what} add up to more than 2^63 − 1"),
                            )
                        })
                };
                last.bytes = sum(last.bytes, s.bytes, "bytes")?;
                last.packets = sum(last.packets, s.packets, "packets")?;
            }
            _ => {
                samples[out] = s;
                out += 1;
            }
        }
    }
    samples.truncate(out);
    Ok(())
}

/// Merges `samples` (sorted by slot and key, each once) into the samples
/// of `old`, refusing or summing a slot and key in both as `merge` says.
fn merge_samples(
    sequence: u64,
    (span, time, tenant): (Span, i64, u32),
    old: &[u8],
    samples: &[Sample],
    merge: Merge,
) -> Result<Vec<Sample>, StoreError> {
    let mut merged = Vec::with_capacity(samples.len() * 2);
    let everything = (Slot(i64::MIN), Slot(i64::MAX));
    codec::decode_samples((span, time), TenantId(tenant), old, everything, &mut merged)?;
    merged.extend_from_slice(samples);
    merged.sort_by_key(|s| (s.slot, s.key));
    match merge {
        Merge::Refuse => {
            if let Some(w) = merged
                .windows(2)
                .find(|w| (w[0].slot, w[0].key) == (w[1].slot, w[1].key))
            {
                return Err(already_stored(sequence, &w[0].key, &w[0]));
            }
        }
        Merge::Sum => sum_same(&mut merged)?,
    }
    Ok(merged)
}

/// Stores one tenant's new samples of one hour or day in its packed row,
/// sorted by slot and key and each slot and key once: merged into the row
/// an earlier batch left (the daemon appends an hour one slot at a time),
/// a slot and key already there refused or summed as `merge` says. A row
/// that does not exist is created if `create`; otherwise nothing is
/// stored and the answer is `false`.
pub(super) fn store_row(
    tx: &Transaction<'_>,
    sequence: u64,
    (span, time, tenant): (Span, i64, u32),
    samples: &[Sample],
    (merge, create): (Merge, bool),
    blob: &mut Vec<u8>,
) -> Result<bool, StoreError> {
    let ctx = || format!("batch {sequence}: store the samples in {}", span.table());
    let id = codec::new_row_id(time, tenant)?;
    let (insert, select, update) = match span {
        Span::Hour => (
            "INSERT INTO samples (id, count, samples) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
            "SELECT samples FROM samples WHERE id = ?1",
            "UPDATE samples SET count = ?2, samples = ?3 WHERE id = ?1",
        ),
        Span::Day => (
            "INSERT INTO samples_days (id, count, samples) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
            "SELECT samples FROM samples_days WHERE id = ?1",
            "UPDATE samples_days SET count = ?2, samples = ?3 WHERE id = ?1",
        ),
    };
    if create {
        blob.clear();
        codec::encode_samples(span, time, samples, blob);
        let inserted = tx
            .prepare_cached(insert)
            .and_then(|mut st| st.execute(params![id, samples.len() as i64, &blob[..]]))
            .map_err(StoreError::db(ctx()))?;
        if inserted == 1 {
            return Ok(true);
        }
    }
    let old: Option<Vec<u8>> = tx
        .prepare_cached(select)
        .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
        .map_err(StoreError::db(ctx()))?;
    let Some(old) = old else {
        return Ok(false);
    };
    let merged = merge_samples(sequence, (span, time, tenant), &old, samples, merge)?;
    blob.clear();
    codec::encode_samples(span, time, &merged, blob);
    tx.prepare_cached(update)
        .and_then(|mut st| st.execute(params![id, merged.len() as i64, &blob[..]]))
        .map_err(StoreError::db(ctx()))?;
    Ok(true)
}

/// Stores one tenant's new samples of one hour (see [`store_row`]) in its
/// hour row. For the version 1 conversion, which runs before compaction
/// exists.
pub(super) fn store_hour(
    tx: &Transaction<'_>,
    sequence: u64,
    (hour, tenant): (i64, u32),
    samples: &[Sample],
    merge: Merge,
    blob: &mut Vec<u8>,
) -> Result<(), StoreError> {
    store_row(
        tx,
        sequence,
        (Span::Hour, hour, tenant),
        samples,
        (merge, true),
        blob,
    )
    .map(|_| ())
}

/// The last day that has a compacted row, read once per write.
fn last_compacted_day(tx: &Transaction<'_>) -> Result<Option<i64>, StoreError> {
    let id: Option<i64> = tx
        .query_row("SELECT MAX(id) FROM samples_days", [], |r| r.get(0))
        .map_err(StoreError::db("read the last compacted day"))?;
    Ok(id.map(|id| codec::split_row_id(id).0))
}

/// Stores one tenant's new samples of one hour where they belong: into
/// its day row if that day is compacted for the tenant (so that a day row
/// and hour rows of one tenant's day never coexist), else its hour row.
fn store_samples(
    tx: &Transaction<'_>,
    sequence: u64,
    (hour, tenant): (i64, u32),
    samples: &[Sample],
    (merge, compacted): (Merge, Option<i64>),
    blob: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let day = hour.div_euclid(HOURS_PER_DAY);
    if compacted.is_some_and(|last| day <= last) {
        let target = (Span::Day, day, tenant);
        if store_row(tx, sequence, target, samples, (merge, false), blob)? {
            return Ok(());
        }
    }
    store_row(
        tx,
        sequence,
        (Span::Hour, hour, tenant),
        samples,
        (merge, true),
        blob,
    )
    .map(|_| ())
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
    store_batch(&tx, b.sequence, b.samples, &runs, Merge::Refuse)?;
    store_coverage(&tx, b.coverage, &ctx)?;
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

/// Stores a batch's samples one tenant's hour at a time, with their
/// rollups. A slot and key given twice in the batch is refused (`Refuse`,
/// the accountant's batches) or summed (`Sum`, other writers').
fn store_batch(
    tx: &Transaction<'_>,
    sequence: u64,
    samples: &[Sample],
    runs: &[Run],
    merge: Merge,
) -> Result<(), StoreError> {
    let compacted = last_compacted_day(tx)?;
    let mut rollups = Rollups::default();
    let mut hour_samples: Vec<Sample> = Vec::new();
    let mut blob = Vec::new();
    for group in runs.chunk_by(|a, b| (a.hour, a.tenant) == (b.hour, b.tenant)) {
        let key = (group[0].hour, group[0].tenant);
        hour_samples.clear();
        for r in group {
            hour_samples.extend_from_slice(&samples[r.start..r.end]);
        }
        if !hour_samples.is_sorted_by_key(|s| (s.slot, s.key)) {
            hour_samples.sort_by_key(|s| (s.slot, s.key));
        }
        match merge {
            Merge::Refuse => {
                let same = |w: &[Sample]| (w[0].slot, w[0].key) == (w[1].slot, w[1].key);
                if let Some(w) = hour_samples.windows(2).find(|w| same(w)) {
                    return Err(twice_in_batch(samples, &w[0]));
                }
            }
            Merge::Sum => sum_same(&mut hour_samples)?,
        }
        store_samples(
            tx,
            sequence,
            key,
            &hour_samples,
            (merge, compacted),
            &mut blob,
        )?;
        rollups.add_hour(tx, key, &hour_samples)?;
    }
    rollups.store(tx)
}

/// Records the coverage of slots. A slot already recorded (by another
/// writer, or twice in one batch) keeps the better status: measured, then
/// estimated, then partial, which is the order of [`SlotStatus::code`]
/// (`accounting::SlotStatus::code`), so the better is the lower code.
fn store_coverage(
    tx: &Transaction<'_>,
    coverage: &[SlotCoverage],
    ctx: &dyn Fn(&str) -> String,
) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO slots (slot, status) VALUES (?1, ?2)
             ON CONFLICT (slot) DO UPDATE SET status = min(status, excluded.status)",
        )
        .map_err(StoreError::db(ctx("prepare")))?;
    for c in coverage {
        insert
            .execute(params![c.slot.0, c.status.code()])
            .map_err(StoreError::db(ctx(&format!("coverage of slot {}", c.slot))))?;
    }
    Ok(())
}

/// [`crate::Store::add`]: like [`append`], but samples already stored are
/// summed with, the batch's own duplicates are summed, and the sequence
/// and state are the writer's own.
pub(super) fn add(conn: &mut Connection, b: &AddBatch<'_>) -> Result<(), StoreError> {
    if b.writer.is_empty() {
        return Err(StoreError::invalid("batch.writer", "is empty"));
    }
    let ctx = |what: &str| format!("add batch {} of {}: {what}", b.sequence, b.writer);
    let sequence = to_i64(b.sequence, || "batch.sequence".into())?;
    let runs = runs(b.samples)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx("begin")))?;
    let last: Option<i64> = tx
        .query_row(
            "SELECT sequence FROM writers WHERE writer = ?1",
            [b.writer],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::db(ctx("read the writer's last sequence")))?;
    if let Some(last) = last.filter(|&l| l >= sequence) {
        return Err(StoreError::AlreadyAppended {
            sequence: b.sequence,
            last: last as u64,
        });
    }
    store_batch(&tx, b.sequence, b.samples, &runs, Merge::Sum)?;
    store_coverage(&tx, b.coverage, &ctx)?;
    tx.execute(
        "INSERT INTO writers (writer, sequence, blob) VALUES (?1, ?2, ?3)
         ON CONFLICT (writer) DO UPDATE SET sequence = excluded.sequence, blob = excluded.blob",
        params![b.writer, sequence, b.state],
    )
    .map_err(StoreError::db(ctx("writer state")))?;
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
