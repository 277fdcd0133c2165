//! The overage automation and `bill --csv / --json / --freeze`, end to end
//! against the real kernel, with `tollgate run` in a namespace.
//!
//! Each test builds a small router in namespaces named `tgo-<tag><pid>-*`
//! (as tests/accounting.rs does: an upstream with 198.51.100.1 in realm
//! `national` and 203.0.113.1 in `international`, the router with `wan0`
//! and a bridge `lan0`, one namespace per tenant k with 100.64.k.2/24),
//! removed by a Drop guard even when a test fails. Every wait is bounded.
//!
//! The overage automation projects from *closed* 5-minute samples only
//! (docs/accounting.md), and a slot closes on the wall clock, up to five
//! minutes after the traffic. So that the test takes seconds, the history
//! is seeded before the daemon starts with one closed sample of earlier
//! traffic in this period (the same `Store::append` the daemon uses); the
//! rest (the decision, the policy edit, the kernel change, `overage list`,
//! `status`, the release) is the daemon's own, with real traffic flowing
//! through the tenant's classes while it is moved back.
//!
//! Needs root, iproute2, nftables and python3.

use accounting::{Accountant, Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store};
use net_types::{RealmId, TenantId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod daemon_site;

use daemon_site::{wait_for, Daemon, Site, FRAME, INTERNATIONAL, NATIONAL, SENDER};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A traffic sender, killed on drop if a test failed before it finished.
struct Sender(Child);

impl Sender {
    /// Waits (at most 30 s) for it to succeed.
    fn finish(mut self) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                assert!(st.success(), "the UDP sender failed: {st}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the UDP sender did not finish in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

impl Site {
    fn new(tag: &str, n: u32, policy: &str, accounting: &str) -> Site {
        let s = Site::build("tgo", tag, n);
        std::fs::write(s.policy_path(), policy).unwrap();
        std::fs::write(s.accounting_path(), accounting).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s
    }

    fn accounting_path(&self) -> PathBuf {
        self.dir.join("accounting.toml")
    }

    fn policy_text(&self) -> String {
        std::fs::read_to_string(self.policy_path()).unwrap()
    }

    /// Runs the CLI (inside the router's namespace if `netns`).
    fn try_tollgate(&self, netns: bool, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        if netns {
            cmd.args(["--netns", &self.host]);
        }
        cmd.args(args)
            .env("TOLLGATE_CONFIG", self.policy_path())
            .env("TOLLGATE_STATE_DIR", self.state_dir())
            .env("TOLLGATE_ACCOUNTING", self.accounting_path())
            .output()
            .expect("run tollgate")
    }

    /// Runs the CLI, expecting success; its stdout.
    fn tollgate(&self, netns: bool, args: &[&str]) -> String {
        let o = self.try_tollgate(netns, args);
        assert!(
            o.status.success(),
            "tollgate {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs the CLI, expecting failure; its stderr.
    fn tollgate_fails(&self, args: &[&str]) -> String {
        let o = self.try_tollgate(false, args);
        assert!(
            !o.status.success(),
            "tollgate {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// Starts the daemon, reading and reconciling every second, and waits
    /// (at most 15 s) for its first round to build the classes.
    fn daemon(&self) -> Daemon {
        self.start_daemon(&self.accounting_path(), &[])
    }

    /// Sends `datagrams` 1000-byte UDP datagrams between tenant `k` and
    /// `server`, toward the tenant if `download`, at about 8 Mbit/s.
    fn udp(&self, k: u32, server: &str, datagrams: u64, download: bool) -> Sender {
        let tenant = format!("100.64.{k}.2");
        let (ns, from, to) = if download {
            (&self.upstream, server, tenant.as_str())
        } else {
            (&self.tenants[k as usize - 1], tenant.as_str(), server)
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", SENDER, from, to])
            .arg(datagrams.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the UDP sender");
        Sender(child)
    }

    /// `tollgate status --json`, measured over 200 ms.
    fn status(&self) -> serde_json::Value {
        json(&self.tollgate(true, &["status", "--json", "--interval", "200ms"]))
    }

    /// Bytes per tenant × realm × direction from `usage --json`.
    fn recorded(&self) -> BTreeMap<(u64, u64, String), u64> {
        self.usage(None)
    }

    /// Bytes per tenant × realm × direction from `tollgate usage --json`,
    /// over `period` (`--period`) or the current one.
    fn usage(&self, period: Option<&str>) -> BTreeMap<(u64, u64, String), u64> {
        let mut args = vec!["usage", "--json"];
        if let Some(p) = period {
            args.extend(["--period", p]);
        }
        let v = json(&self.tollgate(false, &args));
        let mut out = BTreeMap::new();
        for t in v["tenants"].as_array().unwrap() {
            for r in t["totals"].as_array().unwrap() {
                let (tenant, realm) = (t["tenant"].as_u64().unwrap(), r["realm"].as_u64().unwrap());
                for dir in ["down", "up"] {
                    let b = r[format!("{dir}_bytes")].as_u64().unwrap();
                    *out.entry((tenant, realm, dir.to_string())).or_default() += b;
                }
            }
        }
        out
    }
}

const SITE: &str = r#"
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

[bands.interactive]
protocols = ["icmp"]

[plans.home]
down = { rate = "20mbit", ceil = "50mbit" }
up = { rate = "20mbit", ceil = "50mbit" }
"#;

/// `n` tenants on plan `home` with a 1 Mbit/s commit.
fn simple_policy(n: u32) -> String {
    let mut p = SITE.to_string();
    for k in 1..=n {
        p.push_str(&format!(
            "\n[[tenants]]\nid = {k}\nname = \"t{k}\"\nplan = \"home\"\nprefixes = [\"100.64.{k}.0/24\"]\ncommit = \"1mbit\"\n"
        ));
    }
    p
}

/// The billing day for the overage test: one whose period began at least a
/// day ago, so that the slot before now is in the current period.
fn billing_day() -> u8 {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .day();
    if today == 1 {
        2
    } else {
        1
    }
}

/// Commits one closed sample of `bytes` for tenant 1 (international,
/// upload) in the slot before now, as the daemon's first batch, with an
/// empty accountant state: earlier traffic of this period.
fn seed_history(site: &Site, bytes: u64) {
    std::fs::create_dir_all(site.state_dir()).unwrap();
    let mut store = SqliteStore::open(
        &site.state_dir().join("history.sqlite"),
        &SqliteOptions::default(),
    )
    .unwrap();
    let slot = Slot(Slot::containing(jiff::Timestamp::now()).0 - 1);
    let samples = [Sample {
        slot,
        key: UsageKey {
            tenant: TenantId(1),
            realm: RealmId(2),
            direction: Direction::Up,
            band: Band::Normal,
            source: accounting::Source::Kernel,
        },
        bytes,
        packets: bytes / 1000,
    }];
    let coverage = [SlotCoverage {
        slot,
        status: SlotStatus::Measured,
    }];
    let state = Accountant::new(accounting::Config::default())
        .state()
        .encode();
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &coverage,
            state: &state,
        })
        .unwrap();
}

/// t1's rows in `status --json`.
fn rows_of(status: &serde_json::Value, tenant: u64) -> Vec<serde_json::Value> {
    status["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tenant"].as_u64() == Some(tenant))
        .cloned()
        .collect()
}

/// Whether the kernel has `tenant`'s classes as the policy says, on `plan`
/// with `ceil`.
fn kernel_has(site: &Site, tenant: u64, plan: &str, ceil: &str) -> bool {
    let s = site.status();
    let rows = rows_of(&s, tenant);
    s["pending_changes"].as_u64() == Some(0)
        && !rows.is_empty()
        && rows
            .iter()
            .all(|r| r["plan"] == plan && r["ceil"] == ceil && r["present"] == true)
}

#[test]
fn overage_moves_a_tenant_over_its_quota_and_release_moves_it_back() {
    if !testkit::root("overage_moves_a_tenant_over_its_quota_and_release_moves_it_back") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut policy = SITE.to_string();
    policy.push_str(
        r#"
[plans.overage]
shared = true
id = 100
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[parents]]
name = "resellers"
id = 1
down = { rate = "100mbit", ceil = "200mbit" }
up = { rate = "100mbit", ceil = "200mbit" }

[billing]
day = DAY
timezone = "Etc/UTC"
quota = "10mb"

# `plan` is left out: the default is `overage`, which the policy declares
[overage]
enabled = true
margin_percent = 10
min_elapsed = "0s"
check_every = "1s"

# t1: the one that goes over
[[tenants]]
id = 1
name = "t1"
plan = "home"
parent = "resellers"
prefixes = ["100.64.1.0/24"]
commit = "1mbit"

[[tenants]]
id = 2
name = "t2"
plan = "home"
prefixes = ["100.64.2.0/24"]
commit = "1mbit"
"#,
    );
    // [billing] and [overage] are in the policy; the settings file keeps
    // the daemon's own sections only.
    let policy = policy.replace("DAY", &billing_day().to_string());
    let accounting = "[accounting]\nmax_gap = \"60s\"\n";
    let site = Site::new("m", 2, &policy, accounting);
    // 50 MB already this period: projected far above 10 MB + 10%.
    seed_history(&site, 50_000_000);
    let daemon = site.daemon();

    // (a) the policy file now has t1 on the overage plan, without its
    // parent (a shared plan's pool has its own place), comment kept.
    wait_for(
        "the daemon to move t1 in the policy file",
        Duration::from_secs(15),
        || site.policy_text().contains("plan = \"overage\""),
    );
    let text = site.policy_text();
    let t1 = text.split("[[tenants]]").nth(1).unwrap();
    let t2 = text.split("[[tenants]]").nth(2).unwrap();
    assert!(t1.contains("plan = \"overage\""), "{text}");
    assert!(!t1.contains("parent"), "{text}");
    assert!(text.contains("# t1: the one that goes over"), "{text}");
    assert!(
        t2.contains("plan = \"home\""),
        "t2 is under its quota:\n{text}"
    );

    // (b) `overage list` shows it, with the reason.
    let list = json(&site.tollgate(false, &["overage", "list", "--json"]));
    let moves = list["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "{list}");
    let m = &moves[0];
    assert_eq!(m["tenant"], 1, "{list}");
    assert_eq!(m["from_plan"], "home", "{list}");
    assert_eq!(m["from_parent"], "resellers", "{list}");
    assert_eq!(m["to_plan"], "overage", "{list}");
    assert_eq!(m["decision"]["decision"], "move_projected_volume", "{list}");
    let listed = site.tollgate(false, &["overage", "list"]);
    assert!(
        listed.contains("t1 (tenant 1): plan `home` → `overage`")
            && listed.contains("projected volume"),
        "{listed}"
    );

    // (c) + (d): status carries the annotation, and the kernel has t1's
    // classes under the overage plan (its pool's 20 Mbit/s ceil) with
    // nothing left to do.
    wait_for(
        "the kernel to have t1 in the overage plan",
        Duration::from_secs(10),
        || kernel_has(&site, 1, "overage", "20mbit"),
    );
    let status = site.status();
    assert_eq!(status["overage"][0]["name"], "t1", "{status}");
    assert_eq!(status["overage"][0]["to_plan"], "overage", "{status}");
    let text_status = site.tollgate(true, &["status", "--interval", "200ms"]);
    assert!(
        text_status.contains("matches the policy")
            && text_status.contains("in the overage plan (moved by the daemon):")
            && text_status.contains("t1 (tenant 1)"),
        "{text_status}"
    );
    assert!(kernel_has(&site, 2, "home", "50mbit"), "{status}");
    let plan = site.tollgate(true, &["plan"]);
    assert!(
        plan.contains("nothing to do"),
        "`tollgate plan` still has work:\n{plan}"
    );

    // Release by hand while t1 has traffic: the daemon moves it back to
    // plan `home` under `resellers`, and the bytes still add up.
    let datagrams = 5000;
    let flow = site.udp(1, NATIONAL, datagrams, true);
    std::thread::sleep(Duration::from_millis(1500));
    let released = site.tollgate(false, &["overage", "release", "t1"]);
    assert!(released.contains("requested"), "{released}");
    wait_for(
        "the daemon to move t1 back in the policy file",
        Duration::from_secs(10),
        || !site.policy_text().contains("plan = \"overage\""),
    );
    let text = site.policy_text();
    let t1 = text.split("[[tenants]]").nth(1).unwrap();
    assert!(
        t1.contains("plan = \"home\"") && t1.contains("parent = \"resellers\""),
        "{text}"
    );
    wait_for(
        "the kernel to have t1 back in plan home",
        Duration::from_secs(10),
        || kernel_has(&site, 1, "home", "50mbit"),
    );
    let list = json(&site.tollgate(false, &["overage", "list", "--json"]));
    assert_eq!(list["moves"].as_array().unwrap().len(), 0, "{list}");
    assert_eq!(list["released"][0]["tenant"], 1, "{list}");
    assert!(site
        .status()
        .get("overage")
        .is_some_and(|o| o == &serde_json::json!([])));
    flow.finish();
    // Not moved again this period, though still over its quota.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!site.policy_text().contains("plan = \"overage\""));
    let log = daemon.log();
    let status = daemon.stop();
    assert!(status.success(), "the daemon exited with {status}\n{log}");
    assert!(
        log.contains("moved from plan `home` into `overage`")
            && log.contains("back to plan `home` (released by hand)"),
        "{log}"
    );
    let got = site.recorded()[&(1, 1, "down".to_string())];
    let want = datagrams * FRAME;
    let off = (got as f64 - want as f64).abs() / want as f64;
    eprintln!(
        "t1 across the release: recorded {got} bytes, datagrams × {FRAME} = {want} ({:.3}% off); {:.1} s",
        off * 100.0,
        started.elapsed().as_secs_f64()
    );
    // Make-before-break, with the old classes read right before they are
    // deleted: nothing is lost (the tenant received every datagram).
    assert_eq!(
        got, want,
        "t1's bytes across the release: the read before delete missed some"
    );
    // `bill` and `usage` bill by the policy's [billing] too.
    let bill = site.tollgate(false, &["bill", "t1"]);
    assert!(bill.contains("at 00:00 Etc/UTC"), "{bill}");
    let usage = site.tollgate(false, &["usage", "t1"]);
    assert!(usage.contains("days in Etc/UTC"), "{usage}");
    // The same section in the settings file as well is refused, naming both.
    std::fs::write(site.accounting_path(), "[billing]\nday = 1\n").unwrap();
    let refused = site.tollgate_fails(&["bill", "t1"]);
    assert!(
        refused.contains("[billing] is in both the policy") && refused.contains("delete it from"),
        "{refused}"
    );
}

#[test]
fn a_tenant_moved_in_an_earlier_period_returns_to_its_plan() {
    if !testkit::root("a_tenant_moved_in_an_earlier_period_returns_to_its_plan") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut policy = SITE.to_string();
    policy.push_str(
        r#"
[plans.overage]
shared = true
id = 100
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[parents]]
name = "resellers"
id = 1
down = { rate = "100mbit", ceil = "200mbit" }
up = { rate = "100mbit", ceil = "200mbit" }

[overage]
enabled = true
min_elapsed = "0s"
check_every = "1s"

[[tenants]]
id = 1
name = "t1"
plan = "overage"
prefixes = ["100.64.1.0/24"]
commit = "1mbit"

[[tenants]]
id = 2
name = "t2"
plan = "home"
prefixes = ["100.64.2.0/24"]
commit = "1mbit"
"#,
    );
    let site = Site::new("p", 2, &policy, "");
    // t1 was moved in January 2000: that period is long over.
    std::fs::create_dir_all(site.state_dir()).unwrap();
    std::fs::write(
        site.state_dir().join("overage.json"),
        r#"{"moves":[{"tenant":1,"name":"t1","from_plan":"home","from_parent":"resellers",
            "to_plan":"overage","period":"2000-01","moved_at":"2000-01-15T00:00:00Z",
            "decision":{"decision":"stay"}}],"released":[]}"#,
    )
    .unwrap();
    let daemon = site.daemon();
    wait_for(
        "the daemon to return t1 in the policy file",
        Duration::from_secs(15),
        || !site.policy_text().contains("plan = \"overage\"\nprefixes"),
    );
    let text = site.policy_text();
    let t1 = text.split("[[tenants]]").nth(1).unwrap();
    assert!(
        t1.contains("plan = \"home\"") && t1.contains("parent = \"resellers\""),
        "{text}"
    );
    wait_for(
        "the kernel to have t1 back in plan home",
        Duration::from_secs(10),
        || kernel_has(&site, 1, "home", "50mbit"),
    );
    let list = json(&site.tollgate(false, &["overage", "list", "--json"]));
    assert_eq!(list["moves"].as_array().unwrap().len(), 0, "{list}");
    let log = daemon.log();
    assert!(daemon.stop().success(), "{log}");
    assert!(log.contains("its period ended"), "{log}");
}

/// The whole path with nothing seeded: real traffic through the tenant's
/// classes, the accountant closing its 5-minute slot, the projection, the
/// move. The daemon's clock is set a few seconds before a slot boundary
/// (`TOLLGATE_CLOCK_SKEW`, time being an input), so the slot closes
/// seconds after the traffic instead of up to five minutes later.
#[test]
fn live_traffic_over_the_quota_moves_the_tenant_when_its_slot_closes() {
    if !testkit::root("live_traffic_over_the_quota_moves_the_tenant_when_its_slot_closes") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut policy = SITE.to_string();
    policy.push_str(
        r#"
[plans.overage]
shared = true
id = 100
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[billing]
day = DAY
quota = "1mb"

[overage]
enabled = true
min_elapsed = "0s"
check_every = "2s"

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
name = "t2"
plan = "home"
prefixes = ["100.64.2.0/24"]
"#,
    );
    let policy = policy.replace("DAY", &billing_day().to_string());
    let site = Site::new("l", 2, &policy, "");
    // Put the daemon 15 s before the next 5-minute boundary.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let skew = (300 - now.rem_euclid(300) - 15).to_string();
    let daemon = site.start_daemon_env(
        &site.accounting_path(),
        &[],
        &[("TOLLGATE_CLOCK_SKEW", &skew)],
    );
    // 2,000 datagrams of 1,042 bytes on the wire: 2.08 MB, over the 1 MB
    // quota before the projection even adds the rest of the period.
    site.udp(1, NATIONAL, 2000, true).finish();
    wait_for(
        "the slot to close and the daemon to move t1",
        Duration::from_secs(60),
        || site.policy_text().contains("plan = \"overage\""),
    );
    let list = json(&site.tollgate(false, &["overage", "list", "--json"]));
    let moves = list["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "{list}");
    assert_eq!(moves[0]["tenant"], 1, "{list}");
    assert_eq!(
        moves[0]["decision"]["decision"], "move_projected_volume",
        "{list}"
    );
    wait_for(
        "the kernel to have t1 in the overage plan",
        Duration::from_secs(10),
        || kernel_has(&site, 1, "overage", "20mbit"),
    );
    let text = site.policy_text();
    assert!(
        text.split("[[tenants]]")
            .nth(2)
            .unwrap()
            .contains("plan = \"home\""),
        "{text}"
    );
    let log = daemon.log();
    assert!(daemon.stop().success(), "{log}");
    assert!(
        log.contains("moved from plan `home` into `overage`"),
        "{log}"
    );
    eprintln!(
        "moved {:.0} s after the traffic started",
        started.elapsed().as_secs_f64()
    );
}

const CHARGES: &str = "[[billing.charges]]
name = \"international\"
realms = [\"international\"]
commit = \"2mbit\"
";

#[test]
fn bill_json_and_csv_agree_with_usage() {
    if !testkit::root("bill_json_and_csv_agree_with_usage") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let site = Site::new("b", 2, &simple_policy(2), CHARGES);
    let daemon = site.daemon();
    for (k, server, n, down) in [
        (1u32, NATIONAL, 2000u64, true),
        (1, INTERNATIONAL, 1000, false),
        (2, INTERNATIONAL, 1500, true),
    ] {
        site.udp(k, server, n, down).finish();
    }
    std::thread::sleep(Duration::from_millis(2500));
    let log = daemon.log();
    let status = daemon.stop();
    assert!(status.success(), "the daemon exited with {status}\n{log}");

    let bill = json(&site.tollgate(false, &["bill", "--json"]));
    let label = bill["period"]["label"].as_str().unwrap().to_string();
    // What `tollgate usage` says of the same period: every figure of the
    // bill must be its, to the byte.
    let usage = site.usage(Some(&label));
    let total = |tenant: u64, realm: Option<u64>, dir: Option<&str>| -> u64 {
        usage
            .iter()
            .filter(|((t, r, d), _)| {
                *t == tenant && realm.is_none_or(|x| x == *r) && dir.is_none_or(|x| x == d)
            })
            .map(|(_, v)| v)
            .sum()
    };
    assert!(total(1, None, None) >= 3000 * FRAME, "{usage:?}");
    assert!(total(2, None, None) >= 1500 * FRAME, "{usage:?}");
    assert!(
        bill["status"].as_str().unwrap().starts_with("provisional"),
        "{bill}"
    );
    let bills = bill["bills"].as_array().unwrap();
    assert_eq!(bills.len(), 2, "{bill}");
    // (tenant, charge) → (volume, down, up, commit bps)
    let mut want: BTreeMap<(u64, String), (u64, u64, u64, u64)> = BTreeMap::new();
    for b in bills {
        let tenant = b["bill"]["tenant"].as_u64().unwrap();
        let lines = b["bill"]["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2, "{b}");
        for (line, realm, commit) in [
            (&lines[0], None, 1_000_000),
            (&lines[1], Some(2), 2_000_000),
        ] {
            let name = line["name"].as_str().unwrap().to_string();
            let v = &line["volume"];
            let (used, down, up) = (
                v["used"].as_u64().unwrap(),
                v["down"].as_u64().unwrap(),
                v["up"].as_u64().unwrap(),
            );
            assert_eq!(
                used,
                total(tenant, realm, None),
                "bill ≠ usage: {name} of {tenant}: {line}"
            );
            assert_eq!(
                down,
                total(tenant, realm, Some("down")),
                "bill ≠ usage: {line}"
            );
            assert_eq!(up, total(tenant, realm, Some("up")), "bill ≠ usage: {line}");
            want.insert((tenant, name), (used, down, up, commit));
        }
    }
    assert_eq!(
        want.keys()
            .map(|(t, c)| format!("{t}/{c}"))
            .collect::<Vec<_>>(),
        ["1/total", "1/international", "2/total", "2/international"]
            .iter()
            .map(|s| s.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );

    let csv = site.tollgate(false, &["bill", "--csv"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..4],
        ["period", "tenant", "name", "charge"],
        "{csv}"
    );
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {csv}"))
    };
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "one row per tenant and charge:\n{csv}");
    let mut seen = BTreeMap::new();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{csv}");
        assert_eq!(r[col("period")], label, "{csv}");
        let key = (
            r[col("tenant")].parse::<u64>().unwrap(),
            r[col("charge")].to_string(),
        );
        let num = |c: &str| r[col(c)].parse::<u64>().unwrap();
        seen.insert(
            key,
            (
                num("volume_bytes"),
                num("down_bytes"),
                num("up_bytes"),
                num("commit_bps"),
            ),
        );
        assert_eq!(r[col("name")], format!("t{}", r[col("tenant")]), "{csv}");
    }
    assert_eq!(seen, want, "CSV and JSON disagree:\n{csv}");
    eprintln!(
        "bill --json/--csv: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn bill_freeze_refuses_the_open_period_and_freezes_a_closed_one_once() {
    if !testkit::root("bill_freeze_refuses_the_open_period_and_freezes_a_closed_one_once") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let site = Site::new("f", 1, &simple_policy(1), "");
    // Nothing recorded yet.
    let e = site.tollgate_fails(&["bill", "--freeze"]);
    assert!(e.contains("no history"), "{e}");
    let daemon = site.daemon();
    site.udp(1, NATIONAL, 200, true).finish();
    std::thread::sleep(Duration::from_millis(1500));
    let status = daemon.stop();
    assert!(status.success());

    // The open period.
    let e = site.tollgate_fails(&["bill", "--freeze"]);
    assert!(
        e.contains("still open") && e.contains("only a closed period can be frozen"),
        "{e}"
    );
    let current = json(&site.tollgate(false, &["bill", "--json"]));
    assert!(current["status"]
        .as_str()
        .unwrap()
        .starts_with("provisional"));

    // Last month: closed, and the daemon has read since it ended.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let last = now.date().first_of_month().yesterday().unwrap();
    let label = format!("{:04}-{:02}", last.year(), last.month());
    let before = json(&site.tollgate(false, &["bill", "--period", &label, "--json"]));
    assert!(
        before["status"].as_str().unwrap().starts_with("not frozen"),
        "{before}"
    );
    let e = site.tollgate_fails(&["bill", "t1", "--period", &label, "--freeze"]);
    assert!(e.contains("cannot be used with"), "{e}");
    let out = site.tollgate(false, &["bill", "--period", &label, "--freeze"]);
    assert!(
        out.contains(&format!("period {label} frozen with 1 tenants' bills")),
        "{out}"
    );
    let e = site.tollgate_fails(&["bill", "--period", &label, "--freeze"]);
    assert!(e.contains("already frozen"), "{e}");

    // Shown as frozen, identically every time, in every format.
    for fmt in [&[][..], &["--json"][..], &["--csv"][..]] {
        let mut args = vec!["bill", "--period", &label];
        args.extend_from_slice(fmt);
        let a = site.tollgate(false, &args);
        let b = site.tollgate(false, &args);
        assert_eq!(a, b, "bill {fmt:?} changed between two runs");
        if fmt.is_empty() {
            assert!(a.contains("frozen at"), "{a}");
        }
    }
    let frozen = json(&site.tollgate(false, &["bill", "--period", &label, "--json"]));
    assert!(
        frozen["status"].as_str().unwrap().starts_with("frozen at"),
        "{frozen}"
    );
    assert_eq!(frozen["bills"], before["bills"], "the frozen bill differs");
    // The current period is still refused, and not frozen by the above.
    let e = site.tollgate_fails(&["bill", "--freeze"]);
    assert!(e.contains("still open"), "{e}");
    eprintln!("bill --freeze: {:.1} s", started.elapsed().as_secs_f64());
}
