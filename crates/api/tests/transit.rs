//! The overview's "site's 95th so far" (`GET /api/v1/site`'s `percentile`,
//! from `api::transit::site_percentile`): the site's traffic (a tenant's
//! and no tenant's) of the upstream's running period against its commit,
//! figures worked out by hand; and `/api/v1/transit` is in the OpenAPI
//! document.

mod common;

use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use engine::snapshot::Snapshot;
use history::{Batch, SqliteOptions, SqliteStore, Store};
use net_types::{RealmId, TenantId};
use std::sync::Arc;

/// Bytes of one 5-minute sample at 1 Mbit/s.
const MBIT: u64 = 37_500_000;

fn policy(day: i8) -> String {
    format!(
        r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "100mbit", up = "100mbit" }}

[realms]
default = "international"

[realms.international]
id = 2

[plans.home]
down = {{ rate = "10mbit", ceil = "20mbit" }}
up = {{ rate = "10mbit", ceil = "20mbit" }}

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]

[[transit.upstreams]]
name = "carrier"
commit = "10mbit"
day = {day}
"#
    )
}

fn sample(slot: Slot, tenant: u32, direction: Direction, bytes: u64) -> Sample {
    Sample {
        slot,
        key: UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(2),
            direction,
            band: Band::Whole,
            source: Source::Kernel,
        },
        bytes,
        packets: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_gets_the_sites_95th_so_far_against_the_commit() {
    let now = jiff::Timestamp::now();
    // A billing day at least two days back (28 at most), so that the
    // period has 576 closed slots or more whenever the test runs.
    let back = (now - jiff::SignedDuration::from_hours(48))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .day()
        .min(28);
    let loaded = policy::load_str("transit.toml", &policy(back));
    let rendered = loaded.render();
    let policy = Arc::new(loaded.policy.unwrap_or_else(|| panic!("{rendered}")));
    let period = billing::BillingCycle::new(back as u8, "UTC")
        .unwrap()
        .period_containing(now)
        .unwrap();

    // Every closed slot: the tenant at 5 Mbit/s down and 1 up. The first
    // ten: 15 Mbit/s more down of no tenant's, 20 in all.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut store = SqliteStore::open(&db, &SqliteOptions::default()).unwrap();
    let first = period.first_slot().0;
    let last = Slot::containing(now).0;
    let mut samples = Vec::new();
    let mut coverage = Vec::new();
    for s in first..last {
        samples.push(sample(Slot(s), 1, Direction::Down, 5 * MBIT));
        samples.push(sample(Slot(s), 1, Direction::Up, MBIT));
        if s - first < 10 {
            samples.push(sample(Slot(s), 0, Direction::Down, 15 * MBIT));
        }
        coverage.push(SlotCoverage {
            slot: Slot(s),
            status: SlotStatus::Measured,
        });
    }
    samples.sort_by_key(|x| (x.slot, x.key));
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &coverage,
            state: &[],
        })
        .unwrap();
    drop(store);

    let snapshot = Snapshot::at_start(now, policy, Arc::new(settings::Settings::defaults()));
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
    let p = api::transit::site_percentile(&state)
        .await
        .expect("a figure: the policy has [transit]");
    let n = period.expected_samples();
    assert_eq!(p.label, "95th");
    assert_eq!(p.upstream, "carrier");
    assert_eq!(p.period, period.label);
    // Ten samples above the 10 Mbit/s commit among 576 or more: under 5 %,
    // so the 95th of down is the tenant's 5 Mbit/s, of up its 1.
    assert_eq!(p.down_bps, 5_000_000);
    assert_eq!(p.up_bps, 1_000_000);
    assert_eq!(p.billed_bps, 5_000_000);
    assert_eq!(p.projected_bps, 5_000_000);
    assert_eq!(p.commit_bps, 10_000_000);
    // The budget is 5 % of the period's samples, rounded down.
    assert_eq!(p.budget, n / 20);
    assert_eq!((p.spent, p.left), (10, n / 20 - 10));
    assert!(!p.over);
    // Asked again in the same slot: the kept figure.
    let again = api::transit::site_percentile(&state).await.unwrap();
    assert_eq!(again.spent, p.spent);

    // The endpoint is documented.
    let doc: serde_json::Value = serde_json::from_str(&api::openapi::json()).unwrap();
    assert!(doc["paths"]["/api/v1/transit"]["get"].is_object());
    assert!(doc["components"]["schemas"]["SiteAnswer"]["properties"]["percentile"].is_object());
    assert!(doc["paths"]["/api/v1/transit/relax"]["post"].is_object());
}

/// `guard` in `/api/v1/transit` (and `tollgate transit --json`): absent
/// while the guard is off and holds nothing, its steps when it has some.
#[test]
fn the_transit_answer_shows_the_guard_when_it_is_on_or_holds_steps() {
    use engine::transit_run::{TransitState, TransitView};
    use policy::TransitGuardMode;
    let report = || query::transit::TransitReport {
        now: jiff::Timestamp::UNIX_EPOCH,
        upstreams: Vec::new(),
    };
    let off = api::transit::TransitAnswer::new(
        report(),
        Some(TransitView::new(
            TransitGuardMode::Off,
            TransitState::default(),
        )),
    );
    assert!(serde_json::to_value(&off).unwrap().get("guard").is_none());
    let state: TransitState = serde_json::from_value(serde_json::json!({
        "guards": {"carrier": {"dry_run": false, "guard": {
            "steps": [{"step": "lower_pool_ceil", "ceil": 2_000_000}],
            "changed": "2026-11-20T12:00:02Z"
        }}},
        "tightened": 1
    }))
    .unwrap();
    let on = serde_json::to_value(api::transit::TransitAnswer::new(
        report(),
        Some(TransitView::new(TransitGuardMode::On, state)),
    ))
    .unwrap();
    let g = &on["guard"];
    assert_eq!(g["mode"], "on");
    assert_eq!(g["steps_in_force"][0]["upstream"], "carrier");
    assert_eq!(g["steps_in_force"][0]["step"], "lower_pool_ceil");
    assert_eq!(g["steps_in_force"][0]["applied"], true);
    assert_eq!(g["tightened"], 1);
}
