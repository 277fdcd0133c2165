//! Issue 12, item 7, as an operator sees it: while the saved routes table
//! cannot be read, the daemon's status (`GET /api/v1/status`) says why and
//! the metrics (`tollgate_routes_table_unreadable`) are 1; once a good
//! table is read again, both clear. The snapshots come from a real engine
//! fed the shell's inputs (crates/engine/tests/routes_unreadable.rs checks
//! that the kernel is left alone meanwhile), served by the real router on
//! a loopback port.

use api::tokens::{Scope, TokenFile, Tokens};
use engine::io::{Input, Intervals, PolicyText, Start};
use engine::snapshot::Snapshot;
use engine::Engine;
use jiff::{SignedDuration, Timestamp};
use net_types::RealmId;
use std::io::{Read, Write};
use std::sync::Arc;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.national]
id = 1
communities = ["65001:100"]

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

/// One HTTP/1.1 request to the server; the status code and the body.
fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Bodies may come chunked: keep only what is between the chunk sizes.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    (code, body)
}

/// The gauge's value in a scrape.
fn gauge(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tollgate_routes_table_unreadable "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn an_unreadable_routes_table_shows_in_status_and_metrics_until_a_good_one_is_read() {
    let t0: Timestamp = "2026-10-31T00:00:00Z".parse().unwrap();
    let start = Start {
        policy: PolicyText {
            name: "policy.toml".into(),
            text: POLICY.into(),
            files: Default::default(),
        },
        settings: None,
        resume: None,
        records: Default::default(),
        intervals: Intervals {
            read_ms: 60_000,
            reconcile_ms: 60_000,
        },
        flows: false,
        transit: Default::default(),
    };
    let (mut engine, _) = Engine::start(t0, start).unwrap();
    let national = vec![(
        net_types::Prefix::parse("198.51.100.0/24").unwrap(),
        RealmId(1),
    )];
    let t1 = t0 + SignedDuration::from_secs(1);
    engine.handle(
        t1,
        Input::RoutesChanged {
            realms: national.clone(),
        },
    );
    let good: Arc<Snapshot> = Arc::new(engine.snapshot(t1));
    let error = "/var/lib/tollgate/routes/table.tgr is damaged at offset 12: truncated";
    let t2 = t1 + SignedDuration::from_secs(1);
    engine.handle(
        t2,
        Input::RoutesUnreadable {
            error: error.into(),
        },
    );
    let bad = Arc::new(engine.snapshot(t2));

    let dir = tempfile::tempdir().unwrap();
    let mut tokens = TokenFile::default();
    let secret = tokens.add("ops", Scope::Read, t0).unwrap();
    std::fs::write(dir.path().join("tokens.json"), tokens.to_text()).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(good);
    let files = api::files::Files::new(
        dir.path().join("routes/table.tgr"),
        dir.path().join("flows-status.json"),
    );
    let open: api::stores::Opener = Box::new(|| Err("no history in this test".to_string()));
    let state = api::AppState {
        metrics: api::metrics::registry(rx.clone(), files.clone()),
        snapshot: rx,
        stores: api::stores::Stores::new(open),
        commands: Arc::new(|_| None),
        tokens: Tokens::new(Some(dir.path().join("tokens.json"))),
        failures: Arc::default(),
        open: Arc::default(),
        files,
        metrics_public: false,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(api::serve(listener, api::router(state), None));

    let status = |label: &str| -> serde_json::Value {
        let (code, body) = get(addr, "/api/v1/status", Some(&secret));
        assert_eq!(code, 200, "{label}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{label}: {e}: {body}"))
    };
    let metrics = |label: &str| -> String {
        let (code, body) = get(addr, "/metrics", None);
        assert_eq!(code, 200, "{label}: {body}");
        body
    };

    // A good table: nothing to report.
    assert_eq!(status("good")["routes_error"], serde_json::Value::Null);
    assert_eq!(gauge(&metrics("good")), Some(0.0));

    // Unreadable: status says why, the gauge is 1, the event is listed.
    tx.send(bad).unwrap();
    let s = status("unreadable");
    assert_eq!(s["routes_error"], error, "{s}");
    assert!(
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "routes_unreadable" && e["level"] == "error"),
        "{s}"
    );
    let m = metrics("unreadable");
    assert_eq!(gauge(&m), Some(1.0), "{m}");
    assert!(
        m.contains("# TYPE tollgate_routes_table_unreadable gauge"),
        "{m}"
    );

    // A good table again clears both.
    let t3 = t2 + SignedDuration::from_secs(1);
    engine.handle(t3, Input::RoutesChanged { realms: national });
    tx.send(Arc::new(engine.snapshot(t3))).unwrap();
    assert_eq!(
        status("good again")["routes_error"],
        serde_json::Value::Null
    );
    assert_eq!(gauge(&metrics("good again")), Some(0.0));
    rt.shutdown_background();
}
