//! `GET /api/v1/flows/top` through the real router, reading the flow
//! records kept in a real `clickhouse-server` (started by the test): the
//! answer equals `history::flows::top_of` over the records written; a bad
//! `by`, `since` or `limit` is refused naming the field; a tenant's token
//! is refused; a SQLite history says which setting keeps flow records.

mod common;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use engine::snapshot::Snapshot;
use history::flows::top_of;
use history::{FlowBy, FlowRow, FlowTopQuery};
use std::sync::Arc;
use tower::ServiceExt as _;

fn policy() -> Arc<policy::Policy> {
    common::one_tenant_policy("flows.toml")
}

struct Site {
    st: api::AppState,
    _dir: tempfile::TempDir,
    reader: String,
    tenant: String,
}

fn site(open: api::stores::Opener) -> Site {
    let now = jiff::Timestamp::now();
    let dir = tempfile::tempdir().unwrap();
    let mut file = api::tokens::TokenFile::default();
    let reader = file.add("graphs", api::tokens::Scope::Read, now).unwrap();
    let tenant = file
        .add("voip", api::tokens::Scope::Tenant(1), now)
        .unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, file.to_text()).unwrap();
    let snapshot = Snapshot::at_start(now, policy(), Arc::new(settings::Settings::defaults()));
    let mut st = common::app_state(snapshot, dir.path(), open);
    st.tokens = api::tokens::Tokens::new(Some(tokens));
    Site {
        st,
        _dir: dir,
        reader,
        tenant,
    }
}

async fn get(s: &Site, uri: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = api::router(s.st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

/// Records over the last 50 minutes: ten sources, four ports.
fn records(now: i64) -> Vec<FlowRow> {
    (0..3000u64)
        .map(|i| FlowRow {
            time: now - 3000 + i as i64,
            exporter: "192.0.2.1".parse().unwrap(),
            src: Some(format!("198.51.100.{}", i % 10).parse().unwrap()),
            dst: Some("100.64.1.7".parse().unwrap()),
            src_port: 40000,
            dst_port: [53, 80, 443, 8443][(i % 4) as usize],
            protocol: 6,
            tcp_flags: 0,
            src_as: 0,
            dst_as: 0,
            bytes: 1000 + (i * 7919) % 5000,
            packets: 1 + i % 9,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn top_talkers_over_the_api_equal_the_records_and_mistakes_name_their_field() {
    let Some(server) = history_clickhouse::testing::server(
        "top_talkers_over_the_api_equal_the_records_and_mistakes_name_their_field",
    ) else {
        return;
    };
    let options = history_clickhouse::ClickHouseOptions {
        url: server.url.clone(),
        database: "api_flows".into(),
        ..Default::default()
    };
    let now = jiff::Timestamp::now().as_second();
    let rows = records(now);
    let store = history_clickhouse::ClickHouseStore::open(&options).unwrap();
    store.keep_flows("collector", 1, &rows).unwrap();
    let open: api::stores::Opener = Box::new(move || {
        history_clickhouse::ClickHouseStore::open(&options)
            .map(|s| Box::new(s) as Box<dyn history::Store + Send>)
            .map_err(|e| e.to_string())
    });
    let s = site(open);
    let (code, v) = get(
        &s,
        "/api/v1/flows/top?by=dst-port&since=1h&limit=3",
        &s.reader,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let from = jiff::Timestamp::from_second(now - 3600).unwrap();
    let to = jiff::Timestamp::from_second(now + 60).unwrap();
    let want = top_of(
        &rows,
        &FlowTopQuery {
            by: FlowBy::DstPort,
            from,
            to,
            limit: 3,
        },
    );
    let got: Vec<(u64, u64)> = v["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_u64().unwrap(), t["bytes"].as_u64().unwrap()))
        .collect();
    let want: Vec<(u64, u64)> = want
        .iter()
        .map(|t| (t.key.to_string().parse().unwrap(), t.bytes as u64))
        .collect();
    assert_eq!(got, want, "{v}");
    assert_eq!(v["by"], "dst-port", "{v}");
    let (code, v) = get(&s, "/api/v1/flows/top?by=src", &s.reader).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["talkers"].as_array().unwrap().len(), 10, "{v}");
    assert!(
        v["talkers"][0]["key"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100."),
        "{v}"
    );
    for (uri, field) in [
        ("/api/v1/flows/top?by=port", "by"),
        ("/api/v1/flows/top?since=1h", "by"),
        ("/api/v1/flows/top?by=src&since=banana", "since"),
        ("/api/v1/flows/top?by=src&limit=0", "limit"),
        ("/api/v1/flows/top?by=src&limit=x", "limit"),
        ("/api/v1/flows/top?by=src&until=1h", "until"),
    ] {
        let (code, v) = get(&s, uri, &s.reader).await;
        assert!(
            code == StatusCode::BAD_REQUEST || code == StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {code} {v}"
        );
        assert!(v.to_string().contains(field), "{uri}: {v}");
    }
    let (code, _) = get(&s, "/api/v1/flows/top?by=src", &s.tenant).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(api::openapi::json().contains("/api/v1/flows/top"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_history_says_which_setting_keeps_flow_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite");
    let open: api::stores::Opener = Box::new(move || {
        history::SqliteStore::open(&path, &Default::default())
            .map(|s| Box::new(s) as Box<dyn history::Store + Send>)
            .map_err(|e| e.to_string())
    });
    let s = site(open);
    let (code, v) = get(&s, "/api/v1/flows/top?by=src", &s.reader).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("history.flows"), "{v}");
}
