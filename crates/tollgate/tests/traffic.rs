//! Shaping behaviour with real traffic, applied by `tollgate apply` itself:
//! borrowing from a parent, fairness in a shared pool, the interactive
//! band's latency, and a thousand moves under a running stream.
//!
//! Each test builds a router in namespaces (`tgt-*`, suffixed with the
//! process id): an upstream holding 198.51.100.1, the router where tollgate
//! runs (`wan0` toward the upstream, a bridge `lan0` toward the tenants), and
//! one namespace per tenant k with 100.64.k.2/24. iperf3 measures; rates
//! are TCP payload, which HTB sees as whole frames, so a full ceil shows as
//! about 95.6% of it (1448 payload bytes in a 1514-byte frame).
//!
//! Needs root, iproute2, nftables, iperf3 and ping. Namespaces and iperf3
//! processes are removed even when a test fails. Tests run one at a time,
//! so they measure the shaper and not each other.

mod lab_router;

use lab_router::{jain, Router};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const SITE: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }
"#;

fn tenants(specs: &[(u32, &str, Option<&str>)]) -> String {
    specs
        .iter()
        .map(|(k, plan, parent)| {
            let parent = parent.map_or(String::new(), |p| format!("parent = \"{p}\"\n"));
            format!(
                "\n[[tenants]]\nid = {k}\nname = \"t{k}\"\nplan = \"{plan}\"\n{parent}prefixes = [\"100.64.{k}.0/24\"]\n"
            )
        })
        .collect()
}

/// A measured rate must be within [low, high] of what HTB should allow,
/// where 0.956 of a ceil is TCP's best.
fn within(report: &str, what: &str, got: f64, want: f64, low: f64, high: f64) {
    assert!(
        got >= want * low && got <= want * high,
        "{what}: {got:.2} Mbit/s, want {want} × [{low}, {high}]\n{report}"
    );
}

#[test]
fn a_tenant_borrows_up_to_its_ceil_and_the_parent_caps_the_sum() {
    if !testkit::root("a_tenant_borrows_up_to_its_ceil_and_the_parent_caps_the_sum") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Router::new("b", 2);
    let policy = format!(
        "{SITE}
[[parents]]
name = \"reseller\"
id = 1
down = {{ rate = \"4mbit\", ceil = \"12mbit\" }}
up = {{ rate = \"4mbit\", ceil = \"12mbit\" }}

[plans.small]
down = {{ rate = \"2mbit\", ceil = \"10mbit\" }}
up = {{ rate = \"2mbit\", ceil = \"10mbit\" }}
{}",
        tenants(&[
            (1, "small", Some("reseller")),
            (2, "small", Some("reseller"))
        ])
    );
    r.apply(&policy);
    let alone = r.download(&[1], 4)[0];
    let both = r.download(&[1, 2], 5);
    let mut report = format!(
        "alone: t1 {alone:.2} Mbit/s (rate 2, ceil 10)\n\
         together: t1 {:.2} + t2 {:.2} = {:.2} Mbit/s (parent ceil 12)\n",
        both[0],
        both[1],
        both[0] + both[1]
    );
    let up_alone = r.upload(&[1], 4)[0];
    report.push_str(&format!("alone, upload: t1 {up_alone:.2} Mbit/s\n"));
    eprintln!("{report}");
    // Alone, t1 borrows 8 Mbit above its rate, up to its own ceil.
    within(&report, "t1 alone", alone, 10.0, 0.85, 1.03);
    within(&report, "t1 alone, upload", up_alone, 10.0, 0.85, 1.03);
    // Together, the parent's ceil binds, and each keeps at least its rate.
    within(&report, "t1 + t2", both[0] + both[1], 12.0, 0.85, 1.03);
    for (k, got) in both.iter().enumerate() {
        assert!(
            *got >= 2.0 * 0.9,
            "t{} fell below its rate\n{report}",
            k + 1
        );
    }
}

#[test]
fn four_greedy_tenants_share_an_overage_pool_fairly() {
    if !testkit::root("four_greedy_tenants_share_an_overage_pool_fairly") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Router::new("f", 4);
    let policy = format!(
        "{SITE}
[plans.overage]
shared = true
id = 100
down = {{ rate = \"8mbit\", ceil = \"12mbit\" }}
up = {{ rate = \"8mbit\", ceil = \"12mbit\" }}
{}",
        tenants(&[
            (1, "overage", None),
            (2, "overage", None),
            (3, "overage", None),
            (4, "overage", None)
        ])
    );
    r.apply(&policy);
    let down = r.download(&[1, 2, 3, 4], 6);
    let up = r.upload(&[1, 2, 3, 4], 6);
    let report = format!(
        "down: {down:.2?} sum {:.2} Jain {:.3}\nup:   {up:.2?} sum {:.2} Jain {:.3}\n",
        down.iter().sum::<f64>(),
        jain(&down),
        up.iter().sum::<f64>(),
        jain(&up)
    );
    eprintln!("{report}");
    for (what, rates) in [("down", &down), ("up", &up)] {
        assert!(jain(rates) >= 0.9, "{what}: unfair\n{report}");
        within(&report, what, rates.iter().sum(), 12.0, 0.85, 1.03);
    }
}

#[test]
fn the_interactive_band_keeps_ping_fast_under_a_saturating_download() {
    if !testkit::root("the_interactive_band_keeps_ping_fast_under_a_saturating_download") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Router::new("r", 1);
    let plan = "
[plans.home]
down = { rate = \"4mbit\", ceil = \"4mbit\" }
up = { rate = \"4mbit\", ceil = \"4mbit\" }
";
    let bands = "
[bands.interactive]
protocols = [\"icmp\"]
";
    let one = tenants(&[(1, "home", None)]);
    r.apply(&format!("{SITE}{plan}{one}"));
    let plain = r.ping_under_download(1);
    r.apply(&format!("{SITE}{bands}{plan}{one}"));
    let banded = r.ping_under_download(1);
    let report = format!(
        "ping RTT under a saturating download, median of the replies:\n  \
         without bands: {:.1} ms ({} of {} replies)\n  \
         with an interactive band: {:.1} ms ({} of {} replies)\n",
        plain.median_ms, plain.received, plain.sent, banded.median_ms, banded.received, banded.sent
    );
    eprintln!("{report}");
    // Without bands the replies wait behind the download's queue in the
    // tenant's one class; with bands they skip it. The difference is the
    // queue's length at 4 Mbit, tens of milliseconds, so half is a wide margin.
    assert!(
        banded.received * 10 >= banded.sent * 9,
        "interactive replies were lost\n{report}"
    );
    assert!(
        banded.median_ms < plain.median_ms / 2.0,
        "the band made no difference\n{report}"
    );
}

#[test]
fn a_thousand_moves_leave_an_untouched_stream_alone() {
    if !testkit::root("a_thousand_moves_leave_an_untouched_stream_alone") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Router::new("m", 2);
    let policy = format!(
        "{SITE}
[[parents]]
name = \"p1\"
id = 1
down = {{ rate = \"20mbit\", ceil = \"40mbit\" }}
up = {{ rate = \"20mbit\", ceil = \"40mbit\" }}

[[parents]]
name = \"p2\"
id = 2
down = {{ rate = \"20mbit\", ceil = \"40mbit\" }}
up = {{ rate = \"20mbit\", ceil = \"40mbit\" }}

[plans.small]
down = {{ rate = \"6mbit\", ceil = \"10mbit\" }}
up = {{ rate = \"6mbit\", ceil = \"10mbit\" }}

[plans.big]
down = {{ rate = \"8mbit\", ceil = \"20mbit\" }}
up = {{ rate = \"8mbit\", ceil = \"20mbit\" }}

[plans.overage]
shared = true
id = 100
down = {{ rate = \"6mbit\", ceil = \"10mbit\" }}
up = {{ rate = \"6mbit\", ceil = \"10mbit\" }}
{}",
        tenants(&[(1, "small", Some("p1")), (2, "small", Some("p1"))])
    );
    let file = r.apply(&policy);
    // Both tenants carry a steady UDP stream below every rate they will
    // have, so any loss is the moves' fault and not the shaper's.
    let streams = r.udp_streams(&[(1, "4M"), (2, "3M")]);
    let cycle: [(&str, Option<&str>); 3] = [
        ("big", Some("p2")),
        ("overage", None),
        ("small", Some("p1")),
    ];
    let started = std::time::Instant::now();
    let mut moves = 0;
    // Bounded in count and, generously, in time.
    while moves < 1000 && started.elapsed() < std::time::Duration::from_secs(300) {
        let (plan, parent) = cycle[moves % cycle.len()];
        let mut args = vec!["tenant", "move", "t2", "--plan", plan, "-c", &file];
        if let Some(p) = parent {
            args.extend(["--parent", p]);
        }
        r.tollgate(&args);
        moves += 1;
    }
    let elapsed = started.elapsed();
    let result = streams.finish();
    let report = format!(
        "{moves} moves of t2 in {:.1} s ({:.1} ms each, whole command)\n{}{}\n",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / moves.max(1) as f64,
        result.describe(),
        r.drops()
    );
    eprintln!("{report}");
    assert_eq!(moves, 1000, "{report}");
    let untouched = &result.streams[0];
    assert_eq!(
        untouched.lost, 0,
        "the untouched tenant lost packets\n{report}"
    );
    assert!(untouched.intervals >= 3, "too short a stream\n{report}");
    // No dip: every whole second of the stream carried its rate, within
    // noise (a second's count of ~340 packets varies by a few).
    assert!(
        untouched.min_interval_mbit >= 4.0 * 0.9,
        "the untouched stream dipped\n{report}"
    );
    // The moved tenant loses nothing either: its old classes are drained
    // before they are deleted. (Before the drain could read a class alone,
    // one run in four lost a few datagrams, purged with the old class.)
    let moved = &result.streams[1];
    assert!(
        moved.total > 0,
        "the moved tenant's stream carried nothing\n{report}"
    );
    assert_eq!(moved.lost, 0, "the moved tenant lost packets\n{report}");
    // The moves left a converged kernel behind, with t2 where the last
    // move put it: on `big` (ceil 20mbit) under p2.
    let plan = r.tollgate(&["plan", "-c", &file]);
    assert!(plan.contains("nothing to do"), "{plan}");
    assert_eq!(cycle[(moves - 1) % cycle.len()].0, "big");
    let status: serde_json::Value = serde_json::from_str(&r.tollgate(&[
        "status",
        "--json",
        "--interval",
        "100ms",
        "-c",
        &file,
    ]))
    .unwrap();
    let ceil_of_t2: Vec<&str> = status["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["tenant"] == 2 && c["present"] == true)
        .filter_map(|c| c["ceil"].as_str())
        .collect();
    assert!(
        !ceil_of_t2.is_empty() && ceil_of_t2.iter().all(|c| *c == "20mbit"),
        "{ceil_of_t2:?}"
    );
}

/// Accuracy from 1 Mbit to 1 Gbit, one tenant alone at its ceil, measured
/// twice: by iperf3's payload scaled to frames by 1514/1448 (the figure the
/// test holds), and by the shaper's own class counters over 3 s in the
/// middle of the download (reported). veth hands the shaper GSO segments
/// of up to 64 KiB, half a second of traffic at 1 Mbit, so any window of a
/// few seconds at 1 Mbit is off by up to one segment (about ±15% over 3 s);
/// the 1 Mbit case therefore runs for 12 s and is held to ±8%, the others to
/// ±3%.
#[test]
fn ceils_hold_from_1_mbit_to_1_gbit() {
    if !testkit::root("ceils_hold_from_1_mbit_to_1_gbit") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = Router::new("a", 1);
    let mut report = String::new();
    let mut errors = Vec::new();
    for mbit in [1u32, 10, 100, 1000] {
        let file = r.apply(
            &format!(
                "{SITE}
[plans.p]
down = {{ rate = \"{mbit}mbit\", ceil = \"{mbit}mbit\" }}
up = {{ rate = \"{mbit}mbit\", ceil = \"{mbit}mbit\" }}
{}",
                tenants(&[(1, "p", None)])
            )
            .replace(
                "\"100mbit\", up = \"100mbit\"",
                "\"10gbit\", up = \"10gbit\"",
            ),
        );
        let secs = if mbit == 1 { 12 } else { 5 };
        let (payload, counted) = r.download_and_count(1, &file, secs);
        let at_l2 = payload * 1514.0 / 1448.0;
        let err = (at_l2 / f64::from(mbit) - 1.0) * 100.0;
        errors.push((mbit, err));
        report.push_str(&format!(
            "ceil {mbit} Mbit: iperf3 {payload:.3} payload, {at_l2:.3} at L2 ({err:+.1}%) over {secs} s; class counters over 3 s {counted:.3} ({:+.1}%)\n",
            (counted / f64::from(mbit) - 1.0) * 100.0
        ));
    }
    eprintln!("{report}");
    for (mbit, err) in errors {
        let limit = if mbit == 1 { 8.0 } else { 3.0 };
        assert!(err.abs() <= limit, "{mbit} Mbit off by {err:.1}%\n{report}");
    }
}
