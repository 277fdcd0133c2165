//! `GET /api/v1/tenants/{id}/usage` for a month, without HTTP: the same
//! query-layer calls the handler makes (the month's series at its default
//! resolution, and its totals), straight on the store. `bench/api_usage.sh`
//! runs this beside the HTTP load in one run, to give the API's overhead.
//!
//! `API_BENCH_DB=/path cargo bench -p api --bench usage` reads the history
//! bench's store (10,000 tenants × 62 days, November and December 2026)
//! and asks for November, a whole closed month (the API bench does too);
//! without it, a small store of 100 tenants × 62 days is built first.

use divan::Bencher;
use history::{Store as _, Tenants};
use net_types::TenantId;
use query::range::{Range, RangeSpec};
use query::series::Resolution;
use std::path::PathBuf;
use std::sync::OnceLock;

fn main() {
    divan::main();
}

struct Setup {
    db: PathBuf,
    tenants: u32,
    range: Range,
    policy: policy::Policy,
    _dir: Option<tempfile::TempDir>,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let (db, tenants, dir) = match std::env::var_os("API_BENCH_DB") {
            Some(p) => (
                PathBuf::from(p),
                std::env::var("API_BENCH_TENANTS").map_or(10_000, |v| v.parse().unwrap()),
                None,
            ),
            None => {
                let dir = tempfile::tempdir().unwrap();
                let db = dir.path().join("h.sqlite");
                small_store(&db, 100);
                (db, 100, Some(dir))
            }
        };
        let settings = settings::Settings::defaults();
        let now: jiff::Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let range =
            query::range::resolve(&settings, &RangeSpec::Period("2026-11".into()), now).unwrap();
        Setup {
            db,
            tenants,
            range,
            policy: policy_of(tenants),
            _dir: dir,
        }
    })
}

/// The example's policy (ids 1..N, realms 1–4).
fn policy_of(tenants: u32) -> policy::Policy {
    let mut text = String::from(
        "[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = { down = \"100gbit\", up = \"100gbit\" }\n\
         [realms]\ndefault = \"r1\"\n[realms.r1]\nid = 1\n[realms.r2]\nid = 2\n[realms.r3]\nid = 3\n[realms.r4]\nid = 4\n\
         [plans.p]\ndown = { rate = \"10mbit\", ceil = \"100mbit\" }\nup = { rate = \"10mbit\", ceil = \"100mbit\" }\n",
    );
    for t in 1..tenants {
        let (a, b) = (t / 256, t % 256);
        text.push_str(&format!(
            "[[tenants]]\nid = {t}\nname = \"t{t}\"\nplan = \"p\"\nprefixes = [\"100.{}.{a}.{b}/32\"]\n",
            64 + (t >> 16)
        ));
    }
    policy::load_str("bench.toml", &text).policy.unwrap()
}

/// A store like the history bench's, smaller.
fn small_store(path: &std::path::Path, tenants: u32) {
    use accounting::*;
    let mut store = history::SqliteStore::open(path, &history::SqliteOptions::default()).unwrap();
    let start = Slot::containing("2026-11-01T00:00Z".parse::<jiff::Timestamp>().unwrap());
    let state = Accountant::new(Config::default()).state().encode();
    for h in 0..62 * 24 {
        let mut samples = Vec::new();
        let mut coverage = Vec::new();
        for s in 0..12 {
            let slot = Slot(start.0 + h * 12 + s);
            coverage.push(SlotCoverage {
                slot,
                status: SlotStatus::Measured,
            });
            for t in 0..tenants {
                for realm in 1..=4u16 {
                    for direction in Direction::BOTH {
                        samples.push(Sample {
                            slot,
                            key: UsageKey {
                                tenant: TenantId(t),
                                realm: net_types::RealmId(realm),
                                direction,
                                band: Band::Whole,
                                source: Source::Kernel,
                            },
                            bytes: 1_000_000 + u64::from(t) * 1000 + slot.0 as u64 % 977,
                            packets: 1000,
                        });
                    }
                }
            }
        }
        store
            .append(&history::Batch {
                sequence: h as u64 + 1,
                samples: &samples,
                coverage: &coverage,
                state: &state,
            })
            .unwrap();
    }
}

/// What the handler computes for one tenant's month.
#[divan::bench(sample_count = 200)]
fn tenant_month_usage(bencher: Bencher) {
    let s = setup();
    let store =
        history::SqliteStore::open(&s.db, &history::SqliteOptions { cache_mib: 64 }).unwrap();
    // The handler reuses the decoded open slots until the next batch
    // commits, so the bench decodes them once as well.
    let open = query::open::open_samples(&store).unwrap();
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = 1 + (t + 7919) % (s.tenants - 1);
        let id = TenantId(t);
        let series = query::series::series(
            &store,
            &open,
            Some(&s.policy),
            id,
            &s.range,
            Resolution::for_range(&s.range),
        )
        .unwrap();
        let totals = query::usage::usage(
            &store,
            &open,
            Some(&s.policy),
            &s.range,
            &Tenants::Only(vec![id]),
        )
        .unwrap();
        divan::black_box((series, totals))
    });
}

/// Its parts: the series alone (the hourly rollup rows of the month).
#[divan::bench(sample_count = 200)]
fn part_series(bencher: Bencher) {
    let s = setup();
    let store =
        history::SqliteStore::open(&s.db, &history::SqliteOptions { cache_mib: 64 }).unwrap();
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = 1 + (t + 7919) % (s.tenants - 1);
        let r = Resolution::for_range(&s.range);
        divan::black_box(
            query::series::series(&store, &[], Some(&s.policy), TenantId(t), &s.range, r).unwrap(),
        )
    });
}

/// Its parts: the totals alone (daily rows, edges from the samples).
#[divan::bench(sample_count = 200)]
fn part_totals(bencher: Bencher) {
    let s = setup();
    let store =
        history::SqliteStore::open(&s.db, &history::SqliteOptions { cache_mib: 64 }).unwrap();
    let mut t = 0u32;
    bencher.bench_local(|| {
        t = 1 + (t + 7919) % (s.tenants - 1);
        let only = Tenants::Only(vec![TenantId(t)]);
        divan::black_box(
            query::usage::usage(&store, &[], Some(&s.policy), &s.range, &only).unwrap(),
        )
    });
}

/// Its parts: the answer as JSON (what the handler sends).
#[divan::bench(sample_count = 200)]
fn part_json(bencher: Bencher) {
    let s = setup();
    let store =
        history::SqliteStore::open(&s.db, &history::SqliteOptions { cache_mib: 64 }).unwrap();
    let r = Resolution::for_range(&s.range);
    let series =
        query::series::series(&store, &[], Some(&s.policy), TenantId(7), &s.range, r).unwrap();
    bencher.bench_local(|| divan::black_box(serde_json::to_vec(&series).unwrap()));
}
