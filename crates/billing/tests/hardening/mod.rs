//! Issue 12: true sums past 2^64 (item 3), one spelling of the rank rules
//! (item 19), no Debug text in bills (item 18).

use super::{sample, utc, UNIT};
use accounting::{Direction, SlotCoverage, SlotStatus};
use billing::*;
use net_types::{Rate, RealmId, Size, TenantId};

/// The figure: a period whose samples add up to
/// 55,340,232,221,128,654,848 bytes (3 × 2^64). The bill carries it, not
/// 18,446,744,073,709,551,615.
#[test]
fn a_volume_past_2_64_carries_the_true_value() {
    const TRUE_TOTAL: u128 = 55_340_232_221_128_654_848;
    let p = utc().period(2026, 4).unwrap();
    let mut samples = Vec::new();
    let mut slot = p.first_slot();
    for _ in 0..6 {
        samples.push(sample(slot, 7, 1, Direction::Down, 1 << 63));
        slot = slot.next();
    }
    let rules = [ChargeRule {
        name: "total".into(),
        realms: RealmSelection::All,
        percentile: Some(PercentileRule::default()),
        commit: None,
        volume: VolumeRule {
            counts: VolumeCounts::Both,
            quota: Some(Size::from_bytes(1 << 40)),
        },
    }];
    let bill = bill_tenant(&p, TenantId(7), &rules, &samples, &[]).unwrap();
    let v = &bill.lines[0].volume;
    assert_eq!(v.used.bytes(), TRUE_TOTAL);
    assert_eq!(v.down.bytes(), TRUE_TOTAL);
    assert_eq!(v.over.unwrap().bytes(), TRUE_TOTAL - (1 << 40));
    let text = bill.to_text();
    assert!(text.contains("55340232221128654848"), "{text}");
    // Frozen as JSON and read back, still exact (past 64 bits a count is
    // written as its decimal text, which no JSON reader rounds).
    let json = serde_json::to_string(&bill).unwrap();
    assert!(json.contains("\"used\":\"55340232221128654848\""), "{json}");
    let back: TenantBill = serde_json::from_str(&json).unwrap();
    assert_eq!(back, bill);
}

/// One tenant's bytes in one slot past 2^64 − 1 (18 EB in five minutes) is
/// refused with the slot named, not clamped.
#[test]
fn a_slot_past_2_64_is_refused_with_its_place() {
    let p = utc().period(2026, 4).unwrap();
    let slot = p.first_slot().next();
    let samples = [
        sample(slot, 7, 1, Direction::Up, u64::MAX - 5),
        sample(slot, 7, 2, Direction::Up, 10),
    ];
    let rules = [ChargeRule {
        name: "total".into(),
        realms: RealmSelection::All,
        percentile: None,
        commit: None,
        volume: VolumeRule::default(),
    }];
    let e = bill_tenant(&p, TenantId(7), &rules, &samples, &[]).unwrap_err();
    assert!(e.to_string().contains("2026-04-01T00:05:00Z"), "{e}");
    assert!(e.to_string().contains("tenant 7"), "{e}");
}

/// The bill's JSON, the policy and the printed rule name the rank rules
/// the same way: `nearest_rank`, `vnstat`, `librenms`.
#[test]
fn rank_rules_have_one_spelling_everywhere() {
    for (rule, name) in [
        (RankRule::NearestRank, "nearest_rank"),
        (RankRule::VnStat, "vnstat"),
        (RankRule::LibreNms, "librenms"),
    ] {
        assert_eq!(serde_json::to_string(&rule).unwrap(), format!("\"{name}\""));
        assert_eq!(rule.to_string(), name);
        let back: RankRule = serde_json::from_str(&format!("\"{name}\"")).unwrap();
        assert_eq!(back, rule);
    }
}

/// Every value of every rule enum round-trips through the policy's
/// spelling (`crates/policy/src/billing.rs`: METHODS, RANKS, MISSING,
/// VOLUMES) by `FromStr`, `Display` and serde, and the names are listed
/// once each.
#[test]
fn every_rule_name_round_trips_through_the_policy_spelling() {
    fn check<T>(policy: &[(T, &str)])
    where
        T: Named
            + std::fmt::Debug
            + PartialEq
            + std::fmt::Display
            + std::str::FromStr<Err = BillingError>
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        assert_eq!(T::NAMES.len(), policy.len(), "{}", T::WHAT);
        for (value, name) in policy {
            assert_eq!(value.to_string(), *name);
            assert_eq!(name.parse::<T>().unwrap(), *value);
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *value);
        }
        let e = "no_such_rule".parse::<T>().unwrap_err();
        assert_eq!(e.field, T::WHAT);
        assert!(e.problem.contains(policy[0].1), "{e}");
    }
    check(&[
        (Method::MaxOfDirections, "max_of_directions"),
        (Method::SumOfDirections, "sum_of_directions"),
        (Method::PerSampleMax, "per_sample_max"),
    ]);
    check(&[
        (RankRule::NearestRank, "nearest_rank"),
        (RankRule::VnStat, "vnstat"),
        (RankRule::LibreNms, "librenms"),
    ]);
    check(&[
        (MissingSamples::ZeroAgainstExpected, "zero_against_expected"),
        (MissingSamples::Skip, "skip"),
    ]);
    check(&[
        (VolumeCounts::Both, "both"),
        (VolumeCounts::Down, "down"),
        (VolumeCounts::Up, "up"),
    ]);
}

/// Bills frozen by older builds spelled two rank rules `vn_stat` and
/// `libre_nms`; they still read, and are written the one way from then on.
#[test]
fn bills_frozen_with_the_old_spelling_still_read() {
    for (old, rule) in [
        ("vn_stat", RankRule::VnStat),
        ("libre_nms", RankRule::LibreNms),
    ] {
        let back: RankRule = serde_json::from_str(&format!("\"{old}\"")).unwrap();
        assert_eq!(back, rule);
        assert_ne!(serde_json::to_string(&back).unwrap(), format!("\"{old}\""));
    }
}

/// A bill with every kind of charge (all realms, some, all but some; a
/// percentile with a commit; a quota) as text: no Debug formatting.
#[test]
fn a_bill_as_text_has_no_debug_formatting() {
    let p = utc().period(2026, 4).unwrap();
    let mut samples = Vec::new();
    let mut coverage = Vec::new();
    let mut slot = p.first_slot();
    while slot < p.end_slot() {
        samples.push(sample(slot, 7, 1, Direction::Up, 2 * UNIT));
        samples.push(sample(slot, 7, 2, Direction::Down, 3 * UNIT));
        coverage.push(SlotCoverage {
            slot,
            status: SlotStatus::Measured,
        });
        slot = slot.next();
    }
    let percentile = |rank, method, missing| {
        Some(PercentileRule {
            rank,
            method,
            missing,
            ..PercentileRule::default()
        })
    };
    let rules = [
        ChargeRule {
            name: "total".into(),
            realms: RealmSelection::All,
            percentile: percentile(
                RankRule::VnStat,
                Method::MaxOfDirections,
                MissingSamples::Skip,
            ),
            commit: Some(Rate::from_bps(1_000).unwrap()),
            volume: VolumeRule {
                counts: VolumeCounts::Up,
                quota: Some(Size::from_bytes(1 << 30)),
            },
        },
        ChargeRule {
            name: "international".into(),
            realms: RealmSelection::Only(vec![RealmId(2), RealmId(3)]),
            percentile: percentile(
                RankRule::LibreNms,
                Method::SumOfDirections,
                MissingSamples::ZeroAgainstExpected,
            ),
            commit: Some(Rate::from_bps(1_000_000).unwrap()),
            volume: VolumeRule::default(),
        },
        ChargeRule {
            name: "transit".into(),
            realms: RealmSelection::AllExcept(vec![RealmId(1)]),
            percentile: percentile(
                RankRule::NearestRank,
                Method::PerSampleMax,
                MissingSamples::Skip,
            ),
            commit: None,
            volume: VolumeRule {
                counts: VolumeCounts::Down,
                quota: None,
            },
        },
    ];
    let bill = bill_tenant(&p, TenantId(7), &rules, &samples, &coverage).unwrap();
    let text = bill.to_text();
    for debug in [
        "RealmId",
        "Only(",
        "All)",
        "(All",
        "AllExcept",
        "Some(",
        "None",
        "{",
        "VnStat",
        "LibreNms",
        "NearestRank",
        "MaxOfDirections",
        "SumOfDirections",
        "PerSampleMax",
        "ZeroAgainstExpected",
        "Skip",
    ] {
        assert!(!text.contains(debug), "`{debug}` in\n{text}");
    }
    assert!(text.contains("total (all realms):"), "{text}");
    assert!(text.contains("international (realms 2, 3):"), "{text}");
    assert!(text.contains("transit (all realms but realm 1):"), "{text}");
}

/// Realms named by the caller (the policy), and overage decisions, read as
/// words too.
#[test]
fn realm_names_and_decisions_read_as_words() {
    let name = |r: RealmId| match r.0 {
        1 => Some("national".to_string()),
        2 => Some("international".to_string()),
        _ => None,
    };
    assert_eq!(RealmSelection::All.describe(&name), "all realms");
    assert_eq!(
        RealmSelection::Only(vec![RealmId(2)]).describe(&name),
        "international"
    );
    assert_eq!(
        RealmSelection::AllExcept(vec![RealmId(1)]).describe(&name),
        "all realms but national"
    );
    assert_eq!(
        RealmSelection::Only(vec![RealmId(2), RealmId(9)]).describe(&name),
        "realms international, 9"
    );
    assert_eq!(
        RealmSelection::Only(vec![RealmId(9)]).to_string(),
        "realm 9"
    );
    let p = utc().period(2026, 4).unwrap();
    let rules = [ChargeRule {
        name: "international".into(),
        realms: RealmSelection::Only(vec![RealmId(2)]),
        percentile: None,
        commit: None,
        volume: VolumeRule::default(),
    }];
    let bill = bill_tenant(&p, TenantId(7), &rules, &[], &[]).unwrap();
    assert!(bill
        .to_text_named(&name)
        .contains("  international (international):"));
    let commit = Rate::from_bps(1_000).unwrap();
    for d in [
        Decision::MoveCertain {
            floor: BitRate(2_000),
            commit,
        },
        Decision::MoveProjectedRate {
            projected: BitRate(3_000),
            threshold: BitRate(1_100),
        },
        Decision::MoveProjectedVolume {
            projected: ByteCount(5 << 64),
            threshold: ByteCount(1_000),
        },
        Decision::StayTooEarly {
            elapsed: 5,
            needed: 288,
        },
        Decision::Stay,
    ] {
        let text = d.to_string();
        assert!(text.starts_with(if d.moves() { "move: " } else { "stay: " }));
        for debug in ["{", "BitRate", "ByteCount", "Move", "Stay"] {
            assert!(!text.contains(debug), "`{debug}` in {text}");
        }
    }
}
