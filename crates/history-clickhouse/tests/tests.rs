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

static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn open(server: &Server) -> ClickHouseStore {
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    ClickHouseStore::open(&ClickHouseOptions {
        url: server.url.clone(),
        database: format!("t{n}"),
        timeout: Duration::from_secs(60),
    })
    .expect("open the ClickHouse store")
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
    let mut store = open(&server);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(store.server_version().major >= 18);
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
    // A second store on the same database (a restarted daemon) agrees.
    let reopened = ClickHouseStore::open(&ClickHouseOptions {
        url: server.url.clone(),
        database: "t_retry".into(),
        timeout: Duration::from_secs(60),
    });
    drop(reopened);
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
