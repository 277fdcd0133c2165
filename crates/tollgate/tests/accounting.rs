//! The daemon's accounting against the real kernel: what `tollgate run`
//! records must be exactly what the kernel's classes counted, across a
//! `kill -9`, and across a qdisc deleted underneath it.
//!
//! Each test builds a router in namespaces named `tga-<tag><pid>-*`: an
//! upstream holding 198.51.100.1 (realm `national`) and 203.0.113.1
//! (`international`, the default realm), the router where the daemon runs
//! (`wan0` toward the upstream, a bridge `lan0` toward the tenants), and one
//! namespace per tenant k with 100.64.k.2/24. IPv6 is disabled in all of
//! them, so that no neighbour discovery lands in a tenant's classes while
//! the test compares counters: every byte in a tenant class is the test's.
//!
//! Traffic is a fixed count of 1000-byte UDP datagrams from a few lines
//! of Python (iperf3 hangs here with `-n` on UDP uploads and on `-R`), so
//! the bytes on the wire are known. HTB counts whole frames as they leave
//! the IFB: 14 bytes of Ethernet header + 20 of IPv4 + 8 of UDP + 1000 of
//! payload = 1042 bytes per datagram. The check allows 1%, as the issue
//! asks; with no control connection the figures come out exact.
//!
//! The kernel's counters are read directly with `tc -s class show` (this
//! iproute2 prints no JSON for HTB classes), and the classes are mapped to
//! tenant × realm × direction with `tollgate explain --json`.
//!
//! Needs root, iproute2, nftables and python3. Namespaces, senders and
//! daemons are removed even when a test fails, and each wait is
//! bounded.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod daemon_site;

use daemon_site::{sh, wait_for, Daemon, Site, FRAME, INTERNATIONAL, NATIONAL, SENDER};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits (at most 60 s) for a child to succeed.
fn finish(mut c: Child, what: &str) {
    let start = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            assert!(st.success(), "{what} failed: {st}");
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (tenant, realm, direction) → bytes.
type Totals = BTreeMap<(u64, u64, String), u64>;

impl Site {
    fn new(tag: &str, n: u32) -> Site {
        let s = Site::build("tga", tag, n);
        std::fs::write(s.policy_path(), policy(n)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s
    }

    /// Runs the CLI (outside the namespace unless `netns`), expecting success.
    fn tollgate(&self, netns: bool, args: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        if netns {
            cmd.args(["--netns", &self.host]);
        }
        let o = cmd
            .args(args)
            .env("TOLLGATE_CONFIG", self.policy_path())
            .env("TOLLGATE_STATE_DIR", self.state_dir())
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

    /// Starts the daemon, reading every second, and waits for its first
    /// round to build the classes.
    fn daemon(&self, extra: &[&str]) -> Daemon {
        std::fs::write(self.dir.join("accounting.toml"), "").unwrap();
        self.start_daemon(&self.dir.join("accounting.toml"), extra)
    }

    /// Sends `datagrams` UDP datagrams of 1000 bytes between tenant `k` and
    /// `server` (a realm's address), toward the tenant if `download`, at
    /// about 8 Mbit/s (ten datagrams every 10 ms, well under the plan's
    /// ceil and the queue's length, so nothing is dropped). The receiver
    /// drops them in its input hook, so no ICMP comes back.
    fn udp(&self, k: u32, server: &str, datagrams: u64, download: bool) -> Child {
        let tenant = format!("100.64.{k}.2");
        let (ns, from, to) = if download {
            (&self.upstream, server, tenant.as_str())
        } else {
            (&self.tenants[k as usize - 1], tenant.as_str(), server)
        };
        Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", SENDER, from, to])
            .arg(datagrams.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the UDP sender")
    }

    fn udp_wait(&self, k: u32, server: &str, datagrams: u64, download: bool) {
        let c = self.udp(k, server, datagrams, download);
        finish(c, "the UDP sender");
    }

    /// Bytes per tenant × realm × direction, straight from the kernel's
    /// band leaf classes.
    fn kernel(&self) -> Totals {
        let mut sent: BTreeMap<(String, String), u64> = BTreeMap::new();
        for dev in ["tg-down", "tg-up"] {
            let text = sh(&format!(
                "ip netns exec {} tc -s class show dev {dev}",
                self.host
            ));
            let mut class = None;
            for line in text.lines() {
                let w: Vec<&str> = line.split_whitespace().collect();
                if w.first() == Some(&"class") {
                    class = w.get(2).map(|c| c.to_string());
                } else if w.first() == Some(&"Sent") {
                    if let Some(c) = class.take() {
                        sent.insert((dev.to_string(), c), w[1].parse().unwrap());
                    }
                }
            }
        }
        let mut out = Totals::new();
        for k in 1..=self.tenants.len() {
            let v: serde_json::Value = serde_json::from_str(
                &self.tollgate(false, &["explain", &format!("t{k}"), "--json"]),
            )
            .unwrap();
            for o in v["objects"].as_array().unwrap() {
                let s = &o["serves"];
                if s["role"] != "band_class" {
                    continue;
                }
                // "class 2:9 on tg-down"
                let w: Vec<&str> = o["object"].as_str().unwrap().split(' ').collect();
                let bytes = sent
                    .get(&(w[3].to_string(), w[1].to_string()))
                    .copied()
                    .unwrap_or_else(|| panic!("class {} {} is not in the kernel", w[3], w[1]));
                let key = (
                    k as u64,
                    s["realm"].as_u64().unwrap(),
                    s["direction"].as_str().unwrap().to_string(),
                );
                *out.entry(key).or_default() += bytes;
            }
        }
        // Traffic of no tenant: the root tree's default class, recorded
        // under tenant 0 (docs/transit.md), exactly like a tenant's.
        for (dev, dir) in [("tg-down", "down"), ("tg-up", "up")] {
            if let Some(bytes) = sent.get(&(dev.to_string(), "1:ffff".to_string())) {
                out.insert((0, 0, dir.to_string()), *bytes);
            }
        }
        out
    }

    /// What the daemon recorded, per tenant × realm × direction.
    fn recorded(&self) -> Totals {
        let v: serde_json::Value =
            serde_json::from_str(&self.tollgate(false, &["usage", "--json"])).unwrap();
        let mut out = Totals::new();
        for t in v["tenants"].as_array().unwrap() {
            for r in t["totals"].as_array().unwrap() {
                let (tenant, realm) = (t["tenant"].as_u64().unwrap(), r["realm"].as_u64().unwrap());
                for dir in ["down", "up"] {
                    let b = r[format!("{dir}_bytes")].as_u64().unwrap();
                    *out.entry((tenant, realm, dir.into())).or_default() += b;
                }
            }
        }
        // `usage` lists tenants only; traffic of no tenant (tenant 0, realm
        // 0: this policy's realms are 1 and 2) is realm 0 in `realms`.
        let v: serde_json::Value =
            serde_json::from_str(&self.tollgate(false, &["realms", "--json"])).unwrap();
        for r in v["realms"].as_array().unwrap() {
            if r["realm"] == 0 {
                for (dir, key) in [("down", "bytes_from"), ("up", "bytes_to")] {
                    out.insert((0, 0, dir.into()), r[key].as_u64().unwrap());
                }
            }
        }
        out
    }

    /// The shard qdisc holding tenant `k`'s download classes, as `parent 1:N`.
    fn shard_of(&self, k: u32) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.tollgate(false, &["explain", &format!("t{k}"), "--json"]))
                .unwrap();
        let class = v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["serves"]["role"] == "band_class" && o["serves"]["direction"] == "down")
            .and_then(|o| o["object"].as_str())
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .to_string();
        let major = class.split(':').next().unwrap().to_string();
        let qdiscs = sh(&format!(
            "ip netns exec {} tc qdisc show dev tg-down",
            self.host
        ));
        qdiscs
            .lines()
            .find(|l| l.starts_with(&format!("qdisc htb {major}: parent ")))
            .and_then(|l| l.split_whitespace().nth(4))
            .unwrap_or_else(|| panic!("no shard qdisc {major}: in\n{qdiscs}"))
            .to_string()
    }
}

fn policy(n: u32) -> String {
    let mut p = String::from(
        r#"
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
"#,
    );
    for k in 1..=n {
        p.push_str(&format!(
            "\n[[tenants]]\nid = {k}\nname = \"t{k}\"\nplan = \"home\"\nprefixes = [\"100.64.{k}.0/24\"]\ncommit = \"1mbit\"\n"
        ));
    }
    p
}

/// A running daemon; killed on drop if a test failed before stopping it.
fn assert_exact(site: &Site, when: &str) {
    let kernel = site.kernel();
    let recorded = site.recorded();
    for (key, k) in &kernel {
        let r = recorded.get(key).copied().unwrap_or(0);
        assert_eq!(
            r, *k,
            "{when}: tenant {} realm {} {}: recorded {r} bytes, the kernel counted {k}\nkernel {kernel:?}\nrecorded {recorded:?}",
            key.0, key.1, key.2
        );
    }
    for (key, r) in &recorded {
        assert!(
            kernel.contains_key(key) || *r == 0,
            "{when}: {key:?} recorded {r} bytes the kernel does not have"
        );
    }
}

#[test]
fn recorded_bytes_equal_the_kernel_counters_per_tenant_realm_and_direction() {
    if !testkit::root("recorded_bytes_equal_the_kernel_counters_per_tenant_realm_and_direction") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let site = Site::new("x", 2);
    let daemon = site.daemon(&[]);
    // tenant, server, realm id, datagrams, download?
    let flows = [
        (1u32, NATIONAL, 1u64, 2000u64, true),
        (1, INTERNATIONAL, 2, 1000, false),
        (2, INTERNATIONAL, 2, 1500, true),
        (2, NATIONAL, 1, 500, false),
    ];
    for (k, server, _, n, down) in flows {
        site.udp_wait(k, server, n, down);
    }
    // Two reads after the last packet, then a clean stop.
    std::thread::sleep(Duration::from_millis(2500));
    let log = daemon.log.clone();
    let status = daemon.stop();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the daemon exited with {status}\n{text}");
    assert!(text.contains("accounting flushed"), "{text}");

    assert_exact(&site, "after the traffic");
    let recorded = site.recorded();
    for (k, _, realm, n, down) in flows {
        let dir = if down { "down" } else { "up" };
        let got = recorded[&(u64::from(k), realm, dir.to_string())];
        let want = n * FRAME;
        let off = (got as f64 - want as f64).abs() / want as f64;
        eprintln!("t{k} realm {realm} {dir}: recorded {got} bytes, datagrams × {FRAME} = {want} ({:.3}% off)", off * 100.0);
        assert!(
            off < 0.01,
            "t{k} realm {realm} {dir}: {got} bytes is not within 1% of {want}"
        );
    }

    // The people's views show the same traffic.
    let usage = site.tollgate(false, &["usage", "t1"]);
    assert!(
        usage.contains("national") && usage.contains("MiB"),
        "{usage}"
    );
    let realms: serde_json::Value =
        serde_json::from_str(&site.tollgate(false, &["realms", "--json"])).unwrap();
    let national = realms["realms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "national")
        .unwrap();
    assert_eq!(
        national["bytes_from"].as_u64().unwrap(),
        recorded[&(1, 1, "down".to_string())] + recorded[&(2, 1, "down".to_string())]
    );
    let bill: serde_json::Value =
        serde_json::from_str(&site.tollgate(false, &["bill", "--json", "t1"])).unwrap();
    let line = &bill["bills"][0]["bill"]["lines"][0];
    let volume: u64 = recorded
        .iter()
        .filter(|(k, _)| k.0 == 1)
        .map(|(_, v)| v)
        .sum();
    assert_eq!(line["volume"]["used"].as_u64().unwrap(), volume, "{bill}");
    assert!(line["percentile"]["explanation"]
        .as_str()
        .unwrap()
        .contains("nearest rank"));
    let bill_text = site.tollgate(false, &["bill", "t1"]);
    assert!(bill_text.contains("commit 1mbit"), "{bill_text}");
    let top = site.tollgate(true, &["top", "--once", "--json", "--interval", "200ms"]);
    let frame: serde_json::Value = serde_json::from_str(top.trim()).unwrap();
    assert_eq!(frame["rows"].as_array().unwrap().len(), 4, "{top}");
}

#[test]
fn totals_stay_exact_across_kill_9_and_a_qdisc_recreated_underneath() {
    if !testkit::root("totals_stay_exact_across_kill_9_and_a_qdisc_recreated_underneath") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let site = Site::new("r", 1);
    let first = site.daemon(&[]);
    // 5000 datagrams at about 8 Mbit/s: five seconds of download.
    let flow = site.udp(1, NATIONAL, 5000, true);
    std::thread::sleep(Duration::from_millis(2500));
    first.signal("-KILL");
    drop(first);
    std::thread::sleep(Duration::from_millis(1000));
    let mut second = site.daemon(&[]);
    finish(flow, "the UDP sender");
    std::thread::sleep(Duration::from_millis(2500));
    assert_exact(&site, "after kill -9 and a restart");

    // Delete tenant 1's shard qdisc while traffic runs. The daemon sees
    // its classes gone, records the reset, and recreates them; what they
    // carried between its last read and the deletion is lost, at most one
    // read interval (1 s) of this flow plus a round's jitter.
    let shard = site.shard_of(1);
    let flow = site.udp(1, NATIONAL, 5000, true);
    std::thread::sleep(Duration::from_millis(2000));
    let before = site.kernel();
    sh(&format!(
        "ip netns exec {} tc qdisc del dev tg-down parent {shard}",
        site.host
    ));
    finish(flow, "the UDP sender");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(second.running(), "{}", second.log());
    let after = site.kernel();
    let recorded = site.recorded();
    let key = (1, 1, "down".to_string());
    let truth = before[&key] + after[&key];
    let got = recorded[&key];
    // 1000 datagrams a second, read every second.
    let one_interval = 1000 * FRAME;
    eprintln!(
        "qdisc recreated: kernel {} before + {} after = {truth}, recorded {got}, lost {} (bound {})",
        before[&key],
        after[&key],
        truth as i64 - got as i64,
        one_interval * 5 / 4
    );
    assert!(
        got <= truth,
        "counted twice: recorded {got} > kernel {truth}"
    );
    assert!(
        truth - got <= one_interval * 5 / 4,
        "lost more than one interval: recorded {got}, kernel {truth}"
    );
    // Nothing was deleted on the upload side: still exact.
    let up = (1, 1, "up".to_string());
    assert_eq!(recorded[&up], after[&up]);
    assert!(
        second.log().contains("repaired the kernel"),
        "{}",
        second.log()
    );
    let status = second.stop();
    assert!(status.success());
}

#[test]
fn sighup_with_a_broken_policy_keeps_running_and_sigterm_exits_zero() {
    if !testkit::root("sighup_with_a_broken_policy_keeps_running_and_sigterm_exits_zero") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let site = Site::new("s", 1);
    let mut daemon = site.daemon(&[]);
    let good = std::fs::read_to_string(site.policy_path()).unwrap();
    std::fs::write(site.policy_path(), "[site]\nmode = \"bogus\"\n").unwrap();
    daemon.signal("-HUP");
    wait_for(
        "the refused reload in the log",
        Duration::from_secs(10),
        || daemon.log().contains("reload refused"),
    );
    assert!(daemon.running(), "{}", daemon.log());
    // The running policy is kept: the kernel still has the tenant's classes.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sh(&format!(
        "ip netns exec {} tc class show dev tg-down",
        site.host
    ))
    .contains("class htb"));
    std::fs::write(site.policy_path(), good).unwrap();
    daemon.signal("-HUP");
    wait_for(
        "the accepted reload in the log",
        Duration::from_secs(10),
        || daemon.log().contains("policy reloaded"),
    );
    let log = daemon.log.clone();
    let status = daemon.stop();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "exit {status}\n{text}");
    assert!(text.contains("accounting flushed"), "{text}");
}
