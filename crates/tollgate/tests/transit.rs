//! `tollgate transit` on a history written here: a DST month in the
//! upstream's zone (which is not the tenants'), traffic of a tenant and of
//! no tenant, and the figures worked out by hand.

use accounting::{Accountant, Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store};
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use std::process::Command;

/// Bytes of one 5-minute sample at 1 Mbit/s.
const MBIT: u64 = 37_500_000;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.national]
id = 1

[realms.international]
id = 2

[plans.basic]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "5mbit", ceil = "10mbit" }

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.0.0/24"]

[billing]
timezone = "UTC"

[[transit.upstreams]]
name = "carrier"
commit = "10mbit"
timezone = "Europe/Berlin"

[[transit.upstreams]]
name = "national"
realms = ["national"]
commit = "3mbit"
method = "out"
timezone = "Europe/Berlin"
"#;

fn sample(slot: i64, tenant: u32, realm: u16, direction: Direction, bytes: u64) -> Sample {
    Sample {
        slot: Slot(slot),
        key: UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction,
            band: Band::Whole,
            source: accounting::Source::Kernel,
        },
        bytes,
        packets: 1,
    }
}

#[test]
fn transit_reports_the_budget_of_a_dst_month_in_the_upstreams_zone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut store =
        SqliteStore::open(&state.join("history.sqlite"), &SqliteOptions::default()).unwrap();
    let blob = Accountant::new(accounting::Config::default())
        .state()
        .encode();
    // March 2026 in Berlin: 1 March 00:00 CET (28 Feb 23:00 UTC) to
    // 1 April 00:00 CEST (31 March 22:00 UTC), 743 hours, 8916 slots.
    // Tenant 1: 5 Mbit/s down to realm 2 and 1 Mbit/s up to realm 1 in
    // every slot. Every 20th slot, 400 of them, 15 Mbit/s of no tenant's
    // down on top: 20 Mbit/s there.
    let first = Slot::containing("2026-02-28T23:00:00Z".parse::<Timestamp>().unwrap()).0;
    let n = 8916;
    for (sequence, day) in (0..n).collect::<Vec<i64>>().chunks(288).enumerate() {
        let mut samples = Vec::new();
        for &i in day {
            let s = first + i;
            samples.push(sample(s, 1, 2, Direction::Down, 5 * MBIT));
            samples.push(sample(s, 1, 1, Direction::Up, MBIT));
            if i % 20 == 0 && i / 20 < 400 {
                samples.push(sample(s, 0, 0, Direction::Down, 15 * MBIT));
            }
        }
        samples.sort_by_key(|x| (x.slot, x.key));
        let coverage: Vec<SlotCoverage> = day
            .iter()
            .map(|&i| SlotCoverage {
                slot: Slot(first + i),
                status: SlotStatus::Measured,
            })
            .collect();
        store
            .append(&Batch {
                sequence: sequence as u64 + 1,
                samples: &samples,
                coverage: &coverage,
                state: &blob,
            })
            .unwrap();
    }
    drop(store);
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .arg("-c")
            .arg(dir.path().join("policy.toml"))
            .arg("--state-dir")
            .arg(&state)
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_STATE_DIR")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let v: serde_json::Value =
        serde_json::from_str(&run(&["transit", "--period", "2026-03", "--json"])).unwrap();
    let carrier = &v["upstreams"][0];
    assert_eq!(carrier["name"], "carrier");
    assert_eq!(carrier["period"]["label"], "2026-03");
    let s = &carrier["status"];
    // ⌈0.95 × 8916⌉ = 8471, so 445 samples may be above the commit; 400
    // are (20 Mbit/s in), 45 left, and rank 8471 of in is a 5 Mbit/s one.
    assert_eq!(s["expected"], 8916);
    assert_eq!(s["elapsed"], 8916);
    assert_eq!(s["budget"], 445);
    assert_eq!(s["spent"], 400);
    assert_eq!(s["left"], 45);
    assert_eq!(s["so_far"]["rate"], 5_000_000);
    assert_eq!(s["commit"], 10_000_000);
    assert_eq!(carrier["running"], false);
    // The national upstream bills out of realm 1 only: 1 Mbit/s, nothing
    // above its 3 Mbit/s, and no tenant's traffic is not its.
    let national = &v["upstreams"][1]["status"];
    assert_eq!(national["spent"], 0);
    assert_eq!(national["so_far"]["rate"], 1_000_000);
    let text = run(&["transit", "--period", "2026-03"]);
    println!("{text}");
    assert!(text.contains("upstream carrier on wan0"), "{text}");
    assert!(
        text.contains("445 samples above the commit allowed"),
        "{text}"
    );
    assert!(text.contains("400 spent, 45 left"), "{text}");
}
