//! The site's settled days are read once when the API starts
//! (`api::site::warm`), so that the dashboard's first overview does not
//! wait for every tenant's daily rows: after it, the readers' day cache
//! holds exactly the current period's settled days, and series taken from
//! the cache equal series read afresh from the store.

use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
mod common;

use engine::snapshot::Snapshot;
use history::{Batch, SqliteOptions, SqliteStore, Store};
use net_types::{RealmId, TenantId};
use std::sync::Arc;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.international]
id = 2

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settled_days_are_read_at_start_and_equal_a_fresh_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let settings = Arc::new(settings::Settings::defaults());
    let now = jiff::Timestamp::now();
    let period = settings.cycle.period_containing(now).unwrap();

    // One sample an hour from the period's start until now, both
    // directions, a different figure each hour.
    let mut store = SqliteStore::open(&db, &SqliteOptions::default()).unwrap();
    let mut samples = Vec::new();
    let mut slot = Slot::starting_at_or_after(period.start);
    let last = Slot::containing(now);
    while slot.0 < last.0 {
        for direction in [Direction::Down, Direction::Up] {
            samples.push(Sample {
                slot,
                key: UsageKey {
                    tenant: TenantId(1),
                    realm: RealmId(2),
                    direction,
                    band: Band::Whole,
                    source: Source::Kernel,
                },
                bytes: 1_000 + (slot.0 % 89) as u64,
                packets: 1,
            });
        }
        slot = Slot(slot.0 + 12);
    }
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &[],
            state: &[],
        })
        .unwrap();
    drop(store);

    let loaded = policy::load_str("warm.toml", POLICY);
    let rendered = loaded.render();
    let policy = Arc::new(loaded.policy.unwrap_or_else(|| panic!("{rendered}")));
    let snapshot = Snapshot {
        now,
        started: now,
        policy: policy.clone(),
        settings: settings.clone(),
        compiled: None,
        feeds: Arc::default(),
        rates: None,
        counts: Default::default(),
        counters_tracked: 0,
        pending_samples: 0,
        last_apply: None,
        routes_error: None,
        records: Default::default(),
        events: Vec::new(),
        committed_sequence: 0,
        agents: Default::default(),
    };
    let path = db.clone();
    let state = common::app_state(
        snapshot,
        dir.path(),
        Box::new(move || {
            SqliteStore::open(&path, &SqliteOptions { cache_mib: 8 })
                .map(|s| Box::new(s) as Box<dyn Store + Send>)
                .map_err(|e| e.to_string())
        }),
    );

    api::site::warm(state.clone()).await;

    // Exactly the period's days that ended before the settling margin.
    let zone = jiff::tz::TimeZone::get(settings.cycle.zone_name()).unwrap();
    let settled = now - query::site::SETTLED_AFTER;
    let mut expected = 0;
    let mut day = period.start.to_zoned(zone.clone()).date();
    loop {
        let end = day.tomorrow().unwrap().to_zoned(zone.clone()).unwrap();
        if end.timestamp() > settled || end.timestamp() > period.end {
            break;
        }
        expected += 1;
        day = day.tomorrow().unwrap();
    }
    let mut cache = state
        .stores
        .site_days
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    assert_eq!(cache.len(), expected, "days cached after the warm-up");

    // The cached days give the same series as the store read afresh.
    let store = SqliteStore::open(&db, &SqliteOptions::default()).unwrap();
    let range = query::range::resolve(&settings, &query::range::RangeSpec::Current, now).unwrap();
    let resolution = query::series::Resolution::Day;
    let fresh = query::site::series(&store, Some(&policy), &range, resolution).unwrap();
    let cached = query::site::series_cached(
        &store,
        Some(&policy),
        &range,
        resolution,
        Some((&mut cache, settled)),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&fresh).unwrap(),
        serde_json::to_value(&cached).unwrap()
    );
}
