//! Billing against hand-computed vectors.
//!
//! Rates are chosen so that the arithmetic is easy to redo by hand: one
//! "unit" of 37,500 bytes in a 5-minute sample is 37,500 × 8 / 300 = 1,000
//! bit/s.

use accounting::{
    Accountant, Band, Config, Direction, ObjectIdentity, Reading, Sample, SlotCoverage, SlotStatus,
    Source, UsageKey,
};
use billing::*;
use jiff::Timestamp;
use net_types::{Rate, RealmId, Size, TenantId};

mod hardening;

const UNIT: u64 = 37_500;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn utc() -> BillingCycle {
    BillingCycle::new(1, "UTC").unwrap()
}

/// A series of `n` slots with the given per-slot units, all measured.
fn series(down: &[u64], up: &[u64]) -> Series {
    with_status(down, up, vec![Some(SlotStatus::Measured); down.len()])
}

/// Like [`series`], with each slot's status given.
fn with_status(down: &[u64], up: &[u64], status: Vec<Option<SlotStatus>>) -> Series {
    Series::new(
        accounting::Slot(0),
        down.iter().map(|u| u * UNIT).collect(),
        up.iter().map(|u| u * UNIT).collect(),
        status,
    )
    .unwrap()
}

/// A measured series of a period from per-slot bytes down and up.
fn measured(p: &Period, down: Vec<u64>, up: Vec<u64>) -> Series {
    let n = down.len();
    Series::new(
        p.first_slot(),
        down,
        up,
        vec![Some(SlotStatus::Measured); n],
    )
    .unwrap()
}

fn rule(method: Method) -> PercentileRule {
    PercentileRule {
        method,
        ..PercentileRule::default()
    }
}

// ---- periods ----

#[test]
fn months_of_28_29_30_and_31_days() {
    let c = utc();
    assert_eq!(c.period(2026, 2).unwrap().expected_samples(), 28 * 288);
    assert_eq!(c.period(2028, 2).unwrap().expected_samples(), 29 * 288);
    assert_eq!(c.period(2026, 4).unwrap().expected_samples(), 30 * 288);
    assert_eq!(c.period(2026, 1).unwrap().expected_samples(), 31 * 288);
    let p = c.period(2026, 12).unwrap();
    assert_eq!(
        (p.start, p.end),
        (ts("2026-12-01T00:00Z"), ts("2027-01-01T00:00Z"))
    );
}

#[test]
fn berlin_march_has_one_hour_less_and_october_one_more() {
    let c = BillingCycle::new(1, "Europe/Berlin").unwrap();
    let march = c.period(2026, 3).unwrap();
    // 00:00 CET is 23:00Z the day before; 00:00 CEST is 22:00Z.
    assert_eq!(march.start, ts("2026-02-28T23:00Z"));
    assert_eq!(march.end, ts("2026-03-31T22:00Z"));
    assert_eq!(march.expected_samples(), 31 * 288 - 12); // 743 h = 8916
    assert_eq!(march.hours(), 743.0);
    let october = c.period(2026, 10).unwrap();
    assert_eq!(october.start, ts("2026-09-30T22:00Z"));
    assert_eq!(october.end, ts("2026-10-31T23:00Z"));
    assert_eq!(october.expected_samples(), 31 * 288 + 12); // 745 h = 8940
}

#[test]
fn billing_day_15_in_berlin() {
    let c = BillingCycle::new(15, "Europe/Berlin").unwrap();
    let p = c.period_labelled("2026-03").unwrap();
    assert_eq!(p.start, ts("2026-03-14T23:00Z"));
    assert_eq!(p.end, ts("2026-04-14T22:00Z"));
    assert_eq!(p.expected_samples(), 8916);
    // February 15 to March 15: 28 days, no DST change.
    assert_eq!(c.period(2026, 2).unwrap().expected_samples(), 8064);
    // 00:30 local on March 15 is in the March period; 23:30 on the 14th is not.
    assert_eq!(
        c.period_containing(ts("2026-03-14T23:30Z")).unwrap().label,
        "2026-03"
    );
    assert_eq!(
        c.period_containing(ts("2026-03-14T22:30Z")).unwrap().label,
        "2026-02"
    );
    // Across a year boundary.
    assert_eq!(
        c.period_containing(ts("2027-01-10T12:00Z")).unwrap().label,
        "2026-12"
    );
}

#[test]
fn bad_cycle_and_period_input_names_the_field() {
    let e = BillingCycle::new(29, "UTC").unwrap_err();
    assert_eq!(e.field, "billing_day");
    let e = BillingCycle::new(0, "UTC").unwrap_err();
    assert_eq!(e.field, "billing_day");
    let e = BillingCycle::new(1, "Mars/Olympus_Mons").unwrap_err();
    assert_eq!(e.field, "timezone");
    assert!(e.to_string().contains("Mars/Olympus_Mons"));
    for bad in ["2026-13", "2026-1", "26-01", "november"] {
        assert_eq!(
            utc().period_labelled(bad).unwrap_err().field,
            "period",
            "{bad}"
        );
    }
}

// ---- the three methods ----

#[test]
fn the_three_methods_on_one_vector() {
    // 20 slots: down 1..=20 units, up 20..=1 units.
    let down: Vec<u64> = (1..=20).collect();
    let up: Vec<u64> = (1..=20).rev().collect();
    let s = series(&down, &up);
    // Nearest rank of 20: ⌈19⌉ = 19th. down sorted 1..20 → 19; up too.
    let f = percentile(&s, &rule(Method::MaxOfDirections));
    assert_eq!(f.rate(), BitRate(19_000));
    assert_eq!(f.down.unwrap().rate, BitRate(19_000));
    assert_eq!(f.up.unwrap().rate, BitRate(19_000));
    assert_eq!(f.value.unwrap().rank, 19);
    // in+out is 21 units in every slot.
    assert_eq!(
        percentile(&s, &rule(Method::SumOfDirections)).rate(),
        BitRate(21_000)
    );
    // max(in, out): 20,19,…,11,11,…,20 → sorted 11,11,…,20,20 → 19th is 20.
    assert_eq!(
        percentile(&s, &rule(Method::PerSampleMax)).rate(),
        BitRate(20_000)
    );
}

#[test]
fn max_of_directions_reports_the_larger_direction() {
    let s = series(&[1, 2, 3], &[4, 5, 6]);
    let f = percentile(&s, &rule(Method::MaxOfDirections));
    // n = 3: ⌈2.85⌉ = 3rd: down 3, up 6.
    assert_eq!(f.billed_direction, Some(Direction::Up));
    assert_eq!(f.rate(), BitRate(6_000));
}

// ---- missing samples ----

#[test]
fn missing_samples_zero_against_expected_or_skipped() {
    // 20 expected, the last two never observed.
    let down: Vec<u64> = (1..=18).chain([0, 0]).collect();
    let mut status = vec![Some(SlotStatus::Measured); 20];
    status[18] = None;
    status[19] = None;
    let s = with_status(&down, &[0; 20], status);
    let carrier = rule(Method::MaxOfDirections);
    let f = percentile(&s, &carrier);
    // n = 20, rank 19 of [0, 0, 1..18] → 17.
    assert_eq!(f.rate(), BitRate(17_000));
    assert_eq!(
        (f.coverage.expected, f.coverage.seen, f.coverage.missing),
        (20, 18, 2)
    );
    let skip = PercentileRule {
        missing: MissingSamples::Skip,
        ..carrier
    };
    let f = percentile(&s, &skip);
    // n = 18, ⌈17.1⌉ = 18th of 1..18 → 18.
    assert_eq!(f.rate(), BitRate(18_000));
    assert_eq!(f.value.unwrap().of, 18);
    assert!(f.explanation.contains("left out"));
}

#[test]
fn nothing_seen_and_skip_gives_no_value() {
    let s = with_status(&[0; 5], &[0; 5], vec![None; 5]);
    let f = percentile(
        &s,
        &PercentileRule {
            missing: MissingSamples::Skip,
            ..PercentileRule::default()
        },
    );
    assert_eq!(f.value, None);
    assert_eq!(f.rate(), BitRate(0));
    assert!(f.explanation.contains("no sample to rank"));
}

// ---- ties and tiny n ----

#[test]
fn ties_and_tiny_n() {
    // All equal: any rank gives the value.
    assert_eq!(
        percentile(&series(&[5; 7], &[0; 7]), &PercentileRule::default()).rate(),
        BitRate(5_000)
    );
    // One burst in 20 samples is the top 5%: free.
    let mut v = vec![0; 19];
    v.push(100);
    assert_eq!(
        percentile(&series(&v, &[0; 20]), &PercentileRule::default()).rate(),
        BitRate(0)
    );
    // One burst in 19 samples: ⌈18.05⌉ = 19th, the burst is billed.
    let mut v = vec![0; 18];
    v.push(100);
    assert_eq!(
        percentile(&series(&v, &[0; 19]), &PercentileRule::default()).rate(),
        BitRate(100_000)
    );
    // n = 1.
    let f = percentile(&series(&[3], &[1]), &PercentileRule::default());
    assert_eq!(
        (f.rate(), f.value.unwrap().rank, f.value.unwrap().of),
        (BitRate(3_000), 1, 1)
    );
}

#[test]
fn rank_rules_on_a_31_day_month_differ_by_one() {
    let p = utc().period(2026, 1).unwrap();
    let n = p.expected_samples();
    // Slot i carries i bytes: the k-th smallest is k − 1.
    let s = measured(&p, (0..n as u64).collect(), vec![0; n]);
    let by = |rank| {
        percentile(
            &s,
            &PercentileRule {
                rank,
                ..PercentileRule::default()
            },
        )
        .value
        .unwrap()
        .bytes
    };
    // 0.95 × 8928 = 8481.6.
    assert_eq!(by(RankRule::NearestRank), 8481);
    assert_eq!(by(RankRule::VnStat), 8481);
    assert_eq!(by(RankRule::LibreNms), 8480);
}

#[test]
fn an_october_dst_month_ranks_among_8940() {
    let p = BillingCycle::new(1, "Europe/Berlin")
        .unwrap()
        .period(2026, 10)
        .unwrap();
    let n = p.expected_samples() as u64;
    let s = measured(&p, vec![0; n as usize], (0..n).map(|i| i * UNIT).collect());
    let f = percentile(&s, &PercentileRule::default());
    // ⌈0.95 × 8940⌉ = 8493rd → 8492 units.
    assert_eq!(f.value.unwrap().rank, 8493);
    assert_eq!(f.rate(), BitRate(8_492_000));
    assert!(f.explanation.contains("8940 expected"), "{}", f.explanation);
}

// ---- commit, realms, volume ----

#[test]
fn overage_in_rate_and_percent() {
    // 12.5 Mbit/s for 300 s is 468,750,000 bytes.
    let s2 = Series::new(
        accounting::Slot(0),
        vec![468_750_000],
        vec![0],
        vec![Some(SlotStatus::Measured)],
    )
    .unwrap();
    let f = percentile(&s2, &PercentileRule::default());
    let o = Overage::of(&f.value.unwrap(), Rate::from_bps(10_000_000).unwrap());
    assert_eq!(o.over, BitRate(2_500_000));
    assert_eq!(o.over_percent, 25.0);
    assert!(o.is_over());
    let o = Overage::of(&f.value.unwrap(), Rate::from_bps(20_000_000).unwrap());
    assert_eq!((o.over, o.is_over()), (BitRate(0), false));
}

fn sample(slot: accounting::Slot, tenant: u32, realm: u16, d: Direction, bytes: u64) -> Sample {
    Sample {
        slot,
        key: UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction: d,
            band: Band::Normal,
            source: Source::Kernel,
        },
        bytes,
        packets: bytes / 1000,
    }
}

#[test]
fn international_billed_on_its_own() {
    // A 30-day month; tenant 7 sends 2 units national (realm 1) and
    // 3 units international (realm 2) in every slot; tenant 8 is noise.
    let p = utc().period(2026, 4).unwrap();
    let mut samples = Vec::new();
    let mut coverage = Vec::new();
    let mut slot = p.first_slot();
    while slot < p.end_slot() {
        samples.push(sample(slot, 7, 1, Direction::Up, 2 * UNIT));
        samples.push(sample(slot, 7, 2, Direction::Up, 3 * UNIT));
        samples.push(sample(slot, 8, 2, Direction::Up, 50 * UNIT));
        coverage.push(SlotCoverage {
            slot,
            status: SlotStatus::Measured,
        });
        slot = slot.next();
    }
    let gib = 1u64 << 30;
    let rules = vec![
        ChargeRule {
            name: "total".into(),
            realms: RealmSelection::All,
            percentile: Some(PercentileRule::default()),
            commit: Some(Rate::from_bps(4_000).unwrap()),
            volume: VolumeRule {
                counts: VolumeCounts::Both,
                quota: Some(Size::from_bytes(gib)),
            },
        },
        ChargeRule {
            name: "international".into(),
            realms: RealmSelection::Only(vec![RealmId(2)]),
            percentile: Some(PercentileRule::default()),
            commit: None,
            volume: VolumeRule::default(),
        },
    ];
    let bill = bill_tenant(&p, TenantId(7), &rules, &samples, &coverage).unwrap();
    let total = &bill.lines[0];
    assert_eq!(total.percentile.as_ref().unwrap().rate(), BitRate(5_000));
    let o = total.overage.unwrap();
    assert_eq!((o.over, o.over_percent), (BitRate(1_000), 25.0));
    // 8640 slots × 5 units × 37,500 bytes = 1,620,000,000 bytes.
    assert_eq!(total.volume.used, ByteCount(1_620_000_000));
    assert_eq!(
        total.volume.over,
        Some(ByteCount(1_620_000_000 - u128::from(gib)))
    );
    let intl = &bill.lines[1];
    assert_eq!(intl.percentile.as_ref().unwrap().rate(), BitRate(3_000));
    assert_eq!(intl.volume.used, ByteCount(8640 * 3 * u128::from(UNIT)));
    assert_eq!(intl.volume.coverage.missing, 0);
    let text = bill.to_text();
    assert!(text.contains("nearest rank"), "{text}");
    assert!(
        text.contains("8640 expected, 8640 seen, 0 missing"),
        "{text}"
    );
    // And it serialises for the daemon's JSON.
    let json = serde_json::to_string(&bill).unwrap();
    assert!(json.contains("\"international\""));
}

#[test]
fn bad_charge_rules_name_the_rule() {
    let p = utc().period(2026, 4).unwrap();
    let r = ChargeRule {
        name: "intl".into(),
        realms: RealmSelection::Only(vec![]),
        percentile: None,
        commit: None,
        volume: VolumeRule::default(),
    };
    let e = bill_tenant(&p, TenantId(1), std::slice::from_ref(&r), &[], &[]).unwrap_err();
    assert_eq!(e.field, "charges[0] (intl).realms");
    let r2 = ChargeRule {
        realms: RealmSelection::All,
        commit: Some(Rate::from_bps(1).unwrap()),
        ..r.clone()
    };
    assert_eq!(
        check_rules(&[r2]).unwrap_err().field,
        "charges[0] (intl).commit"
    );
    let r3 = ChargeRule {
        realms: RealmSelection::All,
        ..r
    };
    assert_eq!(
        check_rules(&[r3.clone(), r3]).unwrap_err().field,
        "charges[1] (intl).name"
    );
}

// ---- through accounting: a wrap and a reset ----

#[test]
fn a_day_through_the_accountant_with_a_wrap_and_a_reset() {
    let key = UsageKey {
        tenant: TenantId(3),
        realm: RealmId(1),
        direction: Direction::Down,
        band: Band::Whole,
        source: Source::Kernel,
    };
    // The first sight is a baseline (the default): the counters' earlier
    // values are not this day's traffic.
    let mut a = Accountant::new(Config::default());
    let start = ts("2026-11-01T00:00Z").as_second();
    let (mut bytes, mut packets, mut object) = (0u64, u64::from(u32::MAX) - 5_000, 1u64);
    let mut samples = Vec::new();
    let mut coverage = Vec::new();
    let mut truth = 0u64;
    // Reads every 30 s for one day: 375,000 bytes (100 kbit/s) and 300
    // packets per read; the packet counter wraps early on, and at noon the
    // qdisc is recreated (new identity, counters from zero).
    for i in 0..=2880i64 {
        if i > 0 {
            bytes += 375_000;
            packets = (packets + 300) % (1 << 32);
            truth += 375_000;
        }
        if i == 1440 {
            object = 2;
            bytes = 375_000;
            packets = 300;
        }
        let t = Timestamp::from_second(start + i * 30).unwrap();
        let c = a
            .observe(
                t,
                &[(
                    key,
                    Reading {
                        object: ObjectIdentity(object),
                        bytes,
                        packets,
                    },
                )],
            )
            .unwrap();
        samples.extend(c.samples);
        coverage.extend(c.slots);
    }
    assert_eq!(coverage.len(), 288);
    assert!(coverage.iter().all(|c| c.status == SlotStatus::Measured));
    assert!(samples
        .iter()
        .all(|s| s.bytes == 3_750_000 && s.packets == 3_000));
    let p = utc().period(2026, 11).unwrap();
    let rules = [ChargeRule {
        name: "total".into(),
        realms: RealmSelection::All,
        percentile: Some(PercentileRule {
            missing: MissingSamples::Skip,
            ..PercentileRule::default()
        }),
        commit: None,
        volume: VolumeRule::default(),
    }];
    let bill = bill_tenant(&p, TenantId(3), &rules, &samples, &coverage).unwrap();
    let line = &bill.lines[0];
    assert_eq!(line.volume.used, ByteCount(truth.into()));
    assert_eq!(truth, 288 * 3_750_000);
    // Seen only: 288 equal samples of 100 kbit/s.
    assert_eq!(line.percentile.as_ref().unwrap().rate(), BitRate(100_000));
    let c = line.volume.coverage;
    assert_eq!((c.expected, c.seen, c.missing), (8640, 288, 8352));
    // Under the carrier rule the 8352 missing samples are zeros: 95th is 0.
    let carrier = bill_tenant(
        &p,
        TenantId(3),
        &[ChargeRule {
            percentile: Some(PercentileRule::default()),
            ..rules[0].clone()
        }],
        &samples,
        &coverage,
    )
    .unwrap();
    assert_eq!(
        carrier.lines[0].percentile.as_ref().unwrap().rate(),
        BitRate(0)
    );
}

// ---- projection and the overage decision ----

fn month_so_far(units_per_slot: u64, elapsed: usize) -> Series {
    let p = utc().period(2026, 4).unwrap(); // 8640 slots
    let n = p.expected_samples();
    let up = (0..n)
        .map(|i| {
            if i < elapsed {
                units_per_slot * UNIT
            } else {
                0
            }
        })
        .collect();
    let status = (0..n)
        .map(|i| (i < elapsed).then_some(SlotStatus::Measured))
        .collect();
    Series::new(p.first_slot(), vec![0; n], up, status).unwrap()
}

#[test]
fn a_certain_floor_moves_at_once() {
    // Ten days at 20 kbit/s: r = 8208, future = 5760, so the final 95th is
    // at least the 2448th smallest of the 2880 past samples: 20 kbit/s.
    let s = month_so_far(20, 2880);
    let pr = project(&s, 2880, &PercentileRule::default(), VolumeCounts::Both);
    assert_eq!(pr.percentile_floor, Some(BitRate(20_000)));
    let d = decide(
        &pr,
        Some(Rate::from_bps(10_000).unwrap()),
        None,
        &OveragePolicy::default(),
    );
    assert!(matches!(d, Decision::MoveCertain { .. }), "{d:?}");
    assert!(d.moves());
}

#[test]
fn a_projection_moves_only_past_the_margin_and_after_a_day() {
    let commit = Some(Rate::from_bps(10_000).unwrap());
    let policy = OveragePolicy {
        margin_percent: 10,
        min_elapsed: 288,
    };
    // One day at 20 kbit/s: no floor yet (8208 ≤ 8352 future slots).
    let s = month_so_far(20, 288);
    let pr = project(&s, 288, &PercentileRule::default(), VolumeCounts::Both);
    assert_eq!(pr.percentile_floor, Some(BitRate(0)));
    assert_eq!(pr.percentile.unwrap().rate, BitRate(20_000));
    assert!(matches!(
        decide(&pr, commit, None, &policy),
        Decision::MoveProjectedRate {
            threshold: BitRate(11_000),
            ..
        }
    ));
    // 100 slots: too early to trust.
    let pr = project(&s, 100, &PercentileRule::default(), VolumeCounts::Both);
    assert_eq!(
        decide(&pr, commit, None, &policy),
        Decision::StayTooEarly {
            elapsed: 100,
            needed: 288
        }
    );
    // 11 kbit/s is exactly commit + 10%: not more than the margin, stay.
    let s = month_so_far(11, 288);
    let pr = project(&s, 288, &PercentileRule::default(), VolumeCounts::Both);
    assert_eq!(decide(&pr, commit, None, &policy), Decision::Stay);
}

#[test]
fn volume_is_projected_linearly() {
    // Three days of a 30-day month; each slot 1 unit: used 864 × 37,500.
    let s = month_so_far(1, 864);
    let pr = project(&s, 864, &PercentileRule::default(), VolumeCounts::Both);
    assert_eq!(pr.volume_used, ByteCount(864 * u128::from(UNIT)));
    assert_eq!(pr.volume_projected, ByteCount(8640 * u128::from(UNIT)));
    let quota = Size::from_bytes(5000 * UNIT);
    let d = decide(&pr, None, Some(quota), &OveragePolicy::default());
    assert!(matches!(d, Decision::MoveProjectedVolume { .. }), "{d:?}");
    let quota = Size::from_bytes(8000 * UNIT);
    assert_eq!(
        decide(&pr, None, Some(quota), &OveragePolicy::default()),
        Decision::Stay
    );
}
