//! Issue 12, item 1 and acceptance A1, at the command line: `tollgate
//! usage --period P --json` and `tollgate bill --period P --json` agree to
//! the byte for every tenant, realm and direction over closed periods in
//! UTC, Europe/Berlin (October 2026, clocks back on the 25th; March 2026,
//! forward on the 29th), Asia/Kathmandu (+05:45) and Australia/Lord_Howe
//! (+10:30/+11:00, a half-hour change on 4 October 2026), and both equal
//! the sum of the samples whose slot starts in the period, computed here
//! from the samples themselves.
//!
//! `usage` once widened every range by an hour "so that the current hour
//! is in": October counted the first hour of November, and in zones whose
//! offset is not whole hours every day was off.
//!
//! No root: the history is written directly with the `history` crate into
//! a temporary state directory (as the daemon commits it: one batch per
//! day of slots, the accountant's state with each), the first weeks
//! compacted into day rows as the daemon's maintenance does; then the real
//! binary reads it.

use accounting::{Accountant, Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The issue's figure: 37,500,000 bytes in every 5-minute slot.
const PER_SLOT: u64 = 37_500_000;

const ZONES: [&str; 4] = [
    "UTC",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
];

/// Four tenants (the fourth sends nothing), three realms.
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

[realms.cdn]
id = 3
prefixes = ["203.0.113.0/24"]

[plans.home]
down = { rate = "1gbit", ceil = "2gbit" }
up = { rate = "1gbit", ceil = "2gbit" }

[[tenants]]
id = 1
name = "steady"
plan = "home"
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2
name = "mixed"
plan = "home"
prefixes = ["100.64.2.0/24"]

[[tenants]]
id = 3
name = "gappy"
plan = "home"
prefixes = ["100.64.3.0/24"]

[[tenants]]
id = 4
name = "idle"
plan = "home"
prefixes = ["100.64.4.0/24"]

[billing]
timezone = "ZONE"
"#;

fn key(tenant: u32, realm: u16, direction: Direction, band: Band) -> UsageKey {
    UsageKey {
        tenant: TenantId(tenant),
        realm: RealmId(realm),
        direction,
        band,
        source: accounting::Source::Kernel,
    }
}

/// The samples of one slot: tenant 1 steady at 37.5 MB down (national);
/// tenant 2 in every realm and both directions, in two bands, with bytes
/// that vary by slot; tenant 3 at 37.5 MB up with every fifth slot
/// missing, and a varying download from the CDN.
fn slot_samples(slot: i64, out: &mut Vec<Sample>) {
    let mut push = |k: UsageKey, bytes: u64| {
        out.push(Sample {
            slot: Slot(slot),
            key: k,
            bytes,
            packets: bytes / 1500 + 1,
        });
    };
    let s = slot as u64;
    push(key(1, 1, Direction::Down, Band::Whole), PER_SLOT);
    push(key(2, 1, Direction::Down, Band::Normal), PER_SLOT);
    push(key(2, 1, Direction::Down, Band::Bulk), 1 + s % 7_919);
    push(
        key(2, 2, Direction::Down, Band::Normal),
        PER_SLOT / 3 + s % 1_000,
    );
    push(key(2, 2, Direction::Up, Band::Normal), 1_250_000 + s % 97);
    push(key(2, 3, Direction::Down, Band::Normal), (s % 89) * 1_000);
    push(key(2, 3, Direction::Up, Band::Bulk), 7);
    if slot % 5 != 0 {
        push(key(3, 1, Direction::Up, Band::Whole), PER_SLOT);
    }
    push(
        key(3, 3, Direction::Down, Band::Whole),
        PER_SLOT - s % 1_000,
    );
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The test's folder, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the history: every slot from two days before to two days after
/// March and October 2026 (in UTC, so every zone's month and the local
/// days around it are covered), a batch per day of slots, and compacts
/// the days before 15 October into day rows. Returns every sample.
fn write_history(state: &Path) -> Vec<Sample> {
    std::fs::create_dir_all(state).unwrap();
    let mut store =
        SqliteStore::open(&state.join("history.sqlite"), &SqliteOptions::default()).unwrap();
    let accountant_state = Accountant::new(accounting::Config::default())
        .state()
        .encode();
    let mut all = Vec::new();
    let mut sequence = 0;
    for (from, to) in [
        ("2026-02-27T00:00:00Z", "2026-04-03T00:00:00Z"),
        ("2026-09-29T00:00:00Z", "2026-11-03T00:00:00Z"),
    ] {
        let (first, end) = (Slot::containing(ts(from)).0, Slot::containing(ts(to)).0);
        let slots: Vec<i64> = (first..end).collect();
        for day in slots.chunks(288) {
            let mut samples = Vec::new();
            for &s in day {
                slot_samples(s, &mut samples);
            }
            let coverage: Vec<SlotCoverage> = day
                .iter()
                .map(|&s| SlotCoverage {
                    slot: Slot(s),
                    status: SlotStatus::Measured,
                })
                .collect();
            sequence += 1;
            store
                .append(&Batch {
                    sequence,
                    samples: &samples,
                    coverage: &coverage,
                    state: &accountant_state,
                })
                .unwrap();
            all.extend(samples);
        }
    }
    while !store
        .compact(ts("2026-10-15T00:00:00Z"), 100_000)
        .unwrap()
        .done
    {}
    all
}

/// Bytes per (tenant, realm, direction) of the samples whose slot starts
/// in the local month `month` of 2026 in `zone`, added up here.
fn expected(samples: &[Sample], zone: &str, month: i8) -> BTreeMap<(u64, u64, &'static str), u128> {
    let tz = TimeZone::get(zone).unwrap();
    let start = Date::new(2026, month, 1)
        .unwrap()
        .to_zoned(tz.clone())
        .unwrap();
    let end = Date::new(2026, month + 1, 1).unwrap().to_zoned(tz).unwrap();
    let (start, end) = (start.timestamp().as_second(), end.timestamp().as_second());
    let mut out = BTreeMap::new();
    for s in samples {
        let at = s.slot.0 * 300;
        if at < start || at >= end {
            continue;
        }
        let dir = match s.key.direction {
            Direction::Down => "down",
            Direction::Up => "up",
        };
        *out.entry((u64::from(s.key.tenant.0), u64::from(s.key.realm.0), dir))
            .or_default() += u128::from(s.bytes);
    }
    out
}

/// A byte count from JSON: a number, or decimal text past 2^64.
fn bytes(v: &serde_json::Value) -> u128 {
    match v {
        serde_json::Value::Number(n) => u128::from(n.as_u64().expect("a whole number")),
        serde_json::Value::String(s) => s.parse().expect("a decimal count"),
        _ => panic!("not a byte count: {v}"),
    }
}

fn tollgate(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = testkit::tollgate_in(env!("CARGO_BIN_EXE_tollgate"), dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("tollgate {args:?}: {e}\n{out}"))
}

#[test]
fn usage_and_bill_agree_to_the_byte_in_every_zone() {
    let dir = Dir(std::env::temp_dir().join(format!("tg-usage-bill-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("accounting.toml"), "").unwrap();
    let samples = write_history(&dir.0.join("state"));

    for zone in ZONES {
        std::fs::write(dir.0.join("policy.toml"), POLICY.replace("ZONE", zone)).unwrap();
        for (month, label) in [(3, "2026-03"), (10, "2026-10")] {
            let want = expected(&samples, zone, month);
            let total = |t: u64, dir: Option<&str>| -> u128 {
                want.iter()
                    .filter(|((tt, _, d), _)| *tt == t && dir.is_none_or(|x| x == *d))
                    .map(|(_, v)| v)
                    .sum()
            };
            // The figure the issue measured: tenant 1's month is exactly its
            // slots × 37.5 MB (8,928 slots in a 31-day month, 12 more or
            // fewer in a DST month, 6 fewer at Lord Howe in October).
            let tz = TimeZone::get(zone).unwrap();
            let month_slots = (Date::new(2026, month + 1, 1)
                .unwrap()
                .to_zoned(tz.clone())
                .unwrap()
                .timestamp()
                .as_second()
                - Date::new(2026, month, 1)
                    .unwrap()
                    .to_zoned(tz)
                    .unwrap()
                    .timestamp()
                    .as_second())
                / 300;
            assert_eq!(
                total(1, None),
                u128::from(PER_SLOT) * month_slots as u128,
                "{zone} {label}"
            );

            let usage = tollgate(&dir.0, &["usage", "--period", label, "--json"]);
            assert_eq!(usage["range"]["zone"], zone, "{usage}");
            assert_eq!(usage["range"]["label"], label, "{usage}");
            let mut got: BTreeMap<(u64, u64, &'static str), u128> = BTreeMap::new();
            for t in usage["tenants"].as_array().unwrap() {
                let tenant = t["tenant"].as_u64().unwrap();
                for r in t["totals"].as_array().unwrap() {
                    let realm = r["realm"].as_u64().unwrap();
                    for dir in ["down", "up"] {
                        let b = bytes(&r[format!("{dir}_bytes")]);
                        if b > 0 {
                            got.insert((tenant, realm, dir), b);
                        }
                    }
                }
                // Its local days are the month's, every one exact.
                let days = t["days"].as_array().unwrap();
                let prefix = format!("{label}-");
                assert!(
                    days.iter()
                        .all(|d| d["day"].as_str().unwrap().starts_with(&prefix)
                            && d["exact"] == true),
                    "{zone} {label}: tenant {tenant}'s days: {days:?}"
                );
            }
            assert_eq!(got, want, "usage in {zone} for {label}");

            let bill = tollgate(&dir.0, &["bill", "--period", label, "--json"]);
            assert_eq!(bill["period"]["label"], label, "{bill}");
            assert!(
                bill["status"].as_str().unwrap().starts_with("not frozen"),
                "{bill}"
            );
            let bills = bill["bills"].as_array().unwrap();
            assert_eq!(bills.len(), 4, "{bill}");
            for b in bills {
                let tenant = b["bill"]["tenant"].as_u64().unwrap();
                let line = &b["bill"]["lines"][0];
                assert_eq!(line["name"], "total", "{b}");
                let v = &line["volume"];
                let from_usage = |dir: &str| -> u128 {
                    got.iter()
                        .filter(|((t, _, d), _)| *t == tenant && *d == dir)
                        .map(|(_, v)| v)
                        .sum()
                };
                for (field, dir) in [("down", Some("down")), ("up", Some("up")), ("used", None)] {
                    let usage_says = match dir {
                        Some(d) => from_usage(d),
                        None => from_usage("down") + from_usage("up"),
                    };
                    assert_eq!(
                        bytes(&v[field]),
                        usage_says,
                        "{zone} {label}: tenant {tenant}'s bill {field} ≠ usage"
                    );
                    assert_eq!(
                        usage_says,
                        total(tenant, dir),
                        "{zone} {label}: tenant {tenant}'s {field} ≠ its samples"
                    );
                }
                // Every slot of the period was measured.
                for (field, n) in [
                    ("expected", month_slots),
                    ("seen", month_slots),
                    ("missing", 0),
                ] {
                    assert_eq!(
                        v["coverage"][field].as_i64(),
                        Some(n),
                        "{zone} {label}: {v}"
                    );
                }
            }
            eprintln!(
                "{zone} {label}: usage = bill = samples for 4 tenants; tenant 1: {} B",
                total(1, None)
            );
        }
    }
}
