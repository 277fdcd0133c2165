//! Latency inside `tollgate run`, end to end in network namespaces.
//!
//! ```text
//! up ──veth── router ──veth── tenant
//! 198.51.100.2  wan0 198.51.100.1 | lan0 203.0.113.1  203.0.113.10
//! ```
//!
//! The daemon shapes in the router; the tenant's downstream ceil is tiny
//! (64 kbit/s) so that a burst of 24 pings of 1,000 bytes toward it sits
//! in its HTB leaf for about 3 s while every link stays up: the seed's
//! fault (a bond that queued for 3 s) replayed without netem, which this
//! kernel lacks. The daemon's probes go to the tenant through the same
//! queue.
//!
//! - `the_seeds_three_second_stall_raises_an_alarm_and_clears_it`: the
//!   queue alarm is raised at the first reading after the burst and
//!   cleared when the queue drains below a second; the probe RTT alarm
//!   too; both reach the log, the notify script (raise and clear),
//!   `tollgate latency --json`, `tollgate status`, `GET /api/v1/latency`
//!   and `/metrics`. The times from the burst to the raise and to the
//!   clear are printed (not judged: timing never fails a test here).
//!   After the daemon stops, `tollgate latency --since 10m --json` holds
//!   the leaf's stored minutes (their worst delay at least the delay that
//!   raised the alarm, a second or more at its ceil) and the probe's.
//! - `probe_rtt_matches_ping`: the daemon's ICMP probe against `ping` run
//!   at the same time from the router, over the bare veth path and with
//!   40 ms added by a delaying echo responder in the tenant's namespace
//!   (the kernel's own echo replies off there), medians within ±10% or
//!   ±1 ms; the probes' replies are read from the daemon's recording
//!   (`--record`), each with its wall time; the same for IPv6 over the
//!   bare path; a TCP probe to a closed port answered (by its RST); and
//!   the router's `wan0`, up with nothing crossing it, raising the idle
//!   alarm until a ping from upstream clears it.
//!
//! Needs root, iproute2, iputils ping and curl. The namespaces
//! are deleted and every process killed even if a test fails (`Netns` and
//! `Process` on drop); every traffic source is bounded by count and time.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::{sh, wait_for, Netns, Process};

const TENANT: &str = "203.0.113.10";
const TENANT6: &str = "2001:db8::10";

struct Site {
    up: Netns,
    rtr: Netns,
    _ten: Netns,
}

fn site(tag: &str) -> Site {
    let s = Site {
        up: Netns::new(&format!("{tag}u")),
        rtr: Netns::new(&format!("{tag}r")),
        _ten: Netns::new(&format!("{tag}t")),
    };
    sh(&format!(
        "set -e
ip link add up0 netns {u} type veth peer name wan0 netns {r}
ip link add lan0 netns {r} type veth peer name ten0 netns {t}
ip -n {u} addr add 198.51.100.2/24 dev up0; ip -n {u} link set up0 up
ip -n {r} addr add 198.51.100.1/24 dev wan0; ip -n {r} link set wan0 up
ip -n {r} addr add 203.0.113.1/24 dev lan0; ip -n {r} link set lan0 up
ip -n {t} addr add {TENANT}/24 dev ten0; ip -n {t} link set ten0 up
ip -n {r} addr add 2001:db8::1/64 dev lan0 nodad
ip -n {t} addr add {TENANT6}/64 dev ten0 nodad
ip -n {u} route add default via 198.51.100.1
ip -n {t} route add default via 203.0.113.1
ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1",
        u = s.up.0,
        r = s.rtr.0,
        t = s._ten.0,
    ));
    s
}

/// The policy: one tenant whose downstream ceil is `down_ceil`, and
/// `[latency]` with probes to the tenant every `interval` (ICMP, ICMPv6,
/// TCP) and `watched` (a TOML list's items) watched for silence.
fn policy(dir: &Path, down_ceil: &str, interval: &str, watched: &str) -> String {
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\ncat > /dev/null\n",
            dir.join("notify.log").display()
        ),
    )
    .unwrap();
    sh(&format!("chmod +x {}", script.display()));
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}

[plans.tiny]
down = {{ rate = "{down_ceil}", ceil = "{down_ceil}" }}
up = {{ rate = "10mbit", ceil = "100mbit" }}

[[tenants]]
id = 1
name = "voip"
plan = "tiny"
prefixes = ["203.0.113.0/25"]

[latency]
sample = "1s"
notify = "{script}"
webhook = "http://127.0.0.1:18089/tollgate/latency"
interfaces = [{watched}]

[latency.alarms]
queue_delay = "1s"
queue_for = "0s"
idle_for = "2s"
rtt_for = "0s"

[[latency.probes]]
realm = "tenant-path"
target = "{TENANT}"
kind = "icmp"
interval = "{interval}"
timeout = "5s"

[[latency.probes]]
realm = "tenant-path"
target = "{TENANT6}"
kind = "icmp"
interval = "{interval}"
timeout = "5s"

[[latency.probes]]
realm = "tenant-path"
target = "{TENANT}"
kind = "tcp"
port = 9
interval = "{interval}"
timeout = "5s"
"#,
        script = script.display()
    )
}

fn daemon(rtr: &Netns, dir: &Path) -> Process {
    let record = dir.join("run.jsonl");
    testkit::tollgate_run(env!("CARGO_BIN_EXE_tollgate"), rtr, dir, Some(&record))
}

fn tollgate(dir: &Path, netns: Option<&Netns>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    if let Some(ns) = netns {
        c.args(["--netns", &ns.0]);
    }
    c.arg("-c")
        .arg(dir.join("policy.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_STATE_DIR")
        .output()
        .expect("run tollgate")
}

/// `tollgate latency --json`, or `None` before the daemon wrote it.
fn latency(dir: &Path) -> Option<serde_json::Value> {
    let o = tollgate(dir, None, &["latency", "--json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

fn alarms(v: &serde_json::Value, kind: &str) -> Vec<serde_json::Value> {
    v["alarms"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["kind"] == kind).cloned().collect())
        .unwrap_or_default()
}

fn token(dir: &Path) -> String {
    let o = tollgate(
        dir,
        None,
        &["token", "add", "ops", "--scope", "read", "--json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["token"].as_str().unwrap().to_string()
}

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

fn stop(mut d: Process, log: &dyn Fn() -> String) {
    d.signal_group(libc::SIGTERM);
    let status = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    assert!(status.success(), "{status:?}\n{}", log());
}

#[test]
fn the_seeds_three_second_stall_raises_an_alarm_and_clears_it() {
    if !testkit::root("latency::the_seeds_three_second_stall") {
        return;
    }
    testkit::need("curl", "curl");
    testkit::need("ping", "iputils-ping");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), policy(dir, "64kbit", "500ms", "")).unwrap();
    let token = token(dir);
    let s = site("latst");
    let _receiver = testkit::webhook_receiver(&s.rtr.0, 18089, &dir.join("webhook.log"));
    let d = daemon(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    // The tenant's classes exist and are read, and the probe answers.
    wait_for(
        "the tenant's classes and a probe reply",
        Duration::from_secs(20),
        || {
            latency(dir).is_some_and(|v| {
                v["classes_read"].as_u64() > Some(2)
                    && v["probes"][0]["figures"]["received"].as_u64() > Some(1)
            })
        },
    );
    let before = latency(dir).unwrap();
    assert!(alarms(&before, "queue_delay").is_empty(), "{before}");

    // The stall: 24 × 1,000-byte pings toward the tenant within 50 ms,
    // 25 kB queued behind a 64 kbit/s ceil: about 3 s, every link up.
    let burst = Instant::now();
    let ping = Command::new("ip")
        .args([
            "netns", "exec", &s.up.0, "ping", "-n", "-q", "-c", "24", "-i", "0.002", "-s", "1000",
            "-W", "8", TENANT,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut raised = None;
    let took = wait_for("the queue alarm", Duration::from_secs(10), || {
        raised = latency(dir).and_then(|v| alarms(&v, "queue_delay").into_iter().next());
        raised.is_some()
    });
    let raise_after = burst.elapsed().min(took + Duration::from_millis(50));
    let a = raised.unwrap();
    eprintln!(
        "queue alarm raised {:.0} ms after the burst: {a}",
        raise_after.as_secs_f64() * 1000.0
    );
    assert_eq!(a["tenant"], 1, "{a}");
    // Raised at the first reading that saw the queue (no hold), with the
    // delay it saw: more than the threshold and no more than the burst.
    assert_eq!(a["since_ms"], a["raised_ms"], "{a}");
    let delay = a["value"].as_f64().unwrap();
    assert!((1000.0..=3600.0).contains(&delay), "{a}");
    // tollgate's downstream IFB, the tenant's leaf.
    assert!(
        a["subject"].as_str().unwrap().starts_with("tg-down "),
        "{a}"
    );

    // Shown everywhere while raised.
    // (A short gap between its two readings: the alarm is up for about
    // two seconds.)
    let status = tollgate(dir, Some(&s.rtr), &["status", "--interval", "100ms"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("latency alarms") && text.contains("queue_delay"),
        "{text}"
    );
    let api: serde_json::Value =
        serde_json::from_str(&api_get(&s.rtr, &token, "/api/v1/latency")).unwrap();
    assert!(
        !alarms(&api, "queue_delay").is_empty()
            || !alarms(&latency(dir).unwrap(), "queue_delay").is_empty(),
        "{api}"
    );
    let mine: serde_json::Value =
        serde_json::from_str(&api_get(&s.rtr, &token, "/api/v1/latency?tenant=1")).unwrap();
    assert!(mine["probes"].as_array().unwrap().is_empty(), "{mine}");
    let metrics = api_get(&s.rtr, &token, "/metrics");
    assert!(
        metrics.contains("tollgate_latency_alarms_raised_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "tollgate_latency_probe_rtt_seconds{probe=\"tenant-path icmp 203.0.113.10\"}"
        ),
        "{metrics}"
    );

    // Cleared once less than a second is queued, and the queue drains.
    let mut at_clear = None;
    wait_for("the queue alarm to clear", Duration::from_secs(15), || {
        at_clear = latency(dir).filter(|v| alarms(v, "queue_delay").is_empty());
        at_clear.is_some()
    });
    let clear_after = burst.elapsed();
    // Every class, from the API (the status file holds the busy ones).
    let every = || -> serde_json::Value {
        serde_json::from_str(&api_get(&s.rtr, &token, "/api/v1/latency")).unwrap()
    };
    let class = |v: &serde_json::Value| {
        v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["class"] == a["subject"])
            .cloned()
            .unwrap()
    };
    // Cleared by a reading that saw a second or less queued (not by the
    // class going away).
    assert!(at_clear.is_some());
    let left = class(&every());
    eprintln!("at the clear: {left}");
    assert!(
        left["figures"]["delay_ms"].as_f64().unwrap() <= 1000.0,
        "{left}"
    );
    eprintln!(
        "queue alarm cleared {:.0} ms after the burst",
        clear_after.as_secs_f64() * 1000.0
    );
    // The tenant's leaf empties (the probes' own small packets may sit
    // in it for a few milliseconds: a reading may catch one).
    let mut left = serde_json::Value::Null;
    let drained = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        left = class(&every());
        left["figures"]["backlog_bytes"]
            .as_u64()
            .is_some_and(|b| b < 1000)
    });
    assert!(drained, "the queue did not drain: {left}");
    // (ping's own summary is cut short: it stops waiting at twice the
    // longest RTT it has seen, so it is not shown.)
    ping.wait_with_output().unwrap();
    // The probe went through the same queue: its RTT alarm too.
    wait_for(
        "the probe's RTT alarm to clear",
        Duration::from_secs(15),
        || latency(dir).is_some_and(|v| alarms(&v, "probe_rtt").is_empty()),
    );
    let notified = std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();
    // The webhook got each raise and clear as JSON, the script's stdin.
    // (Sent on threads of their own: the last clear may still be on its way.)
    let hooked = || std::fs::read_to_string(dir.join("webhook.log")).unwrap_or_default();
    let seen = |kind: &str, raised: bool| {
        hooked().lines().any(|l| {
            let Some(body) = l.strip_prefix("/tollgate/latency application/json ") else {
                return false;
            };
            let c: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            c["raised"] == raised && c["alarm"]["kind"] == kind
        })
    };
    for kind in ["queue_delay", "probe_rtt"] {
        for raised in [true, false] {
            let asked = std::time::Instant::now();
            while !seen(kind, raised) {
                assert!(
                    asked.elapsed() < Duration::from_secs(5),
                    "no webhook for {kind} raised={raised} in 5 s:\n{}",
                    hooked()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    for line in [
        "raise queue_delay tg-down",
        "clear queue_delay tg-down",
        "raise probe_rtt tenant-path icmp 203.0.113.10",
        "clear probe_rtt",
    ] {
        assert!(
            notified.contains(line),
            "`{line}` not in the notify log:\n{notified}"
        );
    }
    let l = log();
    assert!(
        l.contains("latency_alarm") && l.contains("latency_clear"),
        "{l}"
    );
    let after = latency(dir).unwrap();
    let class = every()["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenant"] == 1 && c["label"].as_str().is_some_and(|l| l.ends_with("down")))
        .cloned()
        .unwrap();
    assert!(
        class["figures"]["time_at_ceil_ms"].as_f64().unwrap() >= 1000.0,
        "{class}"
    );
    assert!(after["raised_total"].as_u64().unwrap() >= 2, "{after}");
    stop(d, &log);

    // The history: the stall's minutes of the tenant's leaf (the daemon
    // stopping stored the minute it was in), and the probe's.
    let o = tollgate(dir, None, &["latency", "--since", "10m", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let leaf: Vec<&serde_json::Value> = h["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["class"] == a["subject"])
        .collect();
    let worst = leaf
        .iter()
        .map(|q| q["max_delay_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let at_ceil: f64 = leaf.iter().map(|q| q["at_ceil_ms"].as_f64().unwrap()).sum();
    eprintln!("stored minutes of the leaf: worst delay {worst} ms, {at_ceil} ms at ceil: {leaf:?}");
    // The reading that raised the alarm is one of the minute's readings.
    assert!(
        worst >= delay - 0.01,
        "{delay} ms raised, {worst} ms stored: {h}"
    );
    assert!(at_ceil >= 1000.0, "{h}");
    assert!(leaf.iter().all(|q| q["tenant"] == 1), "{h}");
    let probe: Vec<&serde_json::Value> = h["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["probe"] == "tenant-path icmp 203.0.113.10")
        .collect();
    let sent: u64 = probe.iter().map(|p| p["sent"].as_u64().unwrap()).sum();
    assert!(sent >= 3, "{h}");
    assert!(probe.iter().any(|p| p["p50_ms"].as_f64().is_some()), "{h}");
    let text = String::from_utf8_lossy(&tollgate(dir, None, &["latency", "--since", "10m"]).stdout)
        .into_owned();
    assert!(
        text.contains("busy queues") && text.contains("probes"),
        "{text}"
    );
    eprintln!("{text}");
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// `ping`'s RTTs in ms, from its output.
fn ping_rtts(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The daemon's RTTs (ms) of probe number `probe` recorded between `from`
/// and `to` (wall time), from its recording.
fn probe_rtts(record: &Path, probe: u64, from: jiff::Timestamp, to: jiff::Timestamp) -> Vec<f64> {
    std::fs::read_to_string(record)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["input"]["latency"] == "probed" && v["input"]["probe"] == probe)
        .filter(|v| {
            let at: jiff::Timestamp = v["at"].as_str().unwrap_or("").parse().unwrap_or_default();
            at >= from && at <= to
        })
        .filter_map(|v| {
            let rtt = &v["input"]["reply"]["rtt"];
            Some(rtt["secs"].as_f64()? * 1000.0 + rtt["nanos"].as_f64()? / 1e6)
        })
        .collect()
}

/// Pings `target` from the router for `count` × 200 ms next to the
/// daemon's probe number `probe`; returns (ping's median, the probe's
/// median, their counts).
fn side_by_side(
    s: &Site,
    dir: &Path,
    target: &str,
    probe: u64,
    count: u32,
) -> (f64, f64, usize, usize) {
    let from = jiff::Timestamp::now();
    let out = s
        .rtr
        .sh(&format!("ping -n -c {count} -i 0.2 -W 5 {target} || true"));
    // The probe reply for the last ping's instant is recorded a moment
    // later.
    std::thread::sleep(Duration::from_millis(600));
    let to = jiff::Timestamp::now();
    let mut ping = ping_rtts(&out);
    let mut probe = probe_rtts(&dir.join("run.jsonl"), probe, from, to);
    assert!(
        ping.len() >= 5 && probe.len() >= 5,
        "ping {ping:?}, probe {probe:?}\n{out}"
    );
    (
        median(&mut ping),
        median(&mut probe),
        ping.len(),
        probe.len(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1.0 || (a - b).abs() <= 0.1 * a
}

/// A delaying echo responder in the namespace `ns`: the kernel's own
/// echo replies are turned off there, and this thread answers every echo
/// request `delay` late (a relay that delays, since this kernel has no
/// netem), until `stop` is set.
fn delaying_responder(
    ns: &str,
    delay: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::io::Read as _;
    let ns = ns.to_string();
    std::thread::spawn(move || {
        // This thread only: the test's other threads stay where they are.
        linux_dataplane::netns::enter(&ns).unwrap();
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 2048];
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok(n) = (&sock).read(&mut buf) else {
                continue;
            };
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if n < ihl + 8 || buf[ihl] != 8 {
                continue;
            }
            let from = std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let mut reply = buf[ihl..n].to_vec();
            reply[0] = 0;
            reply[2] = 0;
            reply[3] = 0;
            let mut sum = 0u32;
            for c in reply.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            reply[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            let sock = sock.try_clone().unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let to = SockAddr::from(std::net::SocketAddr::from((from, 0)));
                let _ = sock.send_to(&reply, &to);
            });
        }
    })
}

#[test]
fn probe_rtt_matches_ping() {
    if !testkit::root("latency::probe_rtt_matches_ping") {
        return;
    }
    testkit::need("ping", "iputils-ping");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("policy.toml"),
        policy(dir, "100mbit", "200ms", "\"wan0\""),
    )
    .unwrap();
    let s = site("latpr");
    let d = daemon(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("a probe reply", Duration::from_secs(20), || {
        latency(dir).is_some_and(|v| v["probes"][0]["figures"]["received"].as_u64() > Some(2))
    });
    // wan0 is up and nothing crosses it (the probes go out of lan0):
    // idle after 2 s; a ping from upstream clears it.
    wait_for("the idle alarm on wan0", Duration::from_secs(20), || {
        latency(dir).is_some_and(|v| alarms(&v, "idle").iter().any(|a| a["subject"] == "wan0"))
    });
    s.up.sh("ping -n -q -c 3 -i 0.2 198.51.100.1 || true");
    wait_for("the idle alarm to clear", Duration::from_secs(10), || {
        latency(dir).is_some_and(|v| alarms(&v, "idle").is_empty())
    });
    let notified = std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();
    assert!(
        notified.contains("raise idle wan0") && notified.contains("clear idle wan0"),
        "{notified}"
    );
    // Idle: the veth path's own RTT, through the tenant's classes.
    let (ping, probe, n, m) = side_by_side(&s, dir, TENANT, 0, 15);
    eprintln!("veth: ping p50 {ping:.3} ms ({n}), probe p50 {probe:.3} ms ({m})");
    assert!(close(ping, probe), "veth: ping {ping} ms, probe {probe} ms");
    let (ping, probe, n, m) = side_by_side(&s, dir, TENANT6, 1, 15);
    eprintln!("veth, IPv6: ping p50 {ping:.3} ms ({n}), probe p50 {probe:.3} ms ({m})");
    assert!(
        close(ping, probe),
        "veth, IPv6: ping {ping} ms, probe {probe} ms"
    );
    // The TCP probe to a closed port: answered by a RST.
    let v = latency(dir).unwrap();
    let tcp = &v["probes"][2];
    assert_eq!(tcp["name"], "tenant-path tcp 203.0.113.10:9", "{v}");
    assert!(tcp["figures"]["received"].as_u64() > Some(2), "{tcp}");
    assert_eq!(tcp["figures"]["loss_percent"], 0.0, "{tcp}");
    // 40 ms added by a delaying responder in the tenant's namespace.
    s._ten.sh("sysctl -qw net.ipv4.icmp_echo_ignore_all=1");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let responder = delaying_responder(&s._ten.0, Duration::from_millis(40), done.clone());
    std::thread::sleep(Duration::from_millis(500));
    let (ping, probe, n, m) = side_by_side(&s, dir, TENANT, 0, 25);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    responder.join().unwrap();
    eprintln!("delayed 40 ms: ping p50 {ping:.2} ms ({n}), probe p50 {probe:.2} ms ({m})");
    assert!(
        ping >= 40.0,
        "the responder added no delay: ping p50 {ping} ms"
    );
    assert!(
        close(ping, probe),
        "delayed: ping {ping} ms, probe {probe} ms"
    );
    stop(d, &log);
}
