//! The store's hot paths.
//!
//! `cargo bench -p history --bench store`
//!
//! - `append_interval`: one 5-minute interval for 10,000 tenants × 2 realms
//!   × 2 directions (40,000 samples), with the rollups, the slot record and
//!   a 1.6 MB accounting state, in one fsynced transaction.
//! - `tenant_month` and `month_95th_all`: read and bill a 31-day month
//!   from a store of `MONTH_TENANTS` tenants × 2 realms × 2 directions
//!   (8928 slots each). Building a month for 10,000 tenants (357 million
//!   rows) takes too long for a bench run; the per-tenant read is a fixed
//!   31 range reads whatever the tenant count, and the all-tenant figure
//!   scales linearly with it.

use accounting::*;
use billing::{bill_tenant, BillingCycle, ChargeRule, PercentileRule, RealmSelection};
use divan::Bencher;
use history::*;
use net_types::{RealmId, TenantId};
use std::sync::OnceLock;

fn main() {
    divan::main();
}

const MONTH_TENANTS: u32 = 200;

fn keys(tenants: u32) -> Vec<UsageKey> {
    let mut out = Vec::new();
    for t in 0..tenants {
        for realm in [1u16, 2] {
            for direction in Direction::BOTH {
                out.push(UsageKey {
                    tenant: TenantId(t),
                    realm: RealmId(realm),
                    direction,
                    band: Band::Whole,
                });
            }
        }
    }
    out
}

fn interval(slot: Slot, keys: &[UsageKey]) -> Vec<Sample> {
    keys.iter()
        .enumerate()
        .map(|(i, &key)| Sample {
            slot,
            key,
            bytes: 1_000_000 + (i as u64 * 7919 + slot.0 as u64 * 104_729) % 50_000_000,
            packets: 1_000 + i as u64 % 997,
        })
        .collect()
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn append_interval(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        SqliteStore::open(&dir.path().join("b.sqlite"), &SqliteOptions::default()).unwrap();
    let keys = keys(10_000);
    let state = vec![0u8; 40 * keys.len()];
    let first = Slot::containing("2026-11-01T00:00Z".parse().unwrap());
    let mut sequence = 0u64;
    bencher
        .counter(divan::counter::ItemsCount::new(keys.len()))
        .with_inputs(|| {
            sequence += 1;
            (sequence, interval(Slot(first.0 + sequence as i64), &keys))
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

struct Month {
    dir: tempfile::TempDir,
    period: billing::Period,
}

impl Month {
    /// A connection per bench: SQLite connections are not shared between
    /// threads.
    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("m.sqlite"), &SqliteOptions::default()).unwrap()
    }
}

fn month() -> &'static Month {
    static MONTH: OnceLock<Month> = OnceLock::new();
    MONTH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            SqliteStore::open(&dir.path().join("m.sqlite"), &SqliteOptions::default()).unwrap();
        let period = BillingCycle::new(1, "UTC").unwrap().period(2026, 12).unwrap();
        let keys = keys(MONTH_TENANTS);
        let started = std::time::Instant::now();
        // One batch per hour of slots, as a backfill would.
        let mut slot = period.first_slot();
        let mut sequence = 0;
        while slot < period.end_slot() {
            let mut samples = Vec::new();
            let mut coverage = Vec::new();
            for _ in 0..12 {
                samples.extend(interval(slot, &keys));
                coverage.push(SlotCoverage { slot, status: SlotStatus::Measured });
                slot = slot.next();
            }
            sequence += 1;
            store
                .append(&Batch { sequence, samples: &samples, coverage: &coverage, state: &[] })
                .unwrap();
        }
        let rows = period.expected_samples() * keys.len();
        let secs = started.elapsed().as_secs_f64();
        let size = std::fs::metadata(dir.path().join("m.sqlite")).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(dir.path().join("m.sqlite-wal")).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "month store: {rows} samples ingested in {secs:.1} s ({:.0} samples/s, batches of {} samples); {:.1} MiB on disk ({:.1} bytes/sample)",
            rows as f64 / secs,
            12 * keys.len(),
            size as f64 / 1048576.0,
            size as f64 / rows as f64
        );
        drop(store);
        Month { dir, period }
    })
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
    let m = month();
    let store = m.store();
    let rules = rules();
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = (t + 37) % MONTH_TENANTS;
        let q = SampleQuery {
            tenants: Tenants::Only(vec![TenantId(t)]),
            from: m.period.first_slot(),
            to: m.period.end_slot(),
        };
        let samples = store.samples(&q).unwrap();
        let coverage = store.coverage(q.from, q.to).unwrap();
        bill_tenant(&m.period, TenantId(t), &rules, &samples, &coverage).unwrap()
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn month_95th_all(bencher: Bencher) {
    let m = month();
    let store = m.store();
    let rules = rules();
    bencher.bench_local(|| {
        let from = m.period.first_slot();
        let to = m.period.end_slot();
        let coverage = store.coverage(from, to).unwrap();
        let mut samples = store
            .samples(&SampleQuery {
                tenants: Tenants::All,
                from,
                to,
            })
            .unwrap();
        samples.sort_unstable_by_key(|s| s.key.tenant);
        let mut billed = 0;
        for chunk in samples.chunk_by(|a, b| a.key.tenant == b.key.tenant) {
            let tenant = chunk[0].key.tenant;
            bill_tenant(&m.period, tenant, &rules, chunk, &coverage).unwrap();
            billed += 1;
        }
        billed
    });
}
