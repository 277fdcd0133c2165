//! Issue 16's faults between an agent and a central tollgate, under load:
//! the link cut for several slots, then the central restarted (SIGTERM)
//! and killed (SIGKILL) while batches keep arriving.
//!
//! - The two daemons are `agent_pair`'s. The agent lives with
//!   `TOLLGATE_CLOCK_RATE=60`, so that a 5-minute slot closes every 5 s
//!   and it ships a batch for each, while datagrams go to its tenant the
//!   whole time.
//! - The load: three more writers post batches to the central's API from
//!   the central's own namespace, one after the other without a pause,
//!   as an agent's shipper does (a batch is sent until the central
//!   answers 200, `duplicate` or not, then the next).
//! - The link is cut (`ip link set down`) until the agent has closed
//!   three slots the central does not have, then restored; then the
//!   central is stopped and started, then killed and started.
//!
//! Asserted: the central's samples of the agent's tenant equal the
//! agent's to the byte, and are the datagrams sent; each load writer's
//! samples on the central are exactly its batches, once each; the
//! central's account of each writer ends at its last sequence.
//!
//! Needs root, iproute2, nftables, python3 and curl.

use accounting::Sample;
use engine::shipped::SEQUENCES_PER_SLOT;
use net_types::TenantId;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod agent_pair;
mod daemon_site;

use agent_pair::{national_down, samples, tenants, Pair, CENTRAL_API};
use daemon_site::{send_to_tenant, sh, wait_for, Daemon, FRAME};

/// Agent seconds per wall second.
const RATE: u64 = 60;

/// Load writers, and samples in each of their batches.
const WRITERS: u32 = 3;
const PER_BATCH: u32 = 50;

/// The agent, its clock `RATE` times as fast, reading the kernel every
/// 30 s of its time (half a second).
fn start_agent(p: &Pair) -> Daemon {
    p.agent.start_daemon_args(
        &p.agent.dir.join("accounting.toml"),
        &["--no-api", "--interval", "30s", "--reconcile", "60s"],
        &[
            ("TOLLGATE_CLOCK_RATE", &RATE.to_string()),
            ("RUST_LOG", "info"),
        ],
    )
}

/// Posts one batch to the central from its own namespace; the status (0
/// when there was no answer).
fn post(p: &Pair, token: &str, body: &str) -> u16 {
    let o = Command::new("ip")
        .args(["netns", "exec", &p.central.host, "curl", "-sS", "-m", "10"])
        .args(["-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("http://{CENTRAL_API}/api/v1/history/batches"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Load writer `w`'s batch `n` (from 1): `PER_BATCH` samples of its own
/// tenant (1000 + `w`), shaped like `model`, one per slot, `n` bytes
/// each, so that every batch's samples are new and the sum says which
/// batches counted.
fn batch(model: &Sample, w: u32, n: u64) -> String {
    let samples: Vec<Sample> = (0..PER_BATCH)
        .map(|i| {
            let mut s = *model;
            s.key.tenant = TenantId(1000 + w);
            s.slot.0 = model.slot.0 - 100_000 + (n as i64 - 1) * PER_BATCH as i64 + i as i64;
            s.bytes = n;
            s.packets = 1;
            s
        })
        .collect();
    serde_json::json!({
        "writer": format!("load{w}"),
        "sequence": n,
        "samples": samples,
        "coverage": [],
    })
    .to_string()
}

/// What the central holds of load writer `w`: (samples, bytes).
fn held(all: &[Sample], w: u32) -> (u64, u64) {
    let mine = all.iter().filter(|s| s.key.tenant == TenantId(1000 + w));
    mine.fold((0, 0), |(n, b), s| (n + 1, b + s.bytes))
}

#[test]
fn a_central_cut_off_restarted_and_killed_under_load_loses_nothing_and_counts_nothing_twice() {
    if !testkit::root(
        "a_central_cut_off_restarted_and_killed_under_load_loses_nothing_and_counts_nothing_twice",
    ) {
        return;
    }
    agent_pair::needs();
    let p = Pair::new("tgul");
    let token = std::fs::read_to_string(p.agent.dir.join("central.token")).unwrap();
    let token = token.trim();
    let central = p.start_central(0);
    let agent = start_agent(&p);
    let deadline = Instant::now() + Duration::from_secs(150);

    // Datagrams to the tenant all along, counted.
    let stop_sending = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let stop_load = AtomicBool::new(false);
    let posted: Vec<AtomicU64> = (0..WRITERS).map(|_| AtomicU64::new(0)).collect();
    let central = std::thread::scope(|s| {
        let mut central = central;
        s.spawn(|| {
            while !stop_sending.load(Ordering::Relaxed) && Instant::now() < deadline {
                send_to_tenant(&p.agent, 50);
                sent.fetch_add(50, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        });

        // The first slot ships; its tenant sample is the load's model.
        wait_for("a first slot shipped", Duration::from_secs(40), || {
            p.standing().is_some()
        });
        let model = *tenants(&samples(&p.central))
            .first()
            .expect("the shipped slot's sample");
        for (w, count) in posted.iter().enumerate() {
            let stop_load = &stop_load;
            let p = &p;
            s.spawn(move || {
                let mut n = 1;
                while !stop_load.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let body = batch(&model, w as u32, n);
                    // Sent until the central answers: then it holds it.
                    while post(p, token, &body) != 200 {
                        assert!(
                            Instant::now() < deadline,
                            "load{w}'s batch {n} never landed"
                        );
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    count.store(n, Ordering::Relaxed);
                    n += 1;
                }
            });
        }

        // 1. The link cut until the agent holds three closed slots the
        //    central does not have.
        let through = |p: &Pair| p.standing().unwrap_or(0) / SEQUENCES_PER_SLOT;
        let local_last = |p: &Pair| {
            samples(&p.agent)
                .iter()
                .map(|s| s.slot.0)
                .max()
                .unwrap_or(0) as u64
        };
        wait_for(
            "the slots before the cut shipped",
            Duration::from_secs(30),
            || through(&p) >= local_last(&p) && through(&p) > 0,
        );
        sh(&format!("ip -n {} link set ctl0 down", p.agent.host));
        let cut_at = through(&p);
        wait_for(
            "three slots closed behind the cut",
            Duration::from_secs(40),
            || local_last(&p) >= cut_at + 3,
        );
        assert_eq!(through(&p), cut_at, "nothing crosses a cut link");
        let shipping = || {
            std::fs::read_to_string(p.agent.state_dir().join("shipping-status.json"))
                .unwrap_or_default()
        };
        wait_for("the cut link noticed", Duration::from_secs(20), || {
            shipping().contains("cannot reach the central")
        });
        sh(&format!("ip -n {} link set ctl0 up", p.agent.host));
        let behind = local_last(&p);
        wait_for(
            "the slots of the cut shipped",
            Duration::from_secs(40),
            || through(&p) >= behind,
        );

        // 2. The central stopped and started while batches arrive.
        let before = posted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>();
        wait_for("load before the restart", Duration::from_secs(20), || {
            posted
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum::<u64>()
                > before + 10
        });
        let log = central.log();
        assert!(central.stop().success(), "{log}");
        central = p.start_central(0);

        // 3. Killed outright while batches arrive, and started.
        let before = posted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>();
        wait_for("load before the kill", Duration::from_secs(20), || {
            posted
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum::<u64>()
                > before + 10
        });
        central.signal("-KILL");
        wait_for("the central gone", Duration::from_secs(20), || {
            !central.running()
        });
        central = p.start_central(0);
        let before = posted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>();
        wait_for("load after the kill", Duration::from_secs(20), || {
            posted
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum::<u64>()
                > before + 10
        });
        stop_load.store(true, Ordering::Relaxed);
        stop_sending.store(true, Ordering::Relaxed);
        central
    });

    // The last datagrams' slot closes and ships.
    let sent = sent.into_inner();
    let through = |p: &Pair| p.standing().unwrap_or(0) / SEQUENCES_PER_SLOT;
    wait_for(
        "every datagram in a closed slot",
        Duration::from_secs(30),
        || national_down(&tenants(&samples(&p.agent))) == sent * FRAME,
    );
    let last = samples(&p.agent).iter().map(|s| s.slot.0).max().unwrap() as u64;
    wait_for("the last slot shipped", Duration::from_secs(30), || {
        through(&p) >= last
    });
    // The central's account: each load writer at its last batch; how
    // many batches came twice (answers lost to the restart and the kill)
    // is printed, not asserted: it depends on the moment.
    let (status, body) = p.call("GET", "/api/v1/agents", "central.token", None);
    assert_eq!(status, 200, "{body}");
    let account: serde_json::Value = serde_json::from_str(&body).unwrap();
    let row = |writer: &str| {
        account["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["writer"] == writer)
            .unwrap_or_else(|| panic!("{writer} in {body}"))
            .clone()
    };
    for (w, count) in posted.iter().enumerate() {
        let a = row(&format!("load{w}"));
        assert_eq!(a["sequence"], count.load(Ordering::Relaxed), "{a}");
    }
    let duplicates: Vec<_> = (0..WRITERS)
        .map(|w| row(&format!("load{w}"))["duplicates"].as_u64().unwrap_or(0))
        .collect();
    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let log = central.log();
    assert!(central.stop().success(), "{log}");

    let local = tenants(&samples(&p.agent));
    let on_central = samples(&p.central);
    assert_eq!(
        on_central
            .iter()
            .filter(|s| s.key.tenant == TenantId(1))
            .copied()
            .collect::<Vec<_>>(),
        local,
        "the central's samples of the agent's tenant differ from the agent's"
    );
    assert_eq!(national_down(&local), sent * FRAME);
    for (w, count) in posted.iter().enumerate() {
        let n = count.load(Ordering::Relaxed);
        assert!(n > 10, "load{w} posted {n} batches");
        assert_eq!(
            held(&on_central, w as u32),
            (n * PER_BATCH as u64, PER_BATCH as u64 * n * (n + 1) / 2),
            "load{w}: {n} batches of {PER_BATCH} samples, batch k's k bytes each"
        );
    }
    println!(
        "RESULT agents_under_load: {sent} datagrams; load batches {:?}, of which sent twice {duplicates:?} (counted since the last start)",
        posted.iter().map(|c| c.load(Ordering::Relaxed)).collect::<Vec<_>>()
    );
}
