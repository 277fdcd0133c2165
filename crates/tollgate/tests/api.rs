//! The HTTP API against a daemon in namespaces with real traffic: every
//! endpoint answers the same figures as the command line (both call the
//! query layer), and every write refuses what it must (no token, a read
//! token, another tenant's token, malformed JSON, unknown fields, a huge
//! body, invalid values) without touching the policy file or the kernel,
//! and carries out what it may.
//!
//! The router is `daemon_site`'s; the API listens on the router
//! namespace's loopback and is called with curl inside it. Needs root,
//! iproute2, nftables, python3 and curl; everything is removed even when a
//! test fails.

use std::process::Command;
use std::time::Duration;

mod daemon_site;

use daemon_site::{sh, wait_for, Daemon, Site, NATIONAL, SENDER};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "200mbit", up = "200mbit" }

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.home]   # the usual plan
down = { rate = "20mbit", ceil = "50mbit" }
up = { rate = "20mbit", ceil = "50mbit" }

[plans.business]
down = { rate = "30mbit", ceil = "80mbit" }
up = { rate = "30mbit", ceil = "80mbit" }

[api]
listen = "127.0.0.1:9188"
tokens = "tokens.json"

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
commit = "1mbit"

[[tenants]]
id = 2
name = "t2"
plan = "home"
prefixes = ["100.64.2.0/24"]
commit = "1mbit"
"#;

/// An HTTP answer: status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

struct Api {
    site: Site,
    daemon: Option<Daemon>,
    admin: String,
    read: String,
    t1: String,
    t2: String,
}

impl Api {
    fn new(tag: &str) -> Api {
        let site = Site::build("tgapi", tag, 2);
        std::fs::write(site.policy_path(), POLICY).unwrap();
        std::fs::write(site.dir.join("accounting.toml"), "").unwrap();
        let token = |scope: &str| {
            let name = format!("test-{}", scope.replace(':', "-"));
            let out = tollgate(&site, &["token", "add", &name, "--scope", scope, "--json"]);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            v["token"].as_str().unwrap().to_string()
        };
        let (admin, read, t1, t2) = (
            token("admin"),
            token("read"),
            token("tenant:1"),
            token("tenant:2"),
        );
        let daemon = site.start_daemon(&site.dir.join("accounting.toml"), &[]);
        let api = Api {
            site,
            daemon: Some(daemon),
            admin,
            read,
            t1,
            t2,
        };
        wait_for("the API", Duration::from_secs(10), || {
            api.call("GET", "/api/v1/status", Some(&api.read), None)
                .status
                == 200
        });
        api
    }

    /// `METHOD path` with a token and a JSON body, from inside the router.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        self.raw(method, path, token, body, "application/json")
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        ctype: &str,
    ) -> Answer {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.site.host,
            "curl",
            "-s",
            "-S",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "--max-time",
            "60",
        ]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if let Some(b) = body {
            let file = self.site.dir.join("body");
            std::fs::write(&file, b).unwrap();
            cmd.args(["-H", &format!("Content-Type: {ctype}"), "--data-binary"]);
            cmd.arg(format!("@{}", file.display()));
        }
        cmd.arg(format!("http://127.0.0.1:9188{path}"));
        let o = cmd.output().expect("curl");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        Answer {
            status: code.trim().parse().unwrap_or(0),
            body: body.to_string(),
        }
    }

    /// The CLI's JSON for the same question.
    fn cli(&self, args: &[&str]) -> serde_json::Value {
        let out = tollgate(&self.site, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    fn policy_text(&self) -> String {
        std::fs::read_to_string(self.site.policy_path()).unwrap()
    }

    fn classes(&self) -> String {
        sh(&format!(
            "ip netns exec {} tc class show dev tg-down",
            self.site.host
        ))
    }

    /// Sends traffic to both tenants and waits for the daemon to commit it.
    fn traffic(&self) {
        for k in 1..=2u32 {
            let to = format!("100.64.{k}.2");
            let n = (1000 * k).to_string();
            sh(&format!(
                "ip netns exec {} python3 -c \"{}\" {NATIONAL} {to} {n}",
                self.site.upstream,
                SENDER.replace('"', "\\\"")
            ));
        }
        // Two reads after the traffic: everything is in the history's
        // state or its samples.
        std::thread::sleep(Duration::from_millis(2500));
    }
}

impl Drop for Api {
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

#[test]
fn every_read_answers_what_the_command_line_answers() {
    if !testkit::root("every_read_answers_what_the_command_line_answers") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = Api::new("read");
    a.traffic();

    // Usage: the same totals, to the byte, per realm and direction.
    let api = a.call("GET", "/api/v1/tenants/1/usage", Some(&a.read), None);
    assert_eq!(api.status, 200, "{}", api.body);
    let api = api.json();
    let cli = a.cli(&["usage", "1", "--json"]);
    assert_eq!(
        api["totals"]["totals"], cli["tenants"][0]["totals"],
        "api {api}\ncli {cli}"
    );
    let down: u64 = api["totals"]["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["down_bytes"].as_u64().unwrap())
        .sum();
    assert!(down >= 1000 * 1042, "{api}");
    // The series sums to the totals, column by column.
    for c in api["series"]["columns"].as_array().unwrap() {
        let sum: u64 = c["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(sum, c["total_bytes"].as_u64().unwrap());
        let t = api["totals"]["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["realm"] == c["realm"])
            .unwrap();
        assert_eq!(
            sum,
            t[format!("{}_bytes", c["direction"].as_str().unwrap())]
                .as_u64()
                .unwrap()
        );
    }
    assert_eq!(
        api["series"]["t"].as_array().unwrap().len(),
        api["series"]["columns"][0]["bytes"]
            .as_array()
            .unwrap()
            .len()
    );

    // Bills: the same figures.
    let api = a.call("GET", "/api/v1/bills", Some(&a.read), None).json();
    let cli = a.cli(&["bill", "--json"]);
    assert_eq!(api["bills"], cli["bills"], "api {api}\ncli {cli}");
    let one = a
        .call("GET", "/api/v1/tenants/2/bill", Some(&a.read), None)
        .json();
    assert_eq!(one["bills"][0], cli["bills"][1]);

    // Realms.
    let api = a.call("GET", "/api/v1/realms", Some(&a.read), None).json();
    let cli = a.cli(&["realms", "--json"]);
    assert_eq!(api["realms"], cli["realms"]);
    assert!(api["realms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "national"));

    // Status: the same classes, ceilings and rates' keys as the CLI's.
    let api = a.call("GET", "/api/v1/status", Some(&a.read), None).json();
    let cli = a.cli(&[
        "--netns",
        &a.site.host,
        "status",
        "--json",
        "--interval",
        "200ms",
    ]);
    let shape = |v: &serde_json::Value| {
        let mut rows: Vec<String> = v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {} {} {}",
                    c["tenant"], c["direction"], c["realm"], c["class"], c["rate"], c["ceil"]
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(shape(&api), shape(&cli));
    assert!(api["counts"]["reads"].as_u64().unwrap() > 0);
    assert_eq!(api["tenants"], 2);

    // Tenants: filter, sort, paginate.
    let list = a
        .call(
            "GET",
            "/api/v1/tenants?sort=name&order=desc&limit=1",
            Some(&a.read),
            None,
        )
        .json();
    assert_eq!(
        (list["total"].clone(), list["tenants"][0]["name"].clone()),
        (2.into(), "t2".into())
    );
    let list = a
        .call("GET", "/api/v1/tenants?q=t1", Some(&a.read), None)
        .json();
    assert_eq!(list["total"], 1);
    let by_volume = a
        .call("GET", "/api/v1/tenants?sort=volume", Some(&a.read), None)
        .json();
    assert_eq!(by_volume["tenants"][0]["name"], "t2", "{by_volume}");
    let vol = by_volume["tenants"][0]["period_bytes"].as_u64().unwrap();
    let t2_cli = a.cli(&["usage", "2", "--json"]);
    let t2_total: u64 = t2_cli["tenants"][0]["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["down_bytes"].as_u64().unwrap() + r["up_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(vol, t2_total);
    let t = a
        .call("GET", "/api/v1/tenants/t1", Some(&a.read), None)
        .json();
    assert_eq!(
        (
            t["id"].clone(),
            t["plan"].clone(),
            t["down"]["ceil"].clone()
        ),
        (1.into(), "home".into(), "50mbit".into())
    );

    // Top, overage, flows, routes, openapi, metrics.
    let top = a.call("GET", "/api/v1/top", Some(&a.read), None).json();
    assert_eq!(top["rows"].as_array().unwrap().len(), 4, "{top}");
    let ov = a.call("GET", "/api/v1/overage", Some(&a.read), None).json();
    assert_eq!(ov, a.cli(&["overage", "list", "--json"]));
    assert_eq!(
        a.call("GET", "/api/v1/flows/status", Some(&a.read), None)
            .status,
        404
    );
    assert_eq!(
        a.call(
            "GET",
            "/api/v1/routes/lookup?ip=192.0.2.9",
            Some(&a.read),
            None
        )
        .status,
        404
    );
    assert_eq!(
        a.call(
            "GET",
            "/api/v1/routes/lookup?ip=nonsense",
            Some(&a.read),
            None
        )
        .json()["field"],
        "ip"
    );
    let doc = a.call("GET", "/api/v1/openapi.json", None, None).json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert!(doc["paths"]["/api/v1/tenants/{id}/usage"]["get"].is_object());
    let m = a.call("GET", "/metrics", None, None);
    assert_eq!(m.status, 200);
    assert!(m.body.contains("tollgate_reads_total "), "{}", m.body);
    assert!(
        m.body
            .contains("tollgate_policy_reloads_total{result=\"ok\"}"),
        "{}",
        m.body
    );
}

#[test]
fn tokens_see_only_what_their_scope_allows() {
    if !testkit::root("tokens_see_only_what_their_scope_allows") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = Api::new("scope");
    // No token, a wrong token.
    let p = a.call("GET", "/api/v1/tenants", None, None);
    assert_eq!(p.status, 401);
    assert!(p.body.contains("token add"), "{}", p.body);
    assert_eq!(
        a.call("GET", "/api/v1/tenants", Some("tg_nope"), None)
            .status,
        401
    );
    // A tenant's token: its own tenant, nothing else, and another
    // tenant's URL is 404 like one that does not exist.
    assert_eq!(
        a.call("GET", "/api/v1/tenants/1", Some(&a.t1), None).status,
        200
    );
    let other = a.call("GET", "/api/v1/tenants/2", Some(&a.t1), None);
    let none = a.call("GET", "/api/v1/tenants/999", Some(&a.t1), None);
    assert_eq!((other.status, none.status), (404, 404));
    assert_eq!(
        other.body.replace("`2`", "`X`"),
        none.body.replace("`999`", "`X`")
    );
    assert_eq!(
        a.call("GET", "/api/v1/tenants/2/usage", Some(&a.t1), None)
            .status,
        404
    );
    assert_eq!(
        a.call("GET", "/api/v1/tenants/t2/bill", Some(&a.t1), None)
            .status,
        404
    );
    let list = a.call("GET", "/api/v1/tenants", Some(&a.t1), None).json();
    assert_eq!(list["total"], 1);
    let bills = a.call("GET", "/api/v1/bills", Some(&a.t1), None).json();
    assert_eq!(bills["bills"].as_array().unwrap().len(), 1);
    assert_eq!(bills["bills"][0]["bill"]["tenant"], 1);
    for site_wide in [
        "/api/v1/status",
        "/api/v1/realms",
        "/api/v1/overage",
        "/api/v1/flows/status",
    ] {
        assert_eq!(
            a.call("GET", site_wide, Some(&a.t1), None).status,
            403,
            "{site_wide}"
        );
    }
    let top = a.call("GET", "/api/v1/top", Some(&a.t2), None).json();
    assert!(
        top["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tenant"] == 2),
        "{top}"
    );
    // Methods and paths that do not exist.
    assert_eq!(
        a.call("DELETE", "/api/v1/tenants/1", Some(&a.admin), None)
            .status,
        405
    );
    assert_eq!(
        a.call("GET", "/api/v2/anything", Some(&a.admin), None)
            .status,
        404
    );
    // A revoked token stops at once.
    tollgate(&a.site, &["token", "revoke", "test-tenant-2"]);
    assert_eq!(
        a.call("GET", "/api/v1/tenants/2", Some(&a.t2), None).status,
        401
    );
    // Failed attempts from one client are limited.
    let mut last = 0;
    for _ in 0..12 {
        last = a
            .call("GET", "/api/v1/tenants", Some("tg_guess"), None)
            .status;
    }
    assert_eq!(last, 429);
}

#[test]
fn writes_refuse_what_they_must_and_change_nothing() {
    if !testkit::root("writes_refuse_what_they_must_and_change_nothing") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = Api::new("refuse");
    let before = (a.policy_text(), a.classes());
    let patch = r#"{"down": {"ceil": "40mbit"}}"#;
    let cases: Vec<(Option<&str>, &str, u16, Option<&str>)> = vec![
        (None, patch, 401, None),
        (Some(&a.read), patch, 403, None),
        (Some(&a.t1), patch, 403, None),
        (Some(&a.t2), patch, 404, None),
        (Some(&a.admin), "{\"down\": ", 400, None),
        (
            Some(&a.admin),
            r#"{"down": {"ceil": "40mbit"}, "colour": "red"}"#,
            422,
            Some("colour"),
        ),
        (
            Some(&a.admin),
            r#"{"down": {"speed": "40mbit"}}"#,
            422,
            Some("down.speed"),
        ),
        (
            Some(&a.admin),
            r#"{"down": {"ceil": "fast"}}"#,
            422,
            Some("down.ceil"),
        ),
        (
            Some(&a.admin),
            r#"{"down": {"ceil": 40}}"#,
            422,
            Some("down.ceil"),
        ),
        // Valid values the policy refuses: a ceil below the rate.
        (Some(&a.admin), r#"{"down": {"ceil": "1mbit"}}"#, 422, None),
        (Some(&a.admin), r#"{}"#, 422, None),
    ];
    for (token, body, status, field) in cases {
        let r = a.call("PATCH", "/api/v1/tenants/1", token, Some(body));
        assert_eq!(r.status, status, "{body} with {token:?}: {}", r.body);
        if let Some(f) = field {
            assert_eq!(r.json()["field"], f, "{}", r.body);
        }
        if status >= 400 && status != 401 {
            assert!(r.body.contains("\"type\""), "not a problem: {}", r.body);
        }
    }
    let huge = format!("{{\"plan\": \"{}\"}}", "x".repeat(100_000));
    assert_eq!(
        a.call(
            "POST",
            "/api/v1/tenants/1/move",
            Some(&a.admin),
            Some(&huge)
        )
        .status,
        413
    );
    let r = a.call(
        "POST",
        "/api/v1/tenants/1/move",
        Some(&a.admin),
        Some(r#"{"plan": "gold"}"#),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("gold"), "{}", r.body);
    assert!(
        !r.json()["diagnostics"].as_array().unwrap().is_empty(),
        "{}",
        r.body
    );
    assert_eq!(
        a.raw(
            "POST",
            "/api/v1/tenants/1/move",
            Some(&a.admin),
            Some(r#"{"plan": "business"}"#),
            "text/plain"
        )
        .status,
        400
    );
    assert_eq!(
        a.call("POST", "/api/v1/overage/1/release", Some(&a.admin), None)
            .status,
        404
    );
    assert_eq!(
        a.call("POST", "/api/v1/reload", Some(&a.read), None).status,
        403
    );
    // Nothing changed: not the file, not the kernel.
    assert_eq!(a.policy_text(), before.0);
    assert_eq!(a.classes(), before.1);
}

#[test]
fn writes_edit_the_policy_and_the_kernel_incrementally() {
    if !testkit::root("writes_edit_the_policy_and_the_kernel_incrementally") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = Api::new("write");
    let r = a.call(
        "PATCH",
        "/api/v1/tenants/t2",
        Some(&a.admin),
        Some(r#"{"down": {"ceil": "40mbit"}, "commit": "2mbit"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let text = a.policy_text();
    assert!(
        text.contains("[plans.home]   # the usual plan"),
        "comments kept:\n{text}"
    );
    assert!(
        text.contains("down = { ceil = \"40mbit\" }") && text.contains("commit = \"2mbit\""),
        "{text}"
    );
    assert!(a.classes().contains("ceil 40Mbit"), "{}", a.classes());
    let r = a.call(
        "POST",
        "/api/v1/tenants/1/move",
        Some(&a.admin),
        Some(r#"{"plan": "business"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["applied"].as_u64().unwrap() > 0, "{}", r.body);
    assert!(a
        .policy_text()
        .contains("name = \"t1\"\nplan = \"business\""));
    assert!(a.classes().contains("ceil 80Mbit"), "{}", a.classes());
    let t = a
        .call("GET", "/api/v1/tenants/1", Some(&a.read), None)
        .json();
    assert_eq!(t["plan"], "business");
    // Read your writes: the answer to a write comes only once the state it
    // changed is what reads see (the daemon publishes its snapshot first).
    for plan in ["home", "business"].iter().cycle().take(6) {
        let r = a.call(
            "POST",
            "/api/v1/tenants/1/move",
            Some(&a.admin),
            Some(&format!(r#"{{"plan": "{plan}"}}"#)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let t = a
            .call("GET", "/api/v1/tenants/1", Some(&a.read), None)
            .json();
        assert_eq!(t["plan"], *plan, "read right after the move to {plan}");
    }
    // An edit by hand, then a reload through the API.
    std::fs::write(
        a.site.policy_path(),
        a.policy_text().replace(
            "ceil = \"80mbit\" }\nup = { rate = \"30mbit\"",
            "ceil = \"70mbit\" }\nup = { rate = \"30mbit\"",
        ),
    )
    .unwrap();
    // A write while the file differs from what was loaded is refused.
    let r = a.call(
        "PATCH",
        "/api/v1/tenants/2",
        Some(&a.admin),
        Some(r#"{"up": {"ceil": "30mbit"}}"#),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = a.call("POST", "/api/v1/reload", Some(&a.admin), None);
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for("the reloaded ceil", Duration::from_secs(10), || {
        a.classes().contains("ceil 70Mbit")
    });
}

#[test]
fn beyond_the_box_the_api_needs_tls_and_serves_https() {
    if !testkit::root("beyond_the_box_the_api_needs_tls_and_serves_https") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    testkit::need("openssl", "openssl");
    let site = Site::build("tgapi", "tls", 1);
    std::fs::write(site.dir.join("accounting.toml"), "").unwrap();
    // Without [api.tls], a listener beyond the box is refused by check.
    let open = POLICY.replace("listen = \"127.0.0.1:9188\"", "listen = \"0.0.0.0:9443\"");
    std::fs::write(site.policy_path(), &open).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(site.policy_path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("without TLS") && err.contains("[api.tls]"),
        "{err}"
    );
    // With it, HTTPS on the router's uplink address.
    sh(&format!(
        "cd {} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=tollgate -keyout api.key -out api.crt 2>/dev/null",
        site.dir.display()
    ));
    let tls = open.replace(
        "tokens = \"tokens.json\"",
        "tokens = \"tokens.json\"\n\n[api.tls]\ncertificate = \"api.crt\"\nkey = \"api.key\"",
    );
    std::fs::write(site.policy_path(), tls).unwrap();
    let token = {
        let out = tollgate(&site, &["token", "add", "t", "--scope", "read", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let d = site.start_daemon(&site.dir.join("accounting.toml"), &[]);
    let call = |scheme: &str| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &site.host,
                "curl",
                "-s",
                "-k",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                "-H",
            ])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{scheme}://192.0.2.1:9443/api/v1/tenants"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap()
    };
    wait_for("HTTPS", Duration::from_secs(10), || call("https") == "200");
    assert_ne!(
        call("http"),
        "200",
        "plain HTTP must not be served on a TLS listener"
    );
    assert!(d.stop().success());
}
