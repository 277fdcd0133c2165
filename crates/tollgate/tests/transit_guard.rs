//! The transit guard in `tollgate run`, in namespaces with real traffic
//! (docs/transit.md, "The guard").
//!
//! A router (tests/daemon_site) with three tenants: t1 and t2 on `basic`
//! (8 Mbit/s ceil), t3 already in the shared `overage` pool (8 Mbit/s).
//! The history is seeded with a month whose budget is being spent too
//! fast: 400 samples of t2 at 12 Mbit/s against a 10 Mbit/s commit by
//! the 20th, when a 30-day month allows 432. The daemon's clock is set
//! (`TOLLGATE_CLOCK_SKEW`) to 2026-11-20, a few seconds before a 5-minute
//! slot closes, so that the guard's checks (at start, at a reload, two
//! seconds into each new slot) come in seconds instead of minutes.
//!
//! 1. The guard is turned on by a reload: it lowers the pool's ceil to
//!    2 Mbit/s (step 1); t3's iperf3 rate follows in the round the step
//!    triggers.
//! 2. The slot closes: it moves the heaviest tenant, t2, into the pool
//!    (step 2); t2's rate falls to the pool's.
//! 3. Through both steps t1, which no step names, keeps its TCP rate and
//!    a UDP stream loses nothing.
//! 4. The daemon restarts: the steps are restored and applied once (no
//!    new action), and `tollgate transit relax` gives t2 its plan back.
//!
//! Needs root, iproute2, nftables and iperf3.

use accounting::{Accountant, Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store};
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod daemon_site;

use daemon_site::{wait_for, Daemon, Site, INTERNATIONAL};

/// Bytes of one 5-minute sample at 1 Mbit/s.
const MBIT: u64 = 37_500_000;

fn policy(guard: &str) -> String {
    format!(
        r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "200mbit", up = "200mbit" }}

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.basic]
down = {{ rate = "2mbit", ceil = "8mbit" }}
up = {{ rate = "2mbit", ceil = "8mbit" }}

[plans.overage]
shared = true
id = 100
down = {{ rate = "1mbit", ceil = "8mbit" }}
up = {{ rate = "1mbit", ceil = "8mbit" }}

[[tenants]]
id = 1
name = "t1"
plan = "basic"
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
name = "t2"
plan = "basic"
prefixes = ["100.64.2.0/24"]

[[tenants]]
id = 3
name = "t3"
plan = "overage"
prefixes = ["100.64.3.0/24"]

[transit]
guard = "{guard}"
pool_ceil = "2mbit"
heaviest = 1
hold = "1h"

[[transit.upstreams]]
name = "carrier"
realms = ["international"]
commit = "10mbit"
method = "in"
"#
    )
}

/// The month so far: t2 at 12 Mbit/s and t1 at 1 Mbit/s down to the
/// international realm in 400 slots from 2 November.
fn seed(site: &Site) {
    std::fs::create_dir_all(site.state_dir()).unwrap();
    let mut store = SqliteStore::open(
        &site.state_dir().join("history.sqlite"),
        &SqliteOptions::default(),
    )
    .unwrap();
    let first = Slot::containing("2026-11-02T00:00:00Z".parse::<Timestamp>().unwrap()).0;
    let key = |tenant| UsageKey {
        tenant: TenantId(tenant),
        realm: RealmId(2),
        direction: Direction::Down,
        band: Band::Normal,
        source: accounting::Source::Kernel,
    };
    let mut samples = Vec::new();
    for s in first..first + 400 {
        samples.push(Sample {
            slot: Slot(s),
            key: key(1),
            bytes: MBIT,
            packets: MBIT / 1000,
        });
        samples.push(Sample {
            slot: Slot(s),
            key: key(2),
            bytes: 12 * MBIT,
            packets: 12 * MBIT / 1000,
        });
    }
    samples.sort_by_key(|x| (x.slot, x.key));
    let coverage: Vec<SlotCoverage> = (first..first + 400)
        .map(|s| SlotCoverage {
            slot: Slot(s),
            status: SlotStatus::Measured,
        })
        .collect();
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

/// The guard's saved state (none yet: null).
fn guard_state(site: &Site) -> serde_json::Value {
    std::fs::read_to_string(site.state_dir().join("transit-guard.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn steps(site: &Site) -> usize {
    guard_state(site)["guards"]["carrier"]["guard"]["steps"]
        .as_array()
        .map_or(0, Vec::len)
}

/// An iperf3 run from tenant `k`'s namespace against a one-off server in
/// the upstream on port 5200 + k (5210 + k for UDP, so that a tenant can
/// have both at once), toward the tenant: its JSON summary.
struct Iperf {
    server: testkit::Process,
    client: Option<std::process::Child>,
}

fn iperf_start(site: &Site, k: usize, secs: u32, udp_rate: Option<&str>) -> Iperf {
    let port = (5200 + k + if udp_rate.is_some() { 10 } else { 0 }).to_string();
    let server = testkit::Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &site.upstream, "iperf3", "-s", "-1"])
            .args(["-B", INTERNATIONAL, "-p", &port])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &site.tenants[k - 1], "iperf3", "-J", "-R"])
        .args(["-c", INTERNATIONAL, "-p", &port, "-t", &secs.to_string()]);
    if let Some(b) = udp_rate {
        c.args(["-u", "-b", b, "-l", "1000"]);
    }
    let client = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iperf3");
    Iperf {
        server,
        client: Some(client),
    }
}

impl Iperf {
    fn running(&mut self) -> bool {
        self.client
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn finish(mut self) -> serde_json::Value {
        let o = self
            .client
            .take()
            .expect("running")
            .wait_with_output()
            .unwrap();
        let _ = self.server.wait(Duration::from_secs(5));
        assert!(
            o.status.success(),
            "iperf3: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("iperf3 -J")
    }
}

impl Drop for Iperf {
    fn drop(&mut self) {
        if let Some(c) = &mut self.client {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Tenant `k`'s TCP download rate over `secs` seconds, Mbit/s.
fn tcp_mbit(site: &Site, k: usize, secs: u32) -> f64 {
    let v = iperf_start(site, k, secs, None).finish();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("a rate")
        / 1e6
}

/// Reloads the policy (SIGHUP) with the guard set to `guard`.
fn reload(site: &Site, d: &Daemon, guard: &str) {
    std::fs::write(site.policy_path(), policy(guard)).unwrap();
    d.signal("-HUP");
}

/// The wall-clock times (from the log's timestamps) of the first
/// `transit_tighten` line after `skip` of them, and of the next
/// `policy_applied` line.
fn step_to_applied(log: &str, skip: usize) -> Option<(String, String, String)> {
    let mut lines = log
        .lines()
        .filter(|l| l.contains("transit_tighten") || l.contains("policy_applied"));
    let mut seen = 0;
    let step = loop {
        let l = lines.next()?;
        if l.contains("transit_tighten") {
            if seen == skip {
                break l;
            }
            seen += 1;
        }
    };
    let applied = lines.find(|l| l.contains("policy_applied"))?;
    let ts = |l: &str| l.split_whitespace().next().unwrap_or("").to_string();
    Some((ts(step), ts(applied), applied.to_string()))
}

fn seconds_between(a: &str, b: &str) -> f64 {
    let (a, b): (Timestamp, Timestamp) = (a.parse().unwrap(), b.parse().unwrap());
    b.duration_since(a).as_secs_f64()
}

#[test]
fn transit_guard_steps_reach_iperf3_rates_in_one_round_and_spare_untouched_tenants() {
    if !testkit::root(
        "transit_guard_steps_reach_iperf3_rates_in_one_round_and_spare_untouched_tenants",
    ) {
        return;
    }
    testkit::need("iperf3", "iperf3");
    let started = Instant::now();
    let site = Site::build("tgtw", "g", 3);
    std::fs::write(site.policy_path(), policy("off")).unwrap();
    std::fs::write(site.dir.join("accounting.toml"), "").unwrap();
    seed(&site);
    // The daemon lives on 2026-11-20, 16 s before 12:00 (a slot's end).
    let target: Timestamp = "2026-11-20T11:59:44Z".parse().unwrap();
    let skew = target
        .duration_since(Timestamp::now())
        .as_secs()
        .to_string();
    let accounting = site.dir.join("accounting.toml");
    let env = [("TOLLGATE_CLOCK_SKEW", skew.as_str())];
    let d = site.start_daemon_env(&accounting, &[], &env);

    // Before: every tenant at its 8 Mbit/s ceil (t3 alone in the pool).
    let before: Vec<f64> = {
        let runs: Vec<Iperf> = (1..=3).map(|k| iperf_start(&site, k, 2, None)).collect();
        runs.into_iter()
            .map(|r| {
                r.finish()["end"]["sum_received"]["bits_per_second"]
                    .as_f64()
                    .unwrap()
                    / 1e6
            })
            .collect()
    };
    println!(
        "before: t1 {:.2}, t2 {:.2}, t3 {:.2} Mbit/s",
        before[0], before[1], before[2]
    );
    assert!(before.iter().all(|r| *r > 6.0), "{before:?}");
    assert_eq!(steps(&site), 0, "the guard is off");

    // t1's UDP stream, 4 Mbit/s for 18 s, across both steps (step 2
    // comes about 15 s from now).
    let mut udp = iperf_start(&site, 1, 18, Some("4M"));
    let udp_started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    // 1. On: the reload checks at once; step 1 lowers the pool's ceil.
    let hup = Instant::now();
    reload(&site, &d, "on");
    wait_for("step 1 saved", Duration::from_secs(10), || {
        steps(&site) == 1
    });
    let saved_after = hup.elapsed();
    let t = Instant::now();
    while step_to_applied(&d.log(), 0).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no round after step 1:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log();
    let (s1, a1, applied1) = step_to_applied(&log, 0).expect("step 1 and its round in the log");
    println!(
        "step 1 saved {:.3} s after SIGHUP; applied {:.3} s after its event: {applied1}",
        saved_after.as_secs_f64(),
        seconds_between(&s1, &a1)
    );
    assert!(
        log.contains("tighten: the overage pool's ceil to 2mbit"),
        "{log}"
    );
    let t3 = tcp_mbit(&site, 3, 2);
    println!("after step 1: t3 {t3:.2} Mbit/s");
    assert!(t3 < 2.6, "t3 in the pool at 2 Mbit/s: {t3}");

    // 2. The slot closes: step 2 moves the heaviest tenant, t2.
    wait_for("step 2 at the slot's end", Duration::from_secs(25), || {
        steps(&site) == 2
    });
    println!(
        "step 2 {:.1} s into t1's 18 s UDP stream",
        udp_started.elapsed().as_secs_f64()
    );
    assert!(
        udp.running(),
        "t1's UDP stream ended before step 2: it proves nothing"
    );
    let t = Instant::now();
    while step_to_applied(&d.log(), 1).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no round after step 2:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log();
    let (s2, a2, applied2) = step_to_applied(&log, 1).expect("step 2 and its round");
    println!(
        "step 2 applied {:.3} s after its event: {applied2}",
        seconds_between(&s2, &a2)
    );
    assert!(
        log.contains("tighten: tenants 2 into the overage plan"),
        "{log}"
    );
    let state = guard_state(&site);
    assert_eq!(
        state["guards"]["carrier"]["guard"]["steps"][1]["tenants"],
        serde_json::json!([2])
    );
    let t2 = tcp_mbit(&site, 2, 2);
    println!("after step 2: t2 {t2:.2} Mbit/s");
    assert!(t2 < 2.6, "t2 moved into the 2 Mbit/s pool: {t2}");

    // 3. t1's UDP stream lost nothing through both steps, and t1's TCP
    // rate afterwards is what it was before.
    let u = udp.finish();
    let sum = &u["end"]["sum"];
    println!(
        "t1 UDP: {} packets, {} lost, {:.2} Mbit/s",
        sum["packets"],
        sum["lost_packets"],
        sum["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6
    );
    assert!(sum["packets"].as_u64().unwrap() > 1000, "{sum}");
    assert_eq!(sum["lost_packets"].as_u64(), Some(0), "{sum}");
    let t1 = tcp_mbit(&site, 1, 2);
    println!("after both steps: t1 {t1:.2} Mbit/s");
    assert!(
        (t1 - before[0]).abs() < before[0] * 0.15,
        "t1 is untouched: {t1} against {} before",
        before[0]
    );

    // The steps shown: status, transit, metrics.
    let status: serde_json::Value = serde_json::from_str(&tollgate(
        &site,
        &[
            "--netns",
            &site.host,
            "status",
            "--json",
            "--interval",
            "200ms",
        ],
    ))
    .unwrap();
    assert_eq!(
        status["pending_changes"], 0,
        "the kernel has the steps: {status}"
    );
    assert_eq!(
        status["transit_steps"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    let transit: serde_json::Value =
        serde_json::from_str(&tollgate(&site, &["transit", "--json"])).unwrap();
    assert_eq!(transit["guard"]["mode"], "on");
    assert_eq!(
        transit["guard"]["steps_in_force"].as_array().map(Vec::len),
        Some(2)
    );
    let text = tollgate(&site, &["transit"]);
    println!("{text}");
    assert!(
        text.contains("tenants 2 moved into the overage plan"),
        "{text}"
    );

    // 4. A restart restores both steps and takes none again (this
    // upstream has a realm, so there is no step 3).
    let tightened = guard_state(&site)["tightened"].as_u64();
    assert_eq!(d.stop().code(), Some(0));
    let mark = std::fs::read_to_string(site.dir.join("daemon.log"))
        .unwrap()
        .len();
    let d = site.start_daemon_env(&accounting, &[], &env);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(steps(&site), 2);
    assert_eq!(guard_state(&site)["tightened"].as_u64(), tightened);
    let status: serde_json::Value = serde_json::from_str(&tollgate(
        &site,
        &[
            "--netns",
            &site.host,
            "status",
            "--json",
            "--interval",
            "200ms",
        ],
    ))
    .unwrap();
    assert_eq!(status["pending_changes"], 0, "{status}");
    assert!(!d.log()[mark..].contains("transit_tighten"), "{}", d.log());
    let mark = d.log().len();

    // By hand: relax, and t2 is back at its plan's rate.
    let out = tollgate(&site, &["transit", "relax"]);
    println!("{out}");
    assert!(out.contains("no tightening until"), "{out}");
    assert_eq!(steps(&site), 0);
    wait_for(
        "the file's policy back in the kernel",
        Duration::from_secs(10),
        || d.log()[mark..].contains("policy_applied"),
    );
    let t2 = tcp_mbit(&site, 2, 2);
    println!("after relax: t2 {t2:.2} Mbit/s");
    assert!(t2 > 6.0, "t2 back on basic: {t2}");
    assert_eq!(d.stop().code(), Some(0));
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}
