//! Appending and adding batches, each sample accepted or refused on its
//! own (see [`crate::refusal`]), and freezing periods.

use super::codec::{self, Span, HOURS_PER_DAY, SLOTS_PER_HOUR};
use super::quarantine;
use super::rollup::Rollups;
use crate::error::StoreError;
use crate::refusal::{
    Refusal, RefusalReason, WriteReport, ACCOUNTANT_WRITER, MAX_SAMPLE_BYTES, MAX_SAMPLE_PACKETS,
};
use crate::store::{AddBatch, Batch, FrozenPeriod};
use accounting::{Sample, Slot, SlotCoverage, UsageKey};
use net_types::TenantId;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

fn to_i64(v: u64, field: impl FnOnce() -> String) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(field(), format!("{v} is above 2^63 − 1")))
}

/// A batch's sample on its way into the store, with its place in the batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    /// Its index in the batch's samples.
    pub index: usize,
    /// The sample.
    pub sample: Sample,
}

impl Pending {
    fn order(&self) -> (Slot, UsageKey, usize) {
        (self.sample.slot, self.sample.key, self.index)
    }
}

/// What storing does with a slot and key that is already stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Merge {
    /// Refuses the sample: the accountant writes each slot and key once.
    Refuse,
    /// Adds bytes and packets: late data from another writer.
    Sum,
}

/// Whether a slot and key is held to the plausibility bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// New data: at most [`MAX_SAMPLE_BYTES`] and [`MAX_SAMPLE_PACKETS`].
    Bound,
    /// Data already stored, moved (compaction, migration): as it is.
    AsStored,
}

/// What [`store_row`] decided about each new sample.
#[derive(Default)]
pub(super) struct Outcome {
    /// The samples stored, as given (several of one slot and key when
    /// summed), for the rollups.
    pub accepted: Vec<Sample>,
    /// The samples refused.
    pub refused: Vec<Refusal>,
}

impl Outcome {
    fn clear(&mut self) {
        self.accepted.clear();
        self.refused.clear();
    }
}

/// Merges `new` (one tenant's samples of one row, sorted by slot, key and
/// index) into `old` (the row's stored samples, sorted by slot and key,
/// each once), deciding each new sample on its own: refused if its slot and
/// key is stored or came earlier (`Refuse`), or if adding it would take its
/// slot and key past the bound (`Sum`). Returns the row to store, sorted by
/// slot and key, each once.
fn merge_checked(
    old: &[Sample],
    new: &[Pending],
    (merge, check): (Merge, Check),
    out: &mut Outcome,
) -> Vec<Sample> {
    let (max_bytes, max_packets) = match check {
        Check::Bound => (u128::from(MAX_SAMPLE_BYTES), u128::from(MAX_SAMPLE_PACKETS)),
        // A sample must still fit its 64 bits.
        Check::AsStored => (u128::from(u64::MAX), u128::from(u64::MAX)),
    };
    let mut merged = Vec::with_capacity(old.len() + new.len());
    let mut o = old.iter().peekable();
    for group in new.chunk_by(|a, b| (a.sample.slot, a.sample.key) == (b.sample.slot, b.sample.key))
    {
        let at = (group[0].sample.slot, group[0].sample.key);
        while let Some(s) = o.next_if(|s| (s.slot, s.key) < at) {
            merged.push(*s);
        }
        let base = o.next_if(|s| (s.slot, s.key) == at).copied();
        let mut refuse = |p: &Pending, reason| {
            out.refused.push(Refusal {
                index: p.index,
                sample: p.sample,
                reason,
            })
        };
        match merge {
            Merge::Refuse => {
                let rest = match base {
                    Some(b) => {
                        merged.push(b);
                        group
                            .iter()
                            .for_each(|p| refuse(p, RefusalReason::AlreadyStored));
                        &[][..]
                    }
                    None => {
                        merged.push(group[0].sample);
                        out.accepted.push(group[0].sample);
                        &group[1..]
                    }
                };
                rest.iter()
                    .for_each(|p| refuse(p, RefusalReason::TwiceInBatch));
            }
            Merge::Sum => {
                let mut sum = base.map_or((0, 0), |b| (b.bytes, b.packets));
                let mut any = base.is_some();
                for p in group {
                    let bytes = u128::from(sum.0) + u128::from(p.sample.bytes);
                    let packets = u128::from(sum.1) + u128::from(p.sample.packets);
                    match (u64::try_from(bytes), u64::try_from(packets)) {
                        (Ok(b), Ok(k)) if bytes <= max_bytes && packets <= max_packets => {
                            sum = (b, k);
                            any = true;
                            out.accepted.push(p.sample);
                        }
                        _ => refuse(p, RefusalReason::SumTooLarge { bytes, packets }),
                    }
                }
                if any {
                    merged.push(Sample {
                        slot: at.0,
                        key: at.1,
                        bytes: sum.0,
                        packets: sum.1,
                    });
                }
            }
        }
    }
    merged.extend(o.copied());
    merged
}

/// Stores one tenant's new samples of one hour or day in its packed row
/// (see [`merge_checked`] for what is refused): created if `create` and
/// absent, else merged into the row an earlier batch left (the daemon
/// appends an hour one slot at a time). A row that does not exist and is
/// not to be created stores nothing, and the answer is `false`. `out` gets
/// what was accepted and refused.
pub(super) fn store_row(
    tx: &Transaction<'_>,
    sequence: u64,
    (span, time, tenant): (Span, i64, u32),
    samples: &[Pending],
    (merge, check, create): (Merge, Check, bool),
    (blob, out): (&mut Vec<u8>, &mut Outcome),
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
    out.clear();
    if create {
        // The usual case, a row not written yet: checked against nothing
        // stored, inserted without reading first.
        let row = merge_checked(&[], samples, (merge, check), out);
        if row.is_empty() {
            return Ok(true);
        }
        blob.clear();
        codec::encode_samples(span, time, &row, blob);
        let inserted = tx
            .prepare_cached(insert)
            .and_then(|mut st| st.execute(params![id, row.len() as i64, &blob[..]]))
            .map_err(StoreError::db(ctx()))?;
        if inserted == 1 {
            return Ok(true);
        }
        out.clear();
    }
    let old: Option<Vec<u8>> = tx
        .prepare_cached(select)
        .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
        .map_err(StoreError::db(ctx()))?;
    let Some(old) = old else {
        return Ok(false);
    };
    let mut stored = Vec::new();
    let everything = (Slot(i64::MIN), Slot(i64::MAX));
    codec::decode_samples(
        (span, time),
        TenantId(tenant),
        &old,
        everything,
        &mut stored,
    )?;
    let row = merge_checked(&stored, samples, (merge, check), out);
    if out.accepted.is_empty() {
        return Ok(true);
    }
    blob.clear();
    codec::encode_samples(span, time, &row, blob);
    tx.prepare_cached(update)
        .and_then(|mut st| st.execute(params![id, row.len() as i64, &blob[..]]))
        .map_err(StoreError::db(ctx()))?;
    Ok(true)
}

/// Moves samples already stored (compaction, migration) into the row of
/// `(span, time, tenant)`, created if absent: a slot and key already in
/// the row (which would mean the store is inconsistent) is an error, not a
/// refusal.
pub(super) fn move_row(
    tx: &Transaction<'_>,
    (span, time, tenant): (Span, i64, u32),
    samples: &[Sample],
    blob: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let pending: Vec<Pending> = samples
        .iter()
        .enumerate()
        .map(|(index, &sample)| Pending { index, sample })
        .collect();
    let mut out = Outcome::default();
    let target = (span, time, tenant);
    let how = (Merge::Refuse, Check::AsStored, true);
    store_row(tx, 0, target, &pending, how, (blob, &mut out))?;
    match out.refused.first() {
        None => Ok(()),
        Some(r) => Err(StoreError::corrupt(
            span.place(),
            format!(
                "{} at {} is stored twice: {}",
                r.sample.key, r.sample.slot, r.reason
            ),
        )),
    }
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
    samples: &[Pending],
    (merge, compacted): (Merge, Option<i64>),
    (blob, out): (&mut Vec<u8>, &mut Outcome),
) -> Result<(), StoreError> {
    let day = hour.div_euclid(HOURS_PER_DAY);
    if compacted.is_some_and(|last| day <= last) {
        let target = (Span::Day, day, tenant);
        let how = (merge, Check::Bound, false);
        if store_row(tx, sequence, target, samples, how, (blob, out))? {
            return Ok(());
        }
    }
    let how = (merge, Check::Bound, true);
    store_row(
        tx,
        sequence,
        (Span::Hour, hour, tenant),
        samples,
        how,
        (blob, out),
    )
    .map(|_| ())
}

/// A run of consecutive accepted samples of one batch that share an hour
/// and a tenant.
struct Run {
    hour: i64,
    tenant: u32,
    start: usize,
    end: usize,
}

/// Checks each sample on its own (the bound, the slot's range), refusing
/// those that fail, and cuts the rest into runs of one hour and tenant,
/// sorted by hour, tenant and position. The accountant's batches are
/// ordered by slot then key, so a run is one tenant's keys of one slot and
/// sorting runs is much cheaper than sorting samples.
fn runs(samples: &[Sample], refused: &mut Vec<Refusal>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut open = false;
    for (i, s) in samples.iter().enumerate() {
        let hour = s.slot.0.div_euclid(SLOTS_PER_HOUR);
        let tenant = s.key.tenant.0;
        let reason = if s.bytes > MAX_SAMPLE_BYTES {
            Some(RefusalReason::TooManyBytes)
        } else if s.packets > MAX_SAMPLE_PACKETS {
            Some(RefusalReason::TooManyPackets)
        } else if codec::row_id(hour, tenant).is_none() {
            Some(RefusalReason::SlotOutOfRange)
        } else {
            None
        };
        if let Some(reason) = reason {
            refused.push(Refusal {
                index: i,
                sample: *s,
                reason,
            });
            open = false;
            continue;
        }
        match runs.last_mut() {
            Some(r) if open && r.hour == hour && r.tenant == tenant => r.end = i + 1,
            _ => runs.push(Run {
                hour,
                tenant,
                start: i,
                end: i + 1,
            }),
        }
        open = true;
    }
    runs.sort_unstable_by_key(|r| (r.hour, r.tenant, r.start));
    runs
}

/// Stores a batch's samples one tenant's hour at a time, with their
/// rollups, each sample accepted or refused on its own (see
/// [`merge_checked`]). Returns the report without its quarantine counts.
fn store_batch(
    tx: &Transaction<'_>,
    sequence: u64,
    samples: &[Sample],
    merge: Merge,
) -> Result<WriteReport, StoreError> {
    let mut report = WriteReport::default();
    let runs = runs(samples, &mut report.refused);
    let compacted = last_compacted_day(tx)?;
    let mut rollups = Rollups::new(tx)?;
    let mut pending: Vec<Pending> = Vec::new();
    let mut out = Outcome::default();
    let mut blob = Vec::new();
    for group in runs.chunk_by(|a, b| (a.hour, a.tenant) == (b.hour, b.tenant)) {
        let key = (group[0].hour, group[0].tenant);
        pending.clear();
        for r in group {
            pending.extend((r.start..r.end).map(|index| Pending {
                index,
                sample: samples[index],
            }));
        }
        if !pending.is_sorted_by_key(Pending::order) {
            pending.sort_by_key(Pending::order);
        }
        let how = (merge, compacted);
        store_samples(tx, sequence, key, &pending, how, (&mut blob, &mut out))?;
        report.stored += out.accepted.len();
        report.refused.append(&mut out.refused);
        if !out.accepted.is_empty() {
            rollups.add_hour(tx, key, &out.accepted)?;
        }
    }
    rollups.store(tx)?;
    report.refused.sort_by_key(|r| r.index);
    Ok(report)
}

/// Keeps a write's refused samples in the quarantine, in its transaction.
fn quarantine_refused(
    tx: &Transaction<'_>,
    writer: &str,
    sequence: u64,
    report: &mut WriteReport,
) -> Result<(), StoreError> {
    if !report.refused.is_empty() {
        (report.quarantined, report.dropped) =
            quarantine::keep(tx, writer, sequence, &report.refused)?;
    }
    Ok(())
}

pub(super) fn append(conn: &mut Connection, b: &Batch<'_>) -> Result<WriteReport, StoreError> {
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
    let mut report = store_batch(&tx, b.sequence, b.samples, Merge::Refuse)?;
    quarantine_refused(&tx, ACCOUNTANT_WRITER, b.sequence, &mut report)?;
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
    tx.commit().map_err(StoreError::db(ctx("commit")))?;
    Ok(report)
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
pub(super) fn add(conn: &mut Connection, b: &AddBatch<'_>) -> Result<WriteReport, StoreError> {
    if b.writer.is_empty() {
        return Err(StoreError::invalid("batch.writer", "is empty"));
    }
    let ctx = |what: &str| format!("add batch {} of {}: {what}", b.sequence, b.writer);
    let sequence = to_i64(b.sequence, || "batch.sequence".into())?;
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
    let mut report = store_batch(&tx, b.sequence, b.samples, Merge::Sum)?;
    quarantine_refused(&tx, b.writer, b.sequence, &mut report)?;
    store_coverage(&tx, b.coverage, &ctx)?;
    tx.execute(
        "INSERT INTO writers (writer, sequence, blob) VALUES (?1, ?2, ?3)
         ON CONFLICT (writer) DO UPDATE SET sequence = excluded.sequence, blob = excluded.blob",
        params![b.writer, sequence, b.state],
    )
    .map_err(StoreError::db(ctx("writer state")))?;
    tx.commit().map_err(StoreError::db(ctx("commit")))?;
    Ok(report)
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
