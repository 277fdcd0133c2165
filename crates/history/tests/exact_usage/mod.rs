//! Issue 12, item 1: `Store::usage` is exact to the 5-minute slot for any
//! range and any zone, and agrees with billing's volume to the byte.

use super::{key, open, sample, slot_at, ts};
use accounting::*;
use history::*;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use net_types::TenantId;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The zones of the issue: UTC, a DST month in Berlin, and two zones whose
/// offsets are not whole hours (Kathmandu +05:45; Lord Howe +10:30, +11:00
/// in summer, a half-hour DST change on 5 April 2026).
const ZONES: [&str; 4] = [
    "UTC",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
];

type Key = (u32, u16, Direction, Date);

/// What `usage` must answer, added up from the samples themselves: every
/// sample whose slot starts in `[from, to)`, in the local day (or month) of
/// its slot's start.
fn expected(
    samples: &[Sample],
    from: Timestamp,
    to: Timestamp,
    bucket: Bucket,
    zone: &TimeZone,
) -> BTreeMap<Key, (u128, u128)> {
    let (first, end) = (
        Slot::starting_at_or_after(from),
        Slot::starting_at_or_after(to),
    );
    let mut out: BTreeMap<Key, (u128, u128)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.slot >= first && s.slot < end) {
        let date = s.slot.start().to_zoned(zone.clone()).date();
        let date = match bucket {
            Bucket::Day => date,
            Bucket::Month => date.first_of_month(),
        };
        let e = out
            .entry((s.key.tenant.0, s.key.realm.0, s.key.direction, date))
            .or_default();
        e.0 += u128::from(s.bytes);
        e.1 += u128::from(s.packets);
    }
    out
}

fn answered(store: &SqliteStore, q: &UsageQuery) -> BTreeMap<Key, (u128, u128)> {
    let mut out = BTreeMap::new();
    for u in store.usage(q).unwrap() {
        let old = out.insert(
            (u.tenant.0, u.realm.0, u.direction, u.bucket),
            (u.bytes, u.packets),
        );
        assert!(old.is_none(), "{u:?} is listed twice");
    }
    out
}

struct Fixture {
    store: SqliteStore,
    samples: Vec<Sample>,
    first: i64,
    end: i64,
    _dir: tempfile::TempDir,
}

// SQLite connections are Send but not Sync; the fixture is only read.
struct Shared(std::sync::Mutex<Fixture>);

/// Three weeks around Berlin's and Lord Howe's DST changes (29 March and 5
/// April 2026) of two tenants, in hourly batches, some slots and keys
/// missing, the first week compacted into day rows.
fn fixture() -> &'static Shared {
    static F: OnceLock<Shared> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(&dir.path().join("exact.sqlite"));
        let first = slot_at("2026-03-20T00:00Z");
        let end = slot_at("2026-04-10T00:00Z");
        let mut samples = Vec::new();
        let mut h: u64 = 0x2545_f491_4f6c_dd1d;
        for slot in first..end {
            for tenant in [3u32, 8] {
                for realm in [1u16, 2] {
                    for direction in Direction::BOTH {
                        h ^= h << 13;
                        h ^= h >> 7;
                        h ^= h << 17;
                        if h.is_multiple_of(7) {
                            continue;
                        }
                        let k = key(tenant, realm, direction, Band::Whole);
                        samples.push(sample(slot, k, 1 + h % 50_000_000));
                    }
                }
            }
        }
        let hours = samples.chunk_by(|a, b| a.slot.0 / 12 == b.slot.0 / 12);
        for (sequence, hour) in (1..).zip(hours) {
            let slots: Vec<i64> = (hour[0].slot.0..=hour[hour.len() - 1].slot.0).collect();
            store
                .append(&Batch {
                    sequence,
                    samples: hour,
                    coverage: &super::measured(slots),
                    state: b"",
                })
                .unwrap();
        }
        loop {
            if store.compact(ts("2026-03-28T00:00Z"), 1_000).unwrap().done {
                break;
            }
        }
        Shared(std::sync::Mutex::new(Fixture {
            store,
            samples,
            first,
            end,
            _dir: dir,
        }))
    })
}

fn check(from_slot: i64, to_slot: i64, zone: &str, bucket: Bucket, only: Option<u32>) {
    let f = fixture().0.lock().unwrap_or_else(|e| e.into_inner());
    let zone = TimeZone::get(zone).unwrap();
    let t = |slot: i64| Timestamp::from_second(slot * 300).unwrap();
    let tenants = match only {
        Some(t) => Tenants::Only(vec![TenantId(t)]),
        None => Tenants::All,
    };
    let q = UsageQuery {
        tenants,
        from: t(from_slot),
        to: t(to_slot),
        bucket,
        zone: zone.clone(),
    };
    let mine: Vec<Sample> = f
        .samples
        .iter()
        .filter(|s| only.is_none_or(|t| s.key.tenant.0 == t))
        .copied()
        .collect();
    let want = expected(&mine, q.from, q.to, bucket, &zone);
    let got = answered(&f.store, &q);
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .map(|(k, v)| (k, v, got.get(k)))
        .chain(
            got.iter()
                .filter(|(k, _)| !want.contains_key(k))
                .map(|(k, v)| (k, v, None)),
        )
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "usage of [{}, {}) by {bucket:?} in {zone:?}: (key, expected, answered) {wrong:?}",
        q.from,
        q.to
    );
    // Ranking the range adds up the same samples.
    let mut totals: BTreeMap<u32, (u128, u128)> = BTreeMap::new();
    for (&(tenant, _, direction, _), &(bytes, _)) in &want {
        let t = totals.entry(tenant).or_default();
        match direction {
            Direction::Down => t.0 += bytes,
            Direction::Up => t.1 += bytes,
        }
    }
    let top = f
        .store
        .top_tenants(&TopQuery {
            from: q.from,
            to: q.to,
            by: RankBy::Total,
            limit: 10,
        })
        .unwrap();
    if only.is_none() {
        let got: BTreeMap<u32, (u128, u128)> = top
            .iter()
            .map(|t| (t.tenant.0, (t.down_bytes, t.up_bytes)))
            .collect();
        assert_eq!(got, totals, "top tenants of [{}, {})", q.from, q.to);
        assert!(top.iter().all(|t| t.exact));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn usage_equals_the_sum_of_samples_for_any_range_and_zone(
        a in 0i64..6300,
        len in 0i64..6300,
        zone in 0usize..4,
        month in any::<bool>(),
        only in proptest::option::of(prop_oneof![Just(3u32), Just(8)]),
    ) {
        let f = fixture().0.lock().unwrap_or_else(|e| e.into_inner());
        let (first, end) = (f.first, f.end);
        drop(f);
        let from = first - 100 + a;
        let to = (from + len).min(end + 100);
        let bucket = if month { Bucket::Month } else { Bucket::Day };
        check(from, to, ZONES[zone], bucket, only);
    }
}

#[test]
fn usage_of_whole_local_days_and_months_in_every_zone() {
    let f = fixture().0.lock().unwrap_or_else(|e| e.into_inner());
    let (first, end) = (f.first, f.end);
    drop(f);
    for zone in ZONES {
        for bucket in [Bucket::Day, Bucket::Month] {
            check(first, end, zone, bucket, None);
            check(first, end, zone, bucket, Some(8));
        }
    }
}

/// The figures: a tenant sending exactly 37,500,000 B per slot in
/// every zone's October (and a few days either side). `usage` over the
/// period is the period's slots × 37.5 MB, day by day, no hour more, and
/// billing's volume line for the same period says the same, to the byte.
#[test]
fn usage_of_a_closed_period_is_exact_and_equals_the_bills_volume() {
    const PER_SLOT: u64 = 37_500_000;
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("october.sqlite"));
    let k = key(11, 2, Direction::Down, Band::Whole);
    let first = slot_at("2026-09-28T00:00Z");
    let end = slot_at("2026-11-04T00:00Z");
    for (sequence, day) in (1..).zip((first..end).step_by(288)) {
        let samples: Vec<Sample> = (day..day + 288)
            .map(|s| Sample {
                slot: Slot(s),
                key: k,
                bytes: PER_SLOT,
                packets: 25_000,
            })
            .collect();
        store
            .append(&Batch {
                sequence,
                samples: &samples,
                coverage: &super::measured(day..day + 288),
                state: b"",
            })
            .unwrap();
    }
    for zone in ZONES {
        let cycle = billing::BillingCycle::new(1, zone).unwrap();
        let period = cycle.period(2026, 10).unwrap();
        let tz = TimeZone::get(zone).unwrap();
        let days = store
            .usage(&UsageQuery {
                tenants: Tenants::Only(vec![TenantId(11)]),
                from: period.start,
                to: period.end,
                bucket: Bucket::Day,
                zone: tz.clone(),
            })
            .unwrap();
        let dates: Vec<Date> = days.iter().map(|u| u.bucket).collect();
        let expected_dates: Vec<Date> = (1..=31).map(|d| jiff::civil::date(2026, 10, d)).collect();
        assert_eq!(dates, expected_dates, "{zone}: local days of October");
        for u in &days {
            let start = u.bucket.to_zoned(tz.clone()).unwrap();
            let next = start.tomorrow().unwrap();
            let slots =
                Slot::containing(next.timestamp()).0 - Slot::containing(start.timestamp()).0;
            assert_eq!(
                u.bytes,
                u128::from(PER_SLOT) * slots as u128,
                "{zone}: {} has {slots} slots",
                u.bucket
            );
        }
        let usage: u128 = days.iter().map(|u| u.bytes).sum();
        let want = u128::from(PER_SLOT) * period.expected_samples() as u128;
        assert_eq!(usage, want, "{zone}: usage of October");
        let samples = store
            .samples(&SampleQuery {
                tenants: Tenants::Only(vec![TenantId(11)]),
                from: period.first_slot(),
                to: period.end_slot(),
            })
            .unwrap();
        let coverage = store
            .coverage(period.first_slot(), period.end_slot())
            .unwrap();
        let rules = [billing::ChargeRule {
            name: "total".into(),
            realms: billing::RealmSelection::All,
            percentile: None,
            commit: None,
            volume: Default::default(),
        }];
        let bill =
            billing::bill_tenant(&period, TenantId(11), &rules, &samples, &coverage).unwrap();
        assert_eq!(
            bill.lines[0].volume.used.bytes(),
            usage,
            "{zone}: bill and usage disagree"
        );
        let months = store
            .usage(&UsageQuery {
                tenants: Tenants::All,
                from: period.start,
                to: period.end,
                bucket: Bucket::Month,
                zone: tz,
            })
            .unwrap();
        assert_eq!(months.len(), 1, "{zone}: nothing of November");
        assert_eq!(months[0].bytes, want, "{zone}: October by month");
    }
}

/// Once retention has removed the 5-minute samples, a Kathmandu day's edge
/// hour can only be read whole from the hourly rollup: the days it touches
/// say so (`exact: false`), nothing is lost or counted twice, and the days
/// whose samples are kept stay exact.
#[test]
fn usage_after_retention_says_which_days_it_cannot_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("kept.sqlite"));
    let k = key(5, 1, Direction::Up, Band::Whole);
    let first = slot_at("2026-01-27T00:00Z");
    let end = slot_at("2026-02-05T00:00Z");
    let samples: Vec<Sample> = (first..end)
        .map(|s| sample(s, k, 1_000 + s as u64 % 7))
        .collect();
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &super::measured(first..end),
            state: b"",
        })
        .unwrap();
    let zone = TimeZone::get("Asia/Kathmandu").unwrap();
    let january = billing::BillingCycle::new(1, "Asia/Kathmandu")
        .unwrap()
        .period(2026, 1)
        .unwrap();
    store
        .freeze(&FrozenPeriod {
            label: january.label.clone(),
            start: january.start,
            end: january.end,
            frozen_at: ts("2026-02-02T00:00Z"),
            bill: "{}".into(),
        })
        .unwrap();
    let report = store
        .apply_retention(ts("2026-07-01T00:00Z"), &Retention::default())
        .unwrap();
    // Raw samples go up to the frozen period's end, 31 January 18:15Z.
    assert_eq!(report.raw_cutoff, Some(january.end_slot()));
    let q = UsageQuery {
        tenants: Tenants::All,
        from: ts("2026-01-28T00:00Z"),
        to: ts("2026-02-04T00:00Z"),
        bucket: Bucket::Day,
        zone: zone.clone(),
    };
    let got = store.usage(&q).unwrap();
    let want = expected(&samples, q.from, q.to, Bucket::Day, &zone);
    let cut = january.end_slot();
    for u in &got {
        let day_start =
            Slot::starting_at_or_after(u.bucket.to_zoned(zone.clone()).unwrap().timestamp());
        let w = want[&(5, 1, Direction::Up, u.bucket)];
        if day_start.0 >= cut.0 + 12 {
            assert!(u.exact, "{} is after the cut", u.bucket);
            assert_eq!((u.bytes, u.packets), (w.0, w.1), "{}", u.bucket);
        } else {
            assert!(!u.exact, "{} needs removed samples", u.bucket);
        }
    }
    assert!(got.iter().any(|u| !u.exact));
    // The range starts and ends on whole hours: every byte is in some day.
    let total: u128 = got.iter().map(|u| u.bytes).sum();
    assert_eq!(total, want.values().map(|v| v.0).sum::<u128>());
    // The first of February lent its first 45 minutes to 31 January: both
    // are marked.
    let feb1 = got
        .iter()
        .find(|u| u.bucket == jiff::civil::date(2026, 2, 1))
        .unwrap();
    assert!(!feb1.exact);
    // A store reopened keeps its marks.
    drop(store);
    let store = open(&dir.path().join("kept.sqlite"));
    assert_eq!(store.usage(&q).unwrap(), got);
}

/// Ranking reads the 5-minute samples of a ragged edge hour only for the
/// tenants that can still make the list; the list is the same as ranking
/// every tenant's samples.
#[test]
fn top_tenants_of_a_kathmandu_month_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("top.sqlite"));
    let first = slot_at("2026-10-30T00:00Z");
    let end = slot_at("2026-11-02T00:00Z");
    let mut samples = Vec::new();
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for slot in first..end {
        for tenant in 0..40u32 {
            for direction in Direction::BOTH {
                h ^= h << 13;
                h ^= h >> 7;
                h ^= h << 17;
                // Similar tenants, so that the edge hours decide the order.
                let bytes = 1_000_000 + h % 20_000 + u64::from(tenant % 7) * 1_000;
                samples.push(sample(slot, key(tenant, 1, direction, Band::Whole), bytes));
            }
        }
    }
    samples.sort_by_key(|s| (s.slot, s.key));
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &[],
            state: b"",
        })
        .unwrap();
    let zone = TimeZone::get("Asia/Kathmandu").unwrap();
    let period = billing::BillingCycle::new(1, "Asia/Kathmandu")
        .unwrap()
        .period(2026, 10)
        .unwrap();
    for (from, to) in [
        (period.start, period.end),
        (ts("2026-10-30T18:15Z"), ts("2026-10-31T18:20Z")),
        (ts("2026-10-31T05:05Z"), ts("2026-10-31T05:50Z")),
    ] {
        let want = expected(&samples, from, to, Bucket::Month, &zone);
        for by in [RankBy::Total, RankBy::Down, RankBy::Up] {
            let mut totals: BTreeMap<u32, u128> = BTreeMap::new();
            for (&(tenant, _, direction, _), &(bytes, _)) in &want {
                let counts = match by {
                    RankBy::Total => true,
                    RankBy::Down => direction == Direction::Down,
                    RankBy::Up => direction == Direction::Up,
                };
                if counts {
                    *totals.entry(tenant).or_default() += bytes;
                }
            }
            let mut ranked: Vec<(u32, u128)> = totals.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for limit in [0, 1, 3, 10, 39, 40, 100] {
                let top = store
                    .top_tenants(&TopQuery {
                        from,
                        to,
                        by,
                        limit,
                    })
                    .unwrap();
                let got: Vec<(u32, u128)> = top.iter().map(|t| (t.tenant.0, t.bytes(by))).collect();
                let n = limit.min(ranked.len());
                assert_eq!(got, ranked[..n], "[{from}, {to}) by {by:?}, top {limit}");
                assert!(top.iter().all(|t| t.exact));
            }
        }
    }
}
