//! The dashboard in a real browser: Debian's headless Chromium, driven
//! over WebDriver, against a daemon in namespaces carrying real iperf3
//! traffic. Every page loads with no console error; the tenant graph's
//! data is the API's; its 95th line is `bill --json`'s figure; a change
//! of plan made on the page reaches the policy file and the kernel;
//! sign-in and sign-out work (and sign-out ends the session on the
//! server); a tenant's token reaches no other tenant, by URL or API.
//!
//! Screenshots of each page go to `target/dashboard-screenshots/` (or
//! `$TOLLGATE_SCREENSHOTS`); they are not committed.
//!
//! Needs root, iproute2, nftables, iperf3, curl, python3, chromium and
//! chromium-driver; everything is removed even when a test fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod browser;
mod daemon_site;

use browser::{in_netns, Browser};
use daemon_site::{sh, wait_for, Daemon, Site, INTERNATIONAL, NATIONAL};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const BASE: &str = "http://127.0.0.1:9188";

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "200mbit", up = "200mbit" }
# The eBPF classifier, for the passive TCP round trips the tenant page shows.
classifier = "ebpf"

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.home]
down = { rate = "20mbit", ceil = "50mbit" }
up = { rate = "20mbit", ceil = "50mbit" }

[plans.business]
down = { rate = "30mbit", ceil = "80mbit" }
up = { rate = "30mbit", ceil = "80mbit" }

[api]
listen = "127.0.0.1:9188"
tokens = "tokens.json"

# A test's few minutes of samples: missing ones are left out, so the 95th
# is one of the test's own samples; times in a zone that is not UTC.
[billing]
timezone = "Europe/Berlin"
missing = "skip"

# The site's own commit: the overview shows its 95th so far against it.
[[transit.upstreams]]
name = "carrier"
commit = "1mbit"
missing = "skip"
timezone = "Europe/Berlin"

# Latency: a probe to the national upstream; the overview shows it and the
# tenant page its queues.
[latency]
tcp_rtt = true
[[latency.probes]]
realm = "national"
target = "198.51.100.1"
interval = "500ms"

[[tenants]]
id = 1
name = "alice"
plan = "home"
prefixes = ["100.64.1.0/24"]
commit = "5mbit"

[[tenants]]
id = 2
name = "bob"
plan = "home"
prefixes = ["100.64.2.0/24"]
commit = "5mbit"
"#;

struct Lab {
    site: Site,
    daemon: Option<Daemon>,
    admin: String,
    alice: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            let _ = d.stop();
        }
    }
}

fn tollgate(site: &Site, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_CONFIG", site.policy_path())
        .env("TOLLGATE_STATE_DIR", site.state_dir())
        .env("TOLLGATE_ACCOUNTING", site.dir.join("accounting.toml"))
        .output()
        .expect("run tollgate");
    assert!(
        o.status.success(),
        "tollgate {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// iperf3 from `tenant`'s namespace against a server in the upstream on
/// `server` (`reverse`: a download), for `secs` seconds.
fn iperf(site: &Site, tenant: usize, server: &str, reverse: bool, secs: u32) {
    let up = site.upstream.clone();
    let mut s = testkit::Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &up, "iperf3", "-s", "-1", "-B", server])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut args = vec![
        "netns".to_string(),
        "exec".into(),
        site.tenants[tenant].clone(),
        "iperf3".into(),
        "-c".into(),
        server.into(),
        "-t".into(),
        secs.to_string(),
    ];
    if reverse {
        args.push("-R".into());
    }
    let o = Command::new("ip").args(&args).output().unwrap();
    assert!(
        o.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = s.wait(Duration::from_secs(5));
}

impl Lab {
    fn new(tag: &str) -> Lab {
        testkit::need("iperf3", "iperf3");
        let site = Site::build("tgdash", tag, 2);
        std::fs::write(site.policy_path(), POLICY).unwrap();
        std::fs::write(site.dir.join("accounting.toml"), "").unwrap();
        // The sink drops UDP port 9 only; iperf3 is TCP on 5201.
        let token = |name: &str, scope: &str| {
            let out = tollgate(&site, &["token", "add", name, "--scope", scope, "--json"]);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            v["token"].as_str().unwrap().to_string()
        };
        let (admin, alice) = (token("noc", "admin"), token("alice-portal", "tenant:1"));
        let daemon = site.start_daemon(&site.dir.join("accounting.toml"), &[]);
        let lab = Lab {
            site,
            daemon: Some(daemon),
            admin,
            alice,
        };
        wait_for("the API", Duration::from_secs(10), || {
            lab.curl("/api/v1/session", None).0 == 200
        });
        lab
    }

    /// A GET from inside the router, with an optional cookie: (status, body).
    fn curl(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.site.host,
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "--max-time",
            "20",
        ]);
        if let Some(c) = cookie {
            cmd.args(["-H", &format!("Cookie: tollgate_session={c}")]);
        }
        cmd.arg(format!("{BASE}{path}"));
        let out = String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn traffic(&self) {
        iperf(&self.site, 0, NATIONAL, true, 3);
        iperf(&self.site, 0, INTERNATIONAL, false, 2);
        iperf(&self.site, 1, NATIONAL, false, 2);
        // Two reads after it: in the history's state or its samples.
        std::thread::sleep(Duration::from_millis(2500));
    }
}

fn screenshots() -> PathBuf {
    std::env::var_os("TOLLGATE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::repo().join("target/dashboard-screenshots"))
}

/// Rates from the API's columns of bytes: bit/s per bucket.
fn rates(series: &serde_json::Value, column: &serde_json::Value) -> Vec<f64> {
    let secs = series["seconds"].as_array().unwrap();
    column["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(secs)
        .map(|(b, s)| b.as_f64().unwrap() * 8.0 / s.as_f64().unwrap().max(1.0))
        .collect()
}

#[test]
fn every_page_loads_shows_the_apis_figures_and_changes_a_plan() {
    if !testkit::root("every_page_loads_shows_the_apis_figures_and_changes_a_plan") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new("pages");
    lab.traffic();
    let host = lab.site.host.clone();
    let admin = lab.admin.clone();
    let bill = serde_json::from_str::<serde_json::Value>(&tollgate(&lab.site, &["bill", "--json"]))
        .unwrap();
    let p95 = bill["bills"][0]["bill"]["lines"][0]["percentile"]["value"]["rate"]
        .as_f64()
        .expect("alice's 95th in bill --json");
    assert!(p95 > 0.0, "{bill}");
    let shots = screenshots();
    let dir = shots.clone();
    let (usage_api, cookie) = in_netns(Some(host), move || {
        Box::pin(async move {
            let b = Browser::start("pages").await;
            b.sign_in(BASE, &admin).await;
            let cookie = b.client.get_named_cookie("tollgate_session").await.unwrap();
            assert!(cookie.http_only() == Some(true), "{cookie:?}");
            assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
            let _ = b.console();
            // Today in the billing zone: 5-minute graphs of the test's traffic.
            let today = jiff::Zoned::now()
                .with_time_zone(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
                .date();
            for (name, path) in [
                ("overview", format!("/?since={today}")),
                ("tenants", "/tenants?sort=volume".to_string()),
                ("tenant", format!("/tenants/1?since={today}")),
                ("realms", format!("/realms?since={today}")),
                ("flows", "/flows".to_string()),
            ] {
                b.open(&format!("{BASE}{path}")).await;
                if name == "tenants" {
                    b.wait_for("the page's 95th", "return !document.querySelector('td[data-col=p95]') || [...document.querySelectorAll('td[data-col=p95]')].every(td => td.textContent !== '…')").await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                let errors = b.console_errors();
                assert!(errors.is_empty(), "{path}: console errors: {errors:?}");
                b.screenshot(&dir.join(format!("{name}.png"))).await;
            }
            // The overview's graph and tables come from the API.
            b.open(&format!("{BASE}/")).await;
            let site = b.fetch_json("/api/v1/site").await;
            let top = b.js("return [...document.querySelectorAll('#top tbody tr td:first-child')].map(td => td.textContent)").await;
            let names: Vec<_> = site["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].clone())
                .collect();
            assert_eq!(top, serde_json::Value::Array(names));
            // The site's 95th so far against the transit commit: the tile
            // shows the API's figure.
            let p = &site["percentile"];
            assert_eq!(p["upstream"], "carrier", "{site}");
            assert_eq!(p["commit_bps"], 1_000_000, "{site}");
            assert!(p["billed_bps"].as_u64().unwrap() > 0, "{site}");
            let tile = b.js("return [...document.querySelectorAll('.tile')].map(t => t.textContent).find(t => t.startsWith('Site 95th so far')) ?? null").await;
            let tile = tile
                .as_str()
                .unwrap_or_else(|| panic!("no transit tile: {site}"))
                .to_string();
            assert!(tile.contains("carrier: commit 1 Mbit/s"), "{tile}");
            assert!(
                tile.contains(&format!(
                    "budget {} of {} samples left ({} spent)",
                    p["left"], p["budget"], p["spent"]
                )),
                "{tile} vs {p}"
            );

            // Latency: the probe the API has, with its median, and no
            // alarm.
            let latency = b.fetch_json("/api/v1/latency").await;
            let probe = latency["probes"][0]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("no probe: {latency}"))
                .to_string();
            assert_eq!(probe, "national icmp 198.51.100.1");
            let row = b.js("return [...document.querySelectorAll('#probes tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))").await;
            assert_eq!(row[0][0], probe.as_str(), "{row}");
            assert!(row[0][1].as_str().unwrap().starts_with("median "), "{row}");
            let alarms = b
                .js("return document.querySelector('#latency-alarms')?.textContent ?? null")
                .await;
            assert_eq!(alarms, "No latency alarm now.", "{latency}");

            // The tenant graph: the data drawn is the API's, to the bit/s.
            b.open(&format!("{BASE}/tenants/1")).await;
            // Its queues, as the API has them for the tenant.
            let mine = b.fetch_json("/api/v1/latency?tenant=1").await;
            let mut want: Vec<String> = mine["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["label"].as_str().unwrap().to_string())
                .collect();
            assert!(!want.is_empty(), "{mine}");
            let mut shown: Vec<String> = serde_json::from_value(b.js("return [...document.querySelectorAll('#queues tbody tr td:first-child')].map(td => td.textContent)").await).unwrap();
            want.sort();
            shown.sort();
            assert_eq!(shown, want);
            // Its TCP round trips (iperf3's connections carry timestamps):
            // a row per realm the API has, with the API's median.
            let rtt = mine["tcp_rtt"].as_array().cloned().unwrap_or_default();
            assert!(!rtt.is_empty(), "no TCP round trips for alice: {mine}");
            let rows = b.js("return [...document.querySelectorAll('#tcp-rtt tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))").await;
            let rows = rows.as_array().unwrap();
            assert_eq!(rows.len(), rtt.len(), "{rows:?} vs {mine}");
            for r in &rtt {
                let name = r["realm_name"].as_str().unwrap();
                let row = rows
                    .iter()
                    .find(|row| row[0] == name)
                    .unwrap_or_else(|| panic!("{name} not on the page: {rows:?}"));
                assert!(row[2].as_str().unwrap().ends_with(" ms"), "{row:?}");
            }
            let usage = b.fetch_json("/api/v1/tenants/1/usage").await;
            let site_usage = b.fetch_json("/api/v1/site/usage").await;
            // The exported graph: a PNG, and a size out of bounds named.
            let png = b
                .client
                .execute_async(
                    "const done = arguments[0]; fetch('/api/v1/tenants/1/graph.png?width=640&height=240').then(r => r.arrayBuffer()).then(a => done([...new Uint8Array(a.slice(0, 8))]));",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                png,
                serde_json::json!([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
            );
            let bad = b.fetch_json("/api/v1/tenants/1/graph.png?width=10").await;
            assert_eq!(bad["field"], "width", "{bad}");
            assert_eq!(b.fetch_status("/api/v1/site/graph.svg").await, 200);
            // The refused size above is in the console: not the page's.
            let _ = b.console();
            let drawn = b
                .js("const g = document.querySelector('#tenant-graph'); return {t: g.chart.data[0], series: g.chart.series.map(s => s.label), data: g.chart.data, p95: Number(g.dataset.p95Bps)}")
                .await;
            assert_eq!(drawn["t"], usage["series"]["t"]);
            let labels: Vec<String> = drawn["series"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            // Stacked: the outermost drawn series of each side is the sum
            // of that side's columns.
            for side in ["down", "up"] {
                let cols: Vec<&serde_json::Value> = usage["series"]["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["direction"] == side)
                    .collect();
                assert!(!cols.is_empty(), "no {side} traffic: {usage}");
                let n = usage["series"]["t"].as_array().unwrap().len();
                let mut sum = vec![0.0; n];
                for c in &cols {
                    for (i, v) in rates(&usage["series"], c).iter().enumerate() {
                        sum[i] += v;
                    }
                }
                let last = format!(
                    "{} {side}",
                    cols.last().unwrap()["realm_name"].as_str().unwrap()
                );
                let at = labels
                    .iter()
                    .position(|l| *l == last)
                    .unwrap_or_else(|| panic!("{last} not in {labels:?}"));
                let plotted: Vec<f64> = drawn["data"][at]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap().abs())
                    .collect();
                for (a, e) in plotted.iter().zip(&sum) {
                    assert!(
                        (a - e).abs() <= 1e-6 * e.max(1.0),
                        "{side}: drawn {a}, API {e}"
                    );
                }
                assert!(sum.iter().any(|v| *v > 0.0), "{side}: no traffic drawn");
            }
            // The 95th line.
            let line = labels
                .iter()
                .position(|l| l.contains("95th"))
                .expect("a 95th line");
            let value = drawn["data"][line][0].as_f64().unwrap().abs();
            (
                (usage, value, drawn["p95"].as_f64().unwrap(), site_usage),
                {
                    // A change of plan from the page.
                    let plan = b
                        .client
                        .find(fantoccini::Locator::Css("#plan"))
                        .await
                        .unwrap();
                    plan.select_by_value("business").await.unwrap();
                    b.client
                        .find(fantoccini::Locator::Css("#move button"))
                        .await
                        .unwrap()
                        .click()
                        .await
                        .unwrap();
                    b.wait_for("the move", "return /kernel changes/.test(document.querySelector('#admin-message')?.textContent ?? '')").await;
                    b.ready().await;
                    let errors = b.console_errors();
                    assert!(errors.is_empty(), "after the move: {errors:?}");
                    b.wait_for("the new plan shown", "return /^business/.test(document.querySelector('#tenant-plan')?.textContent ?? '')").await;
                    // Sign out: the session ends on the server.
                    let session = cookie.value().to_string();
                    b.client
                        .find(fantoccini::Locator::Css("#signout"))
                        .await
                        .unwrap()
                        .click()
                        .await
                        .unwrap();
                    b.wait_for(
                        "the sign-in form",
                        "return !!document.querySelector('#signin')",
                    )
                    .await;
                    assert_eq!(b.fetch_status("/api/v1/tenants").await, 401);
                    b.quit().await;
                    session
                },
            )
        })
    });
    let (usage, line, p95_attr, site_usage) = usage_api;
    // The CLI's figures for the same upstream: the same commit and budget.
    let transit =
        serde_json::from_str::<serde_json::Value>(&tollgate(&lab.site, &["transit", "--json"]))
            .unwrap();
    let carrier = &transit["upstreams"][0]["status"];
    assert_eq!(carrier["commit"], 1_000_000, "{transit}");
    assert!(carrier["so_far"]["rate"].as_u64().unwrap() > 0, "{transit}");
    // The site's series adds up to `tollgate realms`, realm by realm.
    let realms =
        serde_json::from_str::<serde_json::Value>(&tollgate(&lab.site, &["realms", "--json"]))
            .unwrap();
    for r in realms["realms"].as_array().unwrap() {
        for (dir, key) in [("down", "bytes_from"), ("up", "bytes_to")] {
            let col = site_usage["columns"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["realm"] == r["realm"] && c["direction"] == dir)
                .unwrap_or_else(|| panic!("{dir} of {r} not in {site_usage}"));
            if r["realm"] == 0 {
                // Traffic of no tenant (neighbour discovery and the like)
                // goes on after the test's own: `realms`, read later, may
                // have more of it, never less.
                assert!(
                    col["total_bytes"].as_u64() <= r[key].as_u64(),
                    "no tenant's {dir}: {} then {}",
                    col["total_bytes"],
                    r[key]
                );
            } else {
                assert_eq!(col["total_bytes"], r[key], "{} {dir}", r["name"]);
            }
        }
    }
    assert_eq!(line, p95, "the graph's 95th line is bill --json's");
    assert_eq!(p95_attr, p95);
    assert!(
        usage["series"]["columns"].as_array().unwrap().len() >= 3,
        "{usage}"
    );
    // The plan changed in the policy file and in the kernel.
    let text = std::fs::read_to_string(lab.site.policy_path()).unwrap();
    assert!(
        text.contains("name = \"alice\"\nplan = \"business\""),
        "{text}"
    );
    let classes = sh(&format!(
        "ip netns exec {} tc class show dev tg-down",
        lab.site.host
    ));
    assert!(classes.contains("ceil 80Mbit"), "{classes}");
    // The signed-out cookie no longer works, from anywhere.
    assert_eq!(lab.curl("/api/v1/tenants", Some(&cookie)).0, 401);
    eprintln!("screenshots: {}", shots.display());
}

#[test]
fn a_tenant_token_sees_its_own_tenant_only() {
    if !testkit::root("a_tenant_token_sees_its_own_tenant_only") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new("tenant");
    lab.traffic();
    let host = lab.site.host.clone();
    let alice = lab.alice.clone();
    let shots = screenshots();
    in_netns(Some(host), move || {
        Box::pin(async move {
            let b = Browser::start("tenant").await;
            // A wrong token is refused on the form, and opens no session.
            b.client.goto(BASE).await.unwrap();
            b.wait_for(
                "the sign-in form",
                "return !!document.querySelector('#signin')",
            )
            .await;
            b.client
                .find(fantoccini::Locator::Css("#token"))
                .await
                .unwrap()
                .send_keys("tg_wrong")
                .await
                .unwrap();
            b.client
                .find(fantoccini::Locator::Css("#signin button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            b.wait_for("the refusal", "return /not valid/.test(document.querySelector('#signin-message')?.textContent ?? '')").await;
            assert!(b.client.get_named_cookie("tollgate_session").await.is_err());
            b.sign_in(BASE, &alice).await;
            let _ = b.console();
            // The overview is not for a tenant: it lands on its own page.
            b.open(&format!("{BASE}/")).await;
            assert!(b
                .client
                .current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/tenants/1"));
            assert!(b.console_errors().is_empty());
            b.screenshot(&shots.join("customer.png")).await;
            // Another tenant's URL shows its own tenant, never the other.
            for path in [
                "/tenants/2",
                "/tenants/bob",
                "/tenants",
                "/realms",
                "/flows",
            ] {
                b.open(&format!("{BASE}{path}")).await;
                let url = b.client.current_url().await.unwrap();
                assert_eq!(url.path(), "/tenants/1", "{path}");
                let text = b.js("return document.documentElement.outerHTML").await;
                let text = text.as_str().unwrap();
                assert!(!text.contains("bob"), "{path} mentions another tenant");
                assert!(
                    !text.contains("100.64.2."),
                    "{path} shows another tenant's addresses"
                );
            }
            let nav = b
                .js("return [...document.querySelectorAll('#nav a')].map(a => a.textContent)")
                .await;
            assert_eq!(nav, serde_json::json!(["My traffic"]));
            // The API from the browser: the other tenant is not there.
            for (path, status) in [
                ("/api/v1/tenants/2", 404),
                ("/api/v1/tenants/bob/usage", 404),
                ("/api/v1/tenants/2/bill", 404),
                ("/api/v1/tenants/2/graph.png", 404),
                ("/api/v1/site", 403),
                ("/api/v1/site/usage", 403),
                ("/api/v1/status", 403),
                ("/api/v1/realms", 403),
                ("/api/v1/plans", 403),
                ("/api/v1/tenants/1", 200),
                ("/api/v1/tenants/1/graph.svg", 200),
            ] {
                assert_eq!(b.fetch_status(path).await, status, "{path}");
            }
            let list = b.fetch_json("/api/v1/tenants").await;
            assert_eq!(list["total"], 1, "{list}");
            let bills = b.fetch_json("/api/v1/bills?tenants=1,2").await;
            assert_eq!(bills["bills"].as_array().unwrap().len(), 1, "{bills}");
            assert_eq!(bills["bills"][0]["bill"]["tenant"], 1);
            let svg = b
                .client
                .execute_async(
                    "const done = arguments[0]; fetch('/api/v1/tenants/1/graph.svg').then(r => r.text()).then(done);",
                    vec![],
                )
                .await
                .unwrap();
            let svg = svg.as_str().unwrap();
            assert!(svg.contains("<svg") && svg.contains("alice") && !svg.contains("bob"));
            b.quit().await;
        })
    });
}
