//! `GET /api/v1/agents` through the real router: the agents that shipped
//! to this daemon (its snapshot) and those that write straight into the
//! history it reads (`[central] store = "clickhouse"`), found in the store
//! with their lag, on both stores (a real `clickhouse-server`, started by
//! the test, and SQLite). The flow collector is no agent.

mod common;
use accounting::{Sample, Slot};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use engine::shipped::SEQUENCES_PER_SLOT;
use engine::shipping::AgentSeen;
use engine::snapshot::Snapshot;
use history::{AddBatch, Store};
use std::sync::Arc;
use tower::ServiceExt as _;

/// One writer's batch into `store`, for `slot`.
fn add(store: &mut dyn Store, writer: &str, slot: Slot) {
    let sample: Sample = serde_json::from_value(serde_json::json!({
        "slot": slot.0,
        "key": {"tenant": 1, "realm": 1, "direction": "down", "band": "whole"},
        "bytes": 1000,
        "packets": 1,
    }))
    .unwrap();
    store
        .add(&AddBatch {
            writer,
            sequence: slot.0 as u64 * SEQUENCES_PER_SLOT,
            samples: &[sample],
            coverage: &[],
            state: b"",
        })
        .unwrap();
}

/// The list, as the daemon answers it at `now` with `hv1` in its
/// snapshot (it shipped here) and `open`'s store behind it.
async fn listed(open: api::stores::Opener, now: jiff::Timestamp, hv1: Slot) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut file = api::tokens::TokenFile::default();
    let reader = file.add("graphs", api::tokens::Scope::Read, now).unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, file.to_text()).unwrap();
    let mut snapshot = Snapshot::at_start(
        now,
        common::one_tenant_policy("agents.toml"),
        Arc::new(settings::Settings::defaults()),
    );
    snapshot.agents.insert(
        "hv1".into(),
        AgentSeen {
            sequence: hv1.0 as u64 * SEQUENCES_PER_SLOT,
            last_slot: Some(hv1),
            at: now,
            batches: 3,
            bytes: 3000,
            duplicates: 0,
            refused: 0,
            last_refusal: None,
        },
    );
    let mut st = common::app_state(snapshot, dir.path(), open);
    st.tokens = api::tokens::Tokens::new(Some(tokens));
    let req = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/agents")
        .header(header::AUTHORIZATION, format!("Bearer {reader}"))
        .body(Body::empty())
        .unwrap();
    let resp = api::router(st).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Writes hv1 (which also shipped here), hv7 (only in the store) and the
/// flow collector into the store, and checks the list.
async fn check(mut store: Box<dyn Store + Send>, open: api::stores::Opener) {
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let slot = Slot::containing(now);
    let hv7 = Slot(slot.0 - 4);
    add(store.as_mut(), "hv1", Slot(slot.0 - 1));
    add(store.as_mut(), "hv7", Slot(hv7.0 - 1));
    add(store.as_mut(), "hv7", hv7);
    add(store.as_mut(), "flows", slot);
    let v = listed(open, now, Slot(slot.0 - 1)).await;
    let agents = v["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{v}");
    let (hv1, seven) = (&agents[0], &agents[1]);
    assert_eq!(
        (&hv1["writer"], &hv1["via"]),
        (&"hv1".into(), &"api".into())
    );
    assert_eq!(hv1["batches"], 3, "{v}");
    assert_eq!(
        (&seven["writer"], &seven["via"]),
        (&"hv7".into(), &"store".into())
    );
    assert_eq!(seven["sequence"], hv7.0 as u64 * SEQUENCES_PER_SLOT, "{v}");
    assert_eq!(seven["last_slot"], hv7.0, "{v}");
    assert_eq!(seven["received"], serde_json::Value::Null, "{v}");
    let lag = now.as_second() - hv7.next().start().as_second();
    assert_eq!(seven["lag_seconds"], lag, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_writing_into_a_shared_clickhouse_history_are_listed_with_their_lag() {
    let Some(server) = history_clickhouse::testing::server(
        "agents_writing_into_a_shared_clickhouse_history_are_listed_with_their_lag",
    ) else {
        return;
    };
    let options = history_clickhouse::ClickHouseOptions {
        url: server.url.clone(),
        database: "api_agents".into(),
        ..Default::default()
    };
    let store = history_clickhouse::ClickHouseStore::open(&options).unwrap();
    let open: api::stores::Opener = Box::new(move || {
        history_clickhouse::ClickHouseStore::open(&options)
            .map(|s| Box::new(s) as Box<dyn Store + Send>)
            .map_err(|e| e.to_string())
    });
    check(Box::new(store), open).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_in_a_sqlite_history_are_listed_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite");
    let store = history::SqliteStore::open(&path, &history::SqliteOptions::default()).unwrap();
    let open: api::stores::Opener = Box::new(move || {
        history::SqliteStore::open(&path, &history::SqliteOptions::default())
            .map(|s| Box::new(s) as Box<dyn Store + Send>)
            .map_err(|e| e.to_string())
    });
    check(Box::new(store), open).await;
    drop(dir);
}
