//! Latency's endpoint through the real router, against a real engine
//! (pure, driven in process: the kernel observed, a stalled queue and a
//! slow probe in, the snapshot out).
//!
//! - `GET /api/v1/latency`: the queue and probe alarms, the class's
//!   figures and the probe's minute for a read token; a tenant token sees
//!   its own classes and alarms only (and no probes), another tenant's is
//!   403; a bad parameter is a 4xx problem; 404 without `[latency]`;
//! - `/metrics`: `tollgate_latency_alarms{kind=…}`, the probe's RTT;
//! - `GET /api/v1/latency/history`: minutes stored in a SQLite history,
//!   every tenant's and the probes for a read token, its own only for a
//!   tenant token (another's is 403), `since` as a duration or a time, a
//!   bad `since` refused with a 400 naming it;
//! - the OpenAPI document lists the path.

mod common;

use api::AppState;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use engine::io::{Answer, Effect, Input, Intervals, Observation, PolicyText, Start};
use engine::latency::LatencyInput;
use engine::Engine;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt as _;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[plans.tiny]
down = { rate = "64kbit", ceil = "64kbit" }
up = { rate = "1mbit", ceil = "1mbit" }

[[tenants]]
id = 1
name = "voip"
plan = "tiny"
prefixes = ["203.0.113.0/25"]

[[tenants]]
id = 2
name = "other"
plan = "tiny"
prefixes = ["203.0.113.128/25"]
"#;

const LATENCY: &str = r#"
[latency]
[latency.alarms]
rtt = "100ms"
[[latency.probes]]
realm = "uplink"
target = "192.0.2.1"
"#;

fn now() -> jiff::Timestamp {
    "2026-12-06T12:00:00Z".parse().unwrap()
}

fn engine(policy: &str) -> Engine {
    let start = Start {
        policy: PolicyText {
            name: "latency.toml".into(),
            text: policy.into(),
            files: Default::default(),
        },
        settings: None,
        resume: None,
        records: Default::default(),
        intervals: Intervals {
            read_ms: 10_000,
            reconcile_ms: 60_000,
        },
        flows: false,
        transit: Default::default(),
    };
    Engine::start(now(), start).unwrap().0
}

/// The kernel observed, tenant 1's downstream leaf holding 24 kB behind
/// 64 kbit/s (3 s), and a probe answered in 150 ms.
fn stall(e: &mut Engine) {
    let obs = Observation {
        interfaces: ["wan0", "lan0"]
            .iter()
            .map(|n| net_types::IfName::new(n).unwrap())
            .collect(),
        offline: Default::default(),
        bridges: Default::default(),
        foreign_roots: Default::default(),
        live: Default::default(),
        counters: Vec::new(),
    };
    e.handle(now(), Input::Observed(Box::new(obs)));
    let snap = e.snapshot(now());
    let classes: Vec<_> = snap
        .feeds
        .iter()
        .map(|(k, u)| {
            let queued = u.tenant.0 == 1 && u.direction == accounting::Direction::Down;
            (
                *k,
                latency::ClassSample {
                    backlog_bytes: if queued { 24_000 } else { 0 },
                    backlog_packets: if queued { 24 } else { 0 },
                    rate: net_types::Rate::from_bps(64_000),
                    ceil: net_types::Rate::from_bps(64_000),
                    ..Default::default()
                },
            )
        })
        .collect();
    assert!(classes.len() >= 4);
    e.handle(
        now(),
        Input::Latency(LatencyInput::Sampled {
            generation: 1,
            at: Duration::from_secs(1),
            classes,
            links: Vec::new(),
        }),
    );
    e.handle(
        now(),
        Input::Latency(LatencyInput::Probed {
            generation: 1,
            probe: 0,
            reply: latency::ProbeReply {
                at: Duration::from_secs(1),
                rtt: Some(Duration::from_millis(150)),
            },
        }),
    );
}

struct Site {
    st: AppState,
    _dir: tempfile::TempDir,
    reader: String,
    tenant: String,
}

/// The router over `engine`, with three tokens (admin, read, tenant 1).
/// Commands are carried out at once and the snapshot republished before
/// the answer, as the daemon does.
fn site(engine: Engine) -> Site {
    site_with(engine, None)
}

/// [`site`], with a history at `history` (a SQLite file) if given.
fn site_with(engine: Engine, history: Option<std::path::PathBuf>) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let mut file = api::tokens::TokenFile::default();
    let reader = file.add("graphs", api::tokens::Scope::Read, now()).unwrap();
    let tenant = file
        .add("voip", api::tokens::Scope::Tenant(1), now())
        .unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, file.to_text()).unwrap();
    let opener: api::stores::Opener = match history {
        Some(path) => Box::new(move || {
            let s = history::SqliteStore::open(&path, &Default::default())
                .map_err(|e| e.to_string())?;
            Ok(Box::new(s) as Box<dyn history::Store + Send>)
        }),
        None => Box::new(|| Err("no history in this test".into())),
    };
    let mut st = common::app_state(engine.snapshot(now()), dir.path(), opener);
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(engine.snapshot(now())));
    let engine = Arc::new(Mutex::new(engine));
    let next = Arc::new(Mutex::new(0u64));
    st.snapshot = rx.clone();
    st.metrics = api::metrics::registry(rx, st.files.clone());
    st.tokens = api::tokens::Tokens::new(Some(tokens));
    st.commands = Arc::new(move |command| {
        let mut e = engine.lock().unwrap();
        let id = {
            let mut n = next.lock().unwrap();
            *n += 1;
            *n
        };
        let effects = e.handle(now(), Input::Command { id, command });
        tx.send_replace(Arc::new(e.snapshot(now())));
        let answer = effects.into_iter().find_map(|f| match f {
            Effect::Reply { id: i, answer } if i == id => Some(answer),
            _ => None,
        })?;
        let (reply, rx) = tokio::sync::oneshot::channel::<Answer>();
        reply.send(answer).ok()?;
        Some(rx)
    });
    Site {
        st,
        _dir: dir,
        reader,
        tenant,
    }
}

async fn call(
    s: &Site,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
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

#[tokio::test]
async fn the_stall_and_the_slow_probe_show_by_scope() {
    let mut e = engine(&format!("{POLICY}{LATENCY}"));
    stall(&mut e);
    let s = site(e);
    let (code, v) = call(&s, Method::GET, "/api/v1/latency", &s.reader, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let kinds: Vec<_> = v["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["queue_delay", "probe_rtt"], "{v}");
    assert_eq!(v["alarms"][0]["tenant"], 1);
    assert_eq!(v["alarms"][0]["value"], 3000.0);
    assert_eq!(v["probes"][0]["name"], "uplink icmp 192.0.2.1");
    assert_eq!(v["probes"][0]["figures"]["p50_ms"], 150.0);
    let stalled: Vec<_> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["figures"]["delay_ms"] == 3000.0)
        .collect();
    assert_eq!(stalled.len(), 1, "{v}");
    assert_eq!(stalled[0]["tenant"], 1);
    // A tenant sees its own classes and alarms, no probes.
    let (code, v) = call(&s, Method::GET, "/api/v1/latency", &s.tenant, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(
        v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant"] == 1),
        "{v}"
    );
    assert_eq!(v["alarms"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["probes"].as_array().unwrap().is_empty());
    let (code, _) = call(&s, Method::GET, "/api/v1/latency?tenant=2", &s.tenant, None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // The site's reader may ask for one tenant: tenant 2 has no alarm.
    let (code, v) = call(&s, Method::GET, "/api/v1/latency?tenant=2", &s.reader, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(v["alarms"].as_array().unwrap().is_empty(), "{v}");
    let (code, v) = call(&s, Method::GET, "/api/v1/latency?tenant=x", &s.reader, None).await;
    assert!(code.is_client_error(), "{code} {v}");
    let (code, v) = call(
        &s,
        Method::GET,
        "/api/v1/latency?colour=red",
        &s.reader,
        None,
    )
    .await;
    assert!(code.is_client_error(), "{code} {v}");

    let (code, m) = call(&s, Method::GET, "/metrics", &s.reader, None).await;
    assert_eq!(code, StatusCode::OK);
    let m = m.as_str().unwrap();
    assert!(
        m.contains("tollgate_latency_alarms{kind=\"queue_delay\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_latency_alarms{kind=\"probe_rtt\"} 1"),
        "{m}"
    );
    assert!(m.contains("tollgate_latency_alarms_raised_total 2"), "{m}");
    assert!(m.contains("tollgate_latency_rows_refused_total 0"), "{m}");
    assert!(
        m.contains("tollgate_latency_queue_delay_max_seconds 3.0"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_latency_probe_rtt_seconds{probe=\"uplink icmp 192.0.2.1\"} 0.15"),
        "{m}"
    );
    assert!(api::openapi::json().contains("/api/v1/latency"));
}

#[tokio::test]
async fn without_a_latency_section_the_endpoint_is_404() {
    let s = site(engine(POLICY));
    let (code, v) = call(&s, Method::GET, "/api/v1/latency", &s.reader, None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{v}");
    let (_, m) = call(&s, Method::GET, "/metrics", &s.reader, None).await;
    assert!(!m.as_str().unwrap().contains("tollgate_latency"), "{m}");
}

#[tokio::test]
async fn stored_minutes_by_scope_and_since() {
    use history::Store as _;
    use latency::rtt::RttFigures;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let mut store = history::SqliteStore::open(&path, &Default::default()).unwrap();
    // Ten and ninety minutes ago, on the wall clock the handler reads.
    let minute = |ago: i64| jiff::Timestamp::now().as_second() / 60 - ago;
    let half = |ms: u64| RttFigures {
        samples: 40,
        min: Some(Duration::from_millis(ms)),
        p50: Some(Duration::from_millis(ms + 1)),
        p95: Some(Duration::from_millis(ms + 2)),
        p99: Some(Duration::from_millis(ms + 3)),
        max: Some(Duration::from_millis(ms + 4)),
    };
    let rtt = |ago, tenant| latency::RttMinute {
        minute: minute(ago),
        tenant,
        realm: 0,
        up: half(10),
        down: half(2),
        retransmits_up: 1,
        retransmits_down: 0,
    };
    let rows = latency::Minutes {
        rtt: vec![rtt(10, 1), rtt(10, 2), rtt(90, 1)],
        probes: vec![latency::ProbeMinute {
            minute: minute(10),
            probe: "uplink icmp 192.0.2.1".into(),
            sent: 60,
            lost: 3,
            p50: Some(Duration::from_millis(20)),
            max: Some(Duration::from_millis(40)),
            jitter: Some(Duration::from_millis(1)),
        }],
        queues: Vec::new(),
    };
    assert_eq!(store.append_latency(&rows).unwrap().stored, 4);
    drop(store);
    let s = site_with(engine(&format!("{POLICY}{LATENCY}")), Some(path));
    let get = |uri: &'static str, token: String| {
        let s = &s;
        async move { call(s, Method::GET, uri, &token, None).await }
    };
    let (code, v) = get("/api/v1/latency/history?since=30m", s.reader.clone()).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let tenants: Vec<_> = v["tcp_rtt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant"].clone())
        .collect();
    assert_eq!(tenants, [1, 2], "{v}");
    let r = &v["tcp_rtt"][0];
    assert_eq!(r["up"]["p50_ms"], 11.0, "{v}");
    assert_eq!(r["rtt_p50_ms"], 14.0, "{v}");
    assert_eq!(r["realm_name"], "all", "{v}");
    assert!(r["start"].as_str().unwrap().ends_with(":00Z"), "{v}");
    assert_eq!(v["probes"][0]["loss_percent"], 5.0, "{v}");
    // Two hours back: tenant 1's older minute too; only tenant 1 asked.
    let (code, v) = get(
        "/api/v1/latency/history?since=2h&tenant=1",
        s.reader.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["tcp_rtt"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["probes"].as_array().unwrap().is_empty(), "{v}");
    // A tenant token: its own only, by default and when named.
    let (code, v) = get("/api/v1/latency/history?since=30m", s.tenant.clone()).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["tcp_rtt"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["tcp_rtt"][0]["tenant"], 1, "{v}");
    let (code, _) = get("/api/v1/latency/history?tenant=2", s.tenant.clone()).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Bad parameters, each named: a value that does not parse is 400, a
    // value that parses but cannot be answered (`since` in the future or
    // not a time) 422, as elsewhere in the API.
    for (uri, field) in [
        ("/api/v1/latency/history?since=banana", "since"),
        (
            "/api/v1/latency/history?since=2030-01-01T00:00:00Z",
            "since",
        ),
        ("/api/v1/latency/history?tenant=x", "tenant"),
        ("/api/v1/latency/history?until=1h", "until"),
    ] {
        let (code, v) = get(uri, s.reader.clone()).await;
        assert!(
            code == StatusCode::BAD_REQUEST || code == StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {code} {v}"
        );
        assert!(v.to_string().contains(field), "{uri}: {v}");
    }
    assert!(api::openapi::json().contains("/api/v1/latency/history"));
}
