//! Every check takes a new, empty store, asserts what the [`Store`]
//! contract promises and returns a transcript of what it read (debug
//! text), so that two stores can also be compared answer for answer:
//! the SQLite store's tests run [`CHECKS`] on it, and another store's
//! tests run them on both and compare the transcripts.

use crate::*;
use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};

/// A check: a new store in, a transcript out (panics when the store
/// breaks the contract).
pub type Check = fn(&mut dyn Store) -> Vec<String>;

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "append_read_back_and_refuse_a_sequence_twice",
        append_read_back,
    ),
    ("refusals_are_alone_and_quarantined", refusals),
    ("adds_sum_per_writer_exactly_once", adds),
    ("coverage_keeps_the_better_status", coverage),
    ("usage_by_local_day_and_month_in_odd_zones", usage_in_zones),
    ("hourly_totals_and_top_tenants", hourly_and_top),
    ("frozen_periods_are_immutable", frozen),
    ("retention_keeps_unfrozen_and_marks_inexact", retention),
    ("sums_above_2_pow_64_are_exact", above_2_pow_64),
    ("the_site_key_is_stored_like_a_tenant", site_key),
    (
        "latency_minutes_round_trip_refuse_and_expire",
        latency_minutes,
    ),
    ("attacks_are_kept_once_and_read_since", attacks),
];

/// Runs every check on stores from `new`, returning the transcripts.
pub fn run(new: &mut dyn FnMut() -> Box<dyn Store>) -> Vec<(&'static str, Vec<String>)> {
    CHECKS
        .iter()
        .map(|(name, check)| {
            let mut store = new();
            (*name, check(store.as_mut()))
        })
        .collect()
}

fn key(tenant: u32, realm: u16, direction: Direction, band: Band) -> UsageKey {
    UsageKey {
        tenant: TenantId(tenant),
        realm: RealmId(realm),
        direction,
        band,
        source: Source::Kernel,
    }
}

fn sample(slot: i64, k: UsageKey, bytes: u64) -> Sample {
    Sample {
        slot: Slot(slot),
        key: k,
        bytes,
        packets: bytes / 100 + 1,
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

fn slot_at(s: &str) -> i64 {
    Slot::containing(ts(s)).0
}

fn measured(slots: impl IntoIterator<Item = i64>) -> Vec<SlotCoverage> {
    slots
        .into_iter()
        .map(|s| SlotCoverage {
            slot: Slot(s),
            status: SlotStatus::Measured,
        })
        .collect()
}

fn append(store: &mut dyn Store, sequence: u64, samples: &[Sample], state: &[u8]) -> WriteReport {
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| (s.slot, s.key));
    let slots: Vec<i64> = {
        let mut v: Vec<i64> = sorted.iter().map(|s| s.slot.0).collect();
        v.dedup();
        v
    };
    store
        .append(&Batch {
            sequence,
            samples: &sorted,
            coverage: &measured(slots),
            state,
        })
        .expect("append")
}

fn all(store: &dyn Store) -> Vec<Sample> {
    store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(1 << 40),
        })
        .expect("samples")
}

fn usage(
    store: &dyn Store,
    zone: &str,
    bucket: Bucket,
    tenants: Tenants,
    range: (&str, &str),
) -> Vec<UsageTotal> {
    store
        .usage(&UsageQuery {
            tenants,
            from: ts(range.0),
            to: ts(range.1),
            bucket,
            zone: TimeZone::get(zone).expect("a zone"),
        })
        .expect("usage")
}

/// The sum of the samples in `[from, to)` of one tenant, realm, direction.
fn sum_of(
    samples: &[Sample],
    (tenant, realm, dir): (u32, u16, Direction),
    from: i64,
    to: i64,
) -> u128 {
    samples
        .iter()
        .filter(|s| (s.key.tenant.0, s.key.realm.0, s.key.direction) == (tenant, realm, dir))
        .filter(|s| (from..to).contains(&s.slot.0))
        .map(|s| u128::from(s.bytes))
        .sum()
}

fn append_read_back(store: &mut dyn Store) -> Vec<String> {
    let mut t = Vec::new();
    assert_eq!(store.last_state().expect("state"), None);
    let s0 = slot_at("2026-03-02T10:00Z");
    let a = key(1, 2, Direction::Down, Band::Whole);
    let b = key(2, 2, Direction::Up, Band::Bulk);
    let samples = vec![sample(s0, a, 1000), sample(s0, b, 5), sample(s0 + 1, a, 7)];
    let r = append(store, 1, &samples, b"state-1");
    assert_eq!((r.stored, r.refused.len()), (3, 0));
    let state = store.last_state().expect("state").expect("a state");
    assert_eq!((state.sequence, &state.blob[..]), (1, &b"state-1"[..]));
    let again = store.append(&Batch {
        sequence: 1,
        samples: &samples,
        coverage: &[],
        state: b"x",
    });
    assert!(
        matches!(
            again,
            Err(StoreError::AlreadyAppended {
                sequence: 1,
                last: 1
            })
        ),
        "{again:?}"
    );
    let lower = store.append(&Batch {
        sequence: 0,
        samples: &[],
        coverage: &[],
        state: b"x",
    });
    assert!(matches!(lower, Err(StoreError::AlreadyAppended { .. })));
    append(store, 2, &[sample(s0 + 2, b, 9)], b"state-2");
    assert_eq!(
        store.last_state().expect("state").expect("state").blob,
        b"state-2"
    );
    let got = all(store);
    assert_eq!(got.len(), 4);
    assert!(got.is_sorted_by_key(|s| (s.slot, s.key)));
    t.push(format!("{got:?}"));
    let only = store
        .samples(&SampleQuery {
            tenants: Tenants::Only(vec![TenantId(2)]),
            from: Slot(s0),
            to: Slot(s0 + 2),
        })
        .expect("samples");
    assert_eq!(only, vec![sample(s0, b, 5)]);
    t.push(format!(
        "{:?}",
        store.coverage(Slot(s0), Slot(s0 + 10)).expect("coverage")
    ));
    assert_eq!(store.writer_state("nobody").expect("state"), None);
    t
}

fn refusals(store: &mut dyn Store) -> Vec<String> {
    let s0 = slot_at("2026-03-02T10:00Z");
    let a = key(1, 2, Direction::Down, Band::Whole);
    let b = key(1, 2, Direction::Down, Band::Bulk);
    let big = Sample {
        bytes: MAX_SAMPLE_BYTES + 1,
        ..sample(s0, b, 0)
    };
    let samples = [
        sample(s0, a, 10),
        big,
        sample(s0, a, 20),
        sample(s0 + 1, a, 5),
    ];
    let r = store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &measured([s0]),
            state: b"",
        })
        .expect("append");
    let reasons: Vec<_> = r.refused.iter().map(|x| (x.index, x.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (1, RefusalReason::TooManyBytes),
            (2, RefusalReason::TwiceInBatch)
        ]
    );
    assert_eq!((r.stored, r.quarantined, r.dropped), (2, 2, 0));
    let r2 = append(store, 2, &[sample(s0, a, 99), sample(s0 + 3, a, 1)], b"");
    assert_eq!(r2.stored, 1);
    assert_eq!(r2.refused[0].reason, RefusalReason::AlreadyStored);
    let q = store.quarantined(10).expect("quarantine");
    assert_eq!((q.refused, q.dropped, q.held), (3, 0, 3));
    assert!(q.samples.iter().all(|s| s.writer == ACCOUNTANT_WRITER));
    let (kept, dropped) = store
        .quarantine("flows", 7, &r.refused[..1])
        .expect("quarantine");
    assert_eq!((kept, dropped), (1, 0));
    let q = store.quarantined(10).expect("quarantine");
    let ids: Vec<u64> = q.samples.iter().map(|s| s.id).collect();
    assert!(ids.is_sorted() && ids.len() == 4, "{ids:?}");
    let transcript = format!(
        "{:?}",
        q.samples
            .iter()
            .map(|s| (&s.writer, s.sequence, s.refusal))
            .collect::<Vec<_>>()
    );
    assert_eq!(store.clear_quarantine(ids[1]).expect("clear"), 2);
    let q = store.quarantined(10).expect("quarantine");
    assert_eq!((q.refused, q.held, q.samples.len()), (4, 2, 2));
    assert_eq!(q.samples[0].id, ids[2]);
    vec![transcript, format!("{:?}", all(store))]
}

fn adds(store: &mut dyn Store) -> Vec<String> {
    let s0 = slot_at("2026-03-02T10:00Z");
    let f = UsageKey {
        source: Source::Flow,
        ..key(1, 2, Direction::Down, Band::Whole)
    };
    let k = key(1, 2, Direction::Down, Band::Whole);
    append(store, 1, &[sample(s0, k, 100)], b"a");
    let add = |store: &mut dyn Store, writer: &str, sequence: u64, samples: &[Sample]| {
        store.add(&AddBatch {
            writer,
            sequence,
            samples,
            coverage: &[],
            state: writer.as_bytes(),
        })
    };
    let r = add(
        store,
        "flows",
        1,
        &[sample(s0, f, 10), sample(s0, f, 5), sample(s0, k, 1)],
    )
    .expect("add");
    assert_eq!((r.stored, r.refused.len()), (3, 0));
    let again = add(store, "flows", 1, &[sample(s0, f, 10)]);
    assert!(
        matches!(again, Err(StoreError::AlreadyAppended { .. })),
        "{again:?}"
    );
    add(store, "other", 1, &[sample(s0, f, 1)]).expect("another writer's first batch");
    let near = Sample {
        bytes: MAX_SAMPLE_BYTES - 10,
        ..sample(s0 + 1, f, 0)
    };
    let r = add(
        store,
        "flows",
        2,
        &[near, sample(s0 + 1, f, 11), sample(s0 + 1, f, 10)],
    )
    .expect("add");
    assert_eq!(r.refused.len(), 1);
    assert!(matches!(
        r.refused[0].reason,
        RefusalReason::SumTooLarge { .. }
    ));
    assert_eq!(r.refused[0].index, 1);
    let st = store
        .writer_state("flows")
        .expect("state")
        .expect("a state");
    assert_eq!((st.sequence, st.blob.as_slice()), (2, &b"flows"[..]));
    // The writers that added, each at its last sequence; the accountant's
    // appends are no writer's.
    let writers = store.writers().expect("writers");
    let named: Vec<(&str, u64)> = writers
        .iter()
        .map(|w| (w.writer.as_str(), w.sequence))
        .collect();
    assert_eq!(named, vec![("flows", 2), ("other", 1)]);
    assert_eq!(
        store.last_state().expect("state").expect("state").sequence,
        1
    );
    let got = all(store);
    let at = |slot, k| {
        got.iter()
            .find(|s| s.slot.0 == slot && s.key == k)
            .map(|s| s.bytes)
    };
    assert_eq!(at(s0, f), Some(16));
    assert_eq!(at(s0, k), Some(101));
    assert_eq!(at(s0 + 1, f), Some(MAX_SAMPLE_BYTES));
    // An append after an add refuses the slot and key the add wrote.
    let r = append(store, 2, &[sample(s0 + 1, f, 1)], b"b");
    assert_eq!(r.refused[0].reason, RefusalReason::AlreadyStored);
    vec![format!("{got:?}")]
}

fn coverage(store: &mut dyn Store) -> Vec<String> {
    let s0 = slot_at("2026-03-02T10:00Z");
    let status = |slot: i64, status| SlotCoverage {
        slot: Slot(slot),
        status,
    };
    store
        .append(&Batch {
            sequence: 1,
            samples: &[],
            coverage: &[
                status(s0, SlotStatus::Partial),
                status(s0 + 1, SlotStatus::Estimated),
            ],
            state: b"",
        })
        .expect("append");
    store
        .add(&AddBatch {
            writer: "flows",
            sequence: 1,
            samples: &[],
            coverage: &[
                status(s0, SlotStatus::Measured),
                status(s0 + 1, SlotStatus::Partial),
            ],
            state: b"",
        })
        .expect("add");
    let got = store.coverage(Slot(s0), Slot(s0 + 5)).expect("coverage");
    assert_eq!(
        got,
        vec![
            status(s0, SlotStatus::Measured),
            status(s0 + 1, SlotStatus::Estimated)
        ]
    );
    vec![format!("{got:?}")]
}

/// A month of samples of three tenants, every 7th slot, some at 23:30 and
/// 00:30 local times.
fn month(store: &mut dyn Store) -> Vec<Sample> {
    let first = slot_at("2026-03-01T00:00Z");
    let mut samples = Vec::new();
    for i in 0..(31 * 288 / 7) {
        let slot = first - 40 + i * 7;
        for t in 1..=3u32 {
            let k = key(
                t,
                (t % 2) as u16,
                if i % 3 == 0 {
                    Direction::Up
                } else {
                    Direction::Down
                },
                Band::Normal,
            );
            samples.push(sample(
                slot,
                k,
                (i as u64 * 37 + u64::from(t) * 1000) % 100_000 + 1,
            ));
        }
    }
    samples.sort_by_key(|s| (s.slot, s.key));
    for (n, chunk) in samples.chunks(500).enumerate() {
        append(store, n as u64 + 1, chunk, b"");
    }
    all(store)
}

fn usage_in_zones(store: &mut dyn Store) -> Vec<String> {
    let stored = month(store);
    let mut t = Vec::new();
    for zone in [
        "UTC",
        "Europe/Berlin",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
    ] {
        for bucket in [Bucket::Day, Bucket::Month] {
            let u = usage(
                store,
                zone,
                bucket,
                Tenants::All,
                ("2026-03-01T00:00Z", "2026-04-01T00:00Z"),
            );
            assert!(u.iter().all(|x| x.exact));
            assert!(u.is_sorted_by_key(|x| (x.tenant, x.realm, x.direction, x.bucket)));
            // Each line is the sum of its samples: its local day's slots.
            let tz = TimeZone::get(zone).expect("zone");
            for x in &u {
                let start = x.bucket.to_zoned(tz.clone()).expect("start");
                let end = match bucket {
                    Bucket::Day => start.tomorrow().expect("next day"),
                    Bucket::Month => start
                        .checked_add(jiff::Span::new().months(1))
                        .expect("next month"),
                };
                let lo =
                    Slot::starting_at_or_after(start.timestamp().max(ts("2026-03-01T00:00Z"))).0;
                let hi = Slot::starting_at_or_after(end.timestamp().min(ts("2026-04-01T00:00Z"))).0;
                let want = sum_of(&stored, (x.tenant.0, x.realm.0, x.direction), lo, hi);
                assert_eq!(x.bytes, want, "{zone} {x:?}");
            }
            t.push(format!("{zone} {bucket:?} {u:?}"));
        }
    }
    let one = usage(
        store,
        "Asia/Kathmandu",
        Bucket::Day,
        Tenants::Only(vec![TenantId(2)]),
        ("2026-03-03T00:15Z", "2026-03-09T13:45Z"),
    );
    assert!(one.iter().all(|x| x.tenant == TenantId(2)));
    t.push(format!("{one:?}"));
    t
}

fn hourly_and_top(store: &mut dyn Store) -> Vec<String> {
    let stored = month(store);
    let h0 = slot_at("2026-03-05T00:00Z") / 12;
    let hours = store
        .hourly_totals(TenantId(1), h0..h0 + 48)
        .expect("hours");
    assert_eq!(hours.kept_from, None);
    assert!(hours
        .totals
        .is_sorted_by_key(|h| (h.hour, h.realm, h.direction)));
    let total: u128 = hours.totals.iter().map(|h| h.bytes).sum();
    let want = sum_of(&stored, (1, 1, Direction::Up), h0 * 12, (h0 + 48) * 12)
        + sum_of(&stored, (1, 1, Direction::Down), h0 * 12, (h0 + 48) * 12);
    assert_eq!(total, want);
    let mut t = vec![format!("{hours:?}")];
    for (from, to) in [
        ("2026-03-01T00:00Z", "2026-04-01T00:00Z"),
        ("2026-03-03T05:35Z", "2026-03-17T22:10Z"),
    ] {
        for by in [RankBy::Total, RankBy::Down, RankBy::Up] {
            let top = store
                .top_tenants(&TopQuery {
                    from: ts(from),
                    to: ts(to),
                    by,
                    limit: 2,
                })
                .expect("top");
            assert_eq!(top.len(), 2);
            assert!(top[0].bytes(by) >= top[1].bytes(by));
            let (lo, hi) = (
                Slot::starting_at_or_after(ts(from)).0,
                Slot::starting_at_or_after(ts(to)).0,
            );
            let t0 = top[0].tenant.0;
            let realm = (t0 % 2) as u16;
            let want = match by {
                RankBy::Down => sum_of(&stored, (t0, realm, Direction::Down), lo, hi),
                RankBy::Up => sum_of(&stored, (t0, realm, Direction::Up), lo, hi),
                RankBy::Total => {
                    sum_of(&stored, (t0, realm, Direction::Down), lo, hi)
                        + sum_of(&stored, (t0, realm, Direction::Up), lo, hi)
                }
            };
            assert_eq!(top[0].bytes(by), want, "{from} {by:?}");
            t.push(format!("{top:?}"));
        }
    }
    t
}

fn frozen_period(label: &str, start: &str, end: &str, at: &str) -> FrozenPeriod {
    FrozenPeriod {
        label: label.into(),
        start: ts(start),
        end: ts(end),
        frozen_at: ts(at),
        bill: format!("{{\"label\":\"{label}\"}}"),
    }
}

fn frozen(store: &mut dyn Store) -> Vec<String> {
    let p = frozen_period(
        "2026-03",
        "2026-03-01T00:00Z",
        "2026-04-01T00:00Z",
        "2026-04-01T00:05Z",
    );
    assert_eq!(store.frozen("2026-03").expect("frozen"), None);
    store.freeze(&p).expect("freeze");
    assert!(matches!(
        store.freeze(&p),
        Err(StoreError::AlreadyFrozen(_))
    ));
    let early = frozen_period(
        "2026-04",
        "2026-04-01T00:00Z",
        "2026-05-01T00:00Z",
        "2026-04-20T00:00Z",
    );
    assert!(matches!(
        store.freeze(&early),
        Err(StoreError::PeriodNotClosed { .. })
    ));
    let got = store.frozen("2026-03").expect("frozen").expect("a bill");
    assert_eq!(got, p);
    vec![format!("{got:?}")]
}

fn retention(store: &mut dyn Store) -> Vec<String> {
    let stored = month(store);
    let now = ts("2026-05-20T00:00Z");
    let keep = Retention {
        raw: jiff::SignedDuration::from_hours(24 * 70),
        hourly: jiff::SignedDuration::from_hours(24 * 1096),
        daily: jiff::SignedDuration::from_hours(24 * 3653),
    };
    let r = store.apply_retention(now, &keep).expect("retention");
    assert!(r.raw_held_back.is_some());
    assert_eq!(r.samples_deleted, 0);
    assert_eq!(all(store).len(), stored.len());
    // Freeze March (ending at 2026-03-15 in this test) and keep raw 60 days.
    store
        .freeze(&frozen_period(
            "p",
            "2026-02-15T00:00Z",
            "2026-03-15T00:00Z",
            "2026-03-15T00:00Z",
        ))
        .expect("freeze");
    let keep = Retention {
        raw: jiff::SignedDuration::from_hours(24 * 60),
        ..keep
    };
    let r = store.apply_retention(now, &keep).expect("retention");
    let cut =
        Slot::containing(ts("2026-03-21T00:00Z")).min(Slot::containing(ts("2026-03-15T00:00Z")));
    assert_eq!(r.raw_cutoff, Some(cut));
    let gone = stored.iter().filter(|s| s.slot < cut).count() as u64;
    assert_eq!(r.samples_deleted, gone);
    let left = all(store);
    assert!(left.iter().all(|s| s.slot >= cut));
    assert_eq!(left.len() as u64, stored.len() as u64 - gone);
    // Whole days before the cut still count, from the rollups; a ragged
    // edge before it comes from an hour and is marked inexact.
    let u = usage(
        store,
        "Asia/Kathmandu",
        Bucket::Day,
        Tenants::All,
        ("2026-03-02T00:15Z", "2026-04-01T00:00Z"),
    );
    let exact = usage(
        store,
        "UTC",
        Bucket::Month,
        Tenants::All,
        ("2026-03-01T00:00Z", "2026-04-01T00:00Z"),
    );
    assert!(exact.iter().all(|x| x.exact));
    assert!(u.iter().any(|x| !x.exact));
    vec![
        format!("{r:?}"),
        format!("{u:?}"),
        format!("{exact:?}"),
        format!(
            "{:?}",
            store
                .coverage(Slot(0), Slot(1 << 40))
                .expect("coverage")
                .len()
        ),
    ]
}

fn above_2_pow_64(store: &mut dyn Store) -> Vec<String> {
    // 8 keys (4 bands × 2 sources) × 2100 slots × 2^50 bytes > 2^64, one
    // tenant, realm and direction, in one month.
    let first = slot_at("2026-03-01T00:00Z");
    let mut samples = Vec::new();
    for slot in first..first + 2100 {
        for band in [Band::Whole, Band::Interactive, Band::Normal, Band::Bulk] {
            for source in [Source::Kernel, Source::Flow] {
                samples.push(Sample {
                    slot: Slot(slot),
                    key: UsageKey {
                        source,
                        ..key(9, 1, Direction::Down, band)
                    },
                    bytes: MAX_SAMPLE_BYTES,
                    packets: 1,
                });
            }
        }
    }
    for (n, chunk) in samples.chunks(4200).enumerate() {
        append(store, n as u64 + 1, chunk, b"");
    }
    let want = 2100u128 * 8 * u128::from(MAX_SAMPLE_BYTES);
    assert!(want > 1u128 << 64);
    let u = usage(
        store,
        "UTC",
        Bucket::Month,
        Tenants::All,
        ("2026-03-01T00:00Z", "2026-04-01T00:00Z"),
    );
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].bytes, want);
    assert_eq!(u[0].bucket, date(2026, 3, 1));
    let top = store
        .top_tenants(&TopQuery {
            from: ts("2026-03-01T00:00Z"),
            to: ts("2026-04-01T00:00Z"),
            by: RankBy::Total,
            limit: 5,
        })
        .expect("top");
    assert_eq!(top[0].down_bytes, want);
    let h0 = first / 12;
    let hours = store
        .hourly_totals(TenantId(9), h0..h0 + 24)
        .expect("hours");
    assert_eq!(hours.totals[0].bytes, 12 * 8 * u128::from(MAX_SAMPLE_BYTES));
    vec![format!("{u:?}"), format!("{top:?}")]
}

/// Tenant 0 is the key of the uplink's traffic of no tenant
/// (`billing::UNCLASSIFIED`; policy tenant ids start at 1). The site's
/// series adds it to every tenant's, so a store must keep it, read it
/// back alone or with every tenant, and count it in usage like any key.
fn site_key(store: &mut dyn Store) -> Vec<String> {
    let s0 = slot_at("2026-11-02T00:00:00Z");
    let nobody = |dir| key(0, 0, dir, Band::Whole);
    let samples = [
        sample(s0, nobody(Direction::Down), 5_000),
        sample(s0, nobody(Direction::Up), 40),
        sample(s0, key(1, 1, Direction::Down, Band::Whole), 300),
        sample(s0 + 1, nobody(Direction::Down), 7),
    ];
    append(store, 1, &samples, b"s");
    let only = store
        .samples(&SampleQuery {
            tenants: Tenants::Only(vec![TenantId(0)]),
            from: Slot(s0),
            to: Slot(s0 + 2),
        })
        .expect("samples");
    assert_eq!(only.len(), 3, "tenant 0's samples: {only:?}");
    assert!(only.iter().all(|x| x.key.tenant == TenantId(0)));
    let every = all(store);
    let site_down: u128 = every
        .iter()
        .filter(|x| x.key.direction == Direction::Down)
        .map(|x| u128::from(x.bytes))
        .sum();
    assert_eq!(site_down, 5_000 + 300 + 7);
    let u = usage(
        store,
        "UTC",
        Bucket::Month,
        Tenants::Only(vec![TenantId(0)]),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
    );
    assert_eq!(
        u.iter().map(|t| t.bytes).sum::<u128>(),
        5_000 + 40 + 7,
        "{u:?}"
    );
    vec![format!("{only:?}"), format!("{u:?}")]
}

/// Latency minutes: stored and read back to the microsecond, by tenant and
/// range, a minute split by a restart kept as two rows, an absurd row
/// refused alone, and the raw retention removing old minutes.
fn latency_minutes(store: &mut dyn Store) -> Vec<String> {
    use ::latency::rtt::RttFigures;
    use ::latency::{Minutes, ProbeMinute, QueueMinute, RttMinute};
    use std::time::Duration;
    let us = |v: u64| Some(Duration::from_micros(v));
    // 2026-12-07 04:00 UTC.
    let m0 = 1_796_616_000 / 60;
    let half = |n: u64, base: u64| RttFigures {
        samples: n,
        min: us(base),
        p50: us(base + 10),
        p95: us(base + 20),
        p99: us(base + 30),
        max: us(base + 40),
    };
    let rtt = |minute: i64, tenant: u32, base: u64| RttMinute {
        minute,
        tenant,
        realm: 1,
        up: half(30, base),
        down: RttFigures::default(),
        retransmits_up: 2,
        retransmits_down: 0,
    };
    let mut absurd = rtt(m0, 9, 1_000);
    absurd.up.max = Some(Duration::from_secs(86_400));
    let probe = ProbeMinute {
        minute: m0,
        probe: "national icmp 192.0.2.1".into(),
        sent: 60,
        lost: 1,
        p50: us(10_250),
        max: us(19_999),
        jitter: us(300),
    };
    let queue = QueueMinute {
        minute: m0 + 1,
        class: "lan0 1:10".into(),
        tenant: Some(7),
        label: "national down".into(),
        max_delay: Duration::from_millis(3_000),
        drops: 12,
        overlimits: 400,
        at_ceil: Duration::from_secs(41),
    };
    let first = Minutes {
        rtt: vec![rtt(m0, 7, 10_000), rtt(m0, 8, 20_000), absurd],
        probes: vec![probe.clone()],
        queues: vec![queue.clone()],
    };
    let r = store.append_latency(&first).expect("append latency");
    assert_eq!(r.stored, 4, "{r:?}");
    assert_eq!(r.refused.len(), 1, "{r:?}");
    assert!(r.refused[0].subject.contains("tenant 9"), "{r:?}");
    // The same minute again (a restart inside it): a second row.
    let again = Minutes {
        rtt: vec![rtt(m0, 7, 11_000), rtt(m0 + 2, 7, 12_000)],
        ..Minutes::default()
    };
    assert_eq!(store.append_latency(&again).expect("append").stored, 2);
    let q = |tenant, from, to| LatencyQuery {
        tenant,
        from,
        to,
        limit: 100,
    };
    let all = store.latency(&q(None, m0, m0 + 10)).expect("read");
    assert_eq!(all.rtt.len(), 4, "{all:?}");
    assert_eq!(all.probes, vec![probe]);
    assert_eq!(all.queues, vec![queue.clone()]);
    let seven = store.latency(&q(Some(7), m0, m0 + 2)).expect("read");
    let mut p50: Vec<_> = seven.rtt.iter().map(|r| r.up.p50).collect();
    p50.sort();
    assert_eq!(p50, vec![us(10_010), us(11_010)], "{seven:?}");
    assert!(seven
        .rtt
        .iter()
        .all(|r| r.tenant == 7 && r.down.p50.is_none()));
    assert!(seven.probes.is_empty(), "probes are the site's");
    assert_eq!(seven.queues, vec![queue]);
    assert_eq!(
        store
            .latency(&q(Some(8), m0 + 1, m0 + 10))
            .expect("read")
            .rtt,
        vec![]
    );
    let limited = store
        .latency(&LatencyQuery {
            limit: 1,
            ..q(None, m0, m0 + 10)
        })
        .expect("read");
    assert_eq!(limited.rtt.len(), 1);
    // Retention: raw kept for a day, now 1 day and 30 s after m0 + 1
    // began: minute m0 goes, m0 + 1 stays.
    let now = Timestamp::from_second((m0 + 1) * 60 + 86_400 + 30).unwrap();
    let day = jiff::SignedDuration::from_hours(24);
    let kept = Retention {
        raw: day,
        hourly: day * 2,
        daily: day * 3,
    };
    let report = store.apply_retention(now, &kept).expect("retention");
    let left = store.latency(&q(None, 0, m0 + 10)).expect("read");
    assert_eq!(
        (left.rtt.len(), left.probes.len(), left.queues.len()),
        (1, 0, 1),
        "{left:?}"
    );
    vec![
        format!("{all:?}"),
        format!("{left:?}"),
        format!("deleted {}", report.latency_deleted),
    ]
}

fn attack(started_ms: i64, ended_ms: i64, target: &str, sources: &[&str]) -> AttackRow {
    AttackRow {
        started: Timestamp::from_millisecond(started_ms).unwrap(),
        ended: Timestamp::from_millisecond(ended_ms).unwrap(),
        target: target.to_string(),
        direction: "in".to_string(),
        kind: "syn_flood".to_string(),
        peak_pps: 10_000,
        peak_bps: u64::MAX >> 1,
        rungs: vec!["notify".into(), "blackhole".into()],
        sources: sources.iter().map(|s| s.to_string()).collect(),
        record: format!("{{\"target\":\"{target}\",\"quote\":\"it's\\n\"}}"),
    }
}

/// The guard's attacks: kept once per (start, target, direction), read
/// back whole since a time, the latest `limit`, oldest first.
fn attacks(store: &mut dyn Store) -> Vec<String> {
    let base = 1_780_000_000_000;
    let a = attack(
        base,
        base + 60_000,
        "203.0.113.10",
        &["198.51.100.2", "2001:db8::3"],
    );
    let b = attack(base + 1_000, base + 120_000, "203.0.113.11", &[]);
    let c = attack(base + 2_000, base + 90_000, "customers", &["198.51.100.2"]);
    assert!(store.attacks(Timestamp::UNIX_EPOCH, 10).unwrap().is_empty());
    assert!(store.record_attack(&a).unwrap());
    assert!(store.record_attack(&b).unwrap());
    assert!(store.record_attack(&c).unwrap());
    // The same attack again (a restored incident ended twice): kept once,
    // the first record left as it was.
    let mut again = a.clone();
    again.ended = Timestamp::from_millisecond(base + 99_000).unwrap();
    assert!(!store.record_attack(&again).unwrap());
    let mut out = Vec::new();
    let all = store.attacks(Timestamp::UNIX_EPOCH, 10).unwrap();
    assert_eq!(
        all,
        vec![a.clone(), c.clone(), b.clone()],
        "oldest end first"
    );
    out.push(format!("{all:?}"));
    let since = store
        .attacks(Timestamp::from_millisecond(base + 90_000).unwrap(), 10)
        .unwrap();
    assert_eq!(since, vec![c.clone(), b.clone()]);
    let last = store.attacks(Timestamp::UNIX_EPOCH, 1).unwrap();
    assert_eq!(last, vec![b.clone()]);
    out.push(format!("{last:?}"));
    // The other direction is another attack.
    let mut out_dir = a.clone();
    out_dir.direction = "out".into();
    assert!(store.record_attack(&out_dir).unwrap());
    assert_eq!(store.attacks(Timestamp::UNIX_EPOCH, 100).unwrap().len(), 4);
    // What could not be read back as it was is refused, naming the field.
    let mut bad = a.clone();
    bad.rungs = vec!["a,b".into()];
    let e = store.record_attack(&bad).unwrap_err().to_string();
    assert!(e.contains("attack.rungs"), "{e}");
    let mut bad = a;
    bad.ended = Timestamp::from_millisecond(base - 1).unwrap();
    assert!(store.record_attack(&bad).is_err());
    out
}
