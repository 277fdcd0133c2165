//! Ingest, query and disk figures of the ClickHouse store beside the
//! SQLite store, on the same data in one run. Starts its own
//! `clickhouse-server`. Run with
//! `flock -o /work/locks/bench cargo bench -p history-clickhouse --features testing --bench ingest`.
//!
//! The data is `history`'s store bench traffic (`traffic.rs`: a hosting
//! provider's tenants × 4 realms × 2 directions, heavy-tailed sizes, idle
//! machines, realms some tenants never reach, so about 48% of the keys
//! have a sample in a slot; `HISTORY_BENCH_DATA=uniform`: every key in
//! every slot). Set by the environment:
//!
//! - `TOLLGATE_BENCH_TENANTS` (10,000) and `TOLLGATE_BENCH_DAYS` (1),
//!   from 1 March 2026;
//! - `TOLLGATE_BENCH_SLOTS`: 5-minute slots per batch (1: what a daemon
//!   appends every 5 minutes; 12: an hour, an agent catching up);
//! - `TOLLGATE_BENCH_AGENTS`: 0 (default) for one writer appending every
//!   tenant (the accountant of a router with all the tenants); N for N
//!   agents, each adding its share of the tenants (tenant mod N) under its
//!   own writer name and sequence, as a central takes them;
//! - `TOLLGATE_BENCH_STORES`: `both` (default), `clickhouse` or `sqlite`;
//! - `TOLLGATE_BENCH_COMPACT=1`: compact the SQLite store (what its daemon
//!   does every hour) before its reads and its size;
//! - `TOLLGATE_BENCH_HOURS`: hours instead of days (for the agents' runs);
//! - `TOLLGATE_BENCH_KEEP=/dir` with `TOLLGATE_BENCH_FROM_DAY=n`: keep both
//!   stores in `/dir` and write days `n..n + days` into them, so that a
//!   large store is filled in several runs (each shorter than the bench
//!   lock's turn); sizes are then per sample stored in all runs.
//!
//! The reads: one tenant's month by day, the top 100 of the month (the
//! month is March with 31 days or more, else the whole range), and with 7
//! days or fewer every tenant's usage by day; each the mean of 5 runs after
//! one unmeasured. ClickHouse's reads wait until its background merges are
//! done (as they are a few minutes after any batch); its disk is the active
//! parts' `bytes_on_disk` (`system.parts`), SQLite's the file and its WAL.

#[path = "../../history/benches/traffic.rs"]
mod traffic;

use accounting::{Sample, Slot, SlotCoverage, SlotStatus};
use history::{
    AddBatch, Batch, Bucket, RankBy, SqliteOptions, SqliteStore, Store, Tenants, TopQuery,
    UsageQuery,
};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use net_types::TenantId;
use std::time::{Duration, Instant};
use traffic::Traffic;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Setup {
    traffic: Traffic,
    tenants: u32,
    /// The first slot of the store (1 March 2026): the month read and the
    /// sequences count from it.
    origin: i64,
    /// The first slot this run writes.
    first: i64,
    slots: i64,
    per_batch: i64,
    agents: u32,
}

struct Figures {
    ingest: Duration,
    /// Written by this run.
    samples: u64,
    /// Stored by every run into the kept stores (this one's without).
    total: u64,
    batches: u64,
    tenant_month: Duration,
    top: Duration,
    all: Option<Duration>,
    disk: u64,
    detail: String,
}

/// Writes every batch of the setup; returns samples and batches written.
fn ingest(store: &mut dyn Store, s: &Setup) -> (u64, u64) {
    let (mut samples, mut batches) = (0, 0);
    let mut buf: Vec<Sample> = Vec::new();
    let mut shares: Vec<Vec<Sample>> = vec![Vec::new(); s.agents.max(1) as usize];
    let state = [0u8; 4096];
    let mut at = s.first;
    while at < s.first + s.slots {
        let end = (at + s.per_batch).min(s.first + s.slots);
        buf.clear();
        let mut coverage = Vec::new();
        for slot in at..end {
            s.traffic.interval(Slot(slot), &mut buf);
            coverage.push(SlotCoverage {
                slot: Slot(slot),
                status: SlotStatus::Measured,
            });
        }
        let sequence = ((at - s.origin) / s.per_batch + 1) as u64;
        if s.agents == 0 {
            store
                .append(&Batch {
                    sequence,
                    samples: &buf,
                    coverage: &coverage,
                    state: &state,
                })
                .expect("append");
            samples += buf.len() as u64;
            batches += 1;
        } else {
            for share in &mut shares {
                share.clear();
            }
            for sample in &buf {
                shares[(sample.key.tenant.0 % s.agents) as usize].push(*sample);
            }
            for (i, share) in shares.iter().enumerate() {
                let writer = format!("agent-{i}");
                store
                    .add(&AddBatch {
                        writer: &writer,
                        sequence,
                        samples: share,
                        coverage: &coverage,
                        state: &state[..64],
                    })
                    .expect("add");
                samples += share.len() as u64;
                batches += 1;
            }
        }
        at = end;
    }
    (samples, batches)
}

fn reads(store: &dyn Store, s: &Setup) -> (Duration, Duration, Option<Duration>) {
    let stored = s.first + s.slots - s.origin;
    let days = stored / 288;
    let from = Slot(s.origin).start();
    let to = Slot(s.origin + stored.min(31 * 288)).start();
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
    // A tenant with traffic in every slot (not idle) whatever the count.
    let tenant = TenantId((4321 % s.tenants).max(1));
    let tenant_month = time(&mut || {
        let u = store.usage(&q(Tenants::Only(vec![tenant]))).expect("usage");
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
        assert_eq!(t.len(), 100.min(s.tenants as usize));
    });
    let all = (days <= 7).then(|| {
        time(&mut || {
            let u = store.usage(&q(Tenants::All)).expect("usage");
            assert!(u.len() >= s.tenants as usize);
        })
    });
    (tenant_month, top, all)
}

/// Samples stored by earlier runs into `store` in the kept folder, plus
/// `now` (this run's), remembered for the next run.
fn cumulative(store: &str, now: u64) -> u64 {
    let Ok(dir) = std::env::var("TOLLGATE_BENCH_KEEP") else {
        return now;
    };
    let file = std::path::Path::new(&dir).join(format!("{store}-samples"));
    let before: u64 = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    std::fs::write(&file, (before + now).to_string()).expect("write the count");
    before + now
}

fn clickhouse(url: &str, s: &Setup) -> Figures {
    let mut store = ClickHouseStore::open(&ClickHouseOptions {
        url: url.to_string(),
        database: "bench".into(),
        timeout: Duration::from_secs(300),
    })
    .expect("open ClickHouse");
    let start = Instant::now();
    let (samples, batches) = ingest(&mut store, s);
    let ingest = start.elapsed();
    let total = cumulative("clickhouse", samples);
    // The reads and the size once the server has merged what it was sent.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(600) {
        let n = store
            .raw_query("SELECT count() FROM system.merges FORMAT TSV")
            .expect("merges");
        if String::from_utf8_lossy(&n).trim() == "0" {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let settled = settle.elapsed();
    let (tenant_month, top, all) = reads(&store, s);
    let parts = store
        .raw_query(
            "SELECT table, sum(bytes_on_disk), sum(rows), count() FROM system.parts
             WHERE database = 'bench' AND active GROUP BY table ORDER BY table FORMAT TSV",
        )
        .expect("system.parts");
    let mut disk = 0;
    let mut detail = format!(
        "merges settled after {:.1} s; parts:",
        settled.as_secs_f64()
    );
    for line in String::from_utf8_lossy(&parts).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let bytes: u64 = f.get(1).and_then(|b| b.parse().ok()).unwrap_or(0);
        disk += bytes;
        detail.push_str(&format!(
            "\n  {:<20} {:>14} bytes {:>12} rows {:>5} parts {:>7.3} bytes/sample",
            f[0],
            bytes,
            f.get(2).unwrap_or(&""),
            f.get(3).unwrap_or(&""),
            bytes as f64 / total as f64
        ));
    }
    let columns = store
        .raw_query(
            "SELECT name, sum(data_compressed_bytes), sum(data_uncompressed_bytes)
             FROM system.columns WHERE database = 'bench' AND table = 'samples'
             GROUP BY name ORDER BY name FORMAT TSV",
        )
        .expect("system.columns");
    detail.push_str("\n  samples' columns (compressed, uncompressed bytes per sample):");
    for line in String::from_utf8_lossy(&columns).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let per =
            |i: usize| f.get(i).and_then(|b| b.parse::<f64>().ok()).unwrap_or(0.0) / total as f64;
        detail.push_str(&format!(" {} {:.2}/{:.2};", f[0], per(1), per(2)));
    }
    Figures {
        ingest,
        samples,
        total,
        batches,
        tenant_month,
        top,
        all,
        disk,
        detail,
    }
}

fn sqlite(s: &Setup) -> Figures {
    let keep = std::env::var("TOLLGATE_BENCH_KEEP").ok();
    let dir = keep.clone().map_or_else(
        || std::env::temp_dir().join(format!("tollgate-bench-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("folder");
    let path = dir.join("h.sqlite");
    let mut store = SqliteStore::open(&path, &SqliteOptions::default()).expect("sqlite");
    let start = Instant::now();
    let (samples, batches) = ingest(&mut store, s);
    let ingest = start.elapsed();
    let total = cumulative("sqlite", samples);
    let mut detail = String::new();
    if env("TOLLGATE_BENCH_COMPACT", 0) == 1 {
        let now = Slot(s.first + s.slots).start();
        let c = Instant::now();
        let mut days = 0;
        loop {
            let r = store.compact(now, 100_000).expect("compact");
            days += r.tenant_days;
            if r.done {
                break;
            }
        }
        detail = format!(
            "compacted {days} tenant-days in {:.1} s",
            c.elapsed().as_secs_f64()
        );
    }
    let (tenant_month, top, all) = reads(&store, s);
    let disk = ["", "-wal"]
        .iter()
        .map(|ext| {
            let mut p = path.as_os_str().to_owned();
            p.push(ext);
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum();
    drop(store);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Figures {
        ingest,
        samples,
        total,
        batches,
        tenant_month,
        top,
        all,
        disk,
        detail,
    }
}

/// One figure of a store's run, if it was measured.
type Column<'a> = Box<dyn Fn(&Figures) -> Option<f64> + 'a>;

fn main() {
    let tenants = env("TOLLGATE_BENCH_TENANTS", 10_000) as u32;
    let days = env("TOLLGATE_BENCH_DAYS", 1);
    let slots = std::env::var("TOLLGATE_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse::<i64>().ok())
        .map_or(days * 288, |h| h * 12);
    let origin = Slot::containing("2026-03-01T00:00Z".parse::<Timestamp>().expect("time")).0;
    let stores = std::env::var("TOLLGATE_BENCH_STORES").unwrap_or_else(|_| "both".into());
    let setup = Setup {
        traffic: Traffic::new(tenants),
        tenants,
        origin,
        first: origin + env("TOLLGATE_BENCH_FROM_DAY", 0) * 288,
        slots,
        per_batch: env("TOLLGATE_BENCH_SLOTS", 1).max(1),
        agents: env("TOLLGATE_BENCH_AGENTS", 0) as u32,
    };
    let writers = if setup.agents == 0 {
        "one writer appending every tenant".to_string()
    } else {
        format!("{} agents adding their share", setup.agents)
    };
    println!(
        "{tenants} tenants × 4 realms × 2 directions, {} slots from day {}, {} slot(s) per batch, {writers}",
        setup.slots,
        (setup.first - origin) / 288,
        setup.per_batch
    );
    let server;
    let c = if stores != "sqlite" {
        server = match std::env::var("TOLLGATE_BENCH_KEEP") {
            Ok(dir) => history_clickhouse::testing::Server::start_on(
                std::path::Path::new(&dir).join("clickhouse"),
                true,
            ),
            Err(_) => history_clickhouse::testing::Server::start(),
        };
        Some(clickhouse(&server.url, &setup))
    } else {
        None
    };
    let s = (stores != "clickhouse").then(|| sqlite(&setup));
    let rate = |f: &Figures| f.samples as f64 / f.ingest.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let any = c.as_ref().or(s.as_ref()).expect("a store");
    println!(
        "{} samples in {} batches ({:.0} samples a batch); {} stored in all runs",
        any.samples,
        any.batches,
        any.samples as f64 / any.batches as f64,
        any.total
    );
    let rows: Vec<(&str, Column)> = vec![
        ("ingest, samples/s", Box::new(|f| Some(rate(f)))),
        (
            "one batch, ms",
            Box::new(|f| Some(ms(f.ingest) / f.batches as f64)),
        ),
        (
            "one tenant's month by day, ms",
            Box::new(|f| Some(ms(f.tenant_month))),
        ),
        ("top 100 of the month, ms", Box::new(|f| Some(ms(f.top)))),
        (
            "every tenant's usage by day, ms",
            Box::new(|f| f.all.map(ms)),
        ),
        (
            "disk, bytes per sample",
            Box::new(|f| Some(f.disk as f64 / f.total as f64)),
        ),
        ("disk, MB", Box::new(|f| Some(f.disk as f64 / 1e6))),
    ];
    println!(
        "{:<36} {:>14} {:>14} {:>8}",
        "", "ClickHouse", "SQLite", "CH/SQL"
    );
    for (what, get) in rows {
        let a = c.as_ref().and_then(&get);
        let b = s.as_ref().and_then(&get);
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!("{what:<36} {:>14} {:>14} {ratio:>8}", show(a), show(b));
    }
    for (name, f) in [("ClickHouse", &c), ("SQLite", &s)] {
        if let Some(f) = f {
            if !f.detail.is_empty() {
                println!("{name}: {}", f.detail);
            }
        }
    }
}
