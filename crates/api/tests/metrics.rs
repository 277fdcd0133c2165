//! `/metrics` through the real router (issue 12 #16): in process with
//! tower's `oneshot`, and over a real listener for concurrent scrapes.
//!
//! - only GET: other methods are 405 with an `Allow` header; paths beside
//!   it are 404;
//! - label values that carry `"`, `\` or a line feed come out escaped as
//!   the text format says, so every line still parses;
//! - the engine's counts and the flow collector's status (written with
//!   the collector's own types) are the series' values, among them
//!   `tollgate_flow_quarantined` and `tollgate_flow_worker_restarts`;
//! - scrapes are answered concurrently, even while clients hold silent
//!   connections open.

use api::AppState;

mod common;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use engine::snapshot::{Counts, Snapshot};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// A folder for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tg-metrics-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn policy() -> Arc<policy::Policy> {
    common::one_tenant_policy("metrics.toml")
}

/// The API's state as the daemon builds it, with the engine's `counts`,
/// the flow collector's status `flows` (if any) in `dir`, and no history.
fn state(dir: &Scratch, counts: Counts, flows: Option<&serde_json::Value>) -> AppState {
    let now = jiff::Timestamp::now();
    let snapshot = Snapshot {
        counts,
        counters_tracked: 4,
        ..Snapshot::at_start(now, policy(), Arc::new(settings::Settings::defaults()))
    };
    if let Some(v) = flows {
        let status = dir.0.join("flows-status.json");
        std::fs::write(&status, serde_json::to_string_pretty(v).unwrap()).unwrap();
    }
    common::app_state(
        snapshot,
        &dir.0,
        Box::new(|| Err("no history in this test".into())),
    )
}

/// One request through the router; the status, the Allow header and the
/// body.
async fn call(st: &AppState, method: Method, uri: &str) -> (StatusCode, Option<String>, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = api::router(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let allow = resp
        .headers()
        .get(header::ALLOW)
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, allow, String::from_utf8(body.to_vec()).unwrap())
}

async fn scrape(st: &AppState) -> String {
    let (status, _, body) = call(st, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Checks every line of an exposition against the text format: `# …`
/// lines, and samples `name{label="value",…} number` whose label values
/// use only the escapes `\\`, `\"` and `\n`. Returns the samples as
/// (name with its labels as written, value).
fn parse(text: &str) -> Vec<(String, f64)> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("# ") {
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or_else(|| panic!("a sample without a value: {line:?}\n{text}"));
        assert!(name_end > 0, "a line that is no sample: {line:?}\n{text}");
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                let eq = rest
                    .find('=')
                    .unwrap_or_else(|| panic!("a label without `=`: {line:?}"));
                let key = &rest[..eq];
                assert!(
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "a bad label name in {line:?}"
                );
                let mut chars = rest[eq + 1..].char_indices();
                assert_eq!(chars.next().map(|c| c.1), Some('"'), "{line:?}");
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            let e = chars.next().map(|c| c.1);
                            assert!(
                                matches!(e, Some('\\' | '"' | 'n')),
                                "an escape the format does not have in {line:?}"
                            );
                        }
                        '"' => {
                            end = Some(eq + 1 + i + 1);
                            break;
                        }
                        _ => {}
                    }
                }
                let end =
                    end.unwrap_or_else(|| panic!("an unterminated label value: {line:?}\n{text}"));
                rest = &rest[end..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                } else {
                    rest = rest
                        .strip_prefix('}')
                        .unwrap_or_else(|| panic!("labels not closed: {line:?}"));
                    break;
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value: {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}\n{text}"));
        out.push((line[..line.len() - rest.len()].to_string(), v));
    }
    out
}

fn value(samples: &[(String, f64)], series: &str) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(s, _)| s == series)
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{series}: {found:?} in {samples:#?}");
    found[0]
}

/// A flow collector's status file, written from the collector's own
/// types as `tollgate`'s status file carries them.
fn flow_status(
    totals: flow_collector::Totals,
    sockets: Vec<flow_collector::SocketStats>,
    exporters: Vec<flow_collector::ExporterStats>,
    samples_refused: u64,
) -> serde_json::Value {
    serde_json::json!({
        "running": true,
        "started": jiff::Timestamp::now().to_string(),
        "updated": jiff::Timestamp::now().to_string(),
        "listen": sockets.iter().map(|s| s.local).collect::<Vec<_>>(),
        "totals": totals,
        "sockets": sockets,
        "exporters": exporters,
        "rates": [],
        "rate_seconds": 1.0,
        "quarantine": {"samples_refused": samples_refused, "written": 0, "dropped": 0, "file": "q"},
    })
}

fn socket(local: &str, datagrams: u64, restarts: u64) -> flow_collector::SocketStats {
    flow_collector::SocketStats {
        local: local.parse().unwrap(),
        datagrams,
        restarts,
        ..flow_collector::SocketStats::default()
    }
}

#[tokio::test]
async fn metrics_answers_get_and_other_methods_are_405_with_an_allow_header() {
    let dir = Scratch::new("methods");
    let st = state(&dir, Counts::default(), None);
    scrape(&st).await;
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let (status, allow, body) = call(&st, m.clone(), "/metrics").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m}: {body}");
        let allow = allow.unwrap_or_else(|| panic!("{m}: 405 without an Allow header"));
        assert!(
            allow.split(',').any(|a| a.trim() == "GET"),
            "{m}: Allow: {allow}"
        );
        assert!(!allow.contains(m.as_str()), "{m}: Allow: {allow}");
    }
}

#[tokio::test]
async fn paths_beside_metrics_are_404() {
    let dir = Scratch::new("paths");
    let st = state(&dir, Counts::default(), None);
    for path in [
        "/metrics/x",
        "/metricsfoo",
        "/metrics/",
        "/metric",
        "/api/metrics",
    ] {
        let (status, _, body) = call(&st, Method::GET, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(!body.contains("tollgate_reads"), "{path}: {body}");
    }
}

#[tokio::test]
async fn label_values_with_quotes_backslashes_and_newlines_are_escaped() {
    let dir = Scratch::new("escape");
    // The status file is read as JSON: its socket and exporter names reach
    // the labels as they are written there, whatever they hold.
    let nasty = "a\"b\\c\nd";
    let mut v = flow_status(
        flow_collector::Totals::default(),
        vec![socket("127.0.0.1:2055", 5, 0)],
        vec![flow_collector::ExporterStats::new(
            "192.0.2.7".parse().unwrap(),
        )],
        0,
    );
    v["sockets"][0]["local"] = nasty.into();
    v["exporters"][0]["address"] = nasty.into();
    v["exporters"][0]["allowed"] = true.into();
    v["exporters"][0]["flows"] = 9.into();
    let st = state(&dir, Counts::default(), Some(&v));
    let text = scrape(&st).await;
    let samples = parse(&text);
    let escaped = r#"a\"b\\c\nd"#;
    assert_eq!(
        value(
            &samples,
            &format!("tollgate_flow_datagrams_total{{socket=\"{escaped}\"}}")
        ),
        5.0
    );
    assert_eq!(
        value(
            &samples,
            &format!("tollgate_flow_exporter_records_total{{exporter=\"{escaped}\"}}")
        ),
        9.0
    );
}

#[tokio::test]
async fn quarantined_records_and_worker_restarts_are_the_flow_status_figures() {
    let dir = Scratch::new("flows");
    let totals = flow_collector::Totals {
        quarantined: 7,
        quarantine_dropped: 2,
        worker_restarts: 3,
        attributed: 11,
        ..flow_collector::Totals::default()
    };
    let mut exporter = flow_collector::ExporterStats::new("192.0.2.7".parse().unwrap());
    exporter.allowed = true;
    exporter.quarantined = 7;
    // Two workers' sockets on one address are one series, summed.
    let sockets = vec![
        socket("127.0.0.1:2055", 3, 1),
        socket("127.0.0.1:2055", 4, 2),
    ];
    let mut v = flow_status(totals, sockets, vec![exporter], 4);
    v["kept"] = serde_json::json!({
        "taken": 100, "dropped": 5, "kept": 90, "batches": 2, "lost": 10, "last_error": null
    });
    let st = state(&dir, Counts::default(), Some(&v));
    let samples = parse(&scrape(&st).await);
    for (series, want) in [
        ("tollgate_flow_kept_records_total", 90.0),
        ("tollgate_flow_kept_batches_total", 2.0),
        ("tollgate_flow_kept_dropped_total", 5.0),
        ("tollgate_flow_kept_lost_total", 10.0),
        ("tollgate_flow_quarantined_total", 7.0),
        ("tollgate_flow_quarantine_dropped_total", 2.0),
        ("tollgate_flow_worker_restarts_total", 3.0),
        ("tollgate_flow_samples_refused_total", 4.0),
        ("tollgate_flow_records_total{outcome=\"attributed\"}", 11.0),
        (
            "tollgate_flow_datagrams_total{socket=\"127.0.0.1:2055\"}",
            7.0,
        ),
        (
            "tollgate_flow_socket_worker_restarts_total{socket=\"127.0.0.1:2055\"}",
            3.0,
        ),
        (
            "tollgate_flow_exporter_quarantined_total{exporter=\"192.0.2.7\"}",
            7.0,
        ),
    ] {
        assert_eq!(value(&samples, series), want, "{series}");
    }
    // Without a status file there are no collector series at all.
    let none = Scratch::new("noflows");
    let text = scrape(&state(&none, Counts::default(), None)).await;
    for series in [
        "tollgate_flow_quarantined",
        "tollgate_flow_worker_restarts",
        "tollgate_flow_records",
        "tollgate_flow_kept_records",
    ] {
        assert!(!text.contains(series), "{text}");
    }
}

#[tokio::test]
async fn the_engines_counts_are_the_daemons_series() {
    let dir = Scratch::new("counts");
    let counts = Counts {
        samples_written: 12,
        reloads_ok: 2,
        reloads_refused: 1,
        round_ms: 250.0,
        last_commit: Some(jiff::Timestamp::now() - jiff::SignedDuration::from_millis(2500)),
        ..Counts::default()
    };
    let text = scrape(&state(&dir, counts, None)).await;
    let samples = parse(&text);
    assert_eq!(value(&samples, "tollgate_samples_written_total"), 12.0);
    assert_eq!(
        value(
            &samples,
            "tollgate_policy_reloads_total{result=\"refused\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "tollgate_policy_reloads_total{result=\"ok\"}"),
        2.0
    );
    assert_eq!(value(&samples, "tollgate_round_duration_seconds"), 0.25);
    assert_eq!(value(&samples, "tollgate_counters_tracked"), 4.0);
    let lag = value(&samples, "tollgate_accounting_lag_seconds");
    assert!((2.5..60.0).contains(&lag), "lag {lag}");
    assert!(
        text.contains("# TYPE tollgate_policy_reloads counter\n"),
        "{text}"
    );
}

/// One scrape over TCP; the response's status line and body.
fn get(addr: std::net::SocketAddr) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: tollgate\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn concurrent_scrapes_all_answer_while_silent_clients_hold_connections() {
    let dir = Scratch::new("concurrent");
    let v = flow_status(
        flow_collector::Totals {
            quarantined: 1,
            ..flow_collector::Totals::default()
        },
        vec![socket("127.0.0.1:2055", 1, 0)],
        Vec::new(),
        0,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let st = rt.block_on(async { state(&dir, Counts::default(), Some(&v)) });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(api::serve(listener, api::router(st), None));
    // Clients that connect and say nothing, or half a request: a server
    // that serves one connection at a time would wait on each of them.
    let mut silent: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    silent[0].write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    let start = Instant::now();
    let scrapers: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || get(addr)))
        .collect();
    for s in scrapers {
        let (status, body) = s.join().unwrap();
        assert!(status.contains(" 200 "), "{status}");
        assert!(body.contains("tollgate_flow_quarantined_total 1"), "{body}");
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "16 concurrent scrapes took {took:?}"
    );
    // The silent clients are still connected: nobody waited for them.
    for s in &silent {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let r = (&*s).read(&mut b);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{r:?}"
        );
    }
    drop(silent);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// `/metrics` from another host needs a token unless the policy's
/// `[api] metrics_public` opens it; from localhost it never does.
#[tokio::test]
async fn metrics_from_another_host_need_a_token_unless_made_public() {
    let dir = Scratch::new("remote");
    let from = |ip: [u8; 4], token: Option<&str>| {
        let mut b = Request::builder().method(Method::GET).uri("/metrics");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = b.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 40000,
            ))));
        req
    };
    let st = state(&dir, Counts::default(), None);
    let status = |st: &AppState, req: Request<Body>| {
        let app = api::router(st.clone());
        async move { app.oneshot(req).await.unwrap().status() }
    };
    assert_eq!(
        status(&st, from([127, 0, 0, 1], None)).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&st, from([192, 0, 2, 7], None)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&st, from([192, 0, 2, 7], Some("not-a-token"))).await,
        StatusCode::UNAUTHORIZED
    );
    let mut public = state(&dir, Counts::default(), None);
    public.metrics_public = true;
    assert_eq!(
        status(&public, from([192, 0, 2, 7], None)).await,
        StatusCode::OK
    );
}
