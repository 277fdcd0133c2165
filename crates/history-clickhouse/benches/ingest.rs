//! Ingest and query figures of the ClickHouse store beside the SQLite
//! store, on the same data: 10,000 tenants × 2 directions, one batch per
//! 5-minute slot (20,000 samples, what the daemon appends), over
//! `TOLLGATE_BENCH_DAYS` days (1 by default). Starts its own
//! `clickhouse-server`. Run with
//! `flock -o /work/locks/bench cargo bench -p history-clickhouse --features testing --bench ingest`.

use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use history::{
    Batch, Bucket, RankBy, SqliteOptions, SqliteStore, Store, Tenants, TopQuery, UsageQuery,
};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use std::time::{Duration, Instant};

const TENANTS: u32 = 10_000;

fn slot_batch(slot: i64) -> Vec<Sample> {
    let mut out = Vec::with_capacity(TENANTS as usize * 2);
    for t in 0..TENANTS {
        for direction in Direction::BOTH {
            out.push(Sample {
                slot: Slot(slot),
                key: UsageKey {
                    tenant: TenantId(t),
                    realm: RealmId(0),
                    direction,
                    band: Band::Whole,
                    source: Source::Kernel,
                },
                bytes: (u64::from(t) * 7919 + slot as u64 * 31) % 1_000_000_000,
                packets: u64::from(t) % 1000 + 1,
            });
        }
    }
    out
}

struct Figures {
    ingest: Duration,
    samples: usize,
    tenant_days: Duration,
    top: Duration,
    all_month: Duration,
}

fn run(store: &mut dyn Store, first: i64, slots: i64) -> Figures {
    let mut samples = 0;
    let start = Instant::now();
    for (i, slot) in (first..first + slots).enumerate() {
        let batch = slot_batch(slot);
        samples += batch.len();
        store
            .append(&Batch {
                sequence: i as u64 + 1,
                samples: &batch,
                coverage: &[SlotCoverage {
                    slot: Slot(slot),
                    status: SlotStatus::Measured,
                }],
                state: &[0u8; 4096],
            })
            .expect("append");
    }
    let ingest = start.elapsed();
    let from = Slot(first).start();
    let to = Slot(first + slots).start();
    let q = |tenants| UsageQuery {
        tenants,
        from,
        to,
        bucket: Bucket::Day,
        zone: TimeZone::UTC,
    };
    let time = |f: &mut dyn FnMut()| {
        f();
        let n = 5;
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed() / n
    };
    let tenant_days = time(&mut || {
        let u = store
            .usage(&q(Tenants::Only(vec![TenantId(4321)])))
            .expect("usage");
        assert!(!u.is_empty());
    });
    let top = time(&mut || {
        let t = store
            .top_tenants(&TopQuery {
                from,
                to,
                by: RankBy::Total,
                limit: 100,
            })
            .expect("top");
        assert_eq!(t.len(), 100);
    });
    let all_month = time(&mut || {
        let u = store.usage(&q(Tenants::All)).expect("usage");
        assert!(u.len() >= TENANTS as usize * 2);
    });
    Figures {
        ingest,
        samples,
        tenant_days,
        top,
        all_month,
    }
}

fn main() {
    let days: i64 = std::env::var("TOLLGATE_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(1);
    let first = Slot::containing("2026-03-01T00:00Z".parse::<Timestamp>().expect("time")).0;
    let slots = days * 288;
    let server = history_clickhouse::testing::Server::start();
    let mut ch = ClickHouseStore::open(&ClickHouseOptions {
        url: server.url.clone(),
        database: "bench".into(),
        timeout: Duration::from_secs(300),
    })
    .expect("open ClickHouse");
    let dir = std::env::temp_dir().join(format!("tollgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("folder");
    let mut sqlite =
        SqliteStore::open(&dir.join("h.sqlite"), &SqliteOptions::default()).expect("sqlite");
    println!(
        "{TENANTS} tenants × 2 directions, {slots} batches of {} samples (one per 5-minute slot), ClickHouse {}",
        TENANTS * 2,
        ch.server_version()
    );
    let c = run(&mut ch, first, slots);
    let s = run(&mut sqlite, first, slots);
    let _ = std::fs::remove_dir_all(&dir);
    let rate = |f: &Figures| f.samples as f64 / f.ingest.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<42} {:>14} {:>14} {:>8}",
        "", "ClickHouse", "SQLite", "CH/SQL"
    );
    println!(
        "{:<42} {:>14.0} {:>14.0} {:>8.2}",
        "ingest, samples/s",
        rate(&c),
        rate(&s),
        rate(&c) / rate(&s)
    );
    println!(
        "{:<42} {:>14.1} {:>14.1} {:>8.2}",
        "one batch (20,000 samples), ms",
        ms(c.ingest) / slots as f64,
        ms(s.ingest) / slots as f64,
        ms(c.ingest) / ms(s.ingest)
    );
    for (what, a, b) in [
        (
            "one tenant's usage by day, ms",
            c.tenant_days,
            s.tenant_days,
        ),
        ("top 100 tenants, ms", c.top, s.top),
        ("every tenant's usage by day, ms", c.all_month, s.all_month),
    ] {
        println!(
            "{:<42} {:>14.3} {:>14.3} {:>8.2}",
            what,
            ms(a),
            ms(b),
            ms(a) / ms(b)
        );
    }
}
