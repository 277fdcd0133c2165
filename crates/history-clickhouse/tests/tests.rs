//! The ClickHouse store against a real `clickhouse-server` started by the
//! test (see `history_clickhouse::testing`): the history's conformance
//! suite on both stores, answer for answer, and what only this store has
//! to show (a retried insert that had landed, the schema's version).

use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store, StoreError};
use history_clickhouse::testing::{server, Server};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore, SCHEMA_VERSION};
use net_types::{RealmId, TenantId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod flows;

static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn options(server: &Server) -> ClickHouseOptions {
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    ClickHouseOptions {
        url: server.url.clone(),
        database: format!("t{n}"),
        timeout: Duration::from_secs(60),
    }
}

fn open(server: &Server) -> ClickHouseStore {
    ClickHouseStore::open(&options(server)).expect("open the ClickHouse store")
}

#[test]
fn the_conformance_suite_gives_the_same_answers_on_both_stores() {
    let Some(server) = server("the_conformance_suite_gives_the_same_answers_on_both_stores") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a folder");
    let mut n = 0;
    let sqlite = history::conformance::run(&mut || {
        n += 1;
        let path = dir.path().join(format!("c{n}.sqlite"));
        Box::new(SqliteStore::open(&path, &SqliteOptions { cache_mib: 16 }).expect("sqlite"))
    });
    let clickhouse = history::conformance::run(&mut || Box::new(open(&server)));
    for ((name, a), (_, b)) in sqlite.iter().zip(&clickhouse) {
        assert_eq!(a, b, "{name}: the stores answer differently");
    }
}

#[test]
fn a_retried_batch_whose_insert_landed_counts_once() {
    let Some(server) = server("a_retried_batch_whose_insert_landed_counts_once") else {
        return;
    };
    let options = options(&server);
    let mut store = ClickHouseStore::open(&options).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(store.server_version().unwrap().major >= 18);
    let key = UsageKey {
        tenant: TenantId(1),
        realm: RealmId(0),
        direction: Direction::Down,
        band: Band::Whole,
        source: Source::Kernel,
    };
    let samples: Vec<Sample> = (0..20_000)
        .map(|i| Sample {
            slot: Slot(5_900_000 + i),
            key,
            bytes: 10,
            packets: 1,
        })
        .collect();
    let batch = Batch {
        sequence: 1,
        samples: &samples,
        coverage: &[],
        state: b"s",
    };
    // The first delivery lands; the client is told nothing (as after a
    // timeout) and delivers again: refused, and counted once.
    store.append(&batch).unwrap();
    let again = store.append(&batch);
    assert!(
        matches!(again, Err(StoreError::AlreadyAppended { .. })),
        "{again:?}"
    );
    // A second store on the same database (a restarted daemon, which
    // migrates nothing twice) refuses it too.
    let mut reopened = ClickHouseStore::open(&options).unwrap();
    assert_eq!(reopened.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(matches!(
        reopened.append(&batch),
        Err(StoreError::AlreadyAppended { .. })
    ));
    assert_eq!(reopened.last_state().unwrap().unwrap().blob, b"s");
    let all = store
        .samples(&history::SampleQuery {
            tenants: history::Tenants::All,
            from: Slot(0),
            to: Slot(1 << 30),
        })
        .unwrap();
    assert_eq!(all.len(), 20_000);
    assert!(all.iter().all(|s| s.bytes == 10));
}

#[test]
fn a_retry_while_the_first_insert_still_runs_waits_for_it_and_counts_once() {
    retry_while_the_first_insert_runs(
        "a_retry_while_the_first_insert_still_runs_waits_for_it_and_counts_once",
        1,
    );
}

/// The same after the store committed batch 1 itself, so that it knows
/// the accountant's last sequence without asking the server: the insert of
/// batch 2 finds another insert with its id running, and the store asks
/// the server after all (it must not insert once the other is done).
#[test]
fn a_store_that_knows_the_last_sequence_still_waits_for_a_running_insert() {
    retry_while_the_first_insert_runs(
        "a_store_that_knows_the_last_sequence_still_waits_for_a_running_insert",
        2,
    );
}

fn retry_while_the_first_insert_runs(test: &str, sequence: u64) {
    let Some(server) = server(test) else {
        return;
    };
    testkit::need("curl", "curl");
    let options = options(&server);
    let mut store = ClickHouseStore::open(&options).unwrap();
    let db = options.database.clone();
    let key = UsageKey {
        tenant: TenantId(1),
        realm: RealmId(0),
        direction: Direction::Down,
        band: Band::Whole,
        source: Source::Kernel,
    };
    let mut expected = 1;
    if sequence > 1 {
        // Batches before, committed by this store: it now knows the last.
        for s in 1..sequence {
            let before = [Sample {
                slot: Slot(5_800_000 + s as i64),
                key,
                bytes: 5,
                packets: 1,
            }];
            store
                .append(&Batch {
                    sequence: s,
                    samples: &before,
                    coverage: &[],
                    state: b"before",
                })
                .unwrap();
            expected += 1;
        }
    }
    // The first delivery of the batch, as the store sends it but slow (two
    // seconds on the server): the client that sent it has given up.
    let id = history_clickhouse::batch_query_id(&db, None, sequence);
    let insert = format!(
        "INSERT INTO {db}.batches (kind, writer, sequence, q_writer, i_what, i_time, i_tenant,
             i_realm, i_direction, i_band, i_source, i_bytes, i_packets, i_status, i_id, i_idx,
             i_text, i_sum_bytes, i_sum_packets)
         SELECT toUInt8(0), '', toUInt64({sequence}), 'accountant', [toUInt8(0), toUInt8(5)],
             [toInt64(5900000), toInt64(0)], [toUInt32(1), toUInt32(0)], [toUInt16(0), toUInt16(0)],
             [toUInt8(0), toUInt8(0)], [toUInt8(0), toUInt8(0)], [toUInt8(0), toUInt8(0)],
             [toUInt64(777), toUInt64(0)], [toUInt64(1), toUInt64(0)], [toUInt8(0), toUInt8(0)],
             [toUInt64(0), toUInt64(0)], [toUInt64(0), toUInt64(0)], ['', 'landed'], ['', ''], ['', '']
         FROM system.one WHERE sleep(2) = 0"
    );
    let url = format!("{}/?query_id={id}", server.url);
    let first = std::thread::spawn(move || {
        std::process::Command::new("curl")
            .args(["-sf", &url, "--data-binary", &insert])
            .status()
            .expect("curl")
    });
    std::thread::sleep(Duration::from_millis(500));
    // The retry (the same sequence, other figures: a resumed accountant).
    let retry = [Sample {
        slot: Slot(5_900_000),
        key,
        bytes: 10,
        packets: 1,
    }];
    let started = std::time::Instant::now();
    let again = store.append(&Batch {
        sequence,
        samples: &retry,
        coverage: &[],
        state: b"retry",
    });
    assert!(first.join().unwrap().success());
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "the retry did not wait for the running insert"
    );
    assert!(
        matches!(
            again,
            Err(StoreError::AlreadyAppended { sequence: s, last })
                if s == sequence && last == sequence
        ),
        "{again:?}"
    );
    let state = store.last_state().unwrap().unwrap();
    assert_eq!(state.blob, b"landed");
    let all = store
        .samples(&history::SampleQuery {
            tenants: history::Tenants::All,
            from: Slot(0),
            to: Slot(1 << 30),
        })
        .unwrap();
    assert_eq!(all.len(), expected);
    let landed: Vec<u64> = all
        .iter()
        .filter(|s| s.slot == Slot(5_900_000))
        .map(|s| s.bytes)
        .collect();
    assert_eq!(landed, [777]);
}

#[test]
fn a_batch_cut_short_on_the_wire_inserts_nothing() {
    let Some(server) = server("a_batch_cut_short_on_the_wire_inserts_nothing") else {
        return;
    };
    use std::io::{Read, Write};
    let options = options(&server);
    let mut store = ClickHouseStore::open(&options).unwrap();
    let key = UsageKey {
        tenant: TenantId(1),
        realm: RealmId(0),
        direction: Direction::Down,
        band: Band::Whole,
        source: Source::Kernel,
    };
    let samples: Vec<Sample> = (0..1000)
        .map(|i| Sample {
            slot: Slot(5_900_000 + i),
            key,
            bytes: 10,
            packets: 1,
        })
        .collect();
    let (query, row) =
        history_clickhouse::testing::append_row(&options.database, 1, &samples, b"state");
    let port = server.url.rsplit(':').next().unwrap();
    // The client dies after sending part of the body: at a third, at half,
    // one byte short.
    for cut in [row.len() / 3, row.len() / 2, row.len() - 1] {
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        let head = format!(
            "POST /?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            row.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&row[..cut]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            !answer.starts_with("HTTP/1.1 200"),
            "cut at {cut}: {answer}"
        );
    }
    assert_eq!(store.last_state().unwrap(), None);
    let none = store
        .samples(&history::SampleQuery {
            tenants: history::Tenants::All,
            from: Slot(0),
            to: Slot(1 << 30),
        })
        .unwrap();
    assert!(
        none.is_empty(),
        "{} samples of a cut batch landed",
        none.len()
    );
    // The retry (the whole batch) lands once.
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &[],
            state: b"state",
        })
        .unwrap();
    let all = store
        .samples(&history::SampleQuery {
            tenants: history::Tenants::All,
            from: Slot(0),
            to: Slot(1 << 30),
        })
        .unwrap();
    assert_eq!(all.len(), 1000);
}

/// Two months of three tenants in two realms, by the accountant and a flow
/// writer, into `store`.
fn two_months(store: &mut dyn Store) {
    let first = Slot::containing("2026-02-20T00:00Z".parse().unwrap()).0;
    let days = 50i64;
    // The accountant's state after its last read, at the end of the data.
    let last = accounting::AccountantState {
        last_observe_ms: Some(Slot(first + days * 288).start_millis()),
        ..accounting::AccountantState::default()
    }
    .encode();
    for day in 0..days {
        let mut samples = Vec::new();
        for slot in (first + day * 288..first + (day + 1) * 288).step_by(3) {
            for tenant in 1..=3u32 {
                for realm in 1..=2u16 {
                    for direction in Direction::BOTH {
                        let bytes = (slot as u64 * 7
                            + u64::from(tenant) * 1_000_003
                            + u64::from(realm) * 17)
                            % (40_000_000 * u64::from(tenant));
                        samples.push(Sample {
                            slot: Slot(slot),
                            key: UsageKey {
                                tenant: TenantId(tenant),
                                realm: RealmId(realm),
                                direction,
                                band: Band::Whole,
                                source: Source::Kernel,
                            },
                            bytes,
                            packets: bytes / 1000 + 1,
                        });
                    }
                }
            }
        }
        samples.sort_by_key(|s| (s.slot, s.key));
        let coverage: Vec<accounting::SlotCoverage> = (first + day * 288..first + (day + 1) * 288)
            .map(|s| accounting::SlotCoverage {
                slot: Slot(s),
                status: if s % 97 == 0 {
                    accounting::SlotStatus::Estimated
                } else {
                    accounting::SlotStatus::Measured
                },
            })
            .collect();
        let sequence = day as u64 + 1;
        store
            .append(&Batch {
                sequence,
                samples: &samples,
                coverage: &coverage,
                state: &last,
            })
            .unwrap();
        // Late flow records for tenant 2, added to the same slots.
        let flows: Vec<Sample> = samples
            .iter()
            .filter(|s| s.key.tenant == TenantId(2) && s.slot.0 % 5 == 0)
            .map(|s| Sample {
                key: UsageKey {
                    source: Source::Flow,
                    ..s.key
                },
                bytes: 1234,
                ..*s
            })
            .collect();
        store
            .add(&history::AddBatch {
                writer: "flows",
                sequence,
                samples: &flows,
                coverage: &[],
                state: b"",
            })
            .unwrap();
    }
}

#[test]
fn usage_and_bills_give_the_same_figures_on_both_stores() {
    let Some(server) = server("usage_and_bills_give_the_same_figures_on_both_stores") else {
        return;
    };
    let mut text = String::from(
        "[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = { down = \"1gbit\", up = \"1gbit\" }\n\
         [realms]\ndefault = \"r1\"\n[realms.r1]\nid = 1\n[realms.r2]\nid = 2\n\
         [plans.p]\ndown = { rate = \"10mbit\", ceil = \"100mbit\" }\nup = { rate = \"10mbit\", ceil = \"100mbit\" }\n",
    );
    for t in 1..=3 {
        text.push_str(&format!(
            "[[tenants]]\nid = {t}\nname = \"t{t}\"\nplan = \"p\"\ncommit = \"1mbit\"\nprefixes = [\"100.64.0.{t}/32\"]\n"
        ));
    }
    let policy = policy::load_str("p.toml", &text).policy.unwrap();
    // A zone whose offset is not whole hours: days and the period's
    // edges cut hours, which both stores read from their samples.
    let settings = settings::Settings::parse(
        "s.toml",
        "[billing]\nday = 5\ntimezone = \"Asia/Kathmandu\"\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(
        &dir.path().join("h.sqlite"),
        &SqliteOptions { cache_mib: 16 },
    )
    .unwrap();
    let mut clickhouse = open(&server);
    two_months(&mut sqlite);
    two_months(&mut clickhouse);
    let now: jiff::Timestamp = "2026-04-10T00:00Z".parse().unwrap();
    let period = settings
        .cycle
        .period_containing("2026-03-10T00:00Z".parse().unwrap())
        .unwrap();
    let figures = |store: &dyn Store| {
        let spec = query::range::RangeSpec::Period(period.label.clone());
        let range = query::range::resolve(&settings, &spec, now).unwrap();
        let usage = query::usage::totals(store, &[], &range, &history::Tenants::All).unwrap();
        let bills =
            query::bills::bills(Some(&policy), &settings, store, &[], &period, now).unwrap();
        (
            format!("{usage:?}"),
            serde_json::to_string(&bills.bills).unwrap(),
            bills.standing.to_string(),
        )
    };
    let (a, b) = (figures(&sqlite), figures(&clickhouse));
    assert!(a.0.len() > 1000, "{}", a.0);
    assert!(a.1.contains("\"t3\""), "{}", a.1);
    assert_eq!(a.0, b.0, "usage differs");
    assert_eq!(a.1, b.1, "bills differ");
    assert_eq!(a.2, b.2);
    // Frozen on both: the frozen bills are the same too.
    for store in [&mut sqlite as &mut dyn Store, &mut clickhouse] {
        let answer =
            query::bills::bills(Some(&policy), &settings, store, &[], &period, now).unwrap();
        query::bills::freeze(store, &answer, now).unwrap();
    }
    let (a, b) = (figures(&sqlite), figures(&clickhouse));
    assert_eq!(a.1, b.1, "frozen bills differ");
    assert!(a.2.contains("frozen"), "{}", a.2);
}

/// POSTs `body` to the server's HTTP interface with `query` as the URL's
/// query; the answer's status line.
fn post(server: &Server, query: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let port = server.url.rsplit(':').next().unwrap();
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let head = format!(
        "POST /?{query} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_schema_4_database_migrates_in_place_and_counts_the_same_as_sqlite() {
    let Some(server) =
        server("a_schema_4_database_migrates_in_place_and_counts_the_same_as_sqlite")
    else {
        return;
    };
    let options = options(&server);
    history_clickhouse::testing::create_at_schema(&options, 4).unwrap();
    // Every direction, band and source (packed into one byte in schema 5).
    let keys: Vec<UsageKey> = [Direction::Down, Direction::Up]
        .into_iter()
        .flat_map(|direction| {
            [Band::Whole, Band::Interactive, Band::Normal, Band::Bulk]
                .into_iter()
                .flat_map(move |band| {
                    [Source::Kernel, Source::Flow].map(|source| UsageKey {
                        tenant: TenantId(7),
                        realm: RealmId(3),
                        direction,
                        band,
                        source,
                    })
                })
        })
        .collect();
    let day = |d: i64| Slot::containing("2026-03-01T00:00Z".parse().unwrap()).0 + d * 288;
    let batch = |d: i64, scale: u64| -> Vec<Sample> {
        (day(d)..day(d + 1))
            .step_by(5)
            .flat_map(|slot| {
                keys.iter().enumerate().map(move |(k, &key)| Sample {
                    slot: Slot(slot),
                    key,
                    bytes: scale * (slot as u64 % 1000 + k as u64),
                    packets: slot as u64 % 7 + 1,
                })
            })
            .collect()
    };
    let (day0, day1) = (batch(0, 3), batch(1, 5));
    // A state of 0..=255 and a length that is not a multiple of 7 bytes.
    let old_state: Vec<u8> = (0..=255u8).collect();
    let new_state: Vec<u8> = (0..=255u8).rev().chain([0, 0, 0]).collect();
    // What a schema-4 build wrote: the `batches` row of schema 1.
    let covered = |samples: &[Sample]| {
        [accounting::SlotCoverage {
            slot: samples[0].slot,
            status: accounting::SlotStatus::Estimated,
        }]
    };
    let (query, row) = history_clickhouse::testing::batches_row(
        &options.database,
        1,
        &day0,
        &covered(&day0),
        &old_state,
    );
    let answer = post(&server, &query, &row);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    let mut clickhouse = ClickHouseStore::open(&options).unwrap();
    assert_eq!(clickhouse.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 5);
    let last = clickhouse.last_state().unwrap().unwrap();
    assert_eq!((last.sequence, last.blob), (1, old_state.clone()));
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(
        &dir.path().join("m.sqlite"),
        &SqliteOptions { cache_mib: 16 },
    )
    .unwrap();
    let append = |store: &mut dyn Store, sequence, samples: &[Sample], state: &[u8]| {
        store.append(&Batch {
            sequence,
            samples,
            coverage: &covered(samples),
            state,
        })
    };
    append(&mut sqlite, 1, &day0, &old_state).unwrap();
    for store in [&mut sqlite as &mut dyn Store, &mut clickhouse] {
        let report = append(store, 2, &day1, &new_state).unwrap();
        assert_eq!((report.stored, report.refused.len()), (day1.len(), 0));
        let again = append(store, 2, &day1, &new_state);
        assert!(
            matches!(again, Err(StoreError::AlreadyAppended { .. })),
            "{again:?}"
        );
        let last = store.last_state().unwrap().unwrap();
        assert_eq!((last.sequence, &last.blob), (2, &new_state));
    }
    let samples = |store: &dyn Store| {
        store
            .samples(&history::SampleQuery {
                tenants: history::Tenants::All,
                from: Slot(day(0)),
                to: Slot(day(2)),
            })
            .unwrap()
    };
    assert_eq!(samples(&clickhouse).len(), day0.len() + day1.len());
    assert_eq!(samples(&clickhouse), samples(&sqlite));
    for bucket in [history::Bucket::Day, history::Bucket::Month] {
        let usage = |store: &dyn Store| {
            store
                .usage(&history::UsageQuery {
                    tenants: history::Tenants::All,
                    from: "2026-03-01T00:00Z".parse().unwrap(),
                    to: "2026-04-01T00:00Z".parse().unwrap(),
                    bucket,
                    zone: jiff::tz::TimeZone::UTC,
                })
                .unwrap()
        };
        assert!(!usage(&sqlite).is_empty());
        assert_eq!(usage(&clickhouse), usage(&sqlite), "{bucket:?}");
    }
    let hours = day(0) / 12..day(2) / 12;
    let hourly = |store: &dyn Store| {
        format!(
            "{:?}",
            store.hourly_totals(TenantId(7), hours.clone()).unwrap()
        )
    };
    assert_eq!(hourly(&clickhouse), hourly(&sqlite));
    assert_eq!(
        clickhouse.coverage(Slot(day(0)), Slot(day(2))).unwrap(),
        sqlite.coverage(Slot(day(0)), Slot(day(2))).unwrap()
    );
}

#[test]
fn a_store_opened_while_the_server_is_away_connects_when_it_is_back() {
    let Some(mut server) =
        server("a_store_opened_while_the_server_is_away_connects_when_it_is_back")
    else {
        return;
    };
    let options = options(&server);
    server.kill();
    // Eager: refused at once, as unreachable (nothing was sent).
    let eager = ClickHouseStore::open(&options);
    assert!(
        matches!(eager, Err(StoreError::Unreachable { .. })),
        "{:?}",
        eager.err()
    );
    // Lazy: opens, and each call says the server is unreachable.
    let mut store = ClickHouseStore::open_lazily(&options).expect("no connection needed");
    let batch = Batch {
        sequence: 1,
        samples: &[],
        coverage: &[],
        state: b"first",
    };
    for _ in 0..2 {
        let r = store.append(&batch);
        assert!(matches!(r, Err(StoreError::Unreachable { .. })), "{r:?}");
        let text = r.unwrap_err().to_string();
        assert!(text.contains("cannot reach the server"), "{text}");
    }
    // Bad options are refused without a server.
    let bad = ClickHouseStore::open_lazily(&ClickHouseOptions {
        database: "no-dashes".into(),
        ..options.clone()
    });
    assert!(matches!(bad, Err(StoreError::Invalid { .. })));
    // Back: the next call connects, migrates and commits.
    server.start_again();
    store.append(&batch).expect("the server is back");
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.last_state().unwrap().unwrap().blob, b"first");
}
