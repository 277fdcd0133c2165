//! `[history] store = "clickhouse"` at the command line: `tollgate usage`,
//! `realms` and `bill` (and `bill --freeze`), and `guard history --since`,
//! give the same answers, to the byte, from a ClickHouse history as from
//! the SQLite one holding the same batches and attacks. The test starts its own `clickhouse-server`
//! (`history_clickhouse::testing`); no root.

use accounting::{Accountant, Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};
use net_types::{RealmId, TenantId};
use std::path::{Path, PathBuf};

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "10gbit", up = "10gbit" }

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.home]
down = { rate = "1gbit", ceil = "2gbit" }
up = { rate = "1gbit", ceil = "2gbit" }

[[tenants]]
id = 1
name = "steady"
plan = "home"
commit = "100mbit"
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
name = "mixed"
plan = "home"
prefixes = ["100.64.2.0/24"]

[billing]
timezone = "Asia/Kathmandu"
"#;

/// The test's folder, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The same batches (a day of slots each, from late February to early
/// April 2026) into `store`.
fn write(store: &mut dyn Store) {
    let first = Slot::containing("2026-02-26T00:00:00Z".parse().unwrap()).0;
    let days = 38;
    let mut state = Accountant::new(accounting::Config::default()).state();
    state.last_observe_ms = Some(Slot(first + days * 288).start_millis());
    let state = state.encode();
    for day in 0..days {
        let mut samples = Vec::new();
        for slot in first + day * 288..first + (day + 1) * 288 {
            let s = slot as u64;
            for (tenant, realm, direction, band, bytes) in [
                (1, 1, Direction::Down, Band::Whole, 37_500_000),
                (1, 2, Direction::Up, Band::Whole, 1_000 + s % 977),
                (2, 1, Direction::Down, Band::Normal, s % 7_919 * 1_000),
                (2, 2, Direction::Down, Band::Bulk, 5 + s % 3),
                (2, 2, Direction::Up, Band::Normal, 1_250_000 + s % 97),
            ] {
                if tenant == 2 && slot % 7 == 0 {
                    continue;
                }
                samples.push(Sample {
                    slot: Slot(slot),
                    key: UsageKey {
                        tenant: TenantId(tenant),
                        realm: RealmId(realm),
                        direction,
                        band,
                        source: accounting::Source::Kernel,
                    },
                    bytes,
                    packets: bytes / 1500 + 1,
                });
            }
        }
        let coverage: Vec<SlotCoverage> = (first + day * 288..first + (day + 1) * 288)
            .map(|s| SlotCoverage {
                slot: Slot(s),
                status: SlotStatus::Measured,
            })
            .collect();
        store
            .append(&Batch {
                sequence: day as u64 + 1,
                samples: &samples,
                coverage: &coverage,
                state: &state,
            })
            .unwrap();
    }
    // Two of the guard's ended attacks (the second recorded twice, as a
    // daemon killed before saving its ladder would).
    for (i, target) in ["100.64.1.7", "100.64.2.9"].into_iter().enumerate() {
        let record: api::guard::AttackRecord = serde_json::from_value(serde_json::json!({
            "recorded_at": format!("2026-03-1{i}T10:00:00Z"),
            "started_at": format!("2026-03-1{i}T09:58:30.250Z"),
            "target": target,
            "direction": "in",
            "attack": "syn_flood",
            "duration_s": 89.75,
            "rungs": ["notify", "blackhole"],
            "prefixes": [format!("{target}/32")],
            "report": {"peak_pps": 12000 + i, "peak_bps": 3840000,
                "top_sources": [{"addr": "198.51.100.2", "packets": 900, "bytes": 36000}],
                "top_dst_ports": [[80, 900]]},
        }))
        .unwrap();
        let row = record.to_row().unwrap();
        assert!(store.record_attack(&row).unwrap());
        if i == 1 {
            assert!(!store.record_attack(&row).unwrap());
        }
    }
}

/// Latency minutes ending five minutes before `minute`: tenant 1's TCP
/// RTT, a probe, a busy queue.
fn write_latency(store: &mut dyn Store, minute: i64) {
    use std::time::Duration;
    let ms = |v: u64| Some(Duration::from_micros(v * 1000 + 17));
    let half = latency::rtt::RttFigures {
        samples: 120,
        min: ms(9),
        p50: ms(10),
        p95: ms(14),
        p99: ms(18),
        max: ms(30),
    };
    let rows = latency::Minutes {
        rtt: (1..=5)
            .map(|ago| latency::RttMinute {
                minute: minute - ago,
                tenant: 1,
                realm: 1,
                up: half,
                down: latency::rtt::RttFigures::default(),
                retransmits_up: ago as u64,
                retransmits_down: 0,
            })
            .collect(),
        probes: vec![latency::ProbeMinute {
            minute: minute - 2,
            probe: "national icmp 192.0.2.1".into(),
            sent: 60,
            lost: 6,
            p50: ms(11),
            max: ms(40),
            jitter: ms(2),
        }],
        queues: vec![latency::QueueMinute {
            minute: minute - 3,
            class: "lan0 1:10".into(),
            tenant: Some(2),
            label: "national down".into(),
            max_delay: Duration::from_millis(3_100),
            drops: 4,
            overlimits: 90,
            at_ceil: Duration::from_secs(12),
        }],
    };
    let r = store.append_latency(&rows).unwrap();
    assert_eq!((r.stored, r.refused.len()), (7, 0));
}

fn tollgate(dir: &Path, args: &[&str]) -> String {
    testkit::tollgate_in(env!("CARGO_BIN_EXE_tollgate"), dir, args)
}

/// `tollgate guard history --since SINCE --json` (no `--accounting`).
fn attacks(dir: &Path, since: &str) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["guard", "history", "--since", since, "--json", "-c"])
        .arg(dir.join("policy.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_STATE_DIR")
        .output()
        .expect("run tollgate");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn usage_realms_and_bill_read_the_same_from_clickhouse_as_from_sqlite() {
    let Some(server) = history_clickhouse::testing::server(
        "usage_realms_and_bill_read_the_same_from_clickhouse_as_from_sqlite",
    ) else {
        return;
    };
    let dir = Dir(std::env::temp_dir().join(format!("tg-clickhouse-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let (sqlite, ch) = (dir.0.join("sqlite"), dir.0.join("clickhouse"));
    for d in [&sqlite, &ch] {
        std::fs::create_dir_all(d.join("state")).unwrap();
        std::fs::write(d.join("accounting.toml"), "").unwrap();
    }
    std::fs::write(sqlite.join("policy.toml"), POLICY).unwrap();
    std::fs::write(
        ch.join("policy.toml"),
        format!(
            "{POLICY}\n[history]\nstore = \"clickhouse\"\nurl = \"{}\"\ndatabase = \"cli\"\n",
            server.url
        ),
    )
    .unwrap();
    let mut store = SqliteStore::open(
        &sqlite.join("state").join("history.sqlite"),
        &SqliteOptions::default(),
    )
    .unwrap();
    write(&mut store);
    let minute = jiff::Timestamp::now().as_second() / 60;
    write_latency(&mut store, minute);
    drop(store);
    let mut store = ClickHouseStore::open(&ClickHouseOptions {
        url: server.url.clone(),
        database: "cli".into(),
        ..ClickHouseOptions::default()
    })
    .unwrap();
    write(&mut store);
    write_latency(&mut store, minute);
    for args in [
        &["usage", "--period", "2026-03", "--json"][..],
        &["usage", "mixed", "--period", "2026-03", "--json"],
        &["realms", "--period", "2026-03", "--json"],
        &["bill", "--period", "2026-03", "--json"],
    ] {
        let (a, b) = (tollgate(&sqlite, args), tollgate(&ch, args));
        assert!(
            a.contains("steady") || a.contains("national"),
            "{args:?}: {a}"
        );
        assert_eq!(a, b, "{args:?}: the stores answer differently");
    }
    for d in [&sqlite, &ch] {
        tollgate(d, &["bill", "--period", "2026-03", "--freeze"]);
    }
    let args = ["bill", "--period", "2026-03", "--json"];
    let (a, b) = (tollgate(&sqlite, &args), tollgate(&ch, &args));
    assert!(a.contains("frozen"), "{a}");
    // The frozen bills carry when they were frozen: equal apart from it.
    let strip = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        serde_json::to_string(&v["bills"]).unwrap()
    };
    assert_eq!(strip(&a), strip(&b));
    // Latency minutes: the same rows from both (apart from `to`, now).
    for args in [
        &["latency", "--since", "1h", "--json"][..],
        &["latency", "steady", "--since", "1h", "--json"],
    ] {
        let rows = |s: &str| {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            (
                v["tcp_rtt"].clone(),
                v["probes"].clone(),
                v["queues"].clone(),
            )
        };
        // `latency` reads no settings file: no --accounting.
        let run = |d: &Path| {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .args(args)
                .arg("-c")
                .arg(d.join("policy.toml"))
                .arg("--state-dir")
                .arg(d.join("state"))
                .env_remove("TOLLGATE_CONFIG")
                .env_remove("TOLLGATE_STATE_DIR")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let (a, b) = (rows(&run(&sqlite)), rows(&run(&ch)));
        assert_eq!(a.0.as_array().unwrap().len(), 5, "{args:?}: {a:?}");
        assert_eq!(a.0[0]["up"]["p50_ms"], 10.017, "{a:?}");
        assert_eq!(a, b, "{args:?}: the stores answer differently");
    }
    let (a, b) = (attacks(&sqlite, "2026-03-01"), attacks(&ch, "2026-03-01"));
    assert!(a.contains("100.64.1.7") && a.contains("100.64.2.9"), "{a}");
    assert_eq!(a, b, "the stores' attacks differ");
    let attacks: serde_json::Value = serde_json::from_str(&attacks(&ch, "2026-03-11")).unwrap();
    assert_eq!(attacks.as_array().map(Vec::len), Some(1), "{attacks}");
    assert_eq!(attacks[0]["target"], "100.64.2.9", "{attacks}");
    assert_eq!(
        attacks[0]["started_at"], "2026-03-11T09:58:30.25Z",
        "{attacks}"
    );
    assert_eq!(
        attacks[0]["report"]["top_sources"][0]["addr"], "198.51.100.2",
        "{attacks}"
    );
    // The ClickHouse side never touched a SQLite file.
    assert!(!ch.join("state").join("history.sqlite").exists());
}
