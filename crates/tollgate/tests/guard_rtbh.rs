//! The guard's `rtbh` rung end to end: a SYN flood through a router in
//! namespaces, `tollgate guard watch` in the router, and BIRD 2 as the
//! upstream router that receives the RTBH route over BGP.
//!
//! ```text
//! upstream (attacker + BIRD) ──veth── router (guard watch) ──veth── victim
//! 198.51.100.2                        198.51.100.1 | 203.0.113.1   203.0.113.10
//! ```
//!
//! tollgate connects to BIRD (`passive = false`; BIRD is `passive on`),
//! the flood (hping3, bounded by `timeout`) goes over the threshold, the
//! ladder's first rung is `rtbh`: BIRD must get 203.0.113.10/32 with
//! 65535:666 and our AS, lose it when the ladder comes down, and the time
//! then the next rung's FlowSpec rule (SYN to the victim, discard) in
//! BIRD's flow4 table, both withdrawn when the ladder comes down; the time
//! from detection (guard watch's "ban started") to BIRD's import of the
//! route (BIRD's own log, microsecond timestamps on the same clock) is
//! printed. A second flood, with guard watch restarted in the middle,
//! shows the saved ladder re-announcing its route.
//!
//! Needs root, iproute2, hping3 and BIRD 2; run under
//! `flock -o /work/locks/netns`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{sh, wait_for, Netns, Process};

const VICTIM: &str = "203.0.113.10";

struct Site {
    up: Netns,
    rtr: Netns,
    vic: Netns,
}

fn site(tag: &str) -> Site {
    let s = Site {
        up: Netns::new(&format!("{tag}u")),
        rtr: Netns::new(&format!("{tag}r")),
        vic: Netns::new(&format!("{tag}v")),
    };
    sh(&format!(
        "set -e
ip link add up0 netns {u} type veth peer name rtru netns {r}
ip link add rtrv netns {r} type veth peer name vic0 netns {v}
ip -n {u} addr add 198.51.100.2/24 dev up0; ip -n {u} link set up0 up
ip -n {r} addr add 198.51.100.1/24 dev rtru; ip -n {r} link set rtru up
ip -n {r} addr add 203.0.113.1/24 dev rtrv; ip -n {r} link set rtrv up
ip -n {v} addr add {VICTIM}/24 dev vic0; ip -n {v} link set vic0 up
ip -n {u} route add default via 198.51.100.1
ip -n {v} route add default via 203.0.113.1
ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1",
        u = s.up.0,
        r = s.rtr.0,
        v = s.vic.0,
    ));
    s
}

fn policy() -> String {
    r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "10gbit", up = "10gbit" }

[guard]
networks = ["203.0.113.0/24"]
ewma = "1s"
instant = "300ms"
calm = "2s"

[guard.capture]
interfaces = ["rtru"]

[guard.thresholds]
pps_in = 2000

[[guard.ladder]]
rung = "rtbh"
hold = "3s"

[[guard.ladder]]
rung = "flowspec"
after = "1s"
hold = "3s"

[bgp]
local_as = 65000
router_id = "198.51.100.1"
listen = []

[[bgp.peers]]
address = "198.51.100.2"
remote_as = 65001
passive = false
announce = true
flowspec = true
hold_time = 9
"#
    .to_owned()
}

/// BIRD in the upstream namespace: waits for tollgate, imports
/// everything, logs route changes with microseconds.
struct Bird {
    _process: Process,
    ctl: std::path::PathBuf,
}

impl Bird {
    fn start(ns: &Netns, dir: &Path) -> Bird {
        let conf = dir.join("bird.conf");
        let ctl = dir.join("bird.ctl");
        let log = dir.join("bird.log");
        std::fs::write(
            &conf,
            format!(
                r#"log "{log}" all;
timeformat log "%F %T.%6f";
router id 198.51.100.2;
protocol device {{ }}
flow4 table flowtab4;
protocol bgp tollgate {{
  local 198.51.100.2 as 65001;
  neighbor 198.51.100.1 as 65000;
  passive on;
  hold time 9;
  debug {{ routes }};
  ipv4 {{ import all; export none; }};
  flow4 {{ table flowtab4; import all; export none; }};
}}
"#,
                log = log.display()
            ),
        )
        .unwrap();
        let process = Process::spawn(
            Command::new("ip")
                .args(["netns", "exec", &ns.0, "bird", "-f", "-c"])
                .arg(&conf)
                .arg("-s")
                .arg(&ctl)
                .arg("-P")
                .arg(dir.join("bird.pid"))
                .stdout(Stdio::null()),
        );
        let bird = Bird {
            _process: process,
            ctl,
        };
        wait_for("BIRD's control socket", Duration::from_secs(10), || {
            bird.cli("show status").contains("Daemon is up")
        });
        bird
    }

    fn cli(&self, command: &str) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.ctl)
            .args(command.split_whitespace())
            .output()
            .expect("run birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn flow(&self) -> Option<String> {
        let out = self.cli("show route table flowtab4 all");
        out.contains(&format!("dst {VICTIM}/32")).then_some(out)
    }

    fn route(&self) -> Option<String> {
        let out = self.cli(&format!("show route {VICTIM}/32 all"));
        out.contains(&format!("{VICTIM}/32")).then_some(out)
    }
}

fn watch(rtr: &Netns, dir: &Path, log: &str) -> Process {
    Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &rtr.0, env!("CARGO_BIN_EXE_tollgate")])
            .args(["guard", "watch", "-c"])
            .arg(dir.join("policy.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("TOLLGATE_LOG", "info,bgp_speaker=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(log)).unwrap()),
    )
}

fn flood(up: &Netns, seconds: u32) -> Process {
    Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &up.0])
            .args(["timeout", &seconds.to_string()])
            .args(["hping3", "-S", "-p", "80", "-i", "u100", "-q", VICTIM])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Seconds since midnight of a `…T20:59:01.123456Z` (tollgate) or
/// `… 20:59:01.123456` (BIRD) timestamp at the start of a line.
fn seconds_of(line: &str) -> f64 {
    let t = line
        .split(['T', ' '])
        .nth(1)
        .expect("a time")
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

/// Prints (and bounds loosely) the time from detection to BIRD's import
/// of the victim's route, from both logs (same clock): the detecting
/// tick was read `after_detection_ms` before tollgate's line saying the
/// first rung was in place (the update handed to the session).
fn detection_to_bird(ours: &str, bird_log: &str, who: &str) {
    let placed_line = ours
        .lines()
        .find(|l| l.contains("first rung in place"))
        .unwrap_or_else(|| panic!("no first rung in place in the log:\n{ours}"));
    let after_ms: f64 = placed_line
        .split("after_detection_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no after_detection_ms in {placed_line}"));
    let detected = seconds_of(placed_line) - after_ms / 1000.0;
    let received_line = bird_log
        .lines()
        .find(|l| l.contains(&format!("{VICTIM}/32")) && l.contains("added"))
        .unwrap_or_else(|| panic!("BIRD's log has no import of the route:\n{bird_log}"));
    let received = seconds_of(received_line);
    eprintln!("tollgate: {placed_line}\nBIRD:     {received_line}");
    let ms = (received - detected) * 1000.0;
    eprintln!(
        "RESULT rtbh ({who}) detection → route received by BIRD: {ms:.1} ms (tollgate's line: {after_ms} ms from the detecting tick)"
    );
    assert!(
        (0.0..1000.0).contains(&ms),
        "the route reached BIRD {ms} ms after detection"
    );
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[test]
fn a_flood_is_announced_to_bird_with_blackhole_withdrawn_and_restored_after_a_restart() {
    if !testkit::root("guard_rtbh::a_flood_is_announced_to_bird") {
        return;
    }
    testkit::need("hping3", "hping3");
    testkit::need("bird", "bird2");
    testkit::need("birdc", "bird2");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), policy()).unwrap();
    let s = site("gr");
    let _ = &s.vic;
    let bird = Bird::start(&s.up, dir);
    let mut w = watch(&s.rtr, dir, "watch.log");
    let log = |name: &str| strip_ansi(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    wait_for(
        "tollgate's session with BIRD",
        Duration::from_secs(15),
        || bird.cli("show protocols tollgate").contains("Established"),
    );
    wait_for("the guard to capture", Duration::from_secs(10), || {
        log("watch.log").contains("guard watching")
    });
    assert!(bird.route().is_none(), "a route before any attack");

    // A bounded flood: 10,000 SYN/s for 4 s.
    let started = Instant::now();
    let _f = flood(&s.up, 4);
    let took = wait_for("BIRD to get the RTBH route", Duration::from_secs(4), || {
        bird.route().is_some()
    });
    eprintln!("flood start → route in BIRD: {took:?}");
    let route = bird.route().unwrap();
    assert!(route.contains("(65535,666)"), "{route}");
    assert!(route.contains("BGP.as_path: 65000"), "{route}");
    assert!(route.contains("BGP.next_hop: 198.51.100.1"), "{route}");

    detection_to_bird(&log("watch.log"), &log("bird.log"), "guard watch");

    // The next rung, a second later: a FlowSpec rule for the SYN flood.
    wait_for(
        "BIRD to get the FlowSpec rule",
        Duration::from_secs(3),
        || bird.flow().is_some(),
    );
    let flow = bird.flow().unwrap();
    assert!(flow.contains("proto 6"), "{flow}");
    assert!(flow.contains("tcp flags"), "{flow}");
    eprintln!("{flow}");

    // The flood ends at 4 s; calm 2 s later and the holds (3 s) long past,
    // the route and the rule are withdrawn.
    wait_for("the withdrawal", Duration::from_secs(12), || {
        bird.route().is_none() && bird.flow().is_none()
    });
    let ended = started.elapsed();
    assert!(
        ended >= Duration::from_secs(5),
        "withdrawn during the flood: {ended:?}"
    );
    assert!(log("bird.log").contains("removed"), "{}", log("bird.log"));

    // A second flood; guard watch is stopped while the route is up and
    // started again: the saved ladder re-announces the route.
    let _f2 = flood(&s.up, 10);
    let again = Instant::now();
    while bird.route().is_none() {
        assert!(
            again.elapsed() < Duration::from_secs(6),
            "no route for the second flood; guard watch's log:\n{}",
            log("watch.log")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    w.signal_group(libc::SIGTERM);
    let status = w.wait(Duration::from_secs(5)).expect("guard watch exits");
    assert!(status.success(), "{status:?}\n{}", log("watch.log"));
    wait_for(
        "BIRD to drop the route with the session",
        Duration::from_secs(5),
        || bird.route().is_none(),
    );
    let mut w2 = watch(&s.rtr, dir, "watch2.log");
    let took = wait_for("the restored route", Duration::from_secs(8), || {
        bird.route().is_some()
    });
    eprintln!("guard watch restarted → route back in BIRD: {took:?}");
    assert!(
        log("watch2.log").contains("restoring"),
        "{}",
        log("watch2.log")
    );
    assert!(bird.route().unwrap().contains("(65535,666)"));
    w2.signal_group(libc::SIGTERM);
    assert!(w2.wait(Duration::from_secs(5)).is_some());
}

/// The same rung run by the daemon (`tollgate run` with `[guard]` and
/// `[bgp]`): the flood's route reaches BIRD and is withdrawn when the
/// ladder comes down, and SIGTERM ends the session cleanly.
/// `tollgate run` in the router with the test's policy, state and
/// accounting files, logging at `filter` to `daemon.log` without colour.
fn run_daemon(rtr: &Netns, dir: &Path, filter: &str) -> Process {
    Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--netns", &rtr.0, "-c"])
            .arg(dir.join("policy.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["run", "--interval", "1s", "--reconcile", "1s"])
            .arg("--accounting")
            .arg(dir.join("accounting.toml"))
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_STATE_DIR")
            .env("TOLLGATE_LOG", filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap()),
    )
}

#[test]
fn the_daemon_announces_a_flood_to_bird_and_withdraws_it() {
    if !testkit::root("guard_rtbh::the_daemon_announces_a_flood_to_bird") {
        return;
    }
    testkit::need("hping3", "hping3");
    testkit::need("bird", "bird2");
    testkit::need("birdc", "bird2");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The daemon also shapes: its site is the router's two interfaces.
    let policy = policy()
        .replace("uplink = \"wan0\"", "uplink = \"rtru\"")
        .replace("lan = \"lan0\"", "lan = \"rtrv\"");
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    std::fs::write(dir.join("accounting.toml"), "").unwrap();
    let s = site("gd");
    let _ = &s.vic;
    let bird = Bird::start(&s.up, dir);
    let mut d = run_daemon(&s.rtr, dir, "info,bgp_speaker=debug");
    let log = |name: &str| strip_ansi(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    wait_for(
        "the daemon's session with BIRD",
        Duration::from_secs(15),
        || bird.cli("show protocols tollgate").contains("Established"),
    );
    assert!(bird.route().is_none(), "a route before any attack");
    let _f = flood(&s.up, 4);
    let took = wait_for(
        "BIRD to get the RTBH route",
        Duration::from_secs(15),
        || bird.route().is_some(),
    );
    eprintln!("flood start → route in BIRD (daemon): {took:?}");
    detection_to_bird(&log("daemon.log"), &log("bird.log"), "tollgate run");
    let route = bird.route().unwrap();
    assert!(
        route.contains("(65535,666)"),
        "{route}\n{}",
        log("daemon.log")
    );
    assert!(route.contains("BGP.as_path: 65000"), "{route}");
    wait_for("the withdrawal", Duration::from_secs(15), || {
        bird.route().is_none()
    });
    assert!(log("bird.log").contains("removed"), "{}", log("bird.log"));
    d.signal_group(libc::SIGTERM);
    let status = d.wait(Duration::from_secs(10)).expect("the daemon exits");
    assert!(status.success(), "{status:?}\n{}", log("daemon.log"));
}

/// A reload that changes `[bgp]` takes effect without a restart: the
/// daemon starts with its only peer at an address where nobody is, bans
/// an address by hand up to the rtbh rung (held, announced to no one),
/// and once the policy names BIRD's address and the daemon is told to
/// reload (SIGHUP), BIRD gets the held route with the BLACKHOLE community.
#[test]
fn a_reload_that_changes_the_peers_announces_what_is_held_to_the_new_peer() {
    if !testkit::root("guard_rtbh::a_reload_that_changes_the_peers") {
        return;
    }
    testkit::need("bird", "bird2");
    testkit::need("birdc", "bird2");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let policy = policy()
        .replace("uplink = \"wan0\"", "uplink = \"rtru\"")
        .replace("lan = \"lan0\"", "lan = \"rtrv\"");
    let nobody = policy.replace("address = \"198.51.100.2\"", "address = \"198.51.100.3\"");
    std::fs::write(dir.join("policy.toml"), &nobody).unwrap();
    std::fs::write(dir.join("accounting.toml"), "").unwrap();
    let s = site("gdr");
    let _ = &s.vic;
    let bird = Bird::start(&s.up, dir);
    let tollgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--netns", &s.rtr.0, "-c"])
            .arg(dir.join("policy.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(args)
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_STATE_DIR")
            .output()
            .unwrap()
    };
    let d = run_daemon(&s.rtr, dir, "info");
    let log = || strip_ansi(&std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default());
    wait_for("the daemon's speaker", Duration::from_secs(15), || {
        log().contains("BGP speaker started")
    });
    let banned = tollgate(&["guard", "ban", VICTIM, "--rung", "rtbh", "--permanent"]);
    assert!(
        banned.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&banned.stderr),
        log()
    );
    wait_for("the route held", Duration::from_secs(10), || {
        log().contains("rtbh route announced")
    });
    assert!(bird.route().is_none(), "BIRD is not a peer yet");
    std::fs::write(dir.join("policy.toml"), &policy).unwrap();
    d.signal_group(libc::SIGHUP);
    let took = wait_for(
        "BIRD to get the held route after the reload",
        Duration::from_secs(15),
        || bird.route().is_some(),
    );
    eprintln!("reload → held route in BIRD: {took:?}");
    let route = bird.route().unwrap();
    assert!(route.contains("(65535,666)"), "{route}\n{}", log());
    let l = log();
    assert!(l.contains("bgp_reconfigured"), "{l}");
    assert!(l.contains("started again with the new [bgp]"), "{l}");
}
