//! The guard's `throttle` and `drop` rungs inside `tollgate run` (issue
//! 15), end to end in network namespaces: floods from an "internet"
//! namespace through the router to two tenants on its LAN.
//!
//! ```text
//! net ──veth── router ──veth── lan
//! 198.51.100.2  wan0 198.51.100.1 | lan0 203.0.113.1   203.0.113.10 (victim, tenant 1)
//!                                                       203.0.113.20 (neighbour, tenant 2)
//! ```
//!
//! The daemon in the router shapes both tenants (50 Mbit each) and
//! guards them (capture on `wan0`, 2,000 pps towards an address, the
//! instantaneous trigger at 300 ms). Each hping3 flood is bounded by
//! `timeout`, and namespaces and processes are removed even when a test
//! fails (`Netns` and `Process` on drop).
//!
//! - throttle: the victim's address lands in the prepared set and its
//!   download is held to the rung's 2 Mbit (iperf3, and the throttle
//!   class's own byte counter) while the neighbour keeps its 50 Mbit; the
//!   daemon killed with SIGKILL comes back with the element (removed by
//!   hand meanwhile) and without a stray one added by hand; `guard
//!   unban` empties the set, `guard ban --rung throttle` fills it by
//!   hand; an operator's own nftables table is untouched throughout, and
//!   by `tollgate down`, which removes tollgate's table with the sets.
//! - drop: the victim's address in the drop set while the rung holds
//!   (pings to it are lost, the neighbour's answered) and gone once the
//!   flood has been calm and the hold is over; then an amplification
//!   (UDP from source port 53) lands in the signature set as address .
//!   udp . 53, and leaves it the same way; an ICMPv6 echo flood puts
//!   the IPv6 victim in the IPv6 drop set, and out again.
//!
//! Needs root, iproute2, nftables, hping3 and iperf3.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{sh, wait_for, Netns, Process};

mod guard_site;
use guard_site::{daemon, Site};

const VICTIM: &str = "203.0.113.10";
const NEIGHBOUR: &str = "203.0.113.20";
const VICTIM6: &str = "2001:db8:10::10";

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The guard's usual three namespaces (`guard_site`), with a neighbour
/// beside the victim and IPv6 on every link.
fn site(tag: &str) -> Site {
    let s = Site::build(tag, "wan0", "lan0", &[VICTIM, NEIGHBOUR]);
    sh(&format!(
        "set -e
ip -n {n} addr add 2001:db8:1::2/64 dev atk0 nodad
ip -n {r} addr add 2001:db8:1::1/64 dev wan0 nodad
ip -n {r} addr add 2001:db8:10::1/64 dev lan0 nodad
ip -n {l} addr add {VICTIM6}/64 dev vic0 nodad; ip -n {l} addr add 2001:db8:10::20/64 dev vic0 nodad
ip -n {n} -6 route add default via 2001:db8:1::1
ip -n {l} -6 route add default via 2001:db8:10::1
ip netns exec {r} sysctl -qw net.ipv6.conf.all.forwarding=1",
        n = s.atk.0,
        r = s.rtr.0,
        l = s.vic.0,
    ));
    s
}

fn policy(ladder: &str) -> String {
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}

[plans.home]
down = {{ rate = "50mbit", ceil = "50mbit" }}
up = {{ rate = "50mbit", ceil = "50mbit" }}

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["{VICTIM}/32", "{VICTIM6}/128"]

[[tenants]]
id = 2
name = "neighbour"
plan = "home"
prefixes = ["{NEIGHBOUR}/32", "2001:db8:10::20/128"]

[guard]
networks = ["203.0.113.0/24", "2001:db8:10::/48"]
ewma = "1s"
instant = "300ms"
calm = "1s"

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 2000
{ladder}"#
    )
}

/// The elements of one of tollgate's sets, as `nft` lists them (empty
/// when the set is empty or absent).
fn set(rtr: &Netns, name: &str) -> String {
    let o = Command::new("ip")
        .args([
            "netns", "exec", &rtr.0, "nft", "list", "set", "netdev", "tollgate", name,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    match text.find("elements = {") {
        Some(i) => text[i + 12..]
            .split('}')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        None => String::new(),
    }
}

fn set_exists(rtr: &Netns, name: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", &rtr.0, "nft", "list", "set", "netdev", "tollgate", name,
        ])
        .output()
        .unwrap()
        .status
        .success()
}

/// A SYN flood at 10,000 packets/s towards `to`, for `secs` seconds.
fn syn_flood(net: &Netns, to: &str, secs: u32) -> Process {
    Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &net.0])
            .args([
                "timeout",
                &secs.to_string(),
                "hping3",
                "-S",
                "-p",
                "80",
                "-i",
                "u100",
                "-q",
                to,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// iperf3 from the internet side to `to` (download for the tenant) for
/// 2 s: the receiver's rate in Mbit/s.
fn download_mbit(net: &Netns, to: &str, port: u16) -> f64 {
    let out = net.sh(&format!("timeout 15 iperf3 -c {to} -p {port} -t 2 -J"));
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate in {v}"))
        / 1e6
}

fn class_bytes(rtr: &Netns, dev: &str, class: &str) -> u64 {
    let out = rtr.sh(&format!("tc -s class show dev {dev} classid {class}"));
    out.split_whitespace()
        .skip_while(|w| *w != "Sent")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {out}"))
}

fn tollgate(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env_remove("TOLLGATE_STATE_DIR")
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .expect("run tollgate")
}

const THROTTLE: &str = "guard_thr_2000000_in4";

#[test]
fn a_throttled_victim_is_held_to_the_rungs_rate_while_its_neighbour_keeps_its_own() {
    if !testkit::root("guard_throttle::a_throttled_victim") {
        return;
    }
    // One at a time: a flood beside the other test's iperf3 on two cores
    // delayed the guard's calm past the test's waits.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    testkit::need("hping3", "hping3");
    testkit::need("iperf3", "iperf3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("policy.toml"),
        policy(
            r#"
[[guard.ladder]]
rung = "throttle"
hold = "60s"
rate = "2mbit"
"#,
        ),
    )
    .unwrap();
    let s = site("thrt");
    // An operator's own table, which tollgate must never touch.
    s.rtr.sh("nft add table inet operator && nft add chain inet operator c '{ type filter hook forward priority 0; }' && nft add rule inet operator c counter");
    let servers = [VICTIM, NEIGHBOUR].map(|a| {
        let port = if a == VICTIM { 5201 } else { 5202 };
        Process::spawn(
            Command::new("ip")
                .args(["netns", "exec", &s.vic.0])
                .args(["iperf3", "-s", "-B", a, "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    });
    let mut d = daemon(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("the prepared throttle set", Duration::from_secs(20), || {
        set_exists(&s.rtr, THROTTLE)
    });
    wait_for("the guard to capture", Duration::from_secs(10), || {
        log().contains("guard capturing")
    });
    assert!(set(&s.rtr, THROTTLE).is_empty());

    let start = Instant::now();
    let mut flood = syn_flood(&s.atk, VICTIM, 3);
    let took = wait_for(
        "the victim in the throttle set",
        Duration::from_secs(5),
        || set(&s.rtr, THROTTLE) == VICTIM,
    );
    eprintln!("FIGURE guard_throttle: victim in the throttle set {took:?} after the flood started");
    flood.wait(Duration::from_secs(10)).expect("the flood ends");
    assert!(start.elapsed() >= Duration::from_secs(3));

    // The rung holds (60 s): the victim's download is held to 2 Mbit, the
    // neighbour's is its own 50 Mbit.
    let before = class_bytes(&s.rtr, "tg-down", "1:fffe");
    let victim = download_mbit(&s.atk, VICTIM, 5201);
    let throttled = class_bytes(&s.rtr, "tg-down", "1:fffe") - before;
    let neighbour = download_mbit(&s.atk, NEIGHBOUR, 5202);
    eprintln!(
        "FIGURE guard_throttle: victim {victim:.2} Mbit/s (rung 2 Mbit, {throttled} bytes through 1:fffe), neighbour {neighbour:.2} Mbit/s (plan 50 Mbit)"
    );
    assert!(victim < 2.2, "victim at {victim} Mbit/s\n{}", log());
    assert!(victim > 0.5, "victim at {victim} Mbit/s");
    assert!(throttled > 300_000, "{throttled} bytes through the class");
    assert!(
        neighbour > 35.0 && neighbour < 52.0,
        "neighbour at {neighbour} Mbit/s"
    );

    // SIGKILL during the rung; the element is removed by hand meanwhile;
    // the new daemon puts it back.
    d.signal_group(libc::SIGKILL);
    d.wait(Duration::from_secs(5)).expect("killed");
    assert_eq!(set(&s.rtr, THROTTLE), VICTIM);
    s.rtr.sh(&format!(
        "nft delete element netdev tollgate {THROTTLE} {{ {VICTIM} }}"
    ));
    // And an element no rung holds (as a lost state file would leave).
    s.rtr.sh(&format!(
        "nft add element netdev tollgate {THROTTLE} {{ 203.0.113.99 }}"
    ));
    assert_eq!(set(&s.rtr, THROTTLE), "203.0.113.99");
    let mut d = daemon(&s.rtr, dir);
    let back = wait_for("the restored element", Duration::from_secs(20), || {
        set(&s.rtr, THROTTLE).contains(VICTIM)
    });
    eprintln!("FIGURE guard_throttle: element back {back:?} after the restart");
    // ... and only it: the stray element goes when the sets are brought
    // in line with the restored ladder.
    wait_for("the stray element gone", Duration::from_secs(5), || {
        set(&s.rtr, THROTTLE) == VICTIM
    });
    assert!(log().contains("restoring"), "{}", log());

    // Unban ends it at once.
    let o = tollgate(dir, &["guard", "unban", VICTIM]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        set(&s.rtr, THROTTLE).is_empty(),
        "{}",
        set(&s.rtr, THROTTLE)
    );
    assert!(set_exists(&s.rtr, THROTTLE));
    // A throttle by hand, and its end.
    let o = tollgate(
        dir,
        &[
            "guard", "ban", NEIGHBOUR, "--rung", "throttle", "--for", "1m",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(set(&s.rtr, THROTTLE), NEIGHBOUR);
    let o = tollgate(dir, &["guard", "unban", NEIGHBOUR]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(set(&s.rtr, THROTTLE).is_empty());

    d.signal_group(libc::SIGTERM);
    let st = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    assert!(st.success(), "{st:?}\n{}", log());
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &s.rtr.0, "down"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!set_exists(&s.rtr, THROTTLE));
    let tables = s.rtr.sh("nft list tables");
    assert!(tables.contains("table inet operator"), "{tables}");
    assert!(!tables.contains("tollgate"), "{tables}");
    drop(servers);
}

#[test]
fn the_drop_rungs_sets_hold_the_victim_or_the_signature_while_the_rung_holds() {
    if !testkit::root("guard_throttle::the_drop_rungs_sets") {
        return;
    }
    // One at a time: a flood beside the other test's iperf3 on two cores
    // delayed the guard's calm past the test's waits.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    testkit::need("hping3", "hping3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The victim drop for SYN floods, the signature drop for the group
    // of the amplification's target.
    std::fs::write(
        dir.join("policy.toml"),
        policy(
            r#"
[[guard.ladder]]
rung = "drop"
hold = "3s"

[[guard.group]]
name = "dns"
prefixes = ["203.0.113.20/32"]
inherit = "global"

[[guard.group.ladder]]
rung = "drop"
hold = "3s"
match = "signature"
"#,
        ),
    )
    .unwrap();
    let s = site("thrd");
    let mut d = daemon(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("the prepared drop sets", Duration::from_secs(20), || {
        set_exists(&s.rtr, "guard_drop_in4") && set_exists(&s.rtr, "guard_sig_in4")
    });
    wait_for("the guard to capture", Duration::from_secs(10), || {
        log().contains("guard capturing")
    });

    let mut flood = syn_flood(&s.atk, VICTIM, 2);
    let took = wait_for("the victim in the drop set", Duration::from_secs(5), || {
        set(&s.rtr, "guard_drop_in4") == VICTIM
    });
    eprintln!("FIGURE guard_drop: victim in the drop set {took:?} after the flood started");
    // While it holds, the victim is unreachable and the neighbour is not.
    let ping = |to: &str| {
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0, "ping", "-c", "1", "-W", "1", to])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!ping(VICTIM));
    assert!(ping(NEIGHBOUR));
    flood.wait(Duration::from_secs(10)).expect("the flood ends");
    // Calm 1 s after the flood, the hold (3 s) over: the set is empty.
    let gone = wait_for("the drop set emptied", Duration::from_secs(10), || {
        set(&s.rtr, "guard_drop_in4").is_empty()
    });
    eprintln!("FIGURE guard_drop: set emptied {gone:?} after the flood ended");
    assert!(ping(VICTIM));
    assert!(log().contains("removed from the guard's set"), "{}", log());

    // An amplification: UDP from source port 53, 10,000/s for 2 s.
    let mut amp = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args([
                "timeout", "2", "hping3", "--udp", "-s", "53", "-k", "-p", "4444", "-d", "100",
                "-i", "u100", "-q", NEIGHBOUR,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let want = format!("{NEIGHBOUR} . udp . 53");
    wait_for("the signature in its set", Duration::from_secs(5), || {
        set(&s.rtr, "guard_sig_in4") == want
    });
    // Its address is in the set looked up first.
    assert_eq!(set(&s.rtr, "guard_sigaddr_in4"), NEIGHBOUR);
    // Only the signature is dropped: the neighbour still answers pings.
    assert!(ping(NEIGHBOUR));
    amp.wait(Duration::from_secs(10)).expect("the flood ends");
    wait_for("the signature set emptied", Duration::from_secs(10), || {
        set(&s.rtr, "guard_sig_in4").is_empty()
    });
    assert!(set(&s.rtr, "guard_sigaddr_in4").is_empty());
    assert!(set(&s.rtr, "guard_drop_in4").is_empty());

    // IPv6: an ICMPv6 echo flood (hping3 has no IPv6): as fast as the
    // replies come until the drop, then 100/s, for 2 s.
    wait_for("the IPv6 path", Duration::from_secs(10), || ping(VICTIM6));
    let mut flood6 = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args(["timeout", "3", "ping", "-6", "-f", "-q", "-w", "2", VICTIM6])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let took = wait_for(
        "the IPv6 victim in its drop set",
        Duration::from_secs(5),
        || set(&s.rtr, "guard_drop_in6") == VICTIM6,
    );
    eprintln!("FIGURE guard_drop: IPv6 victim in the drop set {took:?} after the flood started");
    flood6
        .wait(Duration::from_secs(10))
        .expect("the flood ends");
    wait_for("the IPv6 drop set emptied", Duration::from_secs(10), || {
        set(&s.rtr, "guard_drop_in6").is_empty()
    });

    d.signal_group(libc::SIGTERM);
    let st = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    assert!(st.success(), "{st:?}\n{}", log());
}
