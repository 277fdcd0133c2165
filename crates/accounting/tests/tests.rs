//! The accountant seen from outside: readings in, samples out.

use accounting::*;
use jiff::{SignedDuration, Timestamp};
use net_types::{RealmId, TenantId};

fn key(tenant: u32, realm: u16, direction: Direction) -> UsageKey {
    UsageKey {
        tenant: TenantId(tenant),
        realm: RealmId(realm),
        direction,
        band: Band::Whole,
        source: Source::Kernel,
    }
}

fn at(secs: i64) -> Timestamp {
    // 2026-11-01T00:00:00Z is slot-aligned (1_793_491_200 = 300 × 5_978_304).
    Timestamp::from_second(1_793_491_200 + secs).unwrap()
}

fn reading(object: u64, bytes: u64, packets: u64) -> Reading {
    Reading {
        object: ObjectIdentity(object),
        bytes,
        packets,
    }
}

fn bytes_of(samples: &[Sample], k: UsageKey) -> u64 {
    samples.iter().filter(|s| s.key == k).map(|s| s.bytes).sum()
}

#[test]
fn steady_reads_give_exact_slot_totals() {
    let k = key(1, 1, Direction::Down);
    let mut a = Accountant::new(Config::default());
    let mut all = Vec::new();
    // 1000 bytes and 1 packet per second, read every 10 s for 20 minutes.
    for i in 0..=120 {
        let t = i * 10;
        let c = a
            .observe(at(t), &[(k, reading(7, t as u64 * 1000, t as u64))])
            .unwrap();
        all.extend(c.samples);
    }
    // Four full slots closed (the read at 1200 s closes the fourth).
    assert_eq!(all.len(), 4);
    for s in &all {
        assert_eq!((s.bytes, s.packets), (300_000, 300));
    }
    assert_eq!(all[0].slot, Slot::containing(at(0)));
}

#[test]
fn an_interval_across_a_boundary_is_split_by_time() {
    let k = key(1, 1, Direction::Up);
    let mut a = Accountant::new(Config::default());
    a.observe(at(295), &[(k, reading(1, 0, 0))]).unwrap();
    // 10,000 bytes between 295 s and 305 s: 5 s in each slot.
    let c = a.observe(at(305), &[(k, reading(1, 10_000, 10))]).unwrap();
    assert_eq!(c.samples.len(), 1);
    assert_eq!((c.samples[0].bytes, c.samples[0].packets), (5_000, 5));
    // The slot was observed only from 295 s: partial.
    assert_eq!(c.slots[0].status, SlotStatus::Partial);
    let c = a.observe(at(600), &[(k, reading(1, 10_000, 10))]).unwrap();
    assert_eq!((c.samples[0].bytes, c.samples[0].packets), (5_000, 5));
    // 305..600 s was read in one 295 s interval, longer than 60 s: estimated.
    assert_eq!(c.slots[0].status, SlotStatus::Estimated);
}

#[test]
fn measured_slots_when_reads_are_frequent() {
    let k = key(1, 1, Direction::Up);
    let mut a = Accountant::new(Config::default());
    let mut slots = Vec::new();
    for i in 0..=60 {
        slots.extend(
            a.observe(at(i * 10), &[(k, reading(1, 0, 0))])
                .unwrap()
                .slots,
        );
    }
    assert_eq!(slots.len(), 2);
    assert!(slots.iter().all(|s| s.status == SlotStatus::Measured));
}

#[test]
fn a_32_bit_packet_wrap_inside_the_accountant() {
    let k = key(3, 2, Direction::Down);
    let mut a = Accountant::new(Config::default());
    let near = u64::from(u32::MAX) - 99;
    a.observe(at(0), &[(k, reading(1, 5_000_000, near))])
        .unwrap();
    let c = a
        .observe(at(300), &[(k, reading(1, 5_150_000, 100))])
        .unwrap();
    // 100 packets to reach 2^32 (from MAX-99 through MAX is 100 steps) + 100.
    assert_eq!((c.samples[0].bytes, c.samples[0].packets), (150_000, 200));
    assert_eq!(c.events, vec![(k, CounterEvent::PacketWrap)]);
}

#[test]
fn a_recreated_qdisc_loses_nothing_it_counted() {
    let k = key(4, 1, Direction::Down);
    let mut a = Accountant::new(Config::default());
    a.observe(at(0), &[(k, reading(1, 0, 0))]).unwrap();
    a.observe(at(100), &[(k, reading(1, 40_000, 40))]).unwrap();
    // Recreated under the daemon: new identity, counter from zero.
    a.observe(at(200), &[(k, reading(2, 7_000, 7))]).unwrap();
    let c = a.observe(at(300), &[(k, reading(2, 9_000, 9))]).unwrap();
    assert_eq!(bytes_of(&c.samples, k), 49_000);
    assert!(c.events.is_empty());
    // Recreated with the same identity: the byte counter went down.
    let c = a.observe(at(400), &[(k, reading(2, 1_000, 1))]).unwrap();
    assert_eq!(c.events, vec![(k, CounterEvent::Reset)]);
    let c = a.observe(at(600), &[(k, reading(2, 1_500, 2))]).unwrap();
    assert_eq!(bytes_of(&c.samples, k), 1_500);
}

/// Readings for three keys at 10 s intervals with irregular traffic, a wrap
/// and a reset, to replay with crashes in between.
fn script() -> Vec<(Timestamp, Vec<(UsageKey, Reading)>)> {
    let keys = [
        key(1, 1, Direction::Down),
        key(1, 2, Direction::Up),
        key(2, 1, Direction::Down),
    ];
    let mut counters = [(0u64, u64::from(u32::MAX) - 1000), (0, 0), (0, 0)];
    let mut objects = [1u64, 1, 1];
    let mut out = Vec::new();
    for i in 0..200i64 {
        let mut batch = Vec::new();
        for (n, k) in keys.iter().enumerate() {
            let grow = ((i * 7919 + n as i64 * 104_729) % 50_000) as u64;
            counters[n].0 += grow;
            counters[n].1 = (counters[n].1 + grow / 100) % (1u64 << 32);
            if n == 2 && i == 120 {
                objects[n] += 1;
                counters[n] = (grow, grow / 100);
            }
            // Key 1 vanishes for a while, as an object briefly gone.
            if n == 1 && (50..80).contains(&i) {
                continue;
            }
            batch.push((*k, reading(objects[n], counters[n].0, counters[n].1)));
        }
        out.push((at(i * 10 + 3), batch));
    }
    out
}

fn run(a: &mut Accountant, steps: &[(Timestamp, Vec<(UsageKey, Reading)>)]) -> Vec<Sample> {
    let mut out = Vec::new();
    for (t, b) in steps {
        out.extend(a.observe(*t, b).unwrap().samples);
    }
    out
}

#[test]
fn a_restart_from_persisted_state_matches_an_uninterrupted_run() {
    let steps = script();
    let config = Config {
        first_sight: FirstSight::CountFromZero,
        ..Config::default()
    };
    let reference = run(&mut Accountant::new(config), &steps);
    for crash_after in [1usize, 17, 29, 30, 31, 64, 119, 120, 150, 199] {
        let mut a = Accountant::new(config);
        let mut committed = run(&mut a, &steps[..crash_after]);
        // What was committed together with the samples, through bytes.
        let blob = a.state().encode();
        // The crashed process also worked on, but nothing of it was committed.
        let _lost = run(
            &mut a,
            &steps[crash_after..(crash_after + 5).min(steps.len())],
        );
        let state = AccountantState::decode(&blob).unwrap();
        let mut b = Accountant::resume(config, &state);
        committed.extend(run(&mut b, &steps[crash_after..]));
        assert_eq!(committed, reference, "crash after step {crash_after}");
    }
}

#[test]
fn traffic_during_downtime_is_counted_and_marked_estimated() {
    let k = key(9, 1, Direction::Up);
    let mut a = Accountant::new(Config::default());
    a.observe(at(0), &[(k, reading(1, 0, 0))]).unwrap();
    a.observe(at(10), &[(k, reading(1, 100, 1))]).unwrap();
    let state = a.state();
    // Down for 20 minutes 50 seconds; 1,200,000 bytes passed meanwhile.
    let mut b = Accountant::resume(Config::default(), &state);
    let c = b
        .observe(at(1260), &[(k, reading(1, 1_200_100, 1_201))])
        .unwrap();
    assert_eq!(bytes_of(&c.samples, k), 100 + 1_200_000 * 1190 / 1250);
    let statuses: Vec<_> = c.slots.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![
            SlotStatus::Estimated,
            SlotStatus::Estimated,
            SlotStatus::Estimated,
            SlotStatus::Estimated
        ]
    );
    // 1,200,000 bytes over 1250 s: 288,000 per full slot.
    assert_eq!(c.samples[1].bytes, 288_000);
}

#[test]
fn a_late_key_never_writes_into_a_closed_slot() {
    let (k1, k2) = (key(1, 1, Direction::Down), key(2, 1, Direction::Down));
    let mut a = Accountant::new(Config::default());
    a.observe(at(0), &[(k1, reading(1, 0, 0)), (k2, reading(1, 0, 0))])
        .unwrap();
    let mut closed = Vec::new();
    for i in 1..=40 {
        closed.extend(
            a.observe(at(i * 10), &[(k1, reading(1, 0, 0))])
                .unwrap()
                .samples,
        );
    }
    // k2 returns at 410 s with 9,000 bytes; slot 0 closed at 300 s.
    let c = a
        .observe(
            at(410),
            &[(k1, reading(1, 0, 0)), (k2, reading(1, 9_000, 9))],
        )
        .unwrap();
    assert!(c.samples.is_empty());
    let c = a.observe(at(600), &[(k2, reading(1, 9_000, 9))]).unwrap();
    assert_eq!(bytes_of(&c.samples, k2), 9_000);
    assert_eq!(c.samples[0].slot, Slot::containing(at(300)));
}

#[test]
fn the_clock_going_back_is_refused_and_changes_nothing() {
    let k = key(1, 1, Direction::Down);
    let mut a = Accountant::new(Config::default());
    a.observe(at(100), &[(k, reading(1, 0, 0))]).unwrap();
    let before = a.state();
    let e = a.observe(at(50), &[(k, reading(1, 10, 1))]).unwrap_err();
    assert!(matches!(e, AccountingError::TimeWentBackwards { .. }));
    assert!(e.to_string().contains("older than the previous"));
    assert_eq!(a.state(), before);
}

#[test]
fn a_key_twice_in_one_batch_is_refused() {
    let k = key(1, 1, Direction::Down);
    let mut a = Accountant::new(Config::default());
    let e = a
        .observe(at(0), &[(k, reading(1, 0, 0)), (k, reading(1, 5, 1))])
        .unwrap_err();
    assert_eq!(e, AccountingError::DuplicateKey(k));
    assert!(e.to_string().contains("tenant 1 realm 1 down whole"));
}

#[test]
fn first_sight_is_a_baseline_by_default() {
    let k = key(1, 1, Direction::Down);
    let mut a = Accountant::new(Config::default());
    let c = a.observe(at(0), &[(k, reading(1, 1 << 40, 5))]).unwrap();
    assert_eq!(c.events, vec![(k, CounterEvent::FirstSight)]);
    let c = a
        .observe(at(300), &[(k, reading(1, (1 << 40) + 10, 6))])
        .unwrap();
    assert_eq!(bytes_of(&c.samples, k), 10);
}

#[test]
fn counters_not_read_for_a_week_are_forgotten() {
    let (k1, k2) = (key(1, 1, Direction::Down), key(2, 1, Direction::Down));
    let config = Config {
        forget_after: SignedDuration::from_secs(600),
        ..Config::default()
    };
    let mut a = Accountant::new(config);
    a.observe(at(0), &[(k1, reading(1, 0, 0)), (k2, reading(1, 0, 0))])
        .unwrap();
    a.observe(at(601), &[(k1, reading(1, 0, 0))]).unwrap();
    assert_eq!(a.counters(), 1);
}

#[test]
fn state_round_trips_through_bytes_and_json() {
    let steps = script();
    let mut a = Accountant::new(Config::default());
    run(&mut a, &steps[..55]);
    let s = a.state();
    assert!(!s.open_samples.is_empty() && !s.counters.is_empty());
    assert_eq!(AccountantState::decode(&s.encode()).unwrap(), s);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<AccountantState>(&json).unwrap(), s);
}

#[test]
fn a_damaged_state_is_refused_with_the_field_named() {
    let mut a = Accountant::new(Config::default());
    run(&mut a, &script()[..10]);
    let blob = a.state().encode();
    let e = AccountantState::decode(&blob[..blob.len() - 3]).unwrap_err();
    assert!(e.to_string().contains("field `open_"), "{e}");
    let e = AccountantState::decode(b"nope").unwrap_err();
    assert_eq!(e.field, "magic");
    let mut bad = blob.clone();
    // The first counter's direction byte: 4 magic + 1 version + 9 time + 8 count + 6.
    bad[4 + 1 + 9 + 8 + 6] = 7;
    let e = AccountantState::decode(&bad).unwrap_err();
    assert_eq!(e.field, "counters.key");
    assert!(e.to_string().contains("direction"));
    let mut long = blob;
    long.push(0);
    assert_eq!(AccountantState::decode(&long).unwrap_err().field, "end");
    // A huge record count must not allocate.
    let mut huge = b"TGAS\x01\x00".to_vec();
    huge.extend_from_slice(&[0; 8]);
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        AccountantState::decode(&huge).unwrap_err().field,
        "counters.len"
    );
}

// ---- sources ----

fn le(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// A version 1 blob, written byte by byte as a build before sources wrote
/// it: keys without a source byte.
fn version_1_blob() -> Vec<u8> {
    let mut b = b"TGAS\x01".to_vec();
    b.push(1);
    le(&mut b, &1_793_491_490_000i64.to_le_bytes());
    // One counter: tenant 7, realm 2, up, normal; object 5.
    le(&mut b, &1u64.to_le_bytes());
    le(&mut b, &7u32.to_le_bytes());
    le(&mut b, &2u16.to_le_bytes());
    b.extend_from_slice(&[1, 2]);
    for v in [5u64, 1_000_000, 900] {
        le(&mut b, &v.to_le_bytes());
    }
    le(&mut b, &1_793_491_490_000i64.to_le_bytes());
    // One open sample of the same key.
    le(&mut b, &1u64.to_le_bytes());
    le(&mut b, &5_978_304i64.to_le_bytes());
    le(&mut b, &7u32.to_le_bytes());
    le(&mut b, &2u16.to_le_bytes());
    b.extend_from_slice(&[1, 2]);
    le(&mut b, &4_000u64.to_le_bytes());
    le(&mut b, &4u64.to_le_bytes());
    // One open coverage record.
    le(&mut b, &1u64.to_le_bytes());
    for v in [5_978_304i64, 290_000, 0] {
        le(&mut b, &v.to_le_bytes());
    }
    b
}

#[test]
fn a_version_1_state_reads_as_kernel_keys() {
    let k = UsageKey {
        tenant: TenantId(7),
        realm: RealmId(2),
        direction: Direction::Up,
        band: Band::Normal,
        source: Source::Kernel,
    };
    let expected = AccountantState {
        last_observe_ms: Some(1_793_491_490_000),
        counters: vec![CounterState {
            key: k,
            reading: Reading {
                object: ObjectIdentity(5),
                bytes: 1_000_000,
                packets: 900,
            },
            at_ms: 1_793_491_490_000,
        }],
        open_samples: vec![OpenSample {
            slot: Slot(5_978_304),
            key: k,
            usage: Usage {
                bytes: 4_000,
                packets: 4,
            },
        }],
        open_coverage: vec![OpenCoverage {
            slot: Slot(5_978_304),
            measured_ms: 290_000,
            estimated_ms: 0,
        }],
    };
    let old = version_1_blob();
    assert_eq!(AccountantState::decode(&old).unwrap(), expected);
    // Written again, it is version 2: one source byte more per key.
    let new = expected.encode();
    assert_eq!(new[4], 2);
    assert_eq!(new.len(), old.len() + 2);
    assert_eq!(AccountantState::decode(&new).unwrap(), expected);
    // An accountant resumed from the old state continues from it.
    let mut a = Accountant::resume(Config::default(), &AccountantState::decode(&old).unwrap());
    assert_eq!(a.counters(), 1);
    let c = a
        .observe(
            Timestamp::from_millisecond(1_793_491_500_000).unwrap(),
            &[(k, reading(5, 1_000_500, 901))],
        )
        .unwrap();
    assert_eq!(c.samples.len(), 1);
    assert_eq!(c.samples[0].bytes, 4_500);
    assert_eq!(c.samples[0].key.source, Source::Kernel);
}

#[test]
fn flow_keys_round_trip_and_a_bad_source_is_refused() {
    let flow = UsageKey {
        source: Source::Flow,
        ..key(3, 1, Direction::Down)
    };
    let s = AccountantState {
        last_observe_ms: Some(3_000_000),
        counters: vec![],
        open_samples: vec![
            OpenSample {
                slot: Slot(10),
                key: key(3, 1, Direction::Down),
                usage: Usage {
                    bytes: 1,
                    packets: 1,
                },
            },
            OpenSample {
                slot: Slot(10),
                key: flow,
                usage: Usage {
                    bytes: 2,
                    packets: 1,
                },
            },
        ],
        open_coverage: vec![],
    };
    let mut blob = s.encode();
    assert_eq!(AccountantState::decode(&blob).unwrap(), s);
    // The second open sample's source byte: 4 + 1 + 9 + 8 (no counters)
    // + 8 (count) + 33 (first sample) + 8 (slot) + 8 (key before source).
    let at = 4 + 1 + 9 + 8 + 8 + 33 + 8 + 8;
    assert_eq!(blob[at], 1);
    blob[at] = 2;
    let e = AccountantState::decode(&blob).unwrap_err();
    assert_eq!(e.field, "open_samples.key");
    assert!(e.to_string().contains("source"), "{e}");
    // A version from the future is refused by name.
    let mut future = s.encode();
    future[4] = 3;
    assert_eq!(
        AccountantState::decode(&future).unwrap_err().field,
        "version"
    );
}

#[test]
fn sources_print_and_read_back() {
    assert_eq!(Source::default(), Source::Kernel);
    for s in Source::ALL {
        assert_eq!(Source::from_code(s.code()), Some(s));
    }
    assert_eq!((Source::Kernel.code(), Source::Flow.code()), (0, 1));
    assert_eq!(Source::from_code(2), None);
    let k = key(3, 1, Direction::Down);
    assert_eq!(k.to_string(), "tenant 3 realm 1 down whole");
    let f = UsageKey {
        source: Source::Flow,
        ..k
    };
    assert_eq!(f.to_string(), "tenant 3 realm 1 down whole flow");
    // Keys order by source last.
    assert!(k < f && f < key(3, 1, Direction::Up));
    assert_eq!(serde_json::to_string(&Source::Flow).unwrap(), "\"flow\"");
    // JSON written before sources existed reads as kernel.
    let old = r#"{"tenant":3,"realm":1,"direction":"down","band":"whole"}"#;
    assert_eq!(serde_json::from_str::<UsageKey>(old).unwrap(), k);
}

/// Issue 12, item 3: a slot whose traffic would add up past 2^64 − 1 bytes
/// (only counter glitches do that: 18 EB in five minutes) is never clamped.
/// What fits is kept exactly; the part that does not is left out of the
/// sample and reported, so the daemon can log and count it.
#[test]
fn a_slot_past_2_64_is_never_clamped() {
    let k = key(1, 1, Direction::Down);
    let config = Config {
        first_sight: FirstSight::CountFromZero,
        ..Config::default()
    };
    let mut a = Accountant::new(config);
    a.observe(at(10), &[(k, reading(1, u64::MAX - 10, 5))])
        .unwrap();
    // A new object in the same slot: its 100 bytes do not fit.
    let c = a.observe(at(20), &[(k, reading(2, 100, 1))]).unwrap();
    assert!(c.samples.is_empty());
    let overflow = CounterEvent::Overflow {
        slot: Slot::containing(at(20)),
        dropped: Usage {
            bytes: 100,
            packets: 1,
        },
    };
    assert_eq!(c.events, vec![(k, CounterEvent::NewObject), (k, overflow)]);
    assert!(overflow
        .to_string()
        .contains("100 bytes and 1 packets left out"));
    let c = a.observe(at(300), &[(k, reading(2, 100, 1))]).unwrap();
    assert_eq!(c.samples.len(), 1);
    assert_eq!(
        c.samples[0].bytes,
        u64::MAX - 10,
        "kept exactly, not clamped"
    );
    assert_eq!(c.samples[0].packets, 5);
}

/// A state that lists an open sample twice (never written by `state`, but
/// possible in a hand-made one) is added up on resume; a sum past 2^64 − 1
/// is reported by the next observe, not clamped.
#[test]
fn a_resumed_overflow_is_reported_not_clamped() {
    let k = key(2, 1, Direction::Up);
    let slot = Slot::containing(at(0));
    let open = |bytes| OpenSample {
        slot,
        key: k,
        usage: Usage { bytes, packets: 1 },
    };
    let state = AccountantState {
        last_observe_ms: Some(at(0).as_millisecond()),
        counters: Vec::new(),
        open_samples: vec![open(u64::MAX - 1), open(2)],
        open_coverage: Vec::new(),
    };
    let mut a = Accountant::resume(Config::default(), &state);
    let c = a.observe(at(300), &[]).unwrap();
    assert_eq!(c.samples[0].bytes, u64::MAX - 1);
    assert_eq!(
        c.events,
        vec![(
            k,
            CounterEvent::Overflow {
                slot,
                dropped: Usage {
                    bytes: 2,
                    packets: 1
                }
            }
        )]
    );
}

/// A state whose figures could not come from the accountant is refused by
/// field, not resumed into an accountant that would overflow or spin.
#[test]
fn an_impossible_state_is_refused_with_the_field_named() {
    let k = key(1, 1, Direction::Down);
    let good = AccountantState {
        last_observe_ms: Some(at(10).as_millisecond()),
        counters: vec![CounterState {
            key: k,
            reading: reading(1, 5, 1),
            at_ms: at(10).as_millisecond(),
        }],
        open_samples: vec![],
        open_coverage: vec![OpenCoverage {
            slot: Slot::containing(at(10)),
            measured_ms: 10_000,
            estimated_ms: 0,
        }],
    };
    assert_eq!(AccountantState::decode(&good.encode()).unwrap(), good);
    let bad = |s: AccountantState| AccountantState::decode(&s.encode()).unwrap_err().field;
    let mut s = good.clone();
    s.open_coverage[0].measured_ms = i64::MAX;
    assert_eq!(bad(s), "open_coverage.measured_ms");
    let mut s = good.clone();
    s.open_coverage[0].estimated_ms = -1;
    assert_eq!(bad(s), "open_coverage.measured_ms");
    let mut s = good.clone();
    s.counters[0].at_ms += 1;
    assert_eq!(bad(s), "counters.at_ms");
    let s = AccountantState {
        last_observe_ms: None,
        ..good
    };
    assert_eq!(bad(s), "counters.at_ms");
}

/// A class the caller created is counted from zero at its first sight;
/// one it found (a daemon's restart without state, an operator's) is a
/// baseline, and so is a created one after a restart.
#[test]
fn a_created_objects_first_sight_counts_its_whole_value() {
    let (made, found) = (key(1, 1, Direction::Down), key(2, 1, Direction::Down));
    let mut a = Accountant::new(Config::default());
    a.observe(at(0), &[]).unwrap();
    a.created([ObjectIdentity(7)], at(1));
    a.observe(
        at(2),
        &[(made, reading(7, 5_000, 5)), (found, reading(8, 9_000, 9))],
    )
    .unwrap();
    let c = a
        .observe(
            at(300),
            &[(made, reading(7, 6_000, 6)), (found, reading(8, 9_500, 10))],
        )
        .unwrap();
    assert_eq!(bytes_of(&c.samples, made), 6_000);
    assert_eq!(bytes_of(&c.samples, found), 500);

    // Told, then restarted before reading it: the state does not carry it.
    let mut b = Accountant::new(Config::default());
    b.created([ObjectIdentity(9)], at(0));
    let mut b = Accountant::resume(Config::default(), &b.state());
    let other = key(3, 1, Direction::Up);
    b.observe(at(1), &[(other, reading(9, 4_000, 4))]).unwrap();
    let c = b
        .observe(at(300), &[(other, reading(9, 4_100, 5))])
        .unwrap();
    assert_eq!(bytes_of(&c.samples, other), 100);
}
