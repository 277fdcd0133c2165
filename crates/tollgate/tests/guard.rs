//! `tollgate guard watch` end to end in network namespaces: a SYN flood
//! from an attacker through a router to a victim, the guard in the router.
//!
//! ```text
//! attacker ──veth── router ──veth── victim
//! 198.51.100.2      198.51.100.1 | 203.0.113.1      203.0.113.10
//! ```
//!
//! The guard captures on the router's attacker-side interface (`rtra`):
//! there it keeps seeing the flood after the blackhole route drops it, so
//! the ladder stays up while the attack lasts. (On the victim side, the
//! route would hide the flood and the ladder would come down after its
//! hold, then go up again.)
//!
//! The policy: 2,000 pps towards an address, the instantaneous trigger
//! at 300 ms, calm after 2 s; a notify rung (a script that appends its
//! arguments and stdin to a file) and a blackhole rung held 3 s. An
//! operator's own blackhole route is in the router's table from the start
//! and must be there, untouched, at the end. The first flood comes from
//! two sources, which the attack's report and record must name.
//!
//! Needs root, iproute2 and hping3 (Debian `hping3`). The namespaces are
//! deleted and every process killed even if the test fails (`Netns` and
//! `Process` do it on drop); the flood is bounded by `timeout`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{sh, wait_for, Netns, Process};

mod guard_site;
use guard_site::{notify_script, Site};

const VICTIM: &str = "203.0.113.10";
/// The operator's own blackhole route, which tollgate must never touch.
const OPERATORS: &str = "203.0.113.99";
/// The second flooding source (spoofed by hping3 -a).
const SECOND_SOURCE: &str = "198.51.100.3";

fn site(tag: &str) -> Site {
    let s = Site::build(tag, "rtra", "rtrv", &[VICTIM]);
    sh(&format!(
        "ip -n {} route add blackhole {OPERATORS}/32",
        s.rtr.0
    ));
    s
}

fn policy(dir: &Path) -> String {
    let script = notify_script(dir, true);
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "10gbit", up = "10gbit" }}

[guard]
networks = ["203.0.113.0/24"]
ewma = "1s"
instant = "300ms"
calm = "2s"

[guard.capture]
interfaces = ["rtra"]

[guard.thresholds]
pps_in = 2000

[[guard.ladder]]
rung = "notify"
hold = "3s"
script = "{}"

[[guard.ladder]]
rung = "blackhole"
hold = "3s"
"#,
        script.display()
    )
}

/// The router's blackhole routes, one per line, as `ip` prints them.
fn blackholes(rtr: &Netns) -> Vec<String> {
    sh(&format!("ip -n {} route show type blackhole", rtr.0))
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

fn watch(rtr: &Netns, dir: &Path) -> Process {
    Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &rtr.0, env!("CARGO_BIN_EXE_tollgate")])
            .args(["guard", "watch", "-c"])
            .arg(dir.join("policy.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("TOLLGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("watch.log")).unwrap()),
    )
}

fn notified(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default()
}

#[test]
fn a_syn_flood_is_notified_and_blackholed_and_both_end_when_it_stops() {
    if !testkit::root("guard::a_syn_flood_is_notified_and_blackholed") {
        return;
    }
    testkit::need("hping3", "hping3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), policy(dir)).unwrap();
    let s = site("gd");
    let _ = &s.vic;
    let mut w = watch(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("watch.log")).unwrap_or_default();
    wait_for(
        "the guard to start capturing",
        Duration::from_secs(10),
        || log().contains("guard watching"),
    );
    assert!(w.running(), "{}", log());

    // A bounded flood from two known sources: 5,000 SYN/s each for 4 s,
    // one from the attacker's address, one from a second source
    // (hping3 -a) that the report must name too.
    let flood_start = Instant::now();
    let floods: Vec<Process> = [None, Some(SECOND_SOURCE)]
        .into_iter()
        .map(|from| {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &s.atk.0]);
            c.args([
                "timeout", "4", "hping3", "-S", "-p", "80", "-i", "u200", "-q",
            ]);
            if let Some(a) = from {
                c.args(["-a", a]);
            }
            Process::spawn(c.arg(VICTIM).stdout(Stdio::null()).stderr(Stdio::null()))
        })
        .collect();
    let ours = format!("blackhole {VICTIM} proto 213");
    // The script writes its arguments, then copies the report from its
    // stdin: wait for the whole report, not only the first line.
    let took = wait_for("the ban", Duration::from_secs(4), || {
        let n = notified(dir);
        n.contains(&format!("ARGS {VICTIM} incoming"))
            && n.lines()
                .nth(1)
                .is_some_and(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            && blackholes(&s.rtr).contains(&ours)
    });
    eprintln!("notified and blackholed {took:?} after the flood started");
    let n = notified(dir);
    let line = n.lines().find(|l| l.starts_with("ARGS ")).unwrap();
    let args: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(args[1..3], [VICTIM, "incoming"], "{n}");
    let pps: u64 = args[3].parse().unwrap();
    assert!(
        pps > 2000,
        "the PPS argument {pps} is not over the threshold: {n}"
    );
    assert_eq!(args[4], "ban", "{n}");
    let report: serde_json::Value =
        serde_json::from_str(n.lines().nth(1).expect("the report on stdin")).unwrap();
    assert_eq!(report["attack"]["kind"]["kind"], "syn_flood", "{report}");
    assert_eq!(report["ip"], VICTIM);
    let named = |r: &serde_json::Value| -> Vec<String> {
        r["top_sources"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|s| s["addr"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        named(&report["attack"])
            .iter()
            .any(|a| a.starts_with("198.51.100.")),
        "the ban's report names no flooding source: {report}"
    );
    assert!(
        blackholes(&s.rtr).contains(&format!("blackhole {OPERATORS}")),
        "the operator's route is gone: {:?}",
        blackholes(&s.rtr)
    );

    // The flood stops at 4 s; calm 2 s later, the holds (3 s) long passed.
    wait_for("the unban", Duration::from_secs(12), || {
        notified(dir).contains(&format!("ARGS {VICTIM} incoming"))
            && notified(dir).contains(" unban")
    });
    let ended = flood_start.elapsed();
    eprintln!("unbanned {ended:?} after the flood started");
    assert!(
        ended >= Duration::from_secs(5),
        "unbanned before the flood and the calm were over: {ended:?}"
    );
    let routes = blackholes(&s.rtr);
    assert!(!routes.iter().any(|r| r.contains(VICTIM)), "{routes:?}");
    assert!(
        routes.contains(&format!("blackhole {OPERATORS}")),
        "the operator's route is gone: {routes:?}"
    );
    let unban = notified(dir);
    let line = unban
        .lines()
        .find(|l| l.starts_with("ARGS ") && l.ends_with(" unban"))
        .unwrap();
    assert!(
        line.starts_with(&format!("ARGS {VICTIM} incoming ")),
        "{unban}"
    );

    // SIGTERM: exit 0, the state saved (no incident left), the operator's
    // route still there.
    w.signal_group(libc::SIGTERM);
    let status = w.wait(Duration::from_secs(5)).expect("guard watch exits");
    assert!(status.success(), "{status:?}\n{}", log());
    let state = std::fs::read_to_string(dir.join("state/guard-state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["incidents"], serde_json::json!([]), "{state}");
    assert!(blackholes(&s.rtr).contains(&format!("blackhole {OPERATORS}")));
    let l = log();
    assert!(l.contains("ban started") && l.contains("ban ended"), "{l}");
    drop(floods);

    // The attack's record names both flooding sources, with their
    // packets and bytes (40-byte SYNs), and the attacked port.
    let history = std::fs::read_to_string(dir.join("state/guard-history.jsonl")).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(history.lines().last().expect("a record")).unwrap();
    let report = &record["report"];
    let mut sources = named(report);
    sources.truncate(2);
    sources.sort();
    assert_eq!(sources, ["198.51.100.2", SECOND_SOURCE], "{record}");
    for s in report["top_sources"].as_array().unwrap().iter().take(2) {
        let (p, b) = (s["packets"].as_u64().unwrap(), s["bytes"].as_u64().unwrap());
        assert!(p > 1000 && b == 40 * p, "{s}");
    }
    assert_eq!(report["top_dst_ports"][0][0], 80, "{record}");
    assert!(report["peak_pps"].as_u64().unwrap() > 2000, "{record}");
    let shown = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["guard", "history", "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("TOP SOURCES") && text.contains("198.51.100."),
        "{text}"
    );
}

#[test]
fn a_restart_during_a_ban_puts_the_route_back() {
    if !testkit::root("guard::a_restart_during_a_ban_puts_the_route_back") {
        return;
    }
    testkit::need("hping3", "hping3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), policy(dir)).unwrap();
    let s = site("gs");
    let mut w = watch(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("watch.log")).unwrap_or_default();
    wait_for(
        "the guard to start capturing",
        Duration::from_secs(10),
        || log().contains("guard watching"),
    );
    let _flood = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args([
                "timeout", "5", "hping3", "-S", "-p", "80", "-i", "u100", "-q", VICTIM,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let ours = format!("blackhole {VICTIM} proto 213");
    wait_for("the blackhole route", Duration::from_secs(4), || {
        blackholes(&s.rtr).contains(&ours)
    });
    // Stop the guard during the ban; the route stays, the state has it.
    w.signal_group(libc::SIGTERM);
    assert!(w.wait(Duration::from_secs(5)).expect("exits").success());
    let state = std::fs::read_to_string(dir.join("state/guard-state.json")).unwrap();
    assert!(state.contains(VICTIM), "{state}");
    assert!(blackholes(&s.rtr).contains(&ours));
    // Someone removes it meanwhile; a new guard restores it at start.
    sh(&format!(
        "ip -n {} route del blackhole {VICTIM}/32 proto 213",
        s.rtr.0
    ));
    let w2 = watch(&s.rtr, dir);
    wait_for("the restored route", Duration::from_secs(5), || {
        blackholes(&s.rtr).contains(&ours)
    });
    assert!(blackholes(&s.rtr).contains(&format!("blackhole {OPERATORS}")));
    drop(w2);
    // `tollgate down` removes tollgate's routes and only them.
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &s.rtr.0, "down"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let routes = blackholes(&s.rtr);
    assert!(!routes.iter().any(|r| r.contains(VICTIM)), "{routes:?}");
    assert!(
        routes.contains(&format!("blackhole {OPERATORS}")),
        "{routes:?}"
    );
}

/// The same ladder over IPv6: an ICMPv6 echo flood (`ping -6 -f`, hping3
/// has no IPv6) towards an address of 2001:db8:10::/48 through the router
/// is notified with the IPv6 address, blackholed as a /128 route marked
/// with tollgate's protocol, and both end after the flood.
#[test]
fn an_ipv6_flood_is_notified_and_blackholed_as_a_128() {
    if !testkit::root("guard::an_ipv6_flood_is_notified_and_blackholed_as_a_128") {
        return;
    }
    testkit::need("ping", "iputils-ping");
    const VICTIM6: &str = "2001:db8:10::10";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let policy = policy(dir).replace(
        "networks = [\"203.0.113.0/24\"]",
        "networks = [\"2001:db8:10::/48\"]",
    );
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let s = Site {
        atk: Netns::new("tggd6a"),
        rtr: Netns::new("tggd6r"),
        vic: Netns::new("tggd6v"),
    };
    sh(&format!(
        "set -e
ip link add atk0 netns {a} type veth peer name rtra netns {r}
ip link add rtrv netns {r} type veth peer name vic0 netns {v}
ip -n {a} addr add 2001:db8:1::2/64 dev atk0 nodad; ip -n {a} link set atk0 up
ip -n {r} addr add 2001:db8:1::1/64 dev rtra nodad; ip -n {r} link set rtra up
ip -n {r} addr add 2001:db8:10::1/64 dev rtrv nodad; ip -n {r} link set rtrv up
ip -n {v} addr add {VICTIM6}/64 dev vic0 nodad; ip -n {v} link set vic0 up
ip -n {a} -6 route add default via 2001:db8:1::1
ip -n {v} -6 route add default via 2001:db8:10::1
ip netns exec {r} sysctl -qw net.ipv6.conf.all.forwarding=1",
        a = s.atk.0,
        r = s.rtr.0,
        v = s.vic.0,
    ));
    let blackholes6 = || {
        sh(&format!("ip -n {} -6 route show type blackhole", s.rtr.0))
            .lines()
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    let mut w = watch(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("watch.log")).unwrap_or_default();
    wait_for("the guard to capture", Duration::from_secs(10), || {
        log().contains("guard watching")
    });
    // The path works before the flood (the link-local addresses that
    // neighbour discovery uses pass their own duplicate detection first).
    wait_for("the IPv6 path", Duration::from_secs(10), || {
        Command::new("ip")
            .args([
                "netns", "exec", &s.atk.0, "ping", "-6", "-c", "1", "-W", "1", VICTIM6,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    });
    // A bounded flood: as fast as the replies come (about 100k/s here)
    // until the route drops it, then 100/s, for 4 s.
    let _flood = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args(["timeout", "5", "ping", "-6", "-f", "-q", "-w", "4", VICTIM6])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let took = wait_for("the IPv6 blackhole route", Duration::from_secs(5), || {
        blackholes6()
            .iter()
            .any(|l| l.starts_with(&format!("blackhole {VICTIM6} ")) && l.contains("proto 213"))
    });
    eprintln!("FIGURE guard ipv6: blackhole route {took:?} after the flood started");
    // The script writes its arguments, then its stdin's report.
    wait_for("the notify script's report", Duration::from_secs(5), || {
        notified(dir).contains("icmp_flood")
    });
    let n = notified(dir);
    assert!(n.contains(&format!("ARGS {VICTIM6} incoming")), "{n}");
    // The flood ends by 5 s; calm 2 s later, holds 3 s: both come down.
    wait_for("the route to go", Duration::from_secs(15), || {
        !blackholes6().iter().any(|l| l.contains(VICTIM6))
    });
    wait_for("the unban", Duration::from_secs(5), || {
        notified(dir).contains(" unban")
    });
    w.signal_group(libc::SIGTERM);
    let status = w.wait(Duration::from_secs(5)).expect("guard watch exits");
    assert!(status.success(), "{status:?}\n{}", log());
}
