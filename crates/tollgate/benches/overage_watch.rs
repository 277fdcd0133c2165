//! The daemon's overage check (`src/daemon/overage_watch.rs`) against a
//! real SQLite history: what one check costs when it reads the slots
//! closed since the last one, for every tenant at once.
//!
//! `cargo bench -p tollgate --bench overage_watch`
//!
//! - `hour_rows_startup` / `hour_rows_next_check`: a day of 5-minute
//!   samples still in hour rows, as in a running daemon (its store compacts
//!   only finished days), of `OVERAGE_BENCH_TENANTS` tenants (default
//!   1,000; the figure in BENCHMARKS.md is 10,000) × 4 realms × 2
//!   directions: the first check (which reads the whole day) and a check
//!   one slot later (which reads what is new).
//! - `full_size_*`: against the full-size store that `HISTORY_BENCH_TENANTS=10000
//!   HISTORY_BENCH_DB=/path cargo bench -p history --bench store` builds
//!   (10,000 tenants, December 2026, every day compacted), 30 days into the
//!   period: the old path (each tenant's series read and projected) for
//!   100 tenants, the start-up read of the new path, and one check after
//!   it. Run only with `TOLLGATE_WATCH_DB=/path`; the start-up read is
//!   first checked to decide as the old path does.
//!
//! These were two `#[ignore]`d tests without assertions (issue 12, item
//! 20). `crates/billing/benches/overage.rs` measures the decision work
//! alone, without the store; `crates/history/benches/store.rs` the store's
//! reads alone: neither measures the check as the daemon runs it.

use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use billing::{BillingCycle, PercentileRule, RealmSelection, Series, Watch};
use divan::Bencher;
use history::{Batch, SampleQuery, SqliteOptions, SqliteStore, Store, Tenants};
use net_types::{Rate, RealmId, TenantId};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// The daemon's own module, compiled into the bench as it is (the binary
// has no library to import it from). What the bench does not call is
// unused here, and so are the imports of its unit tests, whose `#[test]`
// functions a bench does not compile.
#[path = "../src/daemon/overage_watch.rs"]
#[allow(dead_code, unused_imports)]
mod overage_watch;

use overage_watch::OverageWatch;

fn main() {
    divan::main();
    if let Some(dir) = HOUR_ROWS.get() {
        let _ = std::fs::remove_dir_all(&dir.dir);
    }
}

fn period() -> billing::Period {
    BillingCycle::new(1, "UTC")
        .unwrap()
        .period(2026, 12)
        .unwrap()
}

fn watch() -> Watch {
    let period = period();
    Watch {
        expected: period.expected_samples(),
        rule: PercentileRule::default(),
        counts: billing::VolumeCounts::Both,
        policy: Default::default(),
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

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions { cache_mib: 16 }).unwrap()
}

/// A day and three slots of samples in hour rows.
struct HourRows {
    dir: PathBuf,
    tenants: u32,
}

impl HourRows {
    fn path(&self) -> PathBuf {
        self.dir.join("h.sqlite")
    }

    fn wanted(&self) -> Vec<(TenantId, Option<Rate>)> {
        (0..self.tenants)
            .map(|t| {
                (
                    TenantId(t),
                    Rate::from_bps((1 + u64::from(t * 7919 % 1000)) * 125_000),
                )
            })
            .collect()
    }
}

static HOUR_ROWS: OnceLock<HourRows> = OnceLock::new();

fn hour_rows() -> &'static HourRows {
    HOUR_ROWS.get_or_init(|| {
        let tenants = std::env::var("OVERAGE_BENCH_TENANTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000u32);
        let dir = std::env::temp_dir().join(format!("tollgate-watch-h-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let h = HourRows { dir, tenants };
        let mut store = open(&h.path());
        let first = period().first_slot();
        let slots: i64 = 288 + 3;
        let mut samples = Vec::new();
        for hour in 0..(slots + 11) / 12 {
            samples.clear();
            let mut coverage = Vec::new();
            for s in hour * 12..(hour * 12 + 12).min(slots) {
                let slot = Slot(first.0 + s);
                coverage.push(SlotCoverage {
                    slot,
                    status: SlotStatus::Measured,
                });
                for t in 0..tenants {
                    for realm in 1..=4 {
                        for d in Direction::BOTH {
                            let scale = 1 + u64::from(t * 7919 % 1000);
                            let x = (s as u64 * 31 + u64::from(t) * 7 + u64::from(realm)) % 1000;
                            samples.push(sample(slot, t, realm, d, scale * (2_000_000 + x * 3000)));
                        }
                    }
                }
            }
            store
                .append(&Batch {
                    sequence: hour as u64 + 1,
                    samples: &samples,
                    coverage: &coverage,
                    state: &[],
                })
                .unwrap();
        }
        eprintln!(
            "hour rows: {tenants} tenants × 8 keys × {slots} slots written to {}",
            h.path().display()
        );
        h
    })
}

/// One check at `now` slots into the period, from `kept`.
fn check(
    store: &SqliteStore,
    kept: &mut Option<OverageWatch>,
    now: i64,
    wanted: &[(TenantId, Option<Rate>)],
) -> usize {
    let first = period().first_slot();
    let now = Slot(first.0 + now);
    let coverage = store.coverage(first, now).unwrap();
    let current =
        OverageWatch::update(kept, store, watch(), first, now, &coverage, wanted).unwrap();
    let w = watch();
    let moves = wanted
        .iter()
        .filter(|(id, c)| w.decide(&current.tallies[&id.0], *c, None).moves())
        .count();
    assert_eq!(current.tallies.len(), wanted.len());
    moves + current.samples_read
}

/// The first check of the day: every tenant's 288 slots read.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn hour_rows_startup(bencher: Bencher) {
    let h = hour_rows();
    let store = open(&h.path());
    let wanted = h.wanted();
    bencher.bench_local(|| check(&store, &mut None, 288, &wanted));
    eprintln!("hour rows: peak RSS {}", peak_rss());
}

/// The check one slot later: the new slot, and the last hour again.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn hour_rows_next_check(bencher: Bencher) {
    let h = hour_rows();
    let store = open(&h.path());
    let wanted = h.wanted();
    bencher
        .with_inputs(|| {
            let mut kept = None;
            check(&store, &mut kept, 288, &wanted);
            kept
        })
        .bench_local_values(|mut kept| check(&store, &mut kept, 289, &wanted));
}

fn full_size_db() -> Option<PathBuf> {
    std::env::var_os("TOLLGATE_WATCH_DB").map(PathBuf::from)
}

/// Thirty days into December.
const FULL_NOW: i64 = 30 * 288;

fn full_commit(t: u32) -> Option<Rate> {
    Rate::from_bps((1 + u64::from(t * 7919 % 1000)) * (300_000 + u64::from(t % 5) * 100_000))
}

fn full_wanted() -> Vec<(TenantId, Option<Rate>)> {
    (0..10_000).map(|t| (TenantId(t), full_commit(t))).collect()
}

/// The old path for 100 tenants: each one's month of samples read, its
/// series built and projected.
#[divan::bench(sample_count = 3, sample_size = 1, ignore = full_size_db().is_none())]
fn full_size_old_path_100_tenants(bencher: Bencher) {
    let Some(path) = full_size_db() else { return };
    let store = open(&path);
    let period = period();
    let first = period.first_slot();
    let now = Slot(first.0 + FULL_NOW);
    let coverage = store.coverage(first, now).unwrap();
    let w = watch();
    bencher.bench_local(|| {
        let mut decisions = Vec::new();
        for (id, c) in full_wanted().into_iter().step_by(100) {
            let samples = store
                .samples(&SampleQuery {
                    tenants: Tenants::Only(vec![id]),
                    from: first,
                    to: now,
                })
                .unwrap();
            let s = Series::build(&period, id, &RealmSelection::All, &samples, &coverage).unwrap();
            let p = billing::project(&s, FULL_NOW as usize, &w.rule, w.counts);
            decisions.push((id, billing::decide(&p, c, None, &w.policy)));
        }
        decisions
    });
}

/// The new path's start-up read, after checking that it decides as the
/// old path does.
#[divan::bench(sample_count = 3, sample_size = 1, ignore = full_size_db().is_none())]
fn full_size_startup(bencher: Bencher) {
    let Some(path) = full_size_db() else { return };
    let store = open(&path);
    let wanted = full_wanted();
    let period = period();
    let first = period.first_slot();
    let now = Slot(first.0 + FULL_NOW);
    let coverage = store.coverage(first, now).unwrap();
    let w = watch();
    let mut kept = None;
    let current =
        OverageWatch::update(&mut kept, &store, w, first, now, &coverage, &wanted).unwrap();
    for &(id, c) in wanted.iter().step_by(100) {
        let samples = store
            .samples(&SampleQuery {
                tenants: Tenants::Only(vec![id]),
                from: first,
                to: now,
            })
            .unwrap();
        let s = Series::build(&period, id, &RealmSelection::All, &samples, &coverage).unwrap();
        let p = billing::project(&s, FULL_NOW as usize, &w.rule, w.counts);
        let want = billing::decide(&p, c, None, &w.policy);
        match w.decide(&current.tallies[&id.0], c, None) {
            billing::Verdict::Exact(d) => assert_eq!(d, want, "tenant {}", id.0),
            billing::Verdict::Recompute => assert!(want.moves(), "tenant {}", id.0),
        }
    }
    bencher.bench_local(|| check(&store, &mut None, FULL_NOW, &wanted));
    eprintln!("full size: peak RSS {}", peak_rss());
}

/// A check one slot after the start-up read.
#[divan::bench(sample_count = 3, sample_size = 1, ignore = full_size_db().is_none())]
fn full_size_next_check(bencher: Bencher) {
    let Some(path) = full_size_db() else { return };
    let store = open(&path);
    let wanted = full_wanted();
    bencher
        .with_inputs(|| {
            let mut kept = None;
            check(&store, &mut kept, FULL_NOW, &wanted);
            kept
        })
        .bench_local_values(|mut kept| check(&store, &mut kept, FULL_NOW + 1, &wanted));
}
