//! Issue 12, items 2 and 3: one bad sample never blocks the others.

use super::{add_batch, all_samples, flow, key, open, sample};
use accounting::*;
use history::*;

/// The case: two 2^62-byte flow records for one tenant, slot and
/// key in one batch. The rest of the batch commits, and so does the next
/// batch.
#[test]
fn one_bad_record_never_blocks_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let good = flow(key(1, 1, Direction::Down, Band::Whole));
    let bad = flow(key(2, 1, Direction::Up, Band::Whole));
    let batch = [
        sample(10, good, 1_000),
        sample(11, bad, 1 << 62),
        sample(11, bad, 1 << 62),
        sample(12, good, 2_000),
    ];
    let report = store.add(&add_batch("flows", 1, &batch, &[])).unwrap();
    assert_eq!(report.stored, 2);
    let refused: Vec<_> = report.refused.iter().map(|r| (r.index, r.reason)).collect();
    assert_eq!(
        refused,
        vec![
            (1, RefusalReason::TooManyBytes),
            (2, RefusalReason::TooManyBytes)
        ]
    );
    assert_eq!((report.quarantined, report.dropped), (2, 0));
    // The writer's next batch commits; a sample that is plausible alone but
    // would take what is stored past the bound is refused alone too.
    let next = [sample(13, good, 3_000), sample(10, good, MAX_SAMPLE_BYTES)];
    let report = store.add(&add_batch("flows", 2, &next, &[])).unwrap();
    assert_eq!(report.stored, 1);
    assert!(matches!(
        report.refused[0].reason,
        RefusalReason::SumTooLarge { bytes, .. } if bytes == u128::from(MAX_SAMPLE_BYTES) + 1_000
    ));
    assert_eq!(store.writer_state("flows").unwrap().unwrap().sequence, 2);
    assert_eq!(
        all_samples(&store),
        vec![batch[0], batch[3], next[0]],
        "the good samples of both batches are stored"
    );
    super::assert_rollups_match(&store);
    let q = store.quarantined(10).unwrap();
    assert_eq!((q.refused, q.held, q.dropped), (3, 3, 0));
    let kept: Vec<_> = q
        .samples
        .iter()
        .map(|x| (x.sequence, x.refusal.sample))
        .collect();
    assert_eq!(kept, vec![(1, batch[1]), (1, batch[2]), (2, next[1])]);
}

/// The figure: 55,340,232,221,128,654,848 bytes (3 × 2^64) in one
/// month, from samples that are each plausible (2^50 bytes: 8 keys of one
/// tenant, realm and direction over 6,144 slots). Every total carries the
/// true value; none stops at 2^64 − 1.
#[test]
fn sums_past_2_64_carry_the_true_value() {
    const TRUE_TOTAL: u128 = 55_340_232_221_128_654_848;
    assert_eq!(TRUE_TOTAL, 3 << 64);
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let first = super::slot_at("2026-05-02T00:00Z");
    let keys: Vec<UsageKey> = [Band::Whole, Band::Interactive, Band::Normal, Band::Bulk]
        .into_iter()
        .flat_map(|band| {
            let k = key(4, 1, Direction::Down, band);
            [k, flow(k)]
        })
        .collect();
    for (sequence, hour) in (1..).zip((first..first + 6_144).step_by(12)) {
        let mut samples = Vec::new();
        for slot in hour..hour + 12 {
            for &k in &keys {
                samples.push(Sample {
                    slot: Slot(slot),
                    key: k,
                    bytes: 1 << 50,
                    packets: 1,
                });
            }
        }
        samples.sort_by_key(|s| (s.slot, s.key));
        store
            .append(&Batch {
                sequence,
                samples: &samples,
                coverage: &[],
                state: b"",
            })
            .unwrap();
    }
    let usage = store
        .usage(&UsageQuery {
            tenants: Tenants::All,
            from: super::ts("2026-05-01T00:00Z"),
            to: super::ts("2026-06-01T00:00Z"),
            bucket: Bucket::Month,
            zone: jiff::tz::TimeZone::UTC,
        })
        .unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].bytes, TRUE_TOTAL, "usage by month");
    let top = store
        .top_tenants(&TopQuery {
            from: super::ts("2026-05-01T00:00Z"),
            to: super::ts("2026-06-01T00:00Z"),
            by: RankBy::Total,
            limit: 10,
        })
        .unwrap();
    assert_eq!(top[0].down_bytes, TRUE_TOTAL, "top tenants");
    for (table, bytes) in store.rollup_bytes().unwrap() {
        assert_eq!(bytes, TRUE_TOTAL, "{table}");
    }
}

/// The quarantine is bounded: past its cap, refused samples are counted as
/// dropped, the writes still commit, and clearing makes room again.
#[test]
fn the_quarantine_is_bounded_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let k = flow(key(9, 1, Direction::Down, Band::Whole));
    let cap = QUARANTINE_CAP as usize;
    let bad: Vec<Sample> = (0..cap as i64 + 5)
        .map(|i| sample(1_000 + i, k, MAX_SAMPLE_BYTES + 1))
        .chain([sample(500, k, 77)])
        .collect();
    let report = store.add(&add_batch("flows", 1, &bad, &[])).unwrap();
    assert_eq!(report.stored, 1);
    assert_eq!(
        (report.refused.len(), report.quarantined, report.dropped),
        (cap + 5, cap, 5)
    );
    assert_eq!(all_samples(&store), vec![bad[cap + 5]]);
    // A writer's own refusals go in through the same cap.
    let own = [Refusal {
        index: 3,
        sample: sample(42, k, 5),
        reason: RefusalReason::TooManyPackets,
    }];
    assert_eq!(store.quarantine("flows", 2, &own).unwrap(), (0, 1));
    let q = store.quarantined(2).unwrap();
    assert_eq!(
        (q.refused, q.dropped, q.held),
        (cap as u64 + 6, 6, cap as u64)
    );
    assert_eq!(q.samples.len(), 2);
    assert_eq!(q.samples[0].refusal.reason, RefusalReason::TooManyBytes);
    assert!(
        q.samples[0].to_string().contains("not plausible"),
        "{}",
        q.samples[0]
    );
    assert_eq!(store.clear_quarantine(q.samples[1].id).unwrap(), 2);
    assert_eq!(store.quarantine("flows", 2, &own).unwrap(), (1, 0));
    let q = store.quarantined(usize::MAX).unwrap();
    assert_eq!((q.held, q.dropped), (cap as u64 - 1, 6));
    let last = q.samples.last().unwrap();
    assert_eq!((last.writer.as_str(), last.sequence), ("flows", 2));
    assert_eq!(last.refusal, own[0]);
    assert!(q.samples.windows(2).all(|w| w[0].id < w[1].id));
}
