//! The XDP drop list (issues 15 and 17) with the eBPF classifier, end to
//! end in network namespaces (`guard_site`'s three):
//!
//! ```text
//! attacker ──veth── router ──veth── victims
//! 198.51.100.2  wan0 198.51.100.1 | lan0 203.0.113.1   203.0.113.10 (victim, tenant 1)
//!                                                       203.0.113.20 (neighbour, tenant 2)
//!                                                       203.0.113.200 (no tenant)
//! ```
//!
//! - a `drop` rung in `tollgate run`: a SYN flood puts the victim in the
//!   XDP list (`tg_xdrop4`) and the neighbour still answers; the entry goes
//!   when the rung ends; a ban by hand drops exactly the packets hping3
//!   sends (`-c`), counted by the program's own counter; a daemon killed
//!   with SIGKILL comes back with the entry (removed by hand meanwhile)
//!   and without a stray one added by hand; an unban removes the entry;
//!   an amplification (UDP from port 53) at a group with `match =
//!   "signature"` puts `17 . 53` for its address in the list, pings to it
//!   still answer, and the entry goes with the rung; a ban of the
//!   victim's outgoing traffic drops exactly what it sends on the LAN
//!   (`tg_xdp_out`) while the neighbour's upload leaves;
//! - a `throttle` rung (by hand, `guard ban --rung throttle`) in the
//!   classifier's victims map: the victim's download goes through the
//!   prepared throttle class (its byte counter) and is held to the rung's
//!   2 Mbit while the neighbour keeps its 50 Mbit; the unban gives the
//!   victim its plan back;
//! - `unused = "drop"` through `tollgate apply`: the unused address is
//!   dropped in XDP, the tenants' answer; the loaded program, run on
//!   crafted frames (`bpftool prog run`), drops a whole packet to it (also
//!   behind a VLAN tag) and passes every frame cut short or malformed, and
//!   a signature entry drops UDP from its source port and not another
//!   port or protocol; an
//!   operator's own XDP program on
//!   the uplink is left alone (the apply names it and its id, the LAN still
//!   gets tollgate's), and is still there after `tollgate down`, which
//!   takes only tollgate's.
//!
//! The list is read with `bpftool` from the program attached to the
//! router's interfaces (its maps by id: other namespaces' lists have the
//! same names). Needs root, iproute2, bpftool, clang, hping3. Namespaces
//! and processes are removed even when a test fails (`Netns`, `Process`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{sh, wait_for, Netns, Process};

mod guard_site;
use guard_site::{daemon, Site};

const VICTIM: &str = "203.0.113.10";
const NEIGHBOUR: &str = "203.0.113.20";
const UNUSED: &str = "203.0.113.200";

const DROP: &str = "[[guard.ladder]]\nrung = \"drop\"\nhold = \"3s\"\n";

fn policy(guard: &str) -> String {
    policy_with(guard, DROP)
}

fn policy_with(guard: &str, ladder: &str) -> String {
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}
classifier = "ebpf"

[plans.home]
down = {{ rate = "50mbit", ceil = "50mbit" }}
up = {{ rate = "50mbit", ceil = "50mbit" }}

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["{VICTIM}/32"]

[[tenants]]
id = 2
name = "neighbour"
plan = "home"
prefixes = ["{NEIGHBOUR}/32"]

[guard]
networks = ["203.0.113.0/24"]
ewma = "1s"
instant = "300ms"
calm = "1s"
{guard}
[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 2000

{ladder}"#
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The XDP program on `dev` in `ns`: (id, name).
fn xdp_program(ns: &Netns, dev: &str) -> Option<(u64, String)> {
    let v = json(&sh(&format!("ip -n {} -j link show {dev}", ns.0)));
    let p = &v[0]["xdp"]["prog"];
    Some((p["id"].as_u64()?, p["name"].as_str()?.to_owned()))
}

/// The map named `name` of the program on `dev`.
fn map_id(ns: &Netns, dev: &str, name: &str) -> u64 {
    let (id, _) = xdp_program(ns, dev).expect("an XDP program");
    let prog = json(&sh(&format!("bpftool prog show id {id} -j")));
    prog["map_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .find(|m| json(&sh(&format!("bpftool map show id {m} -j")))["name"] == name)
        .unwrap_or_else(|| panic!("no map {name}"))
}

/// The IPv4 list's entries as `way proto sport addr/len = why`.
fn entries(ns: &Netns) -> Vec<String> {
    let id = map_id(ns, "wan0", "tg_xdrop4");
    let v = json(&sh(&format!("bpftool map dump id {id} -j")));
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let k = &e["formatted"]["key"];
            let k = if k.is_null() { &e["key"] } else { k };
            let a: Vec<String> = k["addr"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.to_string())
                .collect();
            let value = if e["formatted"].is_null() {
                &e["value"]
            } else {
                &e["formatted"]["value"]
            };
            format!(
                "{} {} {} {}/{} = {}",
                k["way"],
                k["proto"],
                // In network order in the key; bpftool reads it as a
                // host-order integer.
                u16::from_be(k["sport"].as_u64().unwrap() as u16),
                a.join("."),
                k["prefixlen"].as_u64().unwrap() - 32,
                value
            )
        })
        .collect()
}

/// The packets the program dropped for `why` (1: a rung, 2: unused),
/// summed over CPUs.
fn dropped(ns: &Netns, why: u64) -> u64 {
    dropped_at(ns, "wan0", why)
}

/// The same, from the program on `dev`.
fn dropped_at(ns: &Netns, dev: &str, why: u64) -> u64 {
    let id = map_id(ns, dev, "tg_xstats");
    let v = json(&sh(&format!("bpftool map dump id {id} -j")));
    let e = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            if e["formatted"].is_null() {
                e
            } else {
                &e["formatted"]
            }
        })
        .find(|e| e["key"].as_u64() == Some(why))
        .unwrap_or_else(|| panic!("no counter {why} in {v}"));
    e["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"]["packets"].as_u64().unwrap())
        .sum()
}

fn ping(ns: &Netns, to: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &ns.0, "ping", "-c", "1", "-W", "1", to])
        .output()
        .unwrap()
        .status
        .success()
}

fn tollgate(ns: &Netns, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &ns.0, "--state-dir"])
        .arg(dir.join("state"))
        .args(args)
        .env_remove("TOLLGATE_STATE_DIR")
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .expect("run tollgate")
}

fn ok(ns: &Netns, dir: &Path, args: &[&str]) -> String {
    let o = tollgate(ns, dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "tollgate {args:?}: {text}");
    text
}

const VICTIM_ENTRY: &str = "0 0 0 203.0.113.10/32 = 1";

/// The flood and the measured throttle, one at a time (two cores).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_drop_rung_on_the_ebpf_classifier_drops_the_flood_in_xdp() {
    if !testkit::root("guard_xdp::a_drop_rung_on_the_ebpf_classifier") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    testkit::need("hping3", "hping3");
    testkit::need("bpftool", "bpftool");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The victim drop for the SYN flood, a signature drop for the
    // neighbour's group (an amplification).
    std::fs::write(
        dir.join("policy.toml"),
        policy("")
            + "\n[[guard.group]]\nname = \"dns\"\nprefixes = [\"203.0.113.20/32\"]\ninherit = \"global\"\n\n[[guard.group.ladder]]\nrung = \"drop\"\nhold = \"3s\"\nmatch = \"signature\"\n",
    )
    .unwrap();
    let s = Site::build("xdpd", "wan0", "lan0", &[VICTIM, NEIGHBOUR]);
    let mut d = daemon(&s.rtr, dir);
    let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    wait_for("the XDP drop list", Duration::from_secs(20), || {
        xdp_program(&s.rtr, "wan0").is_some_and(|(_, n)| n == "tg_xdp_in")
            && xdp_program(&s.rtr, "lan0").is_some_and(|(_, n)| n == "tg_xdp_out")
    });
    wait_for("the guard to capture", Duration::from_secs(10), || {
        log().contains("guard capturing")
    });
    assert!(ping(&s.atk, VICTIM) && ping(&s.atk, NEIGHBOUR));

    // A SYN flood, 10,000/s for 2 s: the victim in the list.
    let mut flood = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", &s.atk.0])
            .args([
                "timeout", "2", "hping3", "-S", "-p", "80", "-i", "u100", "-q", VICTIM,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let took = wait_for("the victim in the XDP list", Duration::from_secs(5), || {
        entries(&s.rtr).contains(&VICTIM_ENTRY.to_string())
    });
    eprintln!("FIGURE guard_xdp: victim in the XDP list {took:?} after the flood started");
    assert!(!ping(&s.atk, VICTIM), "the victim is dropped");
    assert!(ping(&s.atk, NEIGHBOUR), "the neighbour gets through");
    flood.wait(Duration::from_secs(10)).expect("the flood ends");
    assert!(dropped(&s.rtr, 1) > 0);
    // The rung's hold (3 s) over: the entry goes.
    wait_for(
        "the victim out of the list",
        Duration::from_secs(12),
        || !entries(&s.rtr).contains(&VICTIM_ENTRY.to_string()),
    );
    assert!(ping(&s.atk, VICTIM));
    assert!(
        log().contains("XDP drop list: the guard's entries"),
        "{}",
        log()
    );

    // By hand: exactly the packets sent are dropped, counted by XDP.
    ok(
        &s.rtr,
        dir,
        &["guard", "ban", VICTIM, "--rung", "drop", "--for", "1m"],
    );
    wait_for(
        "the banned victim in the list",
        Duration::from_secs(10),
        || entries(&s.rtr).contains(&VICTIM_ENTRY.to_string()),
    );
    let before = dropped(&s.rtr, 1);
    // 1,000 packets/s: under the guard's 2,000 pps, so nothing else moves.
    s.atk.sh(&format!(
        "timeout 10 hping3 -S -p 80 -c 1500 -i u1000 -q {VICTIM} >/dev/null 2>&1 || true"
    ));
    assert_eq!(
        dropped(&s.rtr, 1) - before,
        1500,
        "XDP drops every packet sent"
    );
    assert!(ping(&s.atk, NEIGHBOUR));

    // SIGKILL during the rung; its entry removed by hand and a stray one
    // added meanwhile: the new daemon puts back the first, takes the
    // other away.
    d.signal_group(libc::SIGKILL);
    d.wait(Duration::from_secs(5)).expect("killed");
    let map = map_id(&s.rtr, "wan0", "tg_xdrop4");
    sh(&format!(
        "bpftool map delete id {map} key hex 40 00 00 00 00 00 00 00 cb 00 71 0a && \
         bpftool map update id {map} key hex 40 00 00 00 00 00 00 00 cb 00 71 63 value hex 01 00 00 00"
    ));
    assert_eq!(entries(&s.rtr), ["0 0 0 203.0.113.99/32 = 1"]);
    let mut d = daemon(&s.rtr, dir);
    let back = wait_for(
        "the entry back after the restart",
        Duration::from_secs(20),
        || entries(&s.rtr) == [VICTIM_ENTRY],
    );
    eprintln!("FIGURE guard_xdp: entry back, stray gone {back:?} after the restart");
    ok(&s.rtr, dir, &["guard", "unban", VICTIM]);
    wait_for(
        "the unbanned victim out of the list",
        Duration::from_secs(10),
        || !entries(&s.rtr).contains(&VICTIM_ENTRY.to_string()),
    );
    assert!(ping(&s.atk, VICTIM));

    // An amplification (UDP from source port 53, 10,000/s for 2 s) at
    // the neighbour: its signature in the list; pings to it still answer.
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
    let signature = "0 17 53 203.0.113.20/32 = 1".to_string();
    wait_for(
        "the signature in the XDP list",
        Duration::from_secs(5),
        || entries(&s.rtr).contains(&signature),
    );
    assert!(ping(&s.atk, NEIGHBOUR), "only the signature is dropped");
    amp.wait(Duration::from_secs(10)).expect("the flood ends");
    wait_for(
        "the signature out of the list",
        Duration::from_secs(12),
        || !entries(&s.rtr).contains(&signature),
    );

    // Outgoing: a ban of the victim's own traffic is looked up by source
    // on the LAN (`tg_xdp_out`): what it sends is dropped there, counted
    // in the same counters.
    ok(
        &s.rtr,
        dir,
        &[
            "guard",
            "ban",
            VICTIM,
            "--direction",
            "out",
            "--rung",
            "drop",
            "--for",
            "1m",
        ],
    );
    let out_entry = "1 0 0 203.0.113.10/32 = 1".to_string();
    wait_for("the outgoing entry", Duration::from_secs(10), || {
        entries(&s.rtr).contains(&out_entry)
    });
    let before = dropped(&s.rtr, 1);
    s.vic.sh(
        "timeout 10 hping3 -S -p 80 -c 300 -i u1000 -q -a 203.0.113.10 198.51.100.2 >/dev/null 2>&1 || true",
    );
    assert_eq!(dropped(&s.rtr, 1) - before, 300, "dropped on the LAN");
    // The neighbour's own traffic still leaves.
    assert!(
        Command::new("ip")
            .args(["netns", "exec", &s.vic.0, "ping", "-c", "1", "-W", "1"])
            .args(["-I", NEIGHBOUR, "198.51.100.2"])
            .output()
            .unwrap()
            .status
            .success(),
        "the neighbour's upload"
    );
    ok(&s.rtr, dir, &["guard", "unban", VICTIM]);
    wait_for("the outgoing entry gone", Duration::from_secs(10), || {
        !entries(&s.rtr).contains(&out_entry)
    });

    d.signal_group(libc::SIGTERM);
    let st = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    assert!(st.success(), "{st:?}\n{}", log());
}

/// An XDP program of the operator's: passes everything.
fn operator_program(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("operator.c");
    std::fs::write(
        &src,
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         SEC(\"xdp\") int operator_pass(struct xdp_md *c) { return XDP_PASS; }\n\
         char _license[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let obj = dir.join("operator.o");
    sh(&format!(
        "clang -target bpf -O2 -I/usr/include/$(uname -m)-linux-gnu -c {} -o {}",
        src.display(),
        obj.display()
    ));
    obj
}

#[test]
fn unused_addresses_are_dropped_in_xdp_and_an_operators_program_is_left_alone() {
    if !testkit::root("guard_xdp::unused_addresses_are_dropped_in_xdp") {
        return;
    }
    testkit::need("bpftool", "bpftool");
    testkit::need("clang", "clang");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("policy.toml");
    let p = file.to_str().unwrap();
    std::fs::write(&file, policy("unused = \"drop\"")).unwrap();
    let s = Site::build("xdpu", "wan0", "lan0", &[VICTIM, NEIGHBOUR, UNUSED]);
    // Before tollgate every address answers: a drop later is tollgate's.
    assert!(ping(&s.atk, UNUSED) && ping(&s.atk, VICTIM));

    ok(&s.rtr, dir, &["apply", "-c", p]);
    let list = entries(&s.rtr);
    // 203.0.113.0/24 minus .10 and .20: 11 prefixes.
    assert_eq!(list.len(), 11, "{list:?}");
    assert!(
        list.contains(&"0 0 0 203.0.113.128/25 = 2".to_string()),
        "{list:?}"
    );
    let before = dropped(&s.rtr, 2);
    assert!(!ping(&s.atk, UNUSED), "the unused address is dropped");
    assert_eq!(dropped(&s.rtr, 2) - before, 1, "in XDP");
    assert!(ping(&s.atk, VICTIM) && ping(&s.atk, NEIGHBOUR));
    // The parser, on the loaded program (BPF_PROG_TEST_RUN): a whole
    // packet to the unused address is dropped, one cut short or malformed
    // passes.
    let (prog, _) = xdp_program(&s.rtr, "wan0").unwrap();
    for (what, frame, want) in frames() {
        let f = dir.join("frame");
        std::fs::write(&f, &frame).unwrap();
        let out = sh(&format!(
            "bpftool prog run id {prog} data_in {} repeat 1",
            f.display()
        ));
        let code = if want == XDP_DROP { "1" } else { "2" };
        assert!(
            out.contains(&format!("Return value: {code},")),
            "{what}: {out}"
        );
    }
    // A signature (as a `drop` rung with `match = "signature"` writes
    // it): UDP from port 53 to the neighbour, most specific first.
    let map = map_id(&s.rtr, "wan0", "tg_xdrop4");
    sh(&format!(
        "bpftool map update id {map} key hex 40 00 00 00 00 11 00 35 cb 00 71 14 value hex 01 00 00 00"
    ));
    let run = |frame: Vec<u8>| {
        let f = dir.join("frame");
        std::fs::write(&f, &frame).unwrap();
        sh(&format!(
            "bpftool prog run id {prog} data_in {} repeat 1",
            f.display()
        ))
    };
    let to_neighbour = |proto: u8, sport: u16| {
        let mut f = frames()[0].1.clone();
        f[14 + 9] = proto;
        f[14 + 19] = 20; // 203.0.113.20
        f[14 + 20..14 + 22].copy_from_slice(&sport.to_be_bytes());
        f
    };
    let verdict = |proto, sport| {
        let out = run(to_neighbour(proto, sport));
        if out.contains("Return value: 1,") {
            "drop"
        } else {
            "pass"
        }
    };
    assert_eq!(verdict(17, 53), "drop", "the amplification");
    assert_eq!(verdict(17, 54), "pass", "UDP from another port");
    assert_eq!(verdict(6, 53), "pass", "TCP from port 53");
    // Any port of a protocol (a UDP flood's signature).
    sh(&format!(
        "bpftool map update id {map} key hex 40 00 00 00 00 11 00 00 cb 00 71 14 value hex 01 00 00 00"
    ));
    assert_eq!(verdict(17, 54), "drop", "any UDP");
    assert_eq!(verdict(6, 53), "pass", "TCP still");
    sh(&format!(
        "bpftool map delete id {map} key hex 40 00 00 00 00 11 00 35 cb 00 71 14 && \
         bpftool map delete id {map} key hex 40 00 00 00 00 11 00 00 cb 00 71 14"
    ));
    assert_eq!(verdict(17, 53), "pass");

    // Converged: a second apply attaches nothing and changes nothing.
    let again = ok(&s.rtr, dir, &["apply", "-c", p]);
    assert!(again.contains("applied 0 changes"), "{again}");
    ok(&s.rtr, dir, &["down"]);
    assert!(xdp_program(&s.rtr, "wan0").is_none());
    assert!(ping(&s.atk, UNUSED));

    // The operator's own program on the uplink: refused by name and id,
    // never replaced; the LAN still gets tollgate's.
    let obj = operator_program(dir);
    sh(&format!(
        "ip -n {} link set dev wan0 xdp obj {} sec xdp",
        s.rtr.0,
        obj.display()
    ));
    let (theirs, name) = xdp_program(&s.rtr, "wan0").unwrap();
    assert_eq!(name, "operator_pass");
    let out = ok(&s.rtr, dir, &["apply", "-c", p]);
    assert!(
        out.contains(&format!(
            "wan0 already has an XDP program that is not tollgate's (id {theirs}"
        )),
        "{out}"
    );
    assert_eq!(xdp_program(&s.rtr, "wan0").unwrap().0, theirs);
    assert_eq!(xdp_program(&s.rtr, "lan0").unwrap().1, "tg_xdp_out");
    ok(&s.rtr, dir, &["apply", "-c", p]);
    ok(&s.rtr, dir, &["down"]);
    assert_eq!(xdp_program(&s.rtr, "wan0").unwrap().0, theirs);
    assert!(xdp_program(&s.rtr, "lan0").is_none());
}

/// iperf3 from the internet side to `to` for 2 s: the receiver's Mbit/s.
fn download_mbit(net: &Netns, to: &str, port: u16) -> f64 {
    let out = net.sh(&format!("timeout 15 iperf3 -c {to} -p {port} -t 2 -J"));
    json(&out)["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate in {out}"))
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

#[test]
fn a_throttle_rung_on_the_ebpf_classifier_holds_the_victim_to_its_class() {
    if !testkit::root("guard_xdp::a_throttle_rung_on_the_ebpf_classifier") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    testkit::need("iperf3", "iperf3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("policy.toml"),
        policy_with(
            "",
            "[[guard.ladder]]\nrung = \"throttle\"\nhold = \"60s\"\nrate = \"2mbit\"\n",
        ),
    )
    .unwrap();
    let s = Site::build("xdpt", "wan0", "lan0", &[VICTIM, NEIGHBOUR]);
    let servers = [(VICTIM, 5201), (NEIGHBOUR, 5202)].map(|(a, port)| {
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
    wait_for(
        "the prepared throttle class",
        Duration::from_secs(20),
        || {
            s.rtr
                .sh("tc class show dev tg-down classid 1:fffe 2>/dev/null || true")
                .contains("1:fffe")
        },
    );
    // No nftables set with the eBPF classifier: the victim is in the
    // classifier's own map.
    assert!(!s
        .rtr
        .sh("nft list ruleset 2>/dev/null || true")
        .contains("guard_thr_"));
    ok(
        &s.rtr,
        dir,
        &["guard", "ban", VICTIM, "--rung", "throttle", "--for", "1m"],
    );
    wait_for(
        "the victim in the classifier's map",
        Duration::from_secs(10),
        || log().contains("the eBPF classifier's throttle victims"),
    );
    let before = class_bytes(&s.rtr, "tg-down", "1:fffe");
    let victim = download_mbit(&s.atk, VICTIM, 5201);
    let throttled = class_bytes(&s.rtr, "tg-down", "1:fffe") - before;
    let neighbour = download_mbit(&s.atk, NEIGHBOUR, 5202);
    eprintln!(
        "FIGURE guard_xdp: throttled victim {victim:.2} Mbit/s (rung 2 Mbit, {throttled} bytes through 1:fffe), neighbour {neighbour:.2} Mbit/s (plan 50 Mbit)"
    );
    assert!(
        victim < 2.2 && victim > 0.5,
        "victim at {victim} Mbit/s\n{}",
        log()
    );
    assert!(throttled > 300_000, "{throttled} bytes through the class");
    assert!(
        neighbour > 35.0 && neighbour < 52.0,
        "neighbour at {neighbour} Mbit/s"
    );
    ok(&s.rtr, dir, &["guard", "unban", VICTIM]);
    let before = class_bytes(&s.rtr, "tg-down", "1:fffe");
    let victim = download_mbit(&s.atk, VICTIM, 5201);
    assert_eq!(class_bytes(&s.rtr, "tg-down", "1:fffe"), before);
    assert!(victim > 35.0, "the victim's plan back: {victim} Mbit/s");

    d.signal_group(libc::SIGTERM);
    let st = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    assert!(st.success(), "{st:?}\n{}", log());
    drop(servers);
}

#[test]
fn unused_blackhole_null_routes_unheld_addresses_with_the_nftables_classifier_too() {
    if !testkit::root("guard_xdp::unused_blackhole_null_routes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("policy.toml");
    let p = file.to_str().unwrap();
    // The nftables classifier (routes work with either) and no drop rung.
    let text = policy_with(
        "unused = \"blackhole\"",
        "[[guard.ladder]]\nrung = \"blackhole\"\nhold = \"1m\"\n",
    )
    .replace("classifier = \"ebpf\"\n", "");
    std::fs::write(&file, &text).unwrap();
    let s = Site::build("xdpb", "wan0", "lan0", &[VICTIM, NEIGHBOUR, UNUSED]);
    // An operator's own route of the same kind, which must stay.
    s.rtr
        .sh("ip route add blackhole 203.0.113.240/32 proto static");
    assert!(ping(&s.atk, UNUSED) && ping(&s.atk, VICTIM));
    ok(&s.rtr, dir, &["apply", "-c", p]);
    let routes = s.rtr.sh("ip route show proto 214");
    // 203.0.113.0/24 minus .10 and .20: 11 routes, none of the XDP list.
    assert_eq!(routes.lines().count(), 11, "{routes}");
    assert!(routes.contains("blackhole 203.0.113.128/25"), "{routes}");
    assert!(xdp_program(&s.rtr, "wan0").is_none());
    assert!(!ping(&s.atk, UNUSED), "the unused address is null-routed");
    assert!(ping(&s.atk, VICTIM) && ping(&s.atk, NEIGHBOUR));
    // A tenant for the address: its route goes at the next apply.
    std::fs::write(
        &file,
        text.replace(
            "[guard]",
            &format!("[[tenants]]\nid = 3\nname = \"late\"\nplan = \"home\"\nprefixes = [\"{UNUSED}/32\"]\n\n[guard]"),
        ),
    )
    .unwrap();
    ok(&s.rtr, dir, &["apply", "-c", p]);
    assert!(ping(&s.atk, UNUSED), "a tenant's address now");
    let routes = s.rtr.sh("ip route show proto 214");
    assert!(!routes.contains("203.0.113.128/25"), "{routes}");
    // `down` removes tollgate's routes, not the operator's.
    ok(&s.rtr, dir, &["down"]);
    assert_eq!(s.rtr.sh("ip route show proto 214").trim(), "");
    assert!(s
        .rtr
        .sh("ip route show proto static")
        .contains("blackhole 203.0.113.240"));
}

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// Frames for the parser, with what the list must answer for them while
/// 203.0.113.200 is unused.
fn frames() -> Vec<(&'static str, Vec<u8>, u32)> {
    let eth = |ethertype: [u8; 2]| {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype);
        f
    };
    // IPv4, 20-byte header, UDP, to 203.0.113.200, then 8 bytes of UDP
    // from port 53.
    let ip = |first: u8| {
        let mut h = vec![first, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        h.extend_from_slice(&[198, 51, 100, 2, 203, 0, 113, 200]);
        h.extend_from_slice(&[0, 53, 0x11, 0x5c, 0, 8, 0, 0]);
        h
    };
    let whole = [eth([0x08, 0x00]), ip(0x45)].concat();
    let vlan = [eth([0x81, 0x00]), vec![0, 7, 0x08, 0x00], ip(0x45)].concat();
    vec![
        ("a whole packet", whole.clone(), XDP_DROP),
        ("behind a VLAN tag", vlan.clone(), XDP_DROP),
        ("an Ethernet header alone", eth([0x08, 0x00]), XDP_PASS),
        (
            "an IPv4 header cut short",
            whole[..14 + 19].to_vec(),
            XDP_PASS,
        ),
        ("a VLAN tag cut short", vlan[..16].to_vec(), XDP_PASS),
        (
            "IPv4 with version 5",
            [eth([0x08, 0x00]), ip(0x55)].concat(),
            XDP_PASS,
        ),
        (
            "a header length under 20",
            [eth([0x08, 0x00]), ip(0x44)].concat(),
            XDP_PASS,
        ),
        (
            "another ethertype",
            [eth([0x88, 0xb5]), ip(0x45)].concat(),
            XDP_PASS,
        ),
        // The transport header cut short: looked up with any port, and
        // the unused entry (any protocol, any port) still drops it.
        (
            "a UDP header cut short",
            whole[..14 + 22].to_vec(),
            XDP_DROP,
        ),
    ]
}

/// Hypervisor mode (routed, as `shaping.rs`'s): the VM's own interface
/// gets `tg_xdp_out`, so a drop of the VM's outgoing traffic happens where
/// it enters the host; the uplink gets `tg_xdp_in`.
#[test]
fn in_hypervisor_mode_a_vms_outgoing_drop_runs_on_its_interface() {
    if !testkit::root("guard_xdp::in_hypervisor_mode") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    testkit::need("hping3", "hping3");
    testkit::need("bpftool", "bpftool");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (h, u, vm) = (Netns::new("xdph"), Netns::new("xdpu"), Netns::new("xdpv"));
    sh(&format!(
        "set -e
        ip link add eth0 netns {h} type veth peer name up0 netns {u}
        ip -n {h} addr add 203.0.113.254/24 dev eth0; ip -n {u} addr add 203.0.113.1/24 dev up0
        ip -n {h} link set eth0 up; ip -n {u} link set up0 up
        ip -n {u} route add 192.0.2.0/24 via 203.0.113.254
        ip -n {h} addr add 169.254.0.1/32 dev lo
        ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
        ip link add vif1.0 netns {h} type veth peer name e0 netns {vm}
        ip -n {vm} addr add 192.0.2.10/32 dev e0; ip -n {vm} link set e0 up
        ip -n {vm} route add 169.254.0.1 dev e0; ip -n {vm} route add default via 169.254.0.1 dev e0 onlink
        ip -n {h} link set vif1.0 up; ip -n {h} route add 192.0.2.10/32 dev vif1.0
        ip netns exec {h} sysctl -qw net.ipv4.conf.vif1/0.proxy_arp=1",
        h = h.0,
        u = u.0,
        vm = vm.0,
    ));
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        r#"[site]
mode = "hypervisor"
uplink = "eth0"
capacity = { down = "1gbit", up = "1gbit" }
classifier = "ebpf"

[plans.vm]
down = { rate = "50mbit", ceil = "50mbit" }
up = { rate = "50mbit", ceil = "50mbit" }

[[tenants]]
id = 1
name = "web-1"
plan = "vm"
interface = "vif1.0"
prefixes = ["192.0.2.10/32"]

[guard]
networks = ["192.0.2.0/24"]

[guard.thresholds]
pps_out = 2000

[[guard.ladder]]
rung = "drop"
hold = "1m"
"#,
    )
    .unwrap();
    ok(&h, dir, &["apply", "-c", file.to_str().unwrap()]);
    assert_eq!(xdp_program(&h, "eth0").unwrap().1, "tg_xdp_in");
    assert_eq!(xdp_program(&h, "vif1.0").unwrap().1, "tg_xdp_out");
    assert!(ping(&vm, "203.0.113.1"));
    // The rung's entry for the VM's outgoing traffic (way 1, any
    // protocol and port, 192.0.2.10/32), as `guard ban --direction out`
    // writes it.
    let prog = xdp_program(&h, "vif1.0").unwrap().0;
    let prog = json(&sh(&format!("bpftool prog show id {prog} -j")));
    let map = prog["map_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .find(|m| json(&sh(&format!("bpftool map show id {m} -j")))["name"] == "tg_xdrop4")
        .unwrap();
    sh(&format!(
        "bpftool map update id {map} key hex 40 00 00 00 01 00 00 00 c0 00 02 0a value hex 01 00 00 00"
    ));
    let before = dropped_at(&h, "eth0", 1);
    vm.sh("timeout 10 hping3 -S -p 80 -c 200 -i u1000 -q 203.0.113.1 >/dev/null 2>&1 || true");
    assert_eq!(
        dropped_at(&h, "eth0", 1) - before,
        200,
        "dropped where the VM's traffic enters"
    );
    assert!(!ping(&vm, "203.0.113.1"));
    ok(&h, dir, &["down"]);
    assert!(xdp_program(&h, "vif1.0").is_none() && xdp_program(&h, "eth0").is_none());
    assert!(ping(&vm, "203.0.113.1"));
}
