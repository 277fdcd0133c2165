//! The overage check's per-tenant counts ([`billing::Tally`]), kept up to
//! date from the slots closed since the last check instead of rereading
//! every tenant's period at every check.
//!
//! - Slots before `now − RECHECK` are folded into each tenant's tally for
//!   good; the last `RECHECK` slots are read again at every check and
//!   folded into a copy only, because flow records (added by the flow
//!   collector) may still land in them: a flow is put at most an hour
//!   before it was received ([`flows::CLOCK_SKEW_MILLIS`]).
//! - One store query per hour of slots, for all tenants at once
//!   ([`Tenants::All`]); memory is a tally (32 bytes) per tenant plus one
//!   hour of samples while reading.
//! - Everything is read again from the period's start when the period,
//!   the percentile rule, the volume counts or the overage policy change,
//!   when a folded slot's coverage changes (traffic estimated into a gap
//!   after the fact), and at start-up; a tenant alone is read again when it
//!   is new or its commit changed.
//!
//! The decisions are those of [`billing::project`] and [`billing::decide`]
//! on the tenant's series (property-tested in `billing::watch`).

use accounting::{Slot, SlotCoverage};
use billing::{slot_bytes, Limits, RealmSelection, Series, SlotBytes, Tally, Watch};
use engine::io::{Assess, Assessment};
use history::{SampleQuery, Store, Tenants};
use net_types::{Rate, TenantId};
use std::collections::HashMap;

/// Slots read again at every check: an hour (the latest a flow record is
/// put before its arrival) and the slot being closed.
const RECHECK: i64 = flows::CLOCK_SKEW_MILLIS / 300_000 + 1;

/// Slots per store query of every tenant: a third of an hour (the store
/// keeps hour rows, decoded once per query; 20 minutes of 10,000 tenants
/// are about 13 MB of samples while they are added up, an hour 38 MB).
const CHUNK: i64 = 4;

/// Slots per store query when reading a long range: a week of one tenant
/// (a few MB of samples), days the store has compacted into day rows.
const LONG: i64 = 7 * 288;

/// Tenants per store query when reading a long range: one, so that the
/// store returns its samples already in order and memory stays bounded.
const GROUP: usize = 1;

#[derive(Clone, Copy)]
struct Entry {
    commit: Option<Rate>,
    limits: Limits,
    tally: Tally,
}

/// Answers the engine's overage question: every asked tenant's decision
/// for the period so far, from the tallies, or (for a tenant that moves on
/// its percentile, whose decision carries the figure) from its series.
pub(super) fn assess(
    watch: &mut Option<OverageWatch>,
    store: &dyn Store,
    q: &Assess,
) -> Assessment {
    match decisions(watch, store, q) {
        Ok(decisions) => Assessment {
            period: q.period.label.clone(),
            decisions,
            error: None,
        },
        Err(e) => Assessment {
            period: q.period.label.clone(),
            decisions: Vec::new(),
            error: Some(e),
        },
    }
}

fn decisions(
    slot: &mut Option<OverageWatch>,
    store: &dyn Store,
    q: &Assess,
) -> Result<Vec<(u32, billing::Decision)>, String> {
    let period = &q.period;
    let first = period.first_slot();
    let now_slot = Slot(q.now_slot);
    let elapsed = (now_slot.0 - first.0).max(0) as usize;
    let coverage = store
        .coverage(first, now_slot)
        .map_err(|e| format!("cannot read the slot coverage: {e}"))?;
    let watch = Watch {
        expected: period.expected_samples(),
        rule: q.rule,
        counts: q.counts,
        policy: q.policy,
    };
    let started = std::time::Instant::now();
    let current = OverageWatch::update(slot, store, watch, first, now_slot, &coverage, &q.tenants)?;
    let mut out = Vec::with_capacity(q.tenants.len());
    for &(id, commit) in &q.tenants {
        let verdict = current
            .tallies
            .get(&id.0)
            .map_or(billing::Verdict::Recompute, |tally| {
                current.watch.decide(tally, commit, q.quota)
            });
        let decision = match verdict {
            billing::Verdict::Exact(d) => d,
            billing::Verdict::Recompute => {
                let samples = store
                    .samples(&SampleQuery {
                        tenants: Tenants::Only(vec![id]),
                        from: first,
                        to: now_slot,
                    })
                    .map_err(|e| format!("cannot read tenant {id}'s samples: {e}"))?;
                let series = Series::build(period, id, &RealmSelection::All, &samples, &coverage)
                    .map_err(|e| format!("tenant {id}'s series: {e}"))?;
                let projection = billing::project(&series, elapsed, &q.rule, q.counts);
                billing::decide(&projection, commit, q.quota, &q.policy)
            }
        };
        out.push((id.0, decision));
    }
    tracing::debug!(
        tenants = q.tenants.len(),
        samples = current.samples_read,
        ms = started.elapsed().as_millis() as u64,
        "overage assessed"
    );
    Ok(out)
}

/// Tallies of the slots `[first, settled)`.
pub(super) struct OverageWatch {
    watch: Watch,
    first: Slot,
    settled: Slot,
    /// Whether each folded slot had a coverage record when it was folded.
    covered: Vec<bool>,
    tenants: HashMap<u32, Entry>,
}

/// The tallies of `[first, now)` of every watched tenant.
pub(super) struct Current {
    pub watch: Watch,
    pub tallies: HashMap<u32, Tally>,
    /// Samples read by this update, for the logs.
    pub samples_read: usize,
}

impl OverageWatch {
    fn new(watch: Watch, first: Slot) -> OverageWatch {
        OverageWatch {
            watch,
            first,
            settled: first,
            covered: Vec::new(),
            tenants: HashMap::new(),
        }
    }

    /// Brings the tallies of `wanted` (tenant and commit) up to `now`
    /// (exclusive) and returns them. `coverage` is the store's coverage of
    /// `[first, now)`.
    pub(super) fn update(
        slot: &mut Option<OverageWatch>,
        store: &dyn Store,
        watch: Watch,
        first: Slot,
        now: Slot,
        coverage: &[SlotCoverage],
        wanted: &[(TenantId, Option<Rate>)],
    ) -> Result<Current, String> {
        let now = Slot(now.0.max(first.0));
        let mut covered = vec![false; (now.0 - first.0) as usize];
        for c in coverage {
            if (first.0..now.0).contains(&c.slot.0) {
                covered[(c.slot.0 - first.0) as usize] = true;
            }
        }
        // Taken out while updating: a failed read leaves nothing half
        // folded behind, and the next check reads the period again.
        let mut w = match slot.take() {
            Some(w)
                if w.watch == watch
                    && w.first == first
                    && w.settled <= now
                    && covered[..w.covered.len()] == w.covered[..] =>
            {
                w
            }
            Some(w) if w.watch == watch && w.first == first => {
                tracing::info!(
                    "overage: a slot already counted changed (or the clock went back); reading the period again"
                );
                OverageWatch::new(watch, first)
            }
            _ => OverageWatch::new(watch, first),
        };
        let mut samples_read = 0;

        // Tenants new or with a new commit: their folded slots again.
        let mut fresh = Vec::new();
        let mut kept = HashMap::with_capacity(wanted.len());
        for &(id, commit) in wanted {
            match w.tenants.get(&id.0) {
                Some(e) if e.commit == commit => {
                    kept.insert(id.0, *e);
                }
                _ => {
                    kept.insert(
                        id.0,
                        Entry {
                            commit,
                            limits: watch.limits(commit),
                            tally: Tally::default(),
                        },
                    );
                    fresh.push(id);
                }
            }
        }
        w.tenants = kept;
        fresh.sort_unstable();
        let fresh: Vec<u32> = fresh.iter().map(|t| t.0).collect();
        samples_read += fold_range(
            store,
            &watch,
            &mut w.tenants,
            Some(&fresh),
            (first, w.settled),
            &covered,
            first,
        )?;

        // New slots for everybody: folded for good up to `settle`, into a
        // copy after it.
        let settle = Slot((now.0 - RECHECK).max(w.settled.0));
        samples_read += fold_range(
            store,
            &watch,
            &mut w.tenants,
            None,
            (w.settled, settle),
            &covered,
            first,
        )?;
        w.covered
            .extend_from_slice(&covered[w.covered.len()..(settle.0 - first.0) as usize]);
        w.settled = settle;
        let mut tail = None;
        if settle < now {
            let mut copy = w.tenants.clone();
            samples_read += fold_range(
                store,
                &watch,
                &mut copy,
                None,
                (settle, now),
                &covered,
                first,
            )?;
            tail = Some(copy);
        }
        let tallies = tail
            .as_ref()
            .unwrap_or(&w.tenants)
            .iter()
            .map(|(id, e)| (*id, e.tally))
            .collect();
        *slot = Some(w);
        Ok(Current {
            watch,
            tallies,
            samples_read,
        })
    }
}

/// A tenant's row among a slot's rows (sorted by tenant).
fn lookup(rows: &[SlotBytes], id: u32) -> Option<&SlotBytes> {
    rows.binary_search_by_key(&id, |r| r.tenant.0)
        .ok()
        .map(|i| &rows[i])
}

fn fold_row(watch: &Watch, e: &mut Entry, row: Option<&SlotBytes>, covered: bool) {
    let (down, up) = row.map_or((0, 0), |r| (r.down, r.up));
    // A slot with a sample is seen even without a coverage record, as in
    // `billing::Series::build`.
    watch.add(&mut e.tally, &e.limits, down, up, covered || row.is_some());
}

/// Folds the slots `[from, to)` into the entries of `ids` (sorted), or of
/// every entry. Up to a day of every tenant is read an hour at a time, one
/// query per hour; longer ranges (a whole period at start-up, or a new
/// tenant's) a week and `GROUP` tenants per query, as the old check read
/// a tenant's period, so that compacted day rows are read whole.
/// Returns how many samples were read.
fn fold_range(
    store: &dyn Store,
    watch: &Watch,
    entries: &mut HashMap<u32, Entry>,
    ids: Option<&[u32]>,
    (from, to): (Slot, Slot),
    covered: &[bool],
    first: Slot,
) -> Result<usize, String> {
    if from >= to || ids.is_some_and(|i| i.is_empty()) {
        return Ok(0);
    }
    let seen = |s: Slot| covered[(s.0 - first.0) as usize];
    let long = to.0 - from.0 > LONG / 7;
    if ids.is_none() && !long {
        return read_chunks(store, &Tenants::All, (from, to), CHUNK, |s, rows| {
            let covered = seen(s);
            for (id, e) in entries.iter_mut() {
                fold_row(watch, e, lookup(rows, *id), covered);
            }
        });
    }
    let all: Vec<u32>;
    let ids = match ids {
        Some(ids) => ids,
        None => {
            let mut v: Vec<u32> = entries.keys().copied().collect();
            v.sort_unstable();
            all = v;
            &all
        }
    };
    let chunk = if long { LONG } else { CHUNK };
    let mut read = 0;
    for group in ids.chunks(GROUP) {
        let only = Tenants::Only(group.iter().map(|&t| TenantId(t)).collect());
        read += read_chunks(store, &only, (from, to), chunk, |s, rows| {
            let covered = seen(s);
            for id in group {
                if let Some(e) = entries.get_mut(id) {
                    fold_row(watch, e, lookup(rows, *id), covered);
                }
            }
        })?;
    }
    Ok(read)
}

/// Reads the samples of `tenants` in `[from, to)` `chunk` slots at a time
/// and calls `each` for every slot in order, with that slot's rows (sorted by
/// tenant). Returns how many samples were read.
fn read_chunks(
    store: &dyn Store,
    tenants: &Tenants,
    (from, to): (Slot, Slot),
    chunk: i64,
    mut each: impl FnMut(Slot, &[SlotBytes]),
) -> Result<usize, String> {
    let mut read = 0;
    let mut start = from;
    while start < to {
        // End chunks on hour (day) boundaries, as the store keeps its rows.
        let end = Slot(((start.0.div_euclid(chunk) + 1) * chunk).min(to.0));
        let samples = store
            .samples(&SampleQuery {
                tenants: tenants.clone(),
                from: start,
                to: end,
            })
            .map_err(|e| format!("cannot read the samples from slot {}: {e}", start.0))?;
        read += samples.len();
        let rows =
            slot_bytes(&samples).map_err(|e| format!("the samples from slot {}: {e}", start.0))?;
        drop(samples);
        let mut i = 0;
        for s in start.0..end.0 {
            let j = i + rows[i..].partition_point(|r| r.slot.0 == s);
            each(Slot(s), &rows[i..j]);
            i = j;
        }
        start = end;
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Band, Direction, Sample, SlotStatus, Source, UsageKey};
    use billing::{BillingCycle, MissingSamples, PercentileRule, RealmSelection, Series};
    use history::{AddBatch, Batch, SqliteOptions, SqliteStore};
    use net_types::RealmId;

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sample(slot: Slot, tenant: u32, realm: u16, direction: Direction, bytes: u64) -> Sample {
        Sample {
            slot,
            key: UsageKey {
                tenant: TenantId(tenant),
                realm: RealmId(realm),
                direction,
                band: Band::Whole,
                source: Source::Kernel,
            },
            bytes,
            packets: 1,
        }
    }

    /// The tally of `[first, now)` from the tenant's whole series, the way
    /// the check used to read it.
    fn reference(
        store: &dyn Store,
        period: &billing::Period,
        watch: &Watch,
        id: TenantId,
        commit: Option<Rate>,
        now: Slot,
    ) -> Tally {
        let first = period.first_slot();
        let samples = store
            .samples(&SampleQuery {
                tenants: Tenants::Only(vec![id]),
                from: first,
                to: now,
            })
            .unwrap();
        let coverage = store.coverage(first, now).unwrap();
        let s = Series::build(period, id, &RealmSelection::All, &samples, &coverage).unwrap();
        let limits = watch.limits(commit);
        let mut t = Tally::default();
        for i in 0..(now.0 - first.0) as usize {
            watch.add(
                &mut t,
                &limits,
                s.down()[i],
                s.up()[i],
                s.status()[i].is_some(),
            );
        }
        t
    }

    /// Slots closed one by one, late flow records, a gap filled after the
    /// fact, a changed commit and a changed rule: the kept tallies always
    /// equal those of the whole series.
    #[test]
    fn kept_tallies_equal_the_series() {
        let dir = std::env::temp_dir().join(format!("tollgate-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = Dir(dir);
        let mut store =
            SqliteStore::open(&dir.0.join("h.sqlite"), &SqliteOptions::default()).unwrap();
        let period = BillingCycle::new(1, "UTC")
            .unwrap()
            .period(2026, 12)
            .unwrap();
        let first = period.first_slot();
        let mut watch = Watch {
            expected: period.expected_samples(),
            rule: PercentileRule::default(),
            counts: billing::VolumeCounts::Both,
            policy: Default::default(),
        };
        let mut wanted: Vec<(TenantId, Option<Rate>)> = (0..6)
            .map(|t| (TenantId(t), Rate::from_bps(u64::from(t) * 20_000)))
            .collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut kept = None;
        let (mut seq, mut flow_seq) = (0, 0);
        let mut uncovered = Vec::new();
        for step in 0..100i64 {
            let slot = Slot(first.0 + step);
            let mut samples = Vec::new();
            for t in 0..6 {
                if next() % 5 == 0 {
                    continue;
                }
                for realm in 1..=2 {
                    for d in Direction::BOTH {
                        samples.push(sample(slot, t, realm, d, next() % 2_000_000));
                    }
                }
            }
            // Some slots have no coverage record (samples only, or nothing).
            let coverage: Vec<SlotCoverage> = (next() % 4 != 0)
                .then_some(SlotCoverage {
                    slot,
                    status: SlotStatus::Measured,
                })
                .into_iter()
                .collect();
            if coverage.is_empty() {
                uncovered.push(slot);
            }
            seq += 1;
            store
                .append(&Batch {
                    sequence: seq,
                    samples: &samples,
                    coverage: &coverage,
                    state: &[],
                })
                .unwrap();
            // Late flow records, within the hour.
            if step % 3 == 0 {
                let late = Slot(slot.0 - (next() % RECHECK as u64) as i64).max(first);
                let s = [sample(
                    late,
                    (next() % 6) as u32,
                    3,
                    Direction::Up,
                    5_000_000,
                )];
                flow_seq += 1;
                store
                    .add(&AddBatch {
                        writer: "flows",
                        sequence: flow_seq,
                        samples: &s,
                        coverage: &[],
                        state: &[],
                    })
                    .unwrap();
            }
            // A gap (a slot without coverage) filled long after, as the
            // accountant estimates one: the period is read again.
            if step == 60 {
                let old = uncovered[0];
                assert!(old.0 < slot.0 - RECHECK);
                seq += 1;
                store
                    .append(&Batch {
                        sequence: seq,
                        samples: &[sample(old, 1, 4, Direction::Down, 9_000_000)],
                        coverage: &[SlotCoverage {
                            slot: old,
                            status: SlotStatus::Estimated,
                        }],
                        state: &[],
                    })
                    .unwrap();
            }
            if step == 40 {
                wanted[2].1 = Rate::from_bps(1_000);
                wanted.push((TenantId(7), None));
            }
            if step == 80 {
                watch.rule.missing = MissingSamples::Skip;
            }
            if step % 4 != 1 {
                continue;
            }
            let now = Slot(slot.0 + 1);
            let coverage = store.coverage(first, now).unwrap();
            let current =
                OverageWatch::update(&mut kept, &store, watch, first, now, &coverage, &wanted)
                    .unwrap();
            assert_eq!(current.tallies.len(), wanted.len());
            for &(id, commit) in &wanted {
                let want = reference(&store, &period, &watch, id, commit, now);
                assert_eq!(
                    current.tallies[&id.0], want,
                    "tenant {} at step {step}",
                    id.0
                );
            }
        }
        // Long ranges (read a day and a group of tenants at a time): a day
        // later with a new tenant, then everything again for a new rule.
        for (now, missing) in [
            (400, MissingSamples::Skip),
            (401, MissingSamples::ZeroAgainstExpected),
        ] {
            wanted.push((TenantId(now as u32), Rate::from_bps(5)));
            watch.rule.missing = missing;
            let now = Slot(first.0 + now);
            let coverage = store.coverage(first, now).unwrap();
            let current =
                OverageWatch::update(&mut kept, &store, watch, first, now, &coverage, &wanted)
                    .unwrap();
            for &(id, commit) in &wanted {
                let want = reference(&store, &period, &watch, id, commit, now);
                assert_eq!(current.tallies[&id.0], want, "tenant {} at {now:?}", id.0);
            }
        }
    }
}
