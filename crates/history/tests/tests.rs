//! The SQLite store: round trips, rollups, retention, freezing, and a crash
//! test that kills a writer with SIGKILL at random moments.

use accounting::*;
use history::*;
use jiff::tz::TimeZone;
use jiff::{civil::date, Timestamp};
use net_types::{RealmId, TenantId};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions { cache_mib: 16 }).unwrap()
}

fn key(tenant: u32, realm: u16, direction: Direction, band: Band) -> UsageKey {
    UsageKey {
        tenant: TenantId(tenant),
        realm: RealmId(realm),
        direction,
        band,
    }
}

fn sample(slot: i64, k: UsageKey, bytes: u64) -> Sample {
    Sample {
        slot: Slot(slot),
        key: k,
        bytes,
        packets: bytes / 100,
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
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

#[test]
fn append_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.last_state().unwrap(), None);
    let a = key(1, 1, Direction::Down, Band::Normal);
    let b = key(1, 2, Direction::Up, Band::Whole);
    let c = key(2, 1, Direction::Down, Band::Bulk);
    // Slots across a UTC day boundary (288 slots a day).
    let samples = vec![
        sample(287, a, 1000),
        sample(287, c, 5),
        sample(288, a, 2000),
        sample(288, b, 3000),
    ];
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &measured([287, 288]),
            state: b"state one",
        })
        .unwrap();
    let st = store.last_state().unwrap().unwrap();
    assert_eq!((st.sequence, st.blob.as_slice()), (1, &b"state one"[..]));
    let all = store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(1000),
        })
        .unwrap();
    assert_eq!(all, samples);
    let one = store
        .samples(&SampleQuery {
            tenants: Tenants::Only(vec![TenantId(1)]),
            from: Slot(288),
            to: Slot(289),
        })
        .unwrap();
    assert_eq!(one, vec![samples[2], samples[3]]);
    assert_eq!(store.coverage(Slot(0), Slot(288)).unwrap(), measured([287]));
    assert_eq!(store.batch_sequences().unwrap(), vec![1]);
}

#[test]
fn a_batch_is_all_or_nothing_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let a = key(1, 1, Direction::Down, Band::Whole);
    let first = [sample(10, a, 100)];
    let batch = Batch {
        sequence: 5,
        samples: &first,
        coverage: &measured([10]),
        state: b"s5",
    };
    store.append(&batch).unwrap();
    let e = store.append(&batch).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::AlreadyAppended {
                sequence: 5,
                last: 5
            }
        ),
        "{e}"
    );
    // A batch whose second sample collides with a stored one: nothing of it
    // is kept, not even its first sample or its state.
    let bad = [sample(11, a, 7), sample(10, a, 1)];
    let e = store
        .append(&Batch {
            sequence: 6,
            samples: &bad,
            coverage: &measured([11]),
            state: b"s6",
        })
        .unwrap_err();
    assert!(e.to_string().contains("tenant 1 realm 1 down whole"), "{e}");
    assert_eq!(store.last_state().unwrap().unwrap().blob, b"s5");
    assert_eq!(store.batch_sequences().unwrap(), vec![5]);
    let q = SampleQuery {
        tenants: Tenants::All,
        from: Slot(0),
        to: Slot(100),
    };
    assert_eq!(store.samples(&q).unwrap(), first);
    assert!(store.coverage(Slot(0), Slot(100)).unwrap().len() == 1);
    // Bytes beyond i64 are refused with the field named.
    let huge = [sample(12, a, u64::MAX)];
    let e = store
        .append(&Batch {
            sequence: 7,
            samples: &huge,
            coverage: &[],
            state: b"",
        })
        .unwrap_err();
    assert!(e.to_string().starts_with("batch.samples[0].bytes"), "{e}");
}

fn slot_at(s: &str) -> i64 {
    Slot::containing(ts(s)).0
}

#[test]
fn usage_by_local_day_and_month() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let a = key(3, 2, Direction::Up, Band::Normal);
    let a2 = key(3, 2, Direction::Up, Band::Bulk);
    let other = key(4, 2, Direction::Up, Band::Normal);
    // 21:30Z on 31 March is 23:30 in Berlin (CEST); 22:30Z is 00:30 on 1 April.
    let samples = vec![
        sample(slot_at("2026-03-31T21:30Z"), a, 1_000),
        sample(slot_at("2026-03-31T21:30Z"), a2, 500),
        sample(slot_at("2026-03-31T22:30Z"), a, 20_000),
        sample(slot_at("2026-04-02T10:00Z"), a, 300_000),
        sample(slot_at("2026-04-02T10:00Z"), other, 9),
    ];
    let mut sorted = samples.clone();
    sorted.sort_by_key(|s| (s.slot, s.key));
    store
        .append(&Batch {
            sequence: 1,
            samples: &sorted,
            coverage: &[],
            state: b"",
        })
        .unwrap();
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let q = |bucket, tenants| UsageQuery {
        tenants,
        from: ts("2026-03-01T00:00Z"),
        to: ts("2026-05-01T00:00Z"),
        bucket,
        zone: berlin.clone(),
    };
    let days = store
        .usage(&q(Bucket::Day, Tenants::Only(vec![TenantId(3)])))
        .unwrap();
    let got: Vec<_> = days.iter().map(|u| (u.bucket, u.bytes)).collect();
    assert_eq!(
        got,
        vec![
            (date(2026, 3, 31), 1_500),
            (date(2026, 4, 1), 20_000),
            (date(2026, 4, 2), 300_000)
        ]
    );
    let months = store.usage(&q(Bucket::Month, Tenants::All)).unwrap();
    let got: Vec<_> = months
        .iter()
        .map(|u| (u.tenant.0, u.bucket, u.bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, date(2026, 3, 1), 1_500),
            (3, date(2026, 4, 1), 320_000),
            (4, date(2026, 4, 1), 9)
        ]
    );
    // In UTC the 22:30Z sample stays in March.
    let utc = store
        .usage(&UsageQuery {
            zone: TimeZone::UTC,
            ..q(Bucket::Month, Tenants::Only(vec![TenantId(3)]))
        })
        .unwrap();
    assert_eq!(utc[0].bytes, 21_500);
}

fn frozen(label: &str, start: &str, end: &str, at: &str) -> FrozenPeriod {
    FrozenPeriod {
        label: label.into(),
        start: ts(start),
        end: ts(end),
        frozen_at: ts(at),
        bill: format!("{{\"period\":\"{label}\"}}"),
    }
}

#[test]
fn frozen_periods_are_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let jan = frozen(
        "2026-01",
        "2026-01-01T00:00Z",
        "2026-02-01T00:00Z",
        "2026-02-02T00:00Z",
    );
    store.freeze(&jan).unwrap();
    assert_eq!(store.frozen("2026-01").unwrap(), Some(jan.clone()));
    assert!(matches!(
        store.freeze(&jan),
        Err(StoreError::AlreadyFrozen(_))
    ));
    let early = frozen(
        "2026-02",
        "2026-02-01T00:00Z",
        "2026-03-01T00:00Z",
        "2026-02-20T00:00Z",
    );
    assert!(matches!(
        store.freeze(&early),
        Err(StoreError::PeriodNotClosed { .. })
    ));
    // Even by hand, the database refuses to change a frozen bill.
    let e = store
        .connection()
        .execute("UPDATE frozen_periods SET bill = 'x'", [])
        .unwrap_err();
    assert!(e.to_string().contains("immutable"));
    assert!(store
        .connection()
        .execute("DELETE FROM frozen_periods", [])
        .is_err());
    assert_eq!(store.frozen("2026-01").unwrap().unwrap().bill, jan.bill);
}

#[test]
fn retention_never_touches_an_unfrozen_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let a = key(1, 1, Direction::Down, Band::Whole);
    // One sample a day at noon from 1 January to 30 April 2026.
    let mut samples = Vec::new();
    let mut t = ts("2026-01-01T12:00Z");
    while t < ts("2026-05-01T00:00Z") {
        samples.push(sample(Slot::containing(t).0, a, 1));
        t = t.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
    }
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &[],
            state: b"",
        })
        .unwrap();
    let count = |s: &SqliteStore| {
        s.samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(i64::MAX / 2),
        })
        .unwrap()
        .len()
    };
    let now = ts("2026-07-15T00:00Z");
    let r = Retention::default();
    // Nothing frozen: raw samples stay, whatever their age.
    let report = store.apply_retention(now, &r).unwrap();
    assert_eq!(report.samples_deleted, 0);
    assert!(report
        .raw_held_back
        .unwrap()
        .contains("no period is frozen"));
    assert_eq!(count(&store), 120);
    // January frozen. 70 days before 15 July is 6 May, but only January
    // may go: February onwards is not frozen.
    store
        .freeze(&frozen(
            "2026-01",
            "2026-01-01T00:00Z",
            "2026-02-01T00:00Z",
            "2026-02-02T00:00Z",
        ))
        .unwrap();
    let report = store.apply_retention(now, &r).unwrap();
    assert_eq!(report.samples_deleted, 31);
    assert_eq!(count(&store), 120 - 31);
    assert_eq!(
        report.raw_cutoff,
        Some(Slot::containing(ts("2026-02-01T00:00Z")))
    );
    // Rollups are kept for years.
    let months = store
        .usage(&UsageQuery {
            tenants: Tenants::All,
            from: ts("2026-01-01T00:00Z"),
            to: ts("2026-05-01T00:00Z"),
            bucket: Bucket::Month,
            zone: TimeZone::UTC,
        })
        .unwrap();
    assert_eq!(
        months.iter().map(|m| m.bytes).collect::<Vec<_>>(),
        vec![31, 28, 31, 30]
    );
    // A retention of zero is refused by name.
    let bad = Retention {
        raw: jiff::SignedDuration::ZERO,
        ..r
    };
    let e = store.apply_retention(now, &bad).unwrap_err();
    assert!(e.to_string().starts_with("retention.raw"), "{e}");
}

#[test]
fn a_newer_schema_is_refused_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite");
    drop(open(&path));
    let store = open(&path);
    let n: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, SCHEMA_VERSION);
    store
        .connection()
        .execute(
            "INSERT INTO schema_migrations VALUES (99, 'from the future')",
            [],
        )
        .unwrap();
    drop(store);
    let e = SqliteStore::open(&path, &SqliteOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 99, .. }),
        "{e}"
    );
}

#[test]
fn accountant_store_and_bill_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite");
    let k = key(8, 2, Direction::Up, Band::Whole);
    let start = ts("2026-11-01T00:00Z").as_second();
    let mut sequence = 0;
    let mut total = 0u64;
    // Two daemon lives of six hours each, reads every 20 s, 250 kB each.
    for life in 0..2 {
        let mut store = open(&path);
        let mut acc = match store.last_state().unwrap() {
            Some(s) => {
                sequence = s.sequence;
                Accountant::resume(
                    Config::default(),
                    &AccountantState::decode(&s.blob).unwrap(),
                )
            }
            None => Accountant::new(Config::default()),
        };
        for i in 0..1080i64 {
            let n = life * 1080 + i;
            let t = Timestamp::from_second(start + n * 20).unwrap();
            let bytes = n as u64 * 250_000;
            let c = acc
                .observe(
                    t,
                    &[(
                        k,
                        Reading {
                            object: ObjectIdentity(1),
                            bytes,
                            packets: n as u64 * 200,
                        },
                    )],
                )
                .unwrap();
            sequence += 1;
            store
                .append(&Batch {
                    sequence,
                    samples: &c.samples,
                    coverage: &c.slots,
                    state: &acc.state().encode(),
                })
                .unwrap();
            total = bytes;
        }
    }
    let store = open(&path);
    let cycle = billing::BillingCycle::new(1, "UTC").unwrap();
    let p = cycle.period(2026, 11).unwrap();
    let samples = store
        .samples(&SampleQuery {
            tenants: Tenants::Only(vec![TenantId(8)]),
            from: p.first_slot(),
            to: p.end_slot(),
        })
        .unwrap();
    let coverage = store.coverage(p.first_slot(), p.end_slot()).unwrap();
    let rules = [billing::ChargeRule {
        name: "total".into(),
        realms: billing::RealmSelection::All,
        percentile: Some(billing::PercentileRule {
            missing: billing::MissingSamples::Skip,
            ..Default::default()
        }),
        commit: None,
        volume: Default::default(),
    }];
    let bill = billing::bill_tenant(&p, TenantId(8), &rules, &samples, &coverage).unwrap();
    let line = &bill.lines[0];
    // 12 h minus the open slot: 143 closed slots of 15 reads × 250 kB.
    assert_eq!(coverage.len(), 143);
    assert_eq!(line.volume.used.bytes(), 143 * 15 * 250_000);
    assert!(total > line.volume.used.bytes());
    // 3,750,000 bytes per slot: 100 kbit/s.
    assert_eq!(
        line.percentile.as_ref().unwrap().rate(),
        billing::BitRate(100_000)
    );
}

// ---- the crash test ----

const CRASH_ENV: &str = "TOLLGATE_HISTORY_CRASH_DB";
const KEYS_PER_BATCH: usize = 200;
const FIRST_SLOT: i64 = 6_000_000;

fn batch_samples(sequence: u64) -> Vec<Sample> {
    let mut out = Vec::with_capacity(KEYS_PER_BATCH);
    for t in 0..(KEYS_PER_BATCH / 4) as u32 {
        for realm in [1u16, 2] {
            for d in Direction::BOTH {
                out.push(Sample {
                    slot: Slot(FIRST_SLOT + sequence as i64),
                    key: key(t, realm, d, Band::Whole),
                    bytes: sequence * 1_000 + u64::from(t),
                    packets: 1,
                });
            }
        }
    }
    out
}

/// The writer that the crash test kills. A no-op unless the parent test
/// set the environment variable.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CRASH_ENV) else {
        return;
    };
    let mut store = open(Path::new(&path));
    let mut sequence = store.last_state().unwrap().map_or(0, |s| s.sequence);
    let stdout = std::io::stdout();
    // Bounded: the parent kills it long before.
    for _ in 0..100_000 {
        sequence += 1;
        let samples = batch_samples(sequence);
        let mut state = sequence.to_le_bytes().to_vec();
        state.resize(16 * 1024, 0xab);
        store
            .append(&Batch {
                sequence,
                samples: &samples,
                coverage: &measured([FIRST_SLOT + sequence as i64]),
                state: &state,
            })
            .unwrap();
        let mut out = stdout.lock();
        writeln!(out, "committed {sequence}").unwrap();
        out.flush().unwrap();
    }
}

fn check_after_crash(path: &Path, reported: &[u64]) -> usize {
    let store = open(path);
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    let seqs = store.batch_sequences().unwrap();
    // Contiguous from 1: no batch lost, none twice.
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    for r in reported {
        assert!(
            seqs.contains(r),
            "batch {r} was reported committed but is missing"
        );
    }
    let state = store.last_state().unwrap().unwrap();
    assert_eq!(state.sequence, seqs.len() as u64);
    assert_eq!(state.blob[..8], state.sequence.to_le_bytes());
    let all = store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(FIRST_SLOT),
            to: Slot(FIRST_SLOT + 1_000_000),
        })
        .unwrap();
    assert_eq!(all.len(), seqs.len() * KEYS_PER_BATCH);
    let mut expected: Vec<Sample> = seqs.iter().flat_map(|&s| batch_samples(s)).collect();
    expected.sort_by_key(|s| (s.slot, s.key));
    assert_eq!(all, expected);
    let raw: u64 = all.iter().map(|s| s.bytes).sum();
    let rollups = store.rollup_bytes().unwrap();
    assert_eq!(rollups.len(), 4);
    for (table, rolled) in rollups {
        assert_eq!(rolled, raw, "{table} rollup disagrees with the raw samples");
    }
    assert_eq!(
        store
            .coverage(Slot(FIRST_SLOT), Slot(FIRST_SLOT + 1_000_000))
            .unwrap()
            .len(),
        seqs.len()
    );
    seqs.len()
}

#[test]
fn kill_9_loses_nothing_committed_and_corrupts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite");
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut reported = Vec::new();
    let mut kills = 0;
    for round in 0..10 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CRASH_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    sink.lock().unwrap().push(n.parse::<u64>().unwrap());
                }
            }
        });
        // Wait for the first commit of this life, then kill at a random
        // moment: mid-transaction, mid-fsync, mid-checkpoint, wherever.
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_micros(next() % 300_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        kills += 1;
        let this_life = seen.lock().unwrap().clone();
        assert!(
            !this_life.is_empty(),
            "round {round}: the writer never committed"
        );
        reported.extend(this_life);
        let stored = check_after_crash(&path, &reported);
        eprintln!("round {round}: {stored} batches stored after the kill");
    }
    let stored = check_after_crash(&path, &reported);
    assert_eq!(kills, 10);
    assert!(
        stored >= reported.len(),
        "{stored} stored, {} reported",
        reported.len()
    );
}

#[test]
fn top_tenants_rank_a_local_month_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    // Berlin's November is [31 Oct 23:00Z, 30 Nov 23:00Z): whole UTC days
    // in the middle and single hours at both ends, from both rollups.
    let inside = [
        "2026-10-31T23:10Z",
        "2026-11-01T00:00Z",
        "2026-11-15T12:00Z",
        "2026-11-30T22:55Z",
    ];
    let outside = ["2026-10-31T22:55Z", "2026-11-30T23:00Z"];
    let mut samples = Vec::new();
    for (n, t) in inside.iter().chain(&outside).enumerate() {
        for tenant in 1..=5u32 {
            let bytes = u64::from(tenant) * 1000 + n as u64;
            samples.push(sample(
                slot_at(t),
                key(tenant, 1, Direction::Down, Band::Whole),
                bytes,
            ));
            // Tenant 5 sends nothing up; tenant 1 sends the most.
            if tenant != 5 {
                let up = key(tenant, 2, Direction::Up, Band::Normal);
                samples.push(sample(slot_at(t), up, 10_000 / u64::from(tenant)));
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
    let in_month = |s: &&Sample| inside.iter().any(|t| s.slot.0 == slot_at(t));
    let expected = |tenant: u32| {
        let mut t = TenantTotal::new(TenantId(tenant));
        for s in samples
            .iter()
            .filter(in_month)
            .filter(|s| s.key.tenant.0 == tenant)
        {
            match s.key.direction {
                Direction::Down => {
                    (t.down_bytes, t.down_packets) =
                        (t.down_bytes + s.bytes, t.down_packets + s.packets)
                }
                Direction::Up => {
                    (t.up_bytes, t.up_packets) = (t.up_bytes + s.bytes, t.up_packets + s.packets)
                }
            }
        }
        t
    };
    let query = |by, limit| TopQuery {
        from: ts("2026-10-31T23:00Z"),
        to: ts("2026-11-30T23:00Z"),
        by,
        limit,
    };
    let top = store.top_tenants(&query(RankBy::Total, 3)).unwrap();
    // Totals: 1 → 44,006; 2 → 28,006; 4 → 26,006; 3 → 25,338; 5 → 20,006.
    assert_eq!(top, vec![expected(1), expected(2), expected(4)]);
    let down = store.top_tenants(&query(RankBy::Down, 10)).unwrap();
    let order: Vec<u32> = down.iter().map(|t| t.tenant.0).collect();
    assert_eq!(order, vec![5, 4, 3, 2, 1]);
    let up = store.top_tenants(&query(RankBy::Up, 10)).unwrap();
    assert_eq!(
        up.len(),
        4,
        "a tenant with no bytes up is not ranked by them"
    );
    // An empty range, and a range with no data, rank nobody.
    let none = TopQuery {
        to: ts("2026-10-31T23:00Z"),
        ..query(RankBy::Total, 10)
    };
    assert!(store.top_tenants(&none).unwrap().is_empty());
    let later = TopQuery {
        from: ts("2027-01-01T00:00Z"),
        to: ts("2027-02-01T00:00Z"),
        ..query(RankBy::Total, 10)
    };
    assert!(store.top_tenants(&later).unwrap().is_empty());
}

#[test]
fn retention_cuts_inside_an_hour_at_a_half_hour_period_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    // Kolkata (+05:30): January ends at 31 January 18:30Z, mid-hour.
    let first = slot_at("2026-01-31T17:00Z");
    let samples: Vec<Sample> = (first..first + 36)
        .flat_map(|s| [1u32, 2].map(|t| sample(s, key(t, 1, Direction::Up, Band::Whole), 5)))
        .collect();
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &measured(first..first + 36),
            state: b"",
        })
        .unwrap();
    store
        .freeze(&frozen(
            "2026-01",
            "2026-01-01T00:00+05:30",
            "2026-02-01T00:00+05:30",
            "2026-03-01T00:00Z",
        ))
        .unwrap();
    let report = store
        .apply_retention(ts("2026-07-01T00:00Z"), &Retention::default())
        .unwrap();
    let cut = slot_at("2026-01-31T18:30Z");
    assert_eq!(report.raw_cutoff, Some(Slot(cut)));
    // 17:00 to 18:30 is 18 slots of two tenants.
    assert_eq!(report.samples_deleted, 36);
    let left = store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(i64::MAX / 2),
        })
        .unwrap();
    let expected: Vec<Sample> = samples
        .iter()
        .filter(|s| s.slot.0 >= cut)
        .copied()
        .collect();
    assert_eq!(left, expected);
    assert_eq!(store.coverage(Slot(0), Slot(cut + 100)).unwrap().len(), 18);
}
