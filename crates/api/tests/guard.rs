//! The guard's endpoints through the real router, against a real engine
//! (pure, driven in process: ticks of a SYN flood in, the snapshot out;
//! the API's commands handed to it as the daemon's loop does).
//!
//! - `GET /api/v1/guard`: the flood's incident (address, attack type,
//!   rates, rung, since, hold left) and the counts; 404 without `[guard]`;
//!   a tenant token may not see it;
//! - `POST /api/v1/guard/ban` and `/unban`: an admin's ban applies the
//!   ladder, a read token is refused (403), bad input is a 422 problem
//!   naming the field, an address outside the networks is refused by the
//!   engine (422), an unban of nothing is 404;
//! - `/metrics`: `tollgate_guard_incidents{rung=…}`, ticks, capture
//!   counts;
//! - the OpenAPI document lists the three paths.

mod common;

use api::AppState;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use engine::guard::{CaptureCounts, GuardInput, GuardTick};
use engine::io::{Answer, Effect, Input, Intervals, PolicyText, Start};
use engine::Engine;
use guard::{Direction, HostCounters, HostSample, Monotonic, Observation};
use std::sync::{Arc, Mutex};
use tower::ServiceExt as _;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["203.0.113.0/24"]

[guard]
networks = ["203.0.113.0/24", "2001:db8::/48"]
instant = "0s"

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 1000

[[guard.ladder]]
rung = "notify"
hold = "10s"
script = "/usr/local/bin/notify"

[[guard.ladder]]
rung = "blackhole"
after = "1s"
hold = "30s"
"#;

const VICTIM: &str = "203.0.113.7";

fn now() -> jiff::Timestamp {
    "2026-12-06T12:00:00Z".parse().unwrap()
}

fn engine(policy: &str) -> Engine {
    let start = Start {
        policy: PolicyText {
            name: "guard.toml".into(),
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

/// 20,000 SYN/s towards the victim from 100 ms to `until` ms.
fn flood(e: &mut Engine, until: u64) {
    for ms in (0..=until).step_by(100) {
        let packets = if ms == 0 { 0 } else { 2_000 };
        let hosts = vec![HostSample {
            addr: VICTIM.parse().unwrap(),
            direction: Direction::In,
            counters: HostCounters {
                packets,
                bytes: packets * 60,
                tcp_packets: packets,
                tcp_bytes: packets * 60,
                tcp_syn: packets,
                ..HostCounters::default()
            },
        }];
        e.handle(
            now(),
            Input::Guard(GuardInput::Tick(GuardTick {
                observation: Observation {
                    at: Monotonic::from_millis(ms),
                    hosts,
                },
                capture: CaptureCounts {
                    frames: packets,
                    kernel_drops: 1,
                    ..CaptureCounts::default()
                },
                scans: Vec::new(),
            })),
        );
    }
}

struct Site {
    st: AppState,
    _dir: tempfile::TempDir,
    admin: String,
    reader: String,
    tenant: String,
}

/// The router over `engine`, with three tokens (admin, read, tenant 1).
/// Commands are carried out at once and the snapshot republished before
/// the answer, as the daemon does.
fn site(engine: Engine) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let mut file = api::tokens::TokenFile::default();
    let admin = file.add("ops", api::tokens::Scope::Admin, now()).unwrap();
    let reader = file.add("graphs", api::tokens::Scope::Read, now()).unwrap();
    let tenant = file
        .add("victim", api::tokens::Scope::Tenant(1), now())
        .unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, file.to_text()).unwrap();
    let mut st = common::app_state(
        engine.snapshot(now()),
        dir.path(),
        Box::new(|| Err("no history in this test".into())),
    );
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
        admin,
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
async fn the_flood_shows_as_an_incident_and_bans_and_unbans_are_engine_commands() {
    let mut e = engine(POLICY);
    flood(&mut e, 1_500);
    let s = site(e);

    let (code, v) = call(&s, Method::GET, "/api/v1/guard", &s.reader, None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["capturing"], true, "{v}");
    assert_eq!(v["interfaces"], serde_json::json!(["wan0"]));
    assert_eq!(v["stats"]["ticks"], 16);
    assert_eq!(v["stats"]["capture_drops"], 16);
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{v}");
    let i = &incidents[0];
    assert_eq!(i["target"], VICTIM);
    assert_eq!(i["target_kind"], "address");
    assert_eq!(i["direction"], "in");
    assert_eq!(i["attack"], "syn_flood");
    assert_eq!(i["attack_type"], "SYN flood");
    assert_eq!(i["peak_pps"], 20_000);
    assert_eq!(i["trigger"]["check"], "instant");
    assert_eq!(i["rung"], "blackhole");
    assert_eq!(i["hold"], "auto");
    // Detected at 100 ms, 1.4 s before the view: `since` is that long
    // before the snapshot's time.
    assert_eq!(i["since"], "2026-12-06T11:59:58.6Z", "{i}");
    let left = i["hold_left_s"].as_f64().unwrap();
    assert!((29.0..=30.0).contains(&left), "{i}");

    // A tenant token sees its own tenant, not the site's guard.
    let (code, _) = call(&s, Method::GET, "/api/v1/guard", &s.tenant, None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    // Writes: a read token may not.
    let ban = serde_json::json!({"address": "203.0.113.20", "rung": "blackhole", "for": "10m"});
    let (code, _) = call(
        &s,
        Method::POST,
        "/api/v1/guard/ban",
        &s.reader,
        Some(ban.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Bad input: a problem naming the field, nothing sent to the engine.
    for (body, field) in [
        (serde_json::json!({"address": "203.0.113.x"}), "address"),
        (
            serde_json::json!({"address": VICTIM, "rung": "nuke"}),
            "rung",
        ),
        (serde_json::json!({"address": VICTIM, "for": "10"}), "for"),
        (
            serde_json::json!({"address": VICTIM, "for": "1m", "permanent": true}),
            "for",
        ),
        (
            serde_json::json!({"address": VICTIM, "direction": "sideways"}),
            "direction",
        ),
        (
            serde_json::json!({"address": VICTIM, "colour": "red"}),
            "colour",
        ),
        (serde_json::json!({"rung": "notify"}), "address"),
    ] {
        let (code, p) = call(
            &s,
            Method::POST,
            "/api/v1/guard/ban",
            &s.admin,
            Some(body.clone()),
        )
        .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    // Outside the networks: the engine refuses.
    let (code, p) = call(
        &s,
        Method::POST,
        "/api/v1/guard/ban",
        &s.admin,
        Some(serde_json::json!({"address": "192.0.2.1"})),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("not inside"), "{p}");

    // An admin's ban: done, and the next read shows it.
    let (code, v) = call(&s, Method::POST, "/api/v1/guard/ban", &s.admin, Some(ban)).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("203.0.113.20"),
        "{v}"
    );
    let (_, v) = call(&s, Method::GET, "/api/v1/guard", &s.reader, None).await;
    let manual = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["target"] == "203.0.113.20")
        .cloned()
        .expect("the manual ban");
    assert_eq!(manual["hold"], "manual");
    assert_eq!(manual["rung"], "blackhole");
    assert_eq!(manual["hold_left_s"], 600.0, "{manual}");
    // A permanent IPv6 ban.
    let (code, v) = call(
        &s,
        Method::POST,
        "/api/v1/guard/ban",
        &s.admin,
        Some(serde_json::json!({"address": "2001:db8::7", "rung": "notify", "permanent": true})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");

    // Metrics: incidents by their highest rung, ticks, capture counts.
    let (code, m) = call(&s, Method::GET, "/metrics", &s.reader, None).await;
    assert_eq!(code, StatusCode::OK);
    let m = m.as_str().unwrap().to_string();
    for line in [
        "tollgate_guard_incidents{rung=\"blackhole\"} 2",
        "tollgate_guard_incidents{rung=\"notify\"} 1",
        "tollgate_guard_incidents{rung=\"rtbh\"} 0",
        "tollgate_guard_ticks_total 16",
        "tollgate_guard_capture_drops_total 16",
        "tollgate_guard_capture_frames_total 30000",
        "tollgate_guard_overflow_total 0",
    ] {
        assert!(m.lines().any(|l| l == line), "no `{line}` in\n{m}");
    }

    // Unban: the flood's victim, then nothing left to unban (404); a bad
    // direction names the field.
    let unban = serde_json::json!({"target": VICTIM});
    let (code, v) = call(
        &s,
        Method::POST,
        "/api/v1/guard/unban",
        &s.admin,
        Some(unban.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["applied"], 2, "both rungs come down: {v}");
    let (code, _) = call(
        &s,
        Method::POST,
        "/api/v1/guard/unban",
        &s.admin,
        Some(unban),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, p) = call(
        &s,
        Method::POST,
        "/api/v1/guard/unban",
        &s.admin,
        Some(serde_json::json!({"target": VICTIM, "direction": "up"})),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "direction");
    let (_, v) = call(&s, Method::GET, "/api/v1/guard", &s.reader, None).await;
    assert!(
        !v["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["target"] == VICTIM),
        "{v}"
    );

    // The document describes the three paths.
    let doc = api::openapi::json();
    for path in [
        "/api/v1/guard\"",
        "/api/v1/guard/ban",
        "/api/v1/guard/unban",
    ] {
        assert!(doc.contains(path), "{path} not in the OpenAPI document");
    }
    assert!(doc.contains("BanBody") && doc.contains("GuardStatus"));
}

#[tokio::test]
async fn without_a_guard_section_the_endpoint_is_404_and_a_ban_is_refused() {
    let policy = POLICY.split("[guard]").next().unwrap();
    let s = site(engine(policy));
    let (code, p) = call(&s, Method::GET, "/api/v1/guard", &s.reader, None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(p["detail"].as_str().unwrap().contains("[guard]"), "{p}");
    let (code, p) = call(
        &s,
        Method::POST,
        "/api/v1/guard/ban",
        &s.admin,
        Some(serde_json::json!({"address": VICTIM})),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{p}");
    let (_, m) = call(&s, Method::GET, "/metrics", &s.reader, None).await;
    assert!(!m.as_str().unwrap().contains("tollgate_guard_"));
}
