//! The guard inside `tollgate run`, end to end in network namespaces: a
//! SYN flood from an attacker through a router to a victim, the daemon in
//! the router (shaping as usual, and guarding).
//!
//! ```text
//! attacker ──veth── router ──veth── victim
//! 198.51.100.2  wan0 198.51.100.1 | lan0 203.0.113.1  203.0.113.10
//! ```
//!
//! The daemon captures on `wan0`, the attacker's side, so it keeps seeing
//! the flood after the blackhole route drops it. The policy: 2,000 pps
//! towards an address, the instantaneous trigger at 300 ms; a notify rung
//! and a blackhole rung held 60 s, so the ban outlives the flood and the
//! restart, and only `unban` ends it. The notify rung's webhook gets the
//! ban and the unban (a receiver in the router's namespace).
//!
//! What is checked: the flood is detected and the route installed (the
//! time from the flood's start is printed); `guard status --json` shows
//! the incident; the daemon killed with SIGKILL comes back with the same
//! ban (the route, removed meanwhile, is put back; the status shows it);
//! `guard unban` removes it; a ban by hand adds a route and one outside
//! the networks is refused (exit 1); SIGTERM ends the daemon with 0.
//!
//! Needs root, iproute2 and hping3. The namespaces are deleted and every
//! process killed even if the test fails (`Netns` and `Process` on drop);
//! the flood is bounded by `timeout`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::{sh, wait_for, Netns, Process};

mod guard_site;
use guard_site::{daemon_recording, notify_script, Site};

const VICTIM: &str = "203.0.113.10";
/// An address banned by hand.
const BANNED: &str = "203.0.113.20";

fn site(tag: &str) -> Site {
    Site::build(tag, "wan0", "lan0", &[VICTIM])
}

fn policy(dir: &Path) -> String {
    let script = notify_script(dir, false);
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "10gbit", up = "10gbit" }}

[plans.home]
down = {{ rate = "100mbit", ceil = "1gbit" }}
up = {{ rate = "100mbit", ceil = "1gbit" }}

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["203.0.113.0/25"]

[guard]
networks = ["203.0.113.0/24"]
ewma = "1s"
instant = "300ms"
calm = "2s"

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 2000

[[guard.ladder]]
rung = "notify"
hold = "60s"
script = "{}"
webhook = "http://127.0.0.1:18088/tollgate/attack"

[[guard.ladder]]
rung = "blackhole"
hold = "60s"
"#,
        script.display()
    )
}

fn blackholes(rtr: &Netns) -> Vec<String> {
    sh(&format!("ip -n {} route show type blackhole", rtr.0))
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// An admin token for the API (in the tokens file beside the policy).
fn token(dir: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("-c")
        .arg(dir.join("policy.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["token", "add", "ops", "--scope", "admin", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// `GET path` on the daemon's API, from inside the router.
fn api_get(rtr: &Netns, token: &str, path: &str) -> String {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rtr.0,
            "curl",
            "-s",
            "-S",
            "--max-time",
            "10",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://127.0.0.1:9188{path}"))
        .output()
        .expect("curl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `tollgate guard ARGS…` with the test's state directory.
fn guard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("guard")
        .args(args)
        .env_remove("TOLLGATE_STATE_DIR")
        .output()
        .expect("run tollgate guard")
}

fn status(dir: &Path) -> serde_json::Value {
    let o = guard(dir, &["status", "--json"]);
    assert!(
        o.status.success(),
        "guard status: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The status's incidents for `addr`, once the file is fresh (written
/// after `after`).
fn incident(dir: &Path, addr: &str) -> Option<serde_json::Value> {
    status(dir)["incidents"]
        .as_array()?
        .iter()
        .find(|i| i["target"] == addr)
        .cloned()
}

#[test]
fn the_daemon_blackholes_a_flood_keeps_the_ban_across_kill_9_and_unbans_on_request() {
    if !testkit::root("guard_run::the_daemon_blackholes_a_flood") {
        return;
    }
    testkit::need("hping3", "hping3");
    testkit::need("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), policy(dir)).unwrap();
    let token = token(dir);
    let s = site("grn");
    // The notify rung's webhook: a receiver in the router's namespace
    // that appends each POST's body to a file.
    let hooks = dir.join("webhook.log");
    let _receiver = testkit::webhook_receiver(&s.rtr.0, 18088, &hooks);
    let recording = dir.join("run.jsonl");
    let mut d = daemon_recording(&s.rtr, dir, Some(&recording));
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("the guard to capture", Duration::from_secs(20), || {
        log().contains("guard capturing")
    });
    assert!(d.running(), "{}", log());
    wait_for("the status file", Duration::from_secs(5), || {
        dir.join("state/guard-status.json").exists()
    });
    let st = status(dir);
    assert_eq!(st["capturing"], true, "{st}");
    assert_eq!(st["interfaces"], serde_json::json!(["wan0"]), "{st}");

    // A bounded flood: 10,000 SYN/s for 5 s.
    let flood_start = Instant::now();
    let mut flood = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args([
                "timeout", "5", "hping3", "-S", "-p", "80", "-i", "u100", "-q", VICTIM,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let ours = format!("blackhole {VICTIM} proto 213");
    let notified = || std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();
    let detected = wait_for("the notify script", Duration::from_secs(4), || {
        notified().contains(&format!("ARGS {VICTIM} incoming"))
    });
    let took = wait_for("the blackhole route", Duration::from_secs(4), || {
        blackholes(&s.rtr).contains(&ours)
    });
    let took = detected + took;
    eprintln!("FIGURE guard_run: notify script ran {detected:?}, blackhole route in place {took:?} after the flood started");
    // The webhook got the same report as the script's stdin.
    let hooked = || std::fs::read_to_string(&hooks).unwrap_or_default();
    let asked = Instant::now();
    while !hooked().contains("\"action\":\"ban\"") {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "no webhook in 5 s; the daemon's log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let h = hooked();
    assert!(h.starts_with("/tollgate/attack application/json {"), "{h}");
    assert!(h.contains(&format!("\"ip\":\"{VICTIM}\"")), "{h}");
    assert!(h.contains("\"kind\":\"syn_flood\""), "{h}");
    // The status file is written right after the round that added the
    // route: a moment later.
    let mut i = serde_json::Value::Null;
    wait_for(
        "the incident in guard status",
        Duration::from_secs(3),
        || {
            incident(dir, VICTIM)
                .filter(|i| i["rung"] == "blackhole")
                .map(|found| i = found)
                .is_some()
        },
    );
    assert_eq!(i["rung"], "blackhole", "{i}");
    assert_eq!(i["attack"], "syn_flood", "{i}");
    assert_eq!(i["direction"], "in", "{i}");
    assert!(i["peak_pps"].as_u64().unwrap() > 2000, "{i}");
    assert!(i["hold_left_s"].as_f64().unwrap() > 30.0, "{i}");
    let text = guard(dir, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(VICTIM) && text.contains("SYN flood") && text.contains("blackhole"),
        "{text}"
    );

    // SIGKILL during the ban: nothing saved at exit, the state file as of
    // the last change is all there is.
    let killed_at = jiff::Timestamp::now();
    d.signal_group(libc::SIGKILL);
    d.wait(Duration::from_secs(5)).expect("killed");
    assert!(blackholes(&s.rtr).contains(&ours));
    // Someone removes the route meanwhile; the new daemon puts it back.
    sh(&format!(
        "ip -n {} route del blackhole {VICTIM}/32 proto 213",
        s.rtr.0
    ));
    let mut d = daemon_recording(&s.rtr, dir, None);
    let back = Instant::now();
    wait_for("the restored route", Duration::from_secs(20), || {
        blackholes(&s.rtr).contains(&ours)
    });
    eprintln!(
        "FIGURE guard_run: route restored {:?} after the restart",
        back.elapsed()
    );
    assert!(log().contains("restoring"), "{}", log());
    // The status file the killed daemon left is stale: wait for the new
    // daemon's, and for its API (published once its first round is done).
    let restarted = jiff::Timestamp::now();
    wait_for(
        "the restored incident in a fresh status",
        Duration::from_secs(10),
        || {
            let st = status(dir);
            let fresh = st["as_of"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t > restarted);
            fresh
                && st["incidents"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|i| i["target"] == VICTIM && i["rung"] == "blackhole")
                })
        },
    );
    // The API shows the same incident (the status file may be up to a
    // second older: its rates may differ), and the metrics count it.
    let mut from_api = serde_json::Value::Null;
    wait_for("the incident in the API", Duration::from_secs(10), || {
        let v: serde_json::Value =
            serde_json::from_str(&api_get(&s.rtr, &token, "/api/v1/guard")).unwrap_or_default();
        match v["incidents"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["target"] == VICTIM))
        {
            Some(i) => {
                from_api = i.clone();
                true
            }
            None => false,
        }
    });
    let from_cli = incident(dir, VICTIM).unwrap();
    for key in ["attack", "rung", "direction", "hold", "group", "trigger"] {
        assert_eq!(
            from_api[key], from_cli[key],
            "{key}: {from_api} vs {from_cli}"
        );
    }
    // `since` is the wall time now less the attack's age on the monotonic
    // clock: the two answers were made at different instants, so they may
    // differ by the time between a tick and its snapshot.
    let since = |v: &serde_json::Value| -> jiff::Timestamp {
        v["since"].as_str().unwrap().parse().unwrap()
    };
    let apart = since(&from_api).duration_since(since(&from_cli)).abs();
    assert!(
        apart < jiff::SignedDuration::from_millis(500),
        "{from_api} vs {from_cli}"
    );
    let m = api_get(&s.rtr, &token, "/metrics");
    assert!(
        m.lines()
            .any(|l| l == "tollgate_guard_incidents{rung=\"blackhole\"} 1"),
        "{m}"
    );

    // The flood is over (bounded at 5 s); unban ends the ban at once.
    flood.wait(Duration::from_secs(10)).expect("the flood ends");
    assert!(flood_start.elapsed() >= Duration::from_secs(5));
    let o = guard(dir, &["unban", VICTIM]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("unbanned {VICTIM}")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !blackholes(&s.rtr).contains(&ours),
        "{:?}",
        blackholes(&s.rtr)
    );
    wait_for(
        "the status without the incident",
        Duration::from_secs(5),
        || incident(dir, VICTIM).is_none(),
    );
    let n = notified();
    assert!(
        n.contains(&format!("ARGS {VICTIM} incoming")) && n.contains(" unban"),
        "{n}"
    );
    wait_for("the webhook's unban", Duration::from_secs(5), || {
        hooked().contains("\"action\":\"unban\"")
    });
    // The ended attack is in the history, with the rungs it used.
    let o = guard(dir, &["history", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["target"], VICTIM, "{h:?}");
    assert_eq!(h[0]["direction"], "in", "{h:?}");
    assert_eq!(h[0]["attack"], "syn_flood", "{h:?}");
    assert_eq!(
        h[0]["rungs"],
        serde_json::json!(["notify", "blackhole"]),
        "{h:?}"
    );
    assert!(h[0]["report"]["packets"].as_u64().unwrap() > 1000, "{h:?}");
    let o = guard(dir, &["history"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("syn_flood") && text.contains("notify,blackhole"),
        "{text}"
    );
    let body = api_get(&s.rtr, &token, "/api/v1/guard/history?last=5");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(v["total"], 1, "{body}");
    assert_eq!(v["attacks"][0]["target"], VICTIM, "{body}");
    // The history store keeps the attack too, read with --since: its
    // start from before the kill (stamped then, saved with the ladder),
    // its end after, the rungs and the flooding source.
    let stored = || {
        let o = guard(dir, &["history", "--since", "1h", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let h = stored();
    assert_eq!(h.as_array().map(Vec::len), Some(1), "{h}");
    let a = &h[0];
    assert_eq!(a["target"], VICTIM, "{a}");
    assert_eq!(
        a["rungs"],
        serde_json::json!(["notify", "blackhole"]),
        "{a}"
    );
    let started: jiff::Timestamp = a["started_at"].as_str().unwrap().parse().unwrap();
    let ended: jiff::Timestamp = a["recorded_at"].as_str().unwrap().parse().unwrap();
    assert!(started < killed_at && ended > killed_at, "{a}");
    assert_eq!(a["report"]["top_sources"][0]["addr"], "198.51.100.2", "{a}");
    assert!(a["report"]["peak_bps"].as_u64().unwrap() > 0, "{a}");
    assert_eq!(a["report"]["top_dst_ports"][0][0], 80, "{a}");
    let body = api_get(&s.rtr, &token, "/api/v1/guard/history?since=1h");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(v["source"], "history", "{body}");
    assert_eq!(v["attacks"][0]["started_at"], a["started_at"], "{body}");
    let body = api_get(&s.rtr, &token, "/api/v1/guard/history?since=yesterday");
    assert!(body.contains("since"), "{body}");
    // Killed again once the record is stored: it stays, once.
    d.signal_group(libc::SIGKILL);
    d.wait(Duration::from_secs(5)).expect("killed");
    let mut d = daemon_recording(&s.rtr, dir, None);
    wait_for(
        "the guard to capture again",
        Duration::from_secs(20),
        || log().matches("guard capturing").count() >= 3,
    );
    let h = stored();
    assert_eq!(h.as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h[0]["started_at"], a["started_at"], "{h}");
    // Nothing is banned any more: a second unban says so (exit 1).
    let o = guard(dir, &["unban", VICTIM]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");

    // A ban by hand, and one outside the networks.
    let o = guard(
        dir,
        &[
            "ban",
            BANNED,
            "--rung",
            "blackhole",
            "--for",
            "1m",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(answer["outcome"], "done", "{answer}");
    assert!(blackholes(&s.rtr).contains(&format!("blackhole {BANNED} proto 213")));
    let mut i = serde_json::Value::Null;
    wait_for(
        "the manual ban in the status",
        Duration::from_secs(3),
        || incident(dir, BANNED).map(|found| i = found).is_some(),
    );
    assert_eq!(i["hold"], "manual", "{i}");
    let o = guard(dir, &["ban", "192.0.2.1", "--rung", "blackhole"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not inside the guard's networks"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = guard(dir, &["ban", "203.0.113.x"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("ADDR"));

    d.signal_group(libc::SIGTERM);
    let st = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    assert!(st.success(), "{st:?}\n{}", log());
    // The manual ban outlives the daemon, as the routes do.
    let state = std::fs::read_to_string(dir.join("state/guard-state.json")).unwrap();
    assert!(state.contains(BANNED), "{state}");

    // The first run's recording (its ticks among the inputs) replays to
    // the same ladder: the victim's notify, then its blackhole.
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("replay")
        .arg(&recording)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let applied: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["effect"] == "guard" && e["guard"] == "apply")
        .map(|e| {
            let d = &e["decision"];
            let step = if d["step"].is_object() { &d["step"] } else { d };
            (
                d["decision"].as_str().unwrap_or("").to_string(),
                format!("{} {}", step["target"]["host"], step["rung"]),
            )
        })
        .collect();
    let victim = format!("\"{VICTIM}\"");
    assert_eq!(
        applied.first(),
        Some(&("start".to_string(), format!("{victim} \"notify\""))),
        "{applied:?}"
    );
    assert!(
        applied.contains(&("escalate".to_string(), format!("{victim} \"blackhole\""))),
        "{applied:?}"
    );
}

/// A source that touches many of the protected addresses at a low rate is
/// no flood, but it is a scan: the daemon reports it (an event in the log,
/// `guard status`, its JSON) with the number of addresses it reached. The
/// scan: 2 s of SYNs at 500 packets/s to random addresses of the /24 from
/// the attacker, far below the 2,000 pps threshold of any one address.
#[test]
fn a_scan_of_the_protected_addresses_is_reported_with_its_source() {
    if !testkit::root("guard_run::a_scan_of_the_protected_addresses") {
        return;
    }
    testkit::need("hping3", "hping3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), policy(dir)).unwrap();
    let s = site("grs");
    let d = daemon_recording(&s.rtr, dir, None);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("the guard to capture", Duration::from_secs(20), || {
        log().contains("guard capturing")
    });
    wait_for("the status file", Duration::from_secs(5), || {
        dir.join("state/guard-status.json").exists()
    });
    let _scan = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args([
                "timeout",
                "2",
                "hping3",
                "-S",
                "-p",
                "22",
                "-i",
                "u2000",
                "-q",
                "-I",
                "atk0",
                "--rand-dest",
                "203.0.113.x",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // The capture reports sources at the end of each 10 s window.
    wait_for("the scan in guard status", Duration::from_secs(25), || {
        status(dir)["scans"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let st = status(dir);
    let scan = &st["scans"][0];
    assert_eq!(scan["source"], "198.51.100.2", "{st}");
    // At most 1,000 SYNs to 256 addresses (some windows cut the scan in
    // two): well over the default 64, and no more than the /24 holds
    // (the estimate's error is about 8%).
    let reached = scan["max_targets"].as_u64().unwrap();
    eprintln!(
        "FIGURE guard_run scan: {reached} addresses in the largest window, {} packets, {} windows",
        scan["packets"], scan["windows"]
    );
    assert!((64..=280).contains(&reached), "{st}");
    assert_eq!(st["scan_targets"], 64, "{st}");
    assert!(
        st["incidents"].as_array().unwrap().is_empty(),
        "a scan is no flood: {st}"
    );
    let text = guard(dir, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("scans (sources reaching 64+") && text.contains("198.51.100.2 "),
        "{text}"
    );
    let l = log();
    assert!(l.contains("guard: 198.51.100.2 is scanning:"), "{l}");
    drop(d);
}
