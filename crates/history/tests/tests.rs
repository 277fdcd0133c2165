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

mod exact_usage;
mod hours_by_day;
mod refusals;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions { cache_mib: 16 }).unwrap()
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
fn a_batch_is_never_applied_twice_and_a_colliding_sample_is_refused_alone() {
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
    // A batch whose second sample collides with a stored one: that sample
    // alone is refused and quarantined; the rest of the batch, its coverage
    // and its state commit.
    let bad = [sample(11, a, 7), sample(10, a, 1)];
    let report = store
        .append(&Batch {
            sequence: 6,
            samples: &bad,
            coverage: &measured([11]),
            state: b"s6",
        })
        .unwrap();
    assert_eq!(report.stored, 1);
    assert_eq!(
        report.refused,
        vec![Refusal {
            index: 1,
            sample: bad[1],
            reason: RefusalReason::AlreadyStored
        }]
    );
    assert_eq!((report.quarantined, report.dropped), (1, 0));
    assert!(
        report.refused[0]
            .to_string()
            .contains("tenant 1 realm 1 down whole"),
        "{}",
        report.refused[0]
    );
    assert_eq!(store.last_state().unwrap().unwrap().blob, b"s6");
    assert_eq!(store.batch_sequences().unwrap(), vec![5, 6]);
    let q = SampleQuery {
        tenants: Tenants::All,
        from: Slot(0),
        to: Slot(100),
    };
    assert_eq!(store.samples(&q).unwrap(), vec![first[0], bad[0]]);
    assert_eq!(store.coverage(Slot(0), Slot(100)).unwrap().len(), 2);
    // Bytes beyond the plausible are refused with the sample named, and
    // so is a slot and key twice in one append (the first one stays).
    let huge = [sample(12, a, u64::MAX), sample(13, a, 5), sample(13, a, 6)];
    let report = store
        .append(&Batch {
            sequence: 7,
            samples: &huge,
            coverage: &[],
            state: b"",
        })
        .unwrap();
    let reasons: Vec<_> = report.refused.iter().map(|r| (r.index, r.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (0, RefusalReason::TooManyBytes),
            (2, RefusalReason::TwiceInBatch)
        ]
    );
    assert!(
        report.refused[0].to_string().starts_with("samples[0]"),
        "{}",
        report.refused[0]
    );
    let q = store.quarantined(10).unwrap();
    assert_eq!((q.refused, q.dropped, q.held), (3, 0, 3));
    let kept: Vec<_> = q
        .samples
        .iter()
        .map(|x| (x.writer.as_str(), x.sequence, x.refusal))
        .collect();
    assert_eq!(
        kept,
        vec![
            (
                ACCOUNTANT_WRITER,
                6,
                report_of(1, bad[1], RefusalReason::AlreadyStored)
            ),
            (
                ACCOUNTANT_WRITER,
                7,
                report_of(0, huge[0], RefusalReason::TooManyBytes)
            ),
            (
                ACCOUNTANT_WRITER,
                7,
                report_of(2, huge[2], RefusalReason::TwiceInBatch)
            ),
        ]
    );
}

fn report_of(index: usize, sample: Sample, reason: RefusalReason) -> Refusal {
    Refusal {
        index,
        sample,
        reason,
    }
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
    assert!(u128::from(total) > line.volume.used.bytes());
    // 3,750,000 bytes per slot: 100 kbit/s.
    assert_eq!(
        line.percentile.as_ref().unwrap().rate(),
        billing::BitRate(100_000)
    );
}

// ---- the crash test ----

const CRASH_ENV: &str = "TOLLGATE_HISTORY_CRASH_DB";
/// Set (to anything) when the child also adds flow batches.
const CRASH_ADDS_ENV: &str = "TOLLGATE_HISTORY_CRASH_ADDS";
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

/// The flow writer's batch `sequence`: 20 tenants' flow samples in the
/// accountant's batch of the same number's slot, and one more into the
/// same slot and key every time, which sums.
fn flow_samples(sequence: u64) -> Vec<Sample> {
    let mut out: Vec<Sample> = (0..20)
        .map(|t| Sample {
            slot: Slot(FIRST_SLOT + sequence as i64),
            key: flow(key(t, 1, Direction::Down, Band::Whole)),
            bytes: sequence * 7 + u64::from(t),
            packets: 1,
        })
        .collect();
    out.push(Sample {
        slot: Slot(FIRST_SLOT + 1),
        key: flow(key(0, 2, Direction::Up, Band::Whole)),
        bytes: sequence,
        packets: 1,
    });
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
    let adds = std::env::var_os(CRASH_ADDS_ENV).is_some();
    let mut added = store
        .writer_state("flow")
        .unwrap()
        .map_or(0, |s| s.sequence);
    let stdout = std::io::stdout();
    // Bounded: the parent kills it long before.
    for _ in 0..100_000 {
        if adds && added < sequence {
            added += 1;
            let samples = flow_samples(added);
            let state = added.to_le_bytes();
            store
                .add(&AddBatch {
                    writer: "flow",
                    sequence: added,
                    samples: &samples,
                    coverage: &measured([FIRST_SLOT + added as i64]),
                    state: &state,
                })
                .unwrap();
            let mut out = stdout.lock();
            writeln!(out, "added {added}").unwrap();
            out.flush().unwrap();
            continue;
        }
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

fn check_after_crash(path: &Path, reported: &[u64], reported_adds: &[u64]) -> usize {
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
    let added = store.writer_state("flow").unwrap();
    let added = added.map_or(0, |st| {
        assert_eq!(st.blob, st.sequence.to_le_bytes());
        st.sequence
    });
    for r in reported_adds {
        assert!(*r <= added, "add {r} was reported committed but is missing");
    }
    let mut expected: Vec<Sample> = seqs.iter().flat_map(|&s| batch_samples(s)).collect();
    expected.extend((1..=added).flat_map(flow_samples));
    expected.sort_by_key(|s| (s.slot, s.key));
    // The flow writer's repeated slot and key is stored once, summed.
    let mut summed: Vec<Sample> = Vec::new();
    for s in expected {
        match summed.last_mut() {
            Some(l) if (l.slot, l.key) == (s.slot, s.key) => {
                l.bytes += s.bytes;
                l.packets += s.packets;
            }
            _ => summed.push(s),
        }
    }
    assert_eq!(all, summed);
    let raw: u64 = all.iter().map(|s| s.bytes).sum();
    let rollups = store.rollup_bytes().unwrap();
    assert_eq!(rollups.len(), 4);
    for (table, rolled) in rollups {
        assert_eq!(
            rolled,
            u128::from(raw),
            "{table} rollup disagrees with the raw samples"
        );
    }
    assert_eq!(
        store
            .coverage(Slot(FIRST_SLOT), Slot(FIRST_SLOT + 1_000_000))
            .unwrap()
            .len(),
        seqs.len().max(added as usize)
    );
    seqs.len()
}

#[test]
fn kill_9_loses_nothing_committed_and_corrupts_nothing() {
    kill_9_rounds(false);
}

/// The same with a flow writer adding to the accountant's slots in turn:
/// no add lost or counted twice, sums exact, rollups equal to the raw.
#[test]
fn kill_9_while_adding_loses_nothing_and_counts_nothing_twice() {
    kill_9_rounds(true);
}

fn kill_9_rounds(adds: bool) {
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
    let reported_adds = Arc::new(Mutex::new(Vec::new()));
    let mut kills = 0;
    for round in 0..10 {
        let mut command = Command::new(&exe);
        command
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CRASH_ENV, &path);
        if adds {
            command.env(CRASH_ADDS_ENV, "1");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let add_sink = reported_adds.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    sink.lock().unwrap().push(n.parse::<u64>().unwrap());
                }
                if let Some(n) = line.strip_prefix("added ") {
                    add_sink.lock().unwrap().push(n.parse::<u64>().unwrap());
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
        let stored = check_after_crash(&path, &reported, &reported_adds.lock().unwrap());
        eprintln!("round {round}: {stored} batches stored after the kill");
    }
    let stored = check_after_crash(&path, &reported, &reported_adds.lock().unwrap());
    if adds {
        assert!(!reported_adds.lock().unwrap().is_empty());
    }
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
            t.add(s.key.direction, s.bytes.into(), s.packets.into())
                .unwrap();
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

// ---- additive appends from other writers (flow data) ----

fn flow(k: UsageKey) -> UsageKey {
    UsageKey {
        source: Source::Flow,
        ..k
    }
}

fn all_samples(store: &SqliteStore) -> Vec<Sample> {
    store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(0),
            to: Slot(i64::MAX / 2),
        })
        .unwrap()
}

/// Every rollup table holds the raw samples' byte sum.
fn assert_rollups_match(store: &SqliteStore) {
    let raw: u64 = all_samples(store).iter().map(|s| s.bytes).sum();
    for (table, rolled) in store.rollup_bytes().unwrap() {
        assert_eq!(
            rolled,
            u128::from(raw),
            "{table} rollup disagrees with the raw samples"
        );
    }
}

fn add_batch<'a>(
    writer: &'a str,
    sequence: u64,
    samples: &'a [Sample],
    coverage: &'a [SlotCoverage],
) -> AddBatch<'a> {
    AddBatch {
        writer,
        sequence,
        samples,
        coverage,
        state: b"",
    }
}

#[test]
fn add_twice_to_the_same_slot_and_key_sums() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let k = flow(key(1, 1, Direction::Down, Band::Whole));
    let s = slot_at("2026-11-03T10:05Z");
    store
        .add(&add_batch("flow", 1, &[sample(s, k, 1_000)], &[]))
        .unwrap();
    // The same slot and key again, twice in one batch and once more in
    // another slot of the same hour.
    let more = [sample(s + 1, k, 7), sample(s, k, 300), sample(s, k, 200)];
    store.add(&add_batch("flow", 2, &more, &[])).unwrap();
    assert_eq!(
        all_samples(&store),
        vec![
            Sample {
                slot: Slot(s),
                key: k,
                bytes: 1_500,
                packets: 10 + 3 + 2,
            },
            sample(s + 1, k, 7)
        ]
    );
    assert_rollups_match(&store);
    // A sample that would take the slot and key past 2^50 bytes is refused
    // alone; the batch's other sample and its state commit.
    let big = [sample(s, k, MAX_SAMPLE_BYTES - 1_000), sample(s + 2, k, 9)];
    let report = store.add(&add_batch("flow", 3, &big, &[])).unwrap();
    assert_eq!(report.stored, 1);
    assert_eq!(
        report.refused[0].reason,
        RefusalReason::SumTooLarge {
            bytes: u128::from(MAX_SAMPLE_BYTES) + 500,
            packets: 15 + u128::from(big[0].packets),
        }
    );
    assert_eq!(all_samples(&store)[0].bytes, 1_500);
    assert_eq!(all_samples(&store)[2], big[1]);
    assert_eq!(store.writer_state("flow").unwrap().unwrap().sequence, 3);
    assert_rollups_match(&store);
    let q = store.quarantined(10).unwrap();
    assert_eq!(q.samples[0].writer, "flow");
    assert_eq!(q.samples[0].refusal, report.refused[0]);
}

#[test]
fn added_flow_samples_sit_beside_the_accountants_and_roll_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let kernel = key(4, 2, Direction::Up, Band::Normal);
    let other = key(5, 2, Direction::Down, Band::Whole);
    let s = slot_at("2026-11-03T23:55Z");
    let appended = [sample(s, kernel, 10_000), sample(s, other, 400)];
    store
        .append(&Batch {
            sequence: 1,
            samples: &appended,
            coverage: &measured([s]),
            state: b"accountant",
        })
        .unwrap();
    // Late flow data for the slot the accountant closed, and for the next
    // day (a new hour and day row).
    let added = [
        sample(s, flow(kernel), 2_500),
        sample(s + 1, flow(kernel), 100),
        sample(s, flow(key(4, 3, Direction::Down, Band::Whole)), 50),
    ];
    store.add(&add_batch("flow", 1, &added, &[])).unwrap();
    let mut expected: Vec<Sample> = appended.iter().chain(&added).copied().collect();
    expected.sort_by_key(|x| (x.slot, x.key));
    let got = all_samples(&store);
    assert_eq!(got, expected);
    // The kernel and flow samples of the same tenant, realm, direction
    // and band are two samples, the kernel's first.
    assert_eq!(got[0].key, kernel);
    assert_eq!(got[1].key, flow(kernel));
    let one = store
        .samples(&SampleQuery {
            tenants: Tenants::Only(vec![TenantId(4)]),
            from: Slot(s),
            to: Slot(s + 1),
        })
        .unwrap();
    assert_eq!(one.len(), 3);
    assert_rollups_match(&store);
    // Usage and the ranking add kernel and flow figures up.
    let usage = store
        .usage(&UsageQuery {
            tenants: Tenants::Only(vec![TenantId(4)]),
            from: ts("2026-11-01T00:00Z"),
            to: ts("2026-12-01T00:00Z"),
            bucket: Bucket::Day,
            zone: TimeZone::UTC,
        })
        .unwrap();
    let got: Vec<_> = usage
        .iter()
        .map(|u| (u.realm.0, u.direction, u.bucket.day(), u.bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, Direction::Up, 3, 12_500),
            (2, Direction::Up, 4, 100),
            (3, Direction::Down, 3, 50),
        ]
    );
    let top = store
        .top_tenants(&TopQuery {
            from: ts("2026-11-01T00:00Z"),
            to: ts("2026-12-01T00:00Z"),
            by: RankBy::Total,
            limit: 10,
        })
        .unwrap();
    let got: Vec<_> = top
        .iter()
        .map(|t| (t.tenant.0, t.down_bytes, t.up_bytes))
        .collect();
    assert_eq!(got, vec![(4, 50, 12_600), (5, 400, 0)]);
    // The accountant's state is its own.
    assert_eq!(store.last_state().unwrap().unwrap().blob, b"accountant");
    assert_eq!(store.batch_sequences().unwrap(), vec![1]);
}

#[test]
fn a_writers_sequence_is_never_applied_twice_and_its_state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    assert_eq!(store.writer_state("flow").unwrap(), None);
    let k = flow(key(1, 1, Direction::Down, Band::Whole));
    let first = [sample(100, k, 1_000)];
    let coverage = measured([100]);
    let batch = AddBatch {
        state: b"flow state five",
        ..add_batch("flow", 5, &first, &coverage)
    };
    store.add(&batch).unwrap();
    let st = store.writer_state("flow").unwrap().unwrap();
    assert_eq!(
        (st.sequence, st.blob.as_slice()),
        (5, &b"flow state five"[..])
    );
    // A retried batch, and an older one, are refused: nothing counts twice.
    for sequence in [5, 4] {
        let e = store.add(&AddBatch { sequence, ..batch }).unwrap_err();
        assert!(
            matches!(e, StoreError::AlreadyAppended { last: 5, .. }),
            "{e}"
        );
    }
    assert_eq!(all_samples(&store), first);
    // Each writer has its own sequence; the accountant's is apart.
    store
        .add(&AddBatch {
            state: b"other",
            ..add_batch("flow-b", 1, &first, &[])
        })
        .unwrap();
    assert_eq!(
        store.writer_state("flow-b").unwrap().unwrap().blob,
        b"other"
    );
    assert_eq!(store.writer_state("flow").unwrap().unwrap().sequence, 5);
    assert_eq!(store.last_state().unwrap(), None);
    store
        .append(&Batch {
            sequence: 1,
            samples: &[],
            coverage: &[],
            state: b"acc",
        })
        .unwrap();
    assert_eq!(all_samples(&store)[0].bytes, 2_000);
    // A later state replaces the earlier one.
    store
        .add(&AddBatch {
            state: b"six",
            ..add_batch("flow", 6, &[], &[])
        })
        .unwrap();
    let st = store.writer_state("flow").unwrap().unwrap();
    assert_eq!((st.sequence, st.blob.as_slice()), (6, &b"six"[..]));
    // A writer needs a name.
    let e = store.add(&add_batch("", 1, &[], &[])).unwrap_err();
    assert!(e.to_string().starts_with("batch.writer"), "{e}");
}

#[test]
fn coverage_from_two_writers_keeps_the_better_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let cov = |slot, status| SlotCoverage {
        slot: Slot(slot),
        status,
    };
    use SlotStatus::*;
    store
        .append(&Batch {
            sequence: 1,
            samples: &[],
            coverage: &[cov(10, Partial), cov(11, Measured), cov(12, Estimated)],
            state: b"",
        })
        .unwrap();
    let added = [
        cov(10, Measured),
        cov(11, Estimated),
        cov(12, Partial),
        cov(13, Partial),
        cov(13, Estimated),
    ];
    store.add(&add_batch("flow", 1, &[], &added)).unwrap();
    // The accountant covering a slot the flow writer covered first.
    store
        .append(&Batch {
            sequence: 2,
            samples: &[],
            coverage: &[cov(13, Measured), cov(14, Partial)],
            state: b"",
        })
        .unwrap();
    assert_eq!(
        store.coverage(Slot(0), Slot(100)).unwrap(),
        vec![
            cov(10, Measured),
            cov(11, Measured),
            cov(12, Estimated),
            cov(13, Measured),
            cov(14, Partial)
        ]
    );
}

#[test]
fn samples_added_into_a_frozen_period_are_kept_and_the_bill_does_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    let jan = frozen(
        "2026-01",
        "2026-01-01T00:00Z",
        "2026-02-01T00:00Z",
        "2026-02-02T00:00Z",
    );
    store.freeze(&jan).unwrap();
    let late = [sample(
        slot_at("2026-01-31T23:55Z"),
        flow(key(2, 1, Direction::Down, Band::Whole)),
        9_000,
    )];
    store.add(&add_batch("flow", 1, &late, &[])).unwrap();
    assert_eq!(all_samples(&store), late);
    assert_eq!(store.frozen("2026-01").unwrap(), Some(jan));
    assert_rollups_match(&store);
}

// ---- daily compaction ----

/// A small deterministic generator, so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Model = std::collections::BTreeMap<(Slot, UsageKey), (u64, u64)>;

fn model_samples(model: &Model, tenants: Option<&[u32]>, from: i64, to: i64) -> Vec<Sample> {
    model
        .iter()
        .filter(|((slot, k), _)| {
            slot.0 >= from && slot.0 < to && tenants.is_none_or(|l| l.contains(&k.tenant.0))
        })
        .map(|(&(slot, key), &(bytes, packets))| Sample {
            slot,
            key,
            bytes,
            packets,
        })
        .collect()
}

fn random_key(rng: &mut Rng, tenants: u64) -> UsageKey {
    let band = [Band::Whole, Band::Interactive, Band::Normal, Band::Bulk][rng.below(4) as usize];
    let direction = Direction::BOTH[rng.below(2) as usize];
    let k = key(
        rng.below(tenants) as u32,
        rng.below(3) as u16,
        direction,
        band,
    );
    if rng.below(3) == 0 {
        flow(k)
    } else {
        k
    }
}

/// Everything a reader can see of the samples, over some ranges.
fn every_read(store: &SqliteStore, rng: &mut Rng, first: i64, days: i64) -> Vec<String> {
    let mut out = Vec::new();
    let end = first + days * 288;
    out.push(format!("{:?}", all_samples(store)));
    for _ in 0..6 {
        let a = first - 5 + rng.below(days as u64 * 288 + 10) as i64;
        let b = a + rng.below(700) as i64;
        let list: Vec<TenantId> = (0..rng.below(3) + 1)
            .map(|_| TenantId(rng.below(5) as u32))
            .collect();
        for tenants in [Tenants::All, Tenants::Only(list)] {
            let q = SampleQuery {
                tenants,
                from: Slot(a),
                to: Slot(b),
            };
            out.push(format!("{:?}", store.samples(&q).unwrap()));
        }
    }
    let t = |slot: i64| Timestamp::from_second(slot * 300).unwrap();
    out.push(format!(
        "{:?}",
        store
            .usage(&UsageQuery {
                tenants: Tenants::All,
                from: t(first),
                to: t(end),
                bucket: Bucket::Day,
                zone: TimeZone::UTC,
            })
            .unwrap()
    ));
    out.push(format!(
        "{:?}",
        store
            .top_tenants(&TopQuery {
                from: t(first),
                to: t(end),
                by: RankBy::Total,
                limit: 3,
            })
            .unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.coverage(Slot(first), Slot(end)).unwrap()
    ));
    out.push(format!("{:?}", store.rollup_bytes().unwrap()));
    out
}

fn count_rows(store: &SqliteStore, table: &str) -> i64 {
    store
        .connection()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Random histories of kernel and flow samples over five days: every read
/// is the same before and after compaction (in steps of random size), and
/// equal to a model; appends and adds after it land where they should.
#[test]
fn compaction_changes_no_read_and_later_writes_merge_into_day_rows() {
    let first = slot_at("2026-11-02T00:00Z");
    let days = 5;
    for case in 0..24u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((case + 1) * 0x1000_0001));
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(&dir.path().join("h.sqlite"));
        let mut model = Model::new();
        let mut sequence = 0;
        let mut added = 0;
        for _ in 0..6 {
            let mut batch: Vec<Sample> = (0..rng.below(60) + 1)
                .map(|_| {
                    let slot = first + rng.below(days as u64 * 288) as i64;
                    sample(slot, random_key(&mut rng, 5), rng.below(1 << 40))
                })
                .collect();
            if rng.below(2) == 0 {
                batch.sort_by_key(|s| (s.slot, s.key));
                batch.dedup_by_key(|s| (s.slot, s.key));
                batch.retain(|s| !model.contains_key(&(s.slot, s.key)));
                sequence += 1;
                let coverage: Vec<SlotCoverage> = measured(batch.iter().map(|s| s.slot.0));
                store
                    .append(&Batch {
                        sequence,
                        samples: &batch,
                        coverage: &coverage,
                        state: b"",
                    })
                    .unwrap();
            } else {
                added += 1;
                store.add(&add_batch("flow", added, &batch, &[])).unwrap();
            }
            for s in &batch {
                let e = model.entry((s.slot, s.key)).or_default();
                (e.0, e.1) = (e.0 + s.bytes, e.1 + s.packets);
            }
        }
        assert_eq!(
            all_samples(&store),
            model_samples(&model, None, 0, i64::MAX)
        );
        let seed = rng.0;
        let before = every_read(&store, &mut Rng(seed), first, days);
        // "Now" is the end of day 4: days 0 to 2 are old enough.
        let now = Timestamp::from_second((first + 4 * 288) * 300).unwrap();
        let mut compacted = 0;
        loop {
            let limit = rng.below(4) as usize + 1;
            let r = store.compact(now, limit).unwrap();
            assert!(r.tenant_days as usize <= limit, "case {case}: {r:?}");
            compacted += r.tenant_days;
            assert_eq!(
                every_read(&store, &mut Rng(seed), first, days),
                before,
                "case {case}"
            );
            if r.done {
                break;
            }
        }
        assert!(compacted > 0, "case {case}");
        assert_eq!(count_rows(&store, "samples_days") as u64, compacted);
        let hour_rows: Vec<i64> = {
            let mut st = store
                .connection()
                .prepare("SELECT id FROM samples")
                .unwrap();
            let rows = st.query_map([], |r| r.get(0)).unwrap();
            rows.map(|r| r.unwrap()).collect()
        };
        let first_day = first / 288;
        assert!(
            hour_rows.iter().all(|id| (id >> 32) / 24 >= first_day + 3),
            "case {case}: hours of days 0 to 2 are left"
        );
        // Nothing more to do at the same time.
        let again = store.compact(now, 100).unwrap();
        assert_eq!((again.tenant_days, again.done), (0, true));
        // Writes into compacted days merge into their rows: an add sums,
        // an append of a new key merges, a stored key is refused.
        let days_before = count_rows(&store, "samples_days");
        let late: Vec<Sample> = (0..20)
            .map(|_| {
                let slot = first + rng.below(3 * 288) as i64;
                sample(slot, random_key(&mut rng, 5), rng.below(1 << 30))
            })
            .collect();
        added += 1;
        store.add(&add_batch("flow", added, &late, &[])).unwrap();
        for s in &late {
            let e = model.entry((s.slot, s.key)).or_default();
            (e.0, e.1) = (e.0 + s.bytes, e.1 + s.packets);
        }
        let mut fresh: Vec<Sample> = late
            .iter()
            .map(|s| Sample {
                key: UsageKey {
                    realm: RealmId(9),
                    ..s.key
                },
                ..*s
            })
            .collect();
        fresh.sort_by_key(|s| (s.slot, s.key));
        fresh.dedup_by_key(|s| (s.slot, s.key));
        sequence += 1;
        store
            .append(&Batch {
                sequence,
                samples: &fresh,
                coverage: &[],
                state: b"",
            })
            .unwrap();
        for s in &fresh {
            model.insert((s.slot, s.key), (s.bytes, s.packets));
        }
        sequence += 1;
        let report = store
            .append(&Batch {
                sequence,
                samples: &fresh[..1],
                coverage: &[],
                state: b"",
            })
            .unwrap();
        assert_eq!(
            report.refused[0].reason,
            RefusalReason::AlreadyStored,
            "case {case}"
        );
        assert_eq!(
            all_samples(&store),
            model_samples(&model, None, 0, i64::MAX),
            "case {case}"
        );
        // A compacted tenant's day got no hour rows back.
        assert_eq!(count_rows(&store, "samples_days"), days_before);
        for id in {
            let mut st = store
                .connection()
                .prepare("SELECT id FROM samples")
                .unwrap();
            let rows = st.query_map([], |r| r.get::<_, i64>(0)).unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>()
        } {
            let (day, tenant) = ((id >> 32).div_euclid(24), id & 0xffff_ffff);
            let day_id = day << 32 | tenant;
            let both: i64 = store
                .connection()
                .query_row(
                    "SELECT COUNT(*) FROM samples_days WHERE id = ?1",
                    [day_id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(both, 0, "case {case}: a day row beside hour rows");
        }
        assert_rollups_match(&store);
        let list = [1u32, 3];
        let one = store
            .samples(&SampleQuery {
                tenants: Tenants::Only(list.map(TenantId).to_vec()),
                from: Slot(first + 100),
                to: Slot(first + 900),
            })
            .unwrap();
        assert_eq!(
            one,
            model_samples(&model, Some(&list), first + 100, first + 900)
        );
    }
}

#[test]
fn retention_deletes_compacted_days_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir.path().join("h.sqlite"));
    // Kolkata (+05:30): January ends at 31 January 18:30Z, inside a
    // compacted day. Samples every hour from 30 January to 1 February.
    let first = slot_at("2026-01-30T00:00Z");
    let samples: Vec<Sample> = (0..72)
        .flat_map(|h| {
            [1u32, 2].map(|t| sample(first + h * 12, key(t, 1, Direction::Up, Band::Whole), 5))
        })
        .collect();
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &[],
            state: b"",
        })
        .unwrap();
    let r = store.compact(ts("2026-03-01T00:00Z"), 1_000).unwrap();
    assert_eq!((r.tenant_days, r.hour_rows, r.done), (6, 144, true));
    assert_eq!(count_rows(&store, "samples"), 0);
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
    // 30 January and 31 January up to 18:00 (19 hours), two tenants.
    assert_eq!(report.samples_deleted, (24 + 19) * 2);
    let expected: Vec<Sample> = samples
        .iter()
        .filter(|s| s.slot.0 >= cut)
        .copied()
        .collect();
    assert_eq!(all_samples(&store), expected);
    // The two tenants' 31 January rows were rewritten, 30 January's gone.
    assert_eq!(count_rows(&store, "samples_days"), 4);
}

#[test]
fn the_conformance_suite_passes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let transcripts = history::conformance::run(&mut || {
        n += 1;
        Box::new(open(&dir.path().join(format!("c{n}.sqlite"))))
    });
    assert_eq!(transcripts.len(), history::conformance::CHECKS.len());
}
