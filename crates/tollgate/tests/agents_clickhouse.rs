//! An agent that ships straight into a ClickHouse history (`[central]
//! store = "clickhouse"`; issue 16, item 3; docs/agents.md), with a real
//! daemon and a real server in namespaces:
//!
//! - the agent is `daemon_site`'s router with one tenant and real
//!   traffic; `clickhouse-server` runs in a namespace of its own, on
//!   192.0.2.10, reached over a veth pair;
//! - slots close without waiting for the wall clock (`TOLLGATE_CLOCK_SKEW`,
//!   the agent restarted with a later skew for each next slot, as in
//!   `agents.rs`);
//! - the link to the server is cut (`ip link set ctl0 down`: packets
//!   dropped, no refusal) for two slots, which the agent records alone;
//!   restored, the agent ships both, in order;
//! - the ClickHouse history then holds exactly the agent's samples, to the
//!   byte and to the datagram sent; a batch added again counts once.
//!
//! Needs root, iproute2, nftables, python3 and clickhouse-server.

use accounting::{Sample, Slot};
use agent_pair::{all_samples, control_link};
use engine::shipped::SEQUENCES_PER_SLOT;
use history::{AddBatch, Store, StoreError};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};
use std::time::Duration;

mod agent_pair;
mod daemon_site;

use daemon_site::{
    send_to_tenant, sh, skew_before_boundary, wait_for, Daemon, Site, FRAME,
    ONE_TENANT_POLICY as POLICY,
};

/// Runs `f` on the ClickHouse history from inside namespace `ns` (a
/// thread of its own enters it: the server listens there).
fn in_clickhouse<T: Send + 'static>(
    ns: &str,
    url: &str,
    f: impl FnOnce(&mut ClickHouseStore) -> T + Send + 'static,
) -> T {
    let (ns, url) = (ns.to_string(), url.to_string());
    std::thread::spawn(move || {
        linux_dataplane::netns::enter(&ns).expect("enter the server's namespace");
        let mut store = ClickHouseStore::open(&ClickHouseOptions {
            url,
            database: "tollgate".into(),
            ..ClickHouseOptions::default()
        })
        .expect("open the ClickHouse history");
        f(&mut store)
    })
    .join()
    .expect("the ClickHouse reader")
}

fn start_agent(agent: &Site, skew: i64) -> Daemon {
    agent.start_daemon_env(
        &agent.dir.join("accounting.toml"),
        &["--no-api"],
        &[
            ("TOLLGATE_CLOCK_SKEW", &skew.to_string()),
            ("RUST_LOG", "info"),
        ],
    )
}

#[test]
fn an_agent_ships_into_clickhouse_directly_across_a_cut_link() {
    const TEST: &str = "an_agent_ships_into_clickhouse_directly_across_a_cut_link";
    if !testkit::root(TEST) {
        return;
    }
    for (cmd, package) in [("nft", "nftables"), ("python3", "python3")] {
        testkit::need(cmd, package);
    }
    let agent = Site::build("tgchd", "a", 1);
    let server_ns = testkit::Netns::new("chd-c");
    control_link(&agent.host, &server_ns.0);
    let Some(server) =
        history_clickhouse::testing::server_in(TEST, &server_ns.0, "192.0.2.10", "192.0.2.8/30")
    else {
        return;
    };
    std::fs::write(agent.dir.join("accounting.toml"), "").unwrap();
    std::fs::write(
        agent.policy_path(),
        format!(
            "{POLICY}\n[central]\nstore = \"clickhouse\"\nurl = \"http://192.0.2.10:{}\"\nwriter = \"hv1\"\n",
            server.port
        ),
    )
    .unwrap();
    let standing = |url: &str| -> Option<u64> {
        in_clickhouse(&server_ns.0, url, |s| s.writer_state("hv1").unwrap()).map(|s| s.sequence)
    };
    let shipped_through =
        |slot: Slot| standing(&server.url).is_some_and(|s| s >= slot.0 as u64 * SEQUENCES_PER_SLOT);

    // Slot 1, the link up: shipped.
    let t0 = jiff::Timestamp::now().as_second();
    let (skew1, slot1) = skew_before_boundary(t0);
    let d = start_agent(&agent, skew1);
    send_to_tenant(&agent, 1000);
    wait_for("slot 1 in ClickHouse", Duration::from_secs(60), || {
        shipped_through(slot1)
    });
    let log = d.log();
    assert!(d.stop().success(), "{log}");

    // The link cut for slots 2 and 3: the agent records both alone.
    sh(&format!("ip -n {} link set ctl0 down", agent.host));
    let mut last = (skew1, slot1);
    for (k, datagrams) in [(2, 700), (3, 500)] {
        let (skew, slot) = skew_before_boundary(t0 + last.0 + 60);
        assert!(slot > last.1, "slot {k}: {slot:?} after {:?}", last.1);
        let d = start_agent(&agent, skew);
        send_to_tenant(&agent, datagrams);
        wait_for(
            &format!("slot {k} closed locally"),
            Duration::from_secs(60),
            || agent_pair::samples(&agent).iter().any(|s| s.slot == slot),
        );
        let log = d.log();
        assert!(
            log.contains("cannot reach the ClickHouse history"),
            "slot {k}: the agent does not say it cannot ship: {log}"
        );
        assert!(!shipped_through(slot), "slot {k} shipped over a cut link");
        if k == 3 {
            // The link back: both slots go, in order, from the running agent.
            sh(&format!("ip -n {} link set ctl0 up", agent.host));
            wait_for(
                "slots 2 and 3 in ClickHouse",
                Duration::from_secs(60),
                || shipped_through(slot),
            );
        }
        assert!(d.stop().success(), "{}", d_log_hint(&agent));
        last = (skew, slot);
    }

    // To the byte: ClickHouse holds exactly the agent's closed samples,
    // which are the datagrams sent, none lost, none doubled.
    let local = agent_pair::samples(&agent);
    let (central, again) = in_clickhouse(&server_ns.0, &server.url, move |s| {
        let held = all_samples(s);
        // The last slot's batch added again counts once.
        let slot3: Vec<Sample> = held.iter().filter(|x| x.slot == last.1).copied().collect();
        let again = s.add(&AddBatch {
            writer: "hv1",
            sequence: last.1 .0 as u64 * SEQUENCES_PER_SLOT,
            samples: &slot3,
            coverage: &[],
            state: &[],
        });
        (
            held,
            matches!(again, Err(StoreError::AlreadyAppended { .. })),
        )
    });
    assert!(again, "a batch added again was not refused as already held");
    assert_eq!(
        central, local,
        "ClickHouse differs from the agent's history"
    );
    let national_down: u64 = local
        .iter()
        .filter(|s| s.key.realm.0 == 1 && s.key.direction == accounting::Direction::Down)
        .map(|s| s.bytes)
        .sum();
    assert_eq!(
        national_down,
        2200 * FRAME,
        "the agent's samples: {}\nits log:\n{}",
        local
            .iter()
            .map(|s| format!(
                "\n  slot {} {}: {} B {} pkts",
                s.slot.0, s.key, s.bytes, s.packets
            ))
            .collect::<String>(),
        d_log_hint(&agent)
    );
    let slots: std::collections::BTreeSet<Slot> = local.iter().map(|s| s.slot).collect();
    assert!(
        slots.is_superset(&[slot1, last.1].into_iter().collect()),
        "{slots:?}"
    );

    // A tollgate reading that history (`[history] store = "clickhouse"`)
    // shows the agent in `status`, found in the store, with its lag.
    let central = agent.dir.join("central.toml");
    std::fs::write(
        &central,
        format!(
            "{POLICY}\n[history]\nstore = \"clickhouse\"\nurl = \"http://192.0.2.10:{}\"\n",
            server.port
        ),
    )
    .unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "--netns",
            &agent.host,
            "status",
            "--json",
            "--interval",
            "100ms",
        ])
        .env("TOLLGATE_CONFIG", &central)
        .env("TOLLGATE_STATE_DIR", agent.dir.join("central-state"))
        .env("TOLLGATE_CLOCK_SKEW", last.0.to_string())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let hv1 = &v["agents"][0];
    assert_eq!(
        (&hv1["writer"], &hv1["via"]),
        (&"hv1".into(), &"store".into()),
        "{v}"
    );
    assert_eq!(hv1["last_slot"], last.1 .0, "{v}");
    assert!(hv1["lag_seconds"].as_i64().is_some_and(|l| l < 300), "{v}");
}

fn d_log_hint(agent: &Site) -> String {
    std::fs::read_to_string(agent.dir.join("daemon.log")).unwrap_or_default()
}
