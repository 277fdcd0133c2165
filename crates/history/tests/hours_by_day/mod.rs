//! `Store::hourly_totals` reads a built tenant-day from its `hours_by_day`
//! row instead of 24 `hourly` rows: the answer is the samples summed per
//! hour, whatever was built, compacted, written late or removed.

use super::{add_batch, count_rows, flow, key, open, sample, slot_at, Model, Rng};
use accounting::*;
use history::*;
use jiff::{SignedDuration, Timestamp};
use net_types::{RealmId, TenantId};
use proptest::prelude::*;
use std::collections::BTreeMap;

const TENANTS: u32 = 6;
const DAYS: i64 = 5;

/// What `hourly_totals(tenant, hours)` must answer: the model's samples
/// summed per hour, realm and direction, from the first hour retention
/// kept (`kept`).
fn expected(
    model: &Model,
    tenant: u32,
    hours: std::ops::Range<i64>,
    kept: Option<i64>,
) -> HourTotals {
    let mut sums: BTreeMap<(i64, RealmId, Direction), (u128, u128)> = BTreeMap::new();
    let from = hours.start.max(kept.unwrap_or(i64::MIN));
    for (&(slot, k), &(bytes, packets)) in model {
        let hour = slot.0.div_euclid(12);
        if k.tenant.0 == tenant && hour >= from && hour < hours.end {
            let e = sums.entry((hour, k.realm, k.direction)).or_default();
            (e.0, e.1) = (e.0 + u128::from(bytes), e.1 + u128::from(packets));
        }
    }
    HourTotals {
        totals: sums
            .into_iter()
            .map(|((hour, realm, direction), (bytes, packets))| HourTotal {
                hour,
                realm,
                direction,
                bytes,
                packets,
            })
            .collect(),
        kept_from: kept.filter(|k| *k > hours.start),
    }
}

/// Every tenant's every day, and `spans` (hours from the first day's
/// start, cutting days anywhere), against the model.
fn check(
    store: &SqliteStore,
    model: &Model,
    first_hour: i64,
    spans: &[(i64, i64)],
    kept: Option<i64>,
    at: &str,
) {
    let mut all: Vec<std::ops::Range<i64>> = (0..DAYS + 1)
        .map(|d| first_hour + d * 24..first_hour + d * 24 + 24)
        .collect();
    all.push(first_hour - 30..first_hour + DAYS * 24 + 30);
    all.extend(
        spans
            .iter()
            .map(|&(a, n)| first_hour + a..first_hour + a + n),
    );
    for tenant in 0..=TENANTS {
        for hours in &all {
            assert_eq!(
                store
                    .hourly_totals(TenantId(tenant), hours.clone())
                    .unwrap(),
                expected(model, tenant, hours.clone(), kept),
                "{at}: tenant {tenant}, hours {hours:?} from the first"
            );
        }
    }
}

/// The mark of `hours_by_day` (the first tenant-day not built).
fn mark(store: &SqliteStore) -> Option<i64> {
    store
        .connection()
        .query_row("SELECT before FROM hours_by_day_mark", [], |r| r.get(0))
        .ok()
}

/// The ids of a table's rows.
fn ids(store: &SqliteStore, table: &str) -> Vec<i64> {
    let mut st = store
        .connection()
        .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
        .unwrap();
    let rows = st.query_map([], |r| r.get(0)).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// No tenant-day at or above the mark has a row; a built tenant-day has
/// no `hourly` row (its hours are in its row only; that it has no entry
/// in `tenants_hourly` either, [`check_top`] sees).
fn check_rows(store: &SqliteStore, at: &str) {
    let built = mark(store);
    let days = ids(store, "hours_by_day");
    for &id in &days {
        assert!(
            built.is_some_and(|m| id < m),
            "{at}: a row at {id:#x}, mark {built:?}"
        );
    }
    let is_built =
        |hour: i64, tenant: i64| built.is_some_and(|m| hour.div_euclid(24) << 32 | tenant < m);
    for id in ids(store, "hourly") {
        let (hour, tenant) = (id >> 32, id & 0xffff_ffff);
        assert!(
            !is_built(hour, tenant),
            "{at}: an hourly row for hour {hour} of built tenant {tenant}"
        );
    }
}

/// Every tenant's totals over `hours` of the model (from the first hour
/// of the range to its end, cut at `minutes` past the hour at both ends),
/// as `top_tenants` ranks them: (tenant, down bytes, up bytes), the
/// tenants with traffic, sorted by tenant.
fn expected_top(
    model: &Model,
    hours: std::ops::Range<i64>,
    minutes: i64,
) -> Vec<(u32, u128, u128)> {
    let (from, to) = (hours.start * 12 + minutes / 5, hours.end * 12 + minutes / 5);
    let mut sums: BTreeMap<u32, (u128, u128)> = BTreeMap::new();
    for (&(slot, k), &(bytes, _)) in model {
        if slot.0 >= from && slot.0 < to {
            let e = sums.entry(k.tenant.0).or_default();
            match k.direction {
                Direction::Down => e.0 += u128::from(bytes),
                Direction::Up => e.1 += u128::from(bytes),
            }
        }
    }
    sums.into_iter()
        .filter(|(_, (d, u))| d + u > 0)
        .map(|(t, (d, u))| (t, d, u))
        .collect()
}

/// `top_tenants` over `spans` (whole hours, and cut at :15 and :45 at
/// both ends: hours of built and unbuilt tenant-days, and ragged edges)
/// against the model, while every sample is kept.
fn check_top(store: &SqliteStore, model: &Model, first_hour: i64, spans: &[(i64, i64)], at: &str) {
    for &(a, n) in spans {
        for minutes in [0, 15, 45] {
            let hours = first_hour + a..first_hour + a + n;
            let from = Timestamp::from_second(hours.start * 3600 + minutes * 60).unwrap();
            let to = Timestamp::from_second(hours.end * 3600 + minutes * 60).unwrap();
            let mut answered: Vec<(u32, u128, u128)> = store
                .top_tenants(&TopQuery {
                    from,
                    to,
                    by: RankBy::Total,
                    limit: 1000,
                })
                .unwrap()
                .into_iter()
                .filter(|t| t.down_bytes + t.up_bytes > 0)
                .map(|t| (t.tenant.0, t.down_bytes, t.up_bytes))
                .collect();
            answered.sort_unstable();
            assert_eq!(
                answered,
                expected_top(model, hours.clone(), minutes),
                "{at}: top tenants of hours {hours:?} from the first, at :{minutes:02}"
            );
        }
    }
}

/// Random samples of every kind over days `[0, DAYS)` from `first` (the
/// accountant's, appended once per slot and key; flow data, added),
/// written and recorded in the model.
struct History {
    model: Model,
    sequence: u64,
    added: u64,
}

impl History {
    fn write(
        &mut self,
        store: &mut SqliteStore,
        rng: &mut Rng,
        slots: std::ops::Range<i64>,
        n: u64,
    ) {
        let mut batch: Vec<Sample> = (0..n)
            .map(|_| {
                let slot = slots.start + rng.below((slots.end - slots.start) as u64) as i64;
                let band = [Band::Whole, Band::Normal, Band::Bulk][rng.below(3) as usize];
                let k = key(
                    rng.below(u64::from(TENANTS)) as u32,
                    rng.below(3) as u16,
                    Direction::BOTH[rng.below(2) as usize],
                    band,
                );
                sample(slot, k, rng.below(1 << 40))
            })
            .collect();
        if rng.below(2) == 0 {
            batch.sort_by_key(|s| (s.slot, s.key));
            batch.dedup_by_key(|s| (s.slot, s.key));
            batch.retain(|s| !self.model.contains_key(&(s.slot, s.key)));
            self.sequence += 1;
            let b = Batch {
                sequence: self.sequence,
                samples: &batch,
                coverage: &[],
                state: b"",
            };
            let r = store.append(&b).unwrap();
            assert!(r.refused.is_empty(), "{:?}", r.refused);
        } else {
            for s in &mut batch {
                s.key = flow(s.key);
            }
            self.added += 1;
            let r = store
                .add(&add_batch("flow", self.added, &batch, &[]))
                .unwrap();
            assert!(r.refused.is_empty(), "{:?}", r.refused);
        }
        for s in &batch {
            let e = self.model.entry((s.slot, s.key)).or_default();
            (e.0, e.1) = (e.0 + s.bytes, e.1 + s.packets);
        }
    }
}

/// Compacts with random small limits until done, checking every read
/// after every call; returns the tenant-days built.
fn compact_in_steps(
    store: &mut SqliteStore,
    rng: &mut Rng,
    now: Timestamp,
    look: &dyn Fn(&SqliteStore, &str),
) -> u64 {
    let mut built = 0;
    for call in 0.. {
        let limit = rng.below(5) as usize + 1;
        let r = store.compact(now, limit).unwrap();
        assert!((r.tenant_days + r.hour_days) as usize <= limit, "{r:?}");
        built += r.hour_days;
        look(store, &format!("after compaction call {call} ({r:?})"));
        if r.done {
            break;
        }
    }
    built
}

fn day_start(first: i64, day: i64) -> Timestamp {
    Timestamp::from_second((first + day * 288) * 300).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Random histories through compaction in small steps (the mark
    /// anywhere in a day), late appends and adds into built days (tenants
    /// idle there included), and retention cutting a day: at every point,
    /// every tenant's hourly totals over random spans are its samples
    /// summed per hour.
    #[test]
    fn hourly_totals_are_the_samples_summed_through_compaction_late_writes_and_retention(
        seed in any::<u64>(),
        spans in proptest::collection::vec((-5i64..DAYS * 24 + 5, 0i64..80), 6),
    ) {
        let first = slot_at("2026-11-02T00:00Z");
        let first_hour = first / 12;
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(&dir.path().join("h.sqlite"));
        let mut rng = Rng(seed | 1);
        let mut h = History { model: Model::new(), sequence: 0, added: 0 };
        for _ in 0..6 {
            let n = rng.below(80) + 1;
            h.write(&mut store, &mut rng, first..first + DAYS * 288, n);
        }
        check(&store, &h.model, first_hour, &spans, None, "before compaction");
        // Days 0 to 2 are old enough at the start of day 4.
        let model = h.model.clone();
        let look = |s: &SqliteStore, at: &str| {
            check(s, &model, first_hour, &spans, None, at);
            check_rows(s, at);
            check_top(s, &model, first_hour, &spans, at);
        };
        let built = compact_in_steps(&mut store, &mut rng, day_start(first, 4), &look);
        prop_assert!(built > 0);
        // The mark is in day 2, past every tenant with traffic there.
        let day = first_hour / 24;
        prop_assert!(mark(&store).is_some_and(|m| m > (day + 2) << 32 && m <= (day + 3) << 32));
        // Late data into built days, and a tenant never seen before.
        for _ in 0..3 {
            let n = rng.below(20) + 1;
            h.write(&mut store, &mut rng, first..first + 3 * 288, n);
        }
        let newcomer = sample(first + 300, flow(key(TENANTS, 1, Direction::Up, Band::Whole)), 77);
        h.added += 1;
        store.add(&add_batch("flow", h.added, &[newcomer], &[])).unwrap();
        h.model.insert((newcomer.slot, newcomer.key), (77, 0));
        check(&store, &h.model, first_hour, &spans, None, "after late writes");
        check_rows(&store, "after late writes");
        check_top(&store, &h.model, first_hour, &spans, "after late writes");
        // Every day built.
        let model = h.model.clone();
        let look = |s: &SqliteStore, at: &str| {
            check(s, &model, first_hour, &spans, None, at);
            check_rows(s, at);
            check_top(s, &model, first_hour, &spans, at);
        };
        compact_in_steps(&mut store, &mut rng, day_start(first, 8), &look);
        prop_assert_eq!(count_rows(&store, "samples"), 0);
        // The hourly rollup kept from 07:00 on day 1: day 0's rows go.
        let now = day_start(first, 30);
        let cut = first_hour + 24 + 7;
        let hourly = SignedDuration::from_secs(now.as_second() - cut * 3600);
        let retention = Retention { raw: SignedDuration::from_hours(1), hourly, daily: SignedDuration::from_hours(24 * 3653) };
        store.apply_retention(now, &retention).unwrap();
        check(&store, &h.model, first_hour, &spans, Some(cut), "after retention");
        check_rows(&store, "after retention");
        prop_assert!(ids(&store, "hours_by_day").iter().all(|id| id >> 32 > first_hour / 24));
        // Late data after retention, before and after the cut.
        for _ in 0..2 {
            let n = rng.below(20) + 1;
            h.write(&mut store, &mut rng, first + 200..first + 4 * 288, n);
        }
        check(&store, &h.model, first_hour, &spans, Some(cut), "after writes past retention");
        check_rows(&store, "after writes past retention");
    }
}

/// A store written before `hours_by_day` (schema version 5, its samples
/// already compacted) gets the table empty: reads are right at once from
/// the `hourly` rows, and compaction builds the rows of its closed days in
/// bounded steps, oldest first, every read unchanged after each.
#[test]
fn a_store_from_before_hours_by_day_catches_up_in_bounded_steps() {
    let first = slot_at("2026-11-02T00:00Z");
    let first_hour = first / 12;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite");
    let mut rng = Rng(0x5eed);
    let mut h = History {
        model: Model::new(),
        sequence: 0,
        added: 0,
    };
    {
        let mut store = open(&path);
        for _ in 0..8 {
            h.write(&mut store, &mut rng, first..first + DAYS * 288, 60);
        }
        // Days 0 to 3 compacted (as a version 5 build compacted them),
        // their `hourly` rows kept (this build deletes those it builds
        // into `hours_by_day`).
        store
            .connection()
            .execute_batch("CREATE TABLE hourly_kept AS SELECT id, totals FROM hourly")
            .unwrap();
        let r = store.compact(day_start(first, 5), 1_000_000).unwrap();
        assert!(r.done && r.tenant_days > 0, "{r:?}");
        assert!(count_rows(&store, "hours_by_day") > 0);
        // What versions 6 and 7 added, gone: the database of a version 5
        // build.
        store
            .connection()
            .execute_batch(
                "INSERT INTO hourly SELECT id, totals FROM hourly_kept
                     WHERE id NOT IN (SELECT id FROM hourly);
                 DROP TABLE hourly_kept;
                 DROP TABLE hours_by_day; DROP TABLE hours_by_day_mark;
                 DROP TABLE latency_rtt; DROP TABLE latency_probes; DROP TABLE latency_queues;
                 DROP TABLE attacks;
                 DELETE FROM schema_migrations WHERE version >= 6;",
            )
            .unwrap();
        assert_eq!(store.schema_version().unwrap(), 5);
    }
    let mut store = open(&path);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        (count_rows(&store, "hours_by_day"), mark(&store)),
        (0, None)
    );
    let spans = [(3, 30), (20, 50), (47, 2), (70, 40)];
    check(
        &store,
        &h.model,
        first_hour,
        &spans,
        None,
        "before catching up",
    );
    // The closed tenant-days with traffic, each built once.
    let tenant_days: std::collections::BTreeSet<(i64, u32)> = h
        .model
        .keys()
        .map(|(slot, k)| (slot.0.div_euclid(288), k.tenant.0))
        .filter(|(day, _)| *day < first / 288 + 4)
        .collect();
    let mut built = 0;
    for call in 0.. {
        let r = store.compact(day_start(first, 5), 3).unwrap();
        assert_eq!(r.tenant_days, 0);
        assert!(r.hour_days <= 3, "{r:?}");
        built += r.hour_days;
        let at = format!("catching up, call {call}");
        check(&store, &h.model, first_hour, &spans, None, &at);
        check_rows(&store, &at);
        if r.done {
            break;
        }
        assert!(r.hour_days > 0, "{at}: not done, but nothing built");
    }
    assert_eq!(built, tenant_days.len() as u64);
    assert_eq!(count_rows(&store, "hours_by_day"), tenant_days.len() as i64);
    let again = store.compact(day_start(first, 5), 100).unwrap();
    assert_eq!((again.hour_days, again.done), (0, true));
}

/// A built day is read from its row: with its `hourly` rows emptied
/// behind the store's back, the built days still answer in full and the
/// days not built answer nothing.
#[test]
fn built_days_are_read_from_their_row_not_from_24_hourly_rows() {
    let first = slot_at("2026-11-02T00:00Z");
    let first_hour = first / 12;
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let samples: Vec<Sample> = (0..DAYS * 288)
        .step_by(5)
        .map(|s| {
            sample(
                first + s,
                key(2, 1, Direction::Down, Band::Whole),
                1_000 + s as u64,
            )
        })
        .collect();
    let batch = Batch {
        sequence: 1,
        samples: &samples,
        coverage: &[],
        state: b"",
    };
    store.append(&batch).unwrap();
    // Days 0 and 1 built.
    let r = store.compact(day_start(first, 3), 100).unwrap();
    assert_eq!((r.hour_days, r.done), (2, true));
    let all = store
        .hourly_totals(TenantId(2), first_hour..first_hour + DAYS * 24)
        .unwrap();
    store
        .connection()
        .execute("UPDATE hourly SET totals = X'01'", [])
        .unwrap();
    let now = store
        .hourly_totals(TenantId(2), first_hour..first_hour + DAYS * 24)
        .unwrap();
    let built: Vec<HourTotal> = all
        .totals
        .iter()
        .filter(|t| t.hour < first_hour + 48)
        .copied()
        .collect();
    assert_eq!(built.len(), 48);
    assert_eq!(now.totals, built);
}
