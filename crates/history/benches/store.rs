//! The store's hot paths, for the goals of issue 4 (10,000 tenants × 4
//! realms × 2 directions at 5-minute resolution over 62 days).
//!
//! `cargo bench -p history --bench store`
//!
//! - `append_hour`: bulk ingest, one hour (12 slots) of 10,000 tenants'
//!   80,000 keys (960,000 samples) per fsynced transaction, with every
//!   rollup; divan's items/s is samples/s.
//! - `append_interval`: the daemon's append, one slot of the same keys
//!   (80,000 samples) merged into the hour's existing rows.
//! - `tenant_month`: one tenant's December from the history store: read its
//!   samples and coverage and bill its 95th.
//! - `tenant_month_usage`: one tenant's December by local day
//!   (`Store::usage`), in UTC, Europe/Berlin and Asia/Kathmandu (whose
//!   days start at :15, so each day's edge hour is read from the 5-minute
//!   samples).
//! - `top_100_month`: the 100 tenants with the most bytes in December, in
//!   UTC and in Kathmandu (whose month starts and ends at :15).
//! - `tenant_month_hours`: one tenant's December of hourly totals
//!   ([`Store::hourly_totals`]), what the API's usage series reads.
//!
//! The traffic is a hosting provider's ([`realistic`]: heavy-tailed tenant
//! sizes, a quarter of them idle, realms some tenants never reach, a daily
//! curve, packets following bytes); `HISTORY_BENCH_DATA=uniform` gives the
//! uniformly random data the figures before issue 16 were measured with.
//!
//! The month is December with the default 62 days; with
//! `HISTORY_BENCH_DAYS` below 62 (but at least 32) it is November, so a
//! 10,000-tenant store can be half the size.
//!
//! The last four read a history store of `HISTORY_BENCH_TENANTS` tenants
//! (default 1,000) × 4 realms × 2 directions over `HISTORY_BENCH_DAYS`
//! days (default 62, 1 November to 1 January), built at the start in
//! hourly batches; building it prints the ingest rate and the disk size
//! per stored sample with each table's share (before and after
//! compaction), then compacts every day ([`Store::compact`]: the samples
//! and the hourly rollup's rows per tenant-day) unless
//! `HISTORY_BENCH_COMPACT=0`, printing its rate; a store built by an older
//! build catches up there, which measures the catch-up. With `HISTORY_BENCH_DB=/path` the store is kept there and
//! reused by later runs of the same size, so the full 10,000-tenant store
//! (1.43 billion samples) is built once.

use accounting::*;
use billing::{bill_tenant, BillingCycle, ChargeRule, PercentileRule, RealmSelection};
use divan::Bencher;
use history::*;
use jiff::Timestamp;
use net_types::TenantId;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

fn main() {
    divan::main();
}

// The tenants and their traffic, shared with history-clickhouse's ingest
// bench so that both stores are measured on the same data.
#[path = "traffic.rs"]
mod traffic;
use traffic::*;

fn options() -> SqliteOptions {
    SqliteOptions::default()
}

fn db_size(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|ext| {
            let mut p = path.as_os_str().to_owned();
            p.push(ext);
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum()
}

/// Appends hours `[first, first + hours)` of `traffic`, one hour per
/// batch; returns how many samples that was.
fn ingest(
    store: &mut SqliteStore,
    traffic: &Traffic,
    first: Slot,
    hours: i64,
    sequence: &mut u64,
) -> u64 {
    let mut samples = Vec::with_capacity(12 * traffic.keys.len());
    let mut count = 0;
    for h in 0..hours {
        samples.clear();
        let mut coverage = Vec::new();
        for s in 0..12 {
            let slot = Slot(first.0 + h * 12 + s);
            traffic.interval(slot, &mut samples);
            coverage.push(SlotCoverage {
                slot,
                status: SlotStatus::Measured,
            });
        }
        *sequence += 1;
        count += samples.len() as u64;
        store
            .append(&Batch {
                sequence: *sequence,
                samples: &samples,
                coverage: &coverage,
                state: &[],
            })
            .unwrap();
    }
    count
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start() -> Slot {
    Slot::containing("2026-11-01T00:00Z".parse::<Timestamp>().unwrap())
}

/// Two days after the history's last day: every day is old enough to
/// compact.
fn end_of_history(days: u32) -> Timestamp {
    let end = start().0 + i64::from(days + 2) * 288;
    Timestamp::from_second(end * 300).unwrap()
}

/// Samples in the first hour of `traffic`: divan's items per iteration
/// (later hours differ by the idle keys' few samples).
fn hour_samples(traffic: &Traffic) -> usize {
    let mut samples = Vec::new();
    for s in 0..12 {
        traffic.interval(Slot(start().0 + s), &mut samples);
    }
    samples.len()
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn append_hour(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("b.sqlite"), &options()).unwrap();
    let traffic = Traffic::new(10_000);
    let mut sequence = 0u64;
    let mut hour = 0;
    bencher
        .counter(divan::counter::ItemsCount::new(hour_samples(&traffic)))
        .bench_local(|| {
            ingest(
                &mut store,
                &traffic,
                Slot(start().0 + hour * 12),
                1,
                &mut sequence,
            );
            hour += 1;
        });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn append_interval(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("b.sqlite"), &options()).unwrap();
    let traffic = Traffic::new(10_000);
    // A daemon's state for 80,000 keys is about 40 bytes each.
    let state = vec![0u8; 40 * traffic.keys.len()];
    let mut sequence = 0u64;
    bencher
        .counter(divan::counter::ItemsCount::new(hour_samples(&traffic) / 12))
        .with_inputs(|| {
            sequence += 1;
            let mut samples = Vec::new();
            traffic.interval(Slot(start().0 + sequence as i64), &mut samples);
            (sequence, samples)
        })
        .bench_local_values(|(sequence, samples)| {
            let coverage = [SlotCoverage {
                slot: samples[0].slot,
                status: SlotStatus::Measured,
            }];
            store
                .append(&Batch {
                    sequence,
                    samples: &samples,
                    coverage: &coverage,
                    state: &state,
                })
                .unwrap();
        });
}

struct History {
    path: PathBuf,
    tenants: u32,
    period: billing::Period,
    _dir: Option<tempfile::TempDir>,
}

impl History {
    /// A connection per bench: SQLite connections are not shared between
    /// threads.
    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.path, &options()).unwrap()
    }
}

fn history() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(|| {
        let tenants = env("HISTORY_BENCH_TENANTS", 1_000);
        let days = env("HISTORY_BENCH_DAYS", 62);
        let month = if days >= 62 { 12 } else { 11 };
        let period = BillingCycle::new(1, "UTC").unwrap().period(2026, month).unwrap();
        let (path, dir) = match std::env::var_os("HISTORY_BENCH_DB") {
            Some(p) => (PathBuf::from(p), None),
            None => {
                let dir = tempfile::tempdir().unwrap();
                (dir.path().join("h.sqlite"), Some(dir))
            }
        };
        let history = History { path, tenants, period, _dir: dir };
        let mut store = history.store();
        let traffic = Traffic::new(tenants);
        let hours = store.batch_sequences().unwrap().len() as u64;
        if hours == u64::from(days) * 24 {
            eprintln!("history store: reusing {}", history.path.display());
        } else {
            assert_eq!(hours, 0, "{} holds another size; remove it", history.path.display());
            let started = Instant::now();
            let mut sequence = 0;
            let mut count = 0;
            // A day at a time, to show the rate does not fall as the store grows.
            for day in 0..i64::from(days) {
                let t = Instant::now();
                let n = ingest(&mut store, &traffic, Slot(start().0 + day * 288), 24, &mut sequence);
                count += n;
                if day == 0 || day + 1 == i64::from(days) || day % 10 == 9 {
                    let rate = n as f64 / t.elapsed().as_secs_f64();
                    eprintln!("  day {:>2}: {rate:>10.0} samples/s", day + 1);
                }
            }
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "history store: {tenants} tenants × 8 keys × {days} days = {count} samples ({:.1}% of the keys' slots) in {secs:.1} s ({:.0} samples/s, batches of an hour, about {} samples)",
                count as f64 * 100.0 / (u64::from(days) * 288 * traffic.keys.len() as u64) as f64,
                count as f64 / secs,
                count / u64::from(days * 24)
            );
        }
        report_size(&store, &history.path, "before compaction");
        // Compact every finished day, as the daemon does after retention
        // (`HISTORY_BENCH_COMPACT=0` to measure the hour rows alone).
        if env("HISTORY_BENCH_COMPACT", 1) == 1 {
            let started = Instant::now();
            let mut report = CompactReport::default();
            loop {
                let r = store.compact(end_of_history(days), 100_000).unwrap();
                report.tenant_days += r.tenant_days;
                report.samples += r.samples;
                report.hour_days += r.hour_days;
                if r.done {
                    break;
                }
            }
            if report.tenant_days + report.hour_days > 0 {
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "history store: compacted {} tenant-days ({} samples) and built {} days of hourly totals in {secs:.1} s ({:.0} samples/s, {:.3} ms per tenant-day)",
                    report.tenant_days,
                    report.samples,
                    report.hour_days,
                    report.samples as f64 / secs,
                    secs * 1e3 / report.tenant_days.max(report.hour_days) as f64
                );
            }
        }
        report_size(&store, &history.path, "after compaction");
        drop(store);
        history
    })
}

/// Prints the file's size per stored sample, and where the bytes go:
/// each table's pages (SQLite's `dbstat`, which the bundled build has)
/// and the free pages.
fn report_size(store: &SqliteStore, path: &Path, when: &str) {
    let conn = store.connection();
    // Measure the database itself, not a write-ahead log waiting for its
    // checkpoint.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let samples: i64 = conn
        .query_row(
            "SELECT (SELECT IFNULL(SUM(count), 0) FROM samples)
                  + (SELECT IFNULL(SUM(count), 0) FROM samples_days)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let size = db_size(path);
    eprintln!(
        "history store, {when}: {:.1} MiB on disk, {samples} samples, {:.2} bytes per sample (rollups included)",
        size as f64 / 1048576.0,
        size as f64 / samples as f64
    );
    let mut st = conn
        .prepare(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name
             HAVING SUM(pgsize) > 65536 ORDER BY 2 DESC",
        )
        .unwrap();
    let tables: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let per = |bytes: i64| bytes as f64 / samples as f64;
    let mut line = String::from("  bytes per sample by table:");
    for (name, bytes) in tables {
        line += &format!(" {name} {:.2},", per(bytes));
    }
    eprintln!("{line} free pages {:.2}", per(free * page));
}

fn rules() -> Vec<ChargeRule> {
    vec![ChargeRule {
        name: "total".into(),
        realms: RealmSelection::All,
        percentile: Some(PercentileRule::default()),
        commit: None,
        volume: Default::default(),
    }]
}

#[divan::bench(sample_count = 50)]
fn tenant_month(bencher: Bencher) {
    let h = history();
    let store = h.store();
    let rules = rules();
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = (t + 7919) % h.tenants;
        let q = SampleQuery {
            tenants: Tenants::Only(vec![TenantId(t)]),
            from: h.period.first_slot(),
            to: h.period.end_slot(),
        };
        let samples = store.samples(&q).unwrap();
        let coverage = store.coverage(q.from, q.to).unwrap();
        bill_tenant(&h.period, TenantId(t), &rules, &samples, &coverage).unwrap()
    });
}

/// The history's month in `zone`.
fn local_period(h: &History, zone: &str) -> billing::Period {
    BillingCycle::new(1, zone)
        .unwrap()
        .period_labelled(&h.period.label)
        .unwrap()
}

#[divan::bench(sample_count = 50, args = ["UTC", "Europe/Berlin", "Asia/Kathmandu"])]
fn tenant_month_usage(bencher: Bencher, zone: &str) {
    let h = history();
    let store = h.store();
    let period = local_period(h, zone);
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = (t + 7919) % h.tenants;
        let days = store
            .usage(&UsageQuery {
                tenants: Tenants::Only(vec![TenantId(t)]),
                from: period.start,
                to: period.end,
                bucket: Bucket::Day,
                zone: tz.clone(),
            })
            .unwrap();
        // Every day of the month, at least one key (idle tenants have one
        // realm, busy ones up to 4 × 2 directions).
        assert!(days.len() >= 30, "{} rows", days.len());
        days
    });
}

#[divan::bench(sample_count = 20, args = ["UTC", "Asia/Kathmandu"])]
fn top_100_month(bencher: Bencher, zone: &str) {
    let h = history();
    let store = h.store();
    let period = local_period(h, zone);
    bencher.bench_local(|| {
        let top = store
            .top_tenants(&TopQuery {
                from: period.start,
                to: period.end,
                by: RankBy::Total,
                limit: 100,
            })
            .unwrap();
        assert_eq!(top.len(), 100.min(h.tenants as usize));
        top
    });
}

#[divan::bench(sample_count = 200)]
fn tenant_month_hours(bencher: Bencher) {
    let h = history();
    let store = h.store();
    let hours = h.period.first_slot().0 / 12..h.period.end_slot().0 / 12;
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = (t + 7919) % h.tenants;
        let month = store.hourly_totals(TenantId(t), hours.clone()).unwrap();
        // Every hour of the month, at least one key (see above).
        assert!(month.totals.len() as i64 >= hours.end - hours.start);
        month
    });
}
