//! Committing a harvest so that no sample can block the others.
//!
//! The store decides each sample on its own: it commits the batch and
//! names the samples it refused (a sum past what it stores), which it
//! keeps in its quarantine table; they are returned here too, for the
//! collector's own quarantine file and status. Before issue 12 a single
//! such sample blocked every later commit for good. A refusal of the whole
//! batch for its content (a row the store cannot read) is narrowed down
//! all the same: the samples of the slot and key the store names are set
//! aside and the rest retried; if it names none, the batch is halved and
//! each half committed on its own. A refusal about the store itself (the
//! database busy or gone) keeps the batch for a later retry.

use accounting::{Sample, Slot, SlotCoverage, UsageKey};
use history::{AddBatch, Store, StoreError};

/// The writer name the collector's batches carry in the store.
pub const WRITER: &str = "flows";

/// What [`add_isolating`] did.
#[derive(Debug, Default)]
pub struct Isolated {
    /// Samples committed.
    pub committed: usize,
    /// Bytes in them.
    pub bytes: u64,
    /// Samples the store refused, with its reason.
    pub refused: Vec<(Sample, String)>,
}

/// Whether retrying later could succeed: the store's trouble, not the
/// batch's.
fn transient(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Database { .. }
            | StoreError::Backend { .. }
            | StoreError::Unreachable { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::AlreadyAppended { .. }
    )
}

/// The slot and key of the sample the store's error names, if it names
/// one: `batch.samples[i]…` or `samples of KEY at SLOT`.
fn named(e: &StoreError, samples: &[Sample]) -> Option<(Slot, UsageKey)> {
    let StoreError::Invalid { field, .. } = e else {
        return None;
    };
    if let Some(rest) = field.strip_prefix("batch.samples[") {
        let i: usize = rest.split(']').next()?.parse().ok()?;
        return samples.get(i).map(|s| (s.slot, s.key));
    }
    samples
        .iter()
        .find(|s| field.contains(&format!("samples of {} at {}", s.key, s.slot)))
        .map(|s| (s.slot, s.key))
}

/// Adds `samples` (one per slot and key) and `coverage` as the writer's
/// next batches, setting aside what the store refuses for its content.
/// `sequence` is the writer's last committed batch and moves with every
/// batch committed. Fails, committing nothing more, only when the store
/// itself is in trouble.
pub fn add_isolating(
    store: &mut impl Store,
    sequence: &mut u64,
    samples: &[Sample],
    coverage: &[SlotCoverage],
) -> Result<Isolated, StoreError> {
    let mut out = Isolated::default();
    narrow(store, sequence, samples, coverage, &mut out)?;
    Ok(out)
}

fn narrow(
    store: &mut impl Store,
    sequence: &mut u64,
    samples: &[Sample],
    coverage: &[SlotCoverage],
    out: &mut Isolated,
) -> Result<(), StoreError> {
    if samples.is_empty() && coverage.is_empty() {
        return Ok(());
    }
    let e = match add(store, sequence, samples, coverage) {
        Ok(report) => {
            let refused: std::collections::BTreeSet<usize> =
                report.refused.iter().map(|r| r.index).collect();
            out.committed += report.stored;
            out.bytes = samples
                .iter()
                .enumerate()
                .filter(|(i, _)| !refused.contains(i))
                .fold(out.bytes, |b, (_, s)| b.saturating_add(s.bytes));
            out.refused.extend(
                report
                    .refused
                    .iter()
                    .map(|r| (r.sample, r.reason.to_string())),
            );
            return Ok(());
        }
        Err(e) if transient(&e) => return Err(e),
        Err(e) => e,
    };
    let reason = e.to_string();
    if samples.is_empty() {
        // Coverage alone refused: nothing of it can be set aside usefully.
        tracing::error!("the history refused the flow collector's slot coverage: {reason}");
        return Ok(());
    }
    if let Some(bad) = named(&e, samples) {
        let (refused, rest): (Vec<Sample>, Vec<Sample>) =
            samples.iter().partition(|s| (s.slot, s.key) == bad);
        if !refused.is_empty() {
            out.refused
                .extend(refused.into_iter().map(|s| (s, reason.clone())));
            return narrow(store, sequence, &rest, coverage, out);
        }
    }
    if samples.len() == 1 {
        out.refused
            .extend(samples.iter().map(|s| (*s, reason.clone())));
        return narrow(store, sequence, &[], coverage, out);
    }
    let (left, right) = samples.split_at(samples.len() / 2);
    narrow(store, sequence, left, coverage, out)?;
    narrow(store, sequence, right, &[], out)
}

/// One batch; a sequence already taken (another process wrote as this
/// writer) moves ours past it and tries once more.
fn add(
    store: &mut impl Store,
    sequence: &mut u64,
    samples: &[Sample],
    coverage: &[SlotCoverage],
) -> Result<history::WriteReport, StoreError> {
    for _ in 0..2 {
        let batch = AddBatch {
            writer: WRITER,
            sequence: *sequence + 1,
            samples,
            coverage,
            state: &[],
        };
        match store.add(&batch) {
            Ok(report) => {
                *sequence += 1;
                return Ok(report);
            }
            Err(StoreError::AlreadyAppended { last, .. }) if last > *sequence => {
                tracing::warn!(
                    "the history holds flow batches up to {last}, past this collector's {sequence}; continuing after them"
                );
                *sequence = last;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::AlreadyAppended {
        sequence: *sequence + 1,
        last: *sequence + 1,
    })
}
