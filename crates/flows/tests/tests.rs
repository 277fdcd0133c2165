//! Attribution at the crate's boundary: whose, which realm, how much, when.

use accounting::{Direction, Sample, Source, SAMPLE_MILLIS};
use flow_wire::{FlowRecord, Sampling, SamplingOrigin};
use flows::{
    Attribution, Counter, Outcome, QuarantineReason, Tally, QUARANTINE_KEEP, SLOT_BYTES_LIMIT,
    SLOT_PACKETS_LIMIT,
};
use net_types::{Prefix, RealmId, TenantId};
use std::net::IpAddr;

mod vendors;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
[realms]
default = "international"
[realms.national]
id = 1
prefixes = ["198.51.100.0/24", "2001:db8:5100::/40"]
[realms.international]
id = 2
[plans.basic]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["127.0.0.1:2055"]
[[flows.exporters]]
address = "192.0.2.1"
[[flows.exporters]]
address = "192.0.2.2"
sampling = 100
[[tenants]]
id = 7
plan = "basic"
prefixes = ["100.64.7.0/24", "2001:db8:7::/48"]
measured_by = "flows"
[[tenants]]
id = 8
plan = "basic"
prefixes = ["100.64.8.0/24"]
measured_by = "flows"
[[tenants]]
id = 9
plan = "basic"
prefixes = ["100.64.9.0/24"]
"#;

const T0: i64 = 6_000_000 * SAMPLE_MILLIS;

fn tables(routes: &[(Prefix, RealmId)]) -> Attribution {
    let p = policy::load_str("t.toml", POLICY)
        .policy
        .expect("valid policy");
    Attribution::new(&p, routes, 1).unwrap()
}

fn flow(src: &str, dst: &str, bytes: u64, packets: u64, start: i64, end: i64) -> FlowRecord {
    FlowRecord {
        src: Some(src.parse().unwrap()),
        dst: Some(dst.parse().unwrap()),
        protocol: 17,
        src_port: 1000,
        dst_port: 53,
        tcp_flags: 0,
        bytes,
        packets,
        start_ms: start,
        end_ms: end,
        sampling: Sampling::UNKNOWN,
    }
}

fn exporter(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

fn brief(samples: &[Sample]) -> Vec<(i64, u32, u16, Direction, u64, u64)> {
    samples
        .iter()
        .map(|s| {
            assert_eq!(s.key.source, Source::Flow);
            (
                s.slot.0 - T0 / SAMPLE_MILLIS,
                s.key.tenant.0,
                s.key.realm.0,
                s.key.direction,
                s.bytes,
                s.packets,
            )
        })
        .collect()
}

#[test]
fn source_sends_destination_receives_and_the_realm_is_the_other_ends() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    let at = T0 + 1000;
    tally.record(
        &t,
        exporter(1),
        at,
        &flow("100.64.7.5", "198.51.100.9", 1500, 3, at, at),
    );
    tally.record(
        &t,
        exporter(1),
        at,
        &flow("203.0.113.4", "100.64.7.5", 900, 2, at, at),
    );
    tally.record(
        &t,
        exporter(1),
        at,
        &flow("2001:db8:5100::1", "2001:db8:7::2", 100, 1, at, at),
    );
    assert_eq!(
        brief(&tally.drain()),
        vec![
            (0, 7, 1, Direction::Down, 100, 1),
            (0, 7, 1, Direction::Up, 1500, 3),
            (0, 7, 2, Direction::Down, 900, 2),
        ]
    );
    let s = tally.stats();
    assert_eq!((s.flows, s.attributed, s.bytes, s.packets), (3, 3, 2500, 6));
}

#[test]
fn traffic_between_two_tenants_counts_for_both_and_kernel_tenants_are_skipped() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    let at = T0;
    tally.record(
        &t,
        exporter(1),
        at,
        &flow("100.64.7.1", "100.64.8.1", 10, 1, at, at),
    );
    tally.record(
        &t,
        exporter(1),
        at,
        &flow("100.64.9.1", "203.0.113.1", 10, 1, at, at),
    );
    tally.record(
        &t,
        exporter(1),
        at,
        &flow("203.0.113.1", "192.0.2.77", 10, 1, at, at),
    );
    // Tenant 7's own address space is in the default realm, as in the kernel.
    assert_eq!(
        brief(&tally.drain()),
        vec![
            (0, 7, 2, Direction::Up, 10, 1),
            (0, 8, 2, Direction::Down, 10, 1)
        ]
    );
    let s = tally.stats();
    assert_eq!((s.attributed, s.kernel_measured, s.unattributed), (1, 1, 1));
    assert_eq!(s.bytes, 10, "a record is counted once in the totals");
}

#[test]
fn sampling_multiplies_and_the_policy_override_wins() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    let mut f = flow("100.64.7.1", "198.51.100.1", 64, 1, T0, T0);
    f.sampling = Sampling::one_in(10, SamplingOrigin::OptionsTemplate);
    tally.record(&t, exporter(1), T0, &f);
    assert_eq!(
        brief(&tally.drain()),
        vec![(0, 7, 1, Direction::Up, 640, 10)]
    );
    // Exporter 192.0.2.2 is overridden to 1 in 100, whatever it says.
    tally.record(&t, exporter(2), T0, &f);
    assert_eq!(
        brief(&tally.drain()),
        vec![(0, 7, 1, Direction::Up, 6400, 100)]
    );
}

#[test]
fn a_flow_across_slots_is_split_in_proportion_to_time_to_the_byte() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    // 100 s before a boundary and 200 s after it: a third, then two thirds.
    let boundary = T0 + SAMPLE_MILLIS;
    let f = flow(
        "100.64.7.1",
        "198.51.100.1",
        1001,
        7,
        boundary - 100_000,
        boundary + 200_000,
    );
    tally.record(&t, exporter(1), boundary + 200_000, &f);
    let got = brief(&tally.drain());
    assert_eq!(
        got,
        vec![
            (0, 7, 1, Direction::Up, 333, 2),
            (1, 7, 1, Direction::Up, 668, 5)
        ]
    );
    assert_eq!(got.iter().map(|g| g.4).sum::<u64>(), 1001);
}

#[test]
fn an_exporter_clock_far_off_puts_the_flow_at_its_arrival() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    let arrival = T0 + 10;
    let f = flow(
        "100.64.7.1",
        "198.51.100.1",
        5,
        1,
        arrival - 86_400_000,
        arrival - 86_000_000,
    );
    tally.record(&t, exporter(1), arrival, &f);
    assert_eq!(brief(&tally.drain()), vec![(0, 7, 1, Direction::Up, 5, 1)]);
    assert_eq!(tally.stats().clock_skew, 1);
}

#[test]
fn route_realms_apply_by_longest_match_and_the_policy_wins_on_equal_prefixes() {
    let routes = [
        (Prefix::parse("203.0.113.0/24").unwrap(), RealmId(1)),
        (Prefix::parse("203.0.113.128/25").unwrap(), RealmId(2)),
        (Prefix::parse("198.51.100.0/24").unwrap(), RealmId(2)),
    ];
    let t = tables(&routes);
    let realm = |a: &str| t.resolve(a.parse().unwrap()).1;
    assert_eq!(realm("203.0.113.1"), RealmId(1));
    assert_eq!(realm("203.0.113.200"), RealmId(2));
    assert_eq!(
        realm("198.51.100.1"),
        RealmId(1),
        "the policy's own prefix wins"
    );
    assert_eq!(
        t.resolve("100.64.8.3".parse().unwrap()).0,
        Some(flows::Owner::Flows(TenantId(8)))
    );
    assert_eq!(
        t.resolve("100.64.9.3".parse().unwrap()).0,
        Some(flows::Owner::Kernel(TenantId(9)))
    );
}

#[test]
fn new_tables_replace_what_the_cache_remembered() {
    let mut tally = Tally::new();
    let old = tables(&[]);
    let f = flow("100.64.7.1", "203.0.113.1", 10, 1, T0, T0);
    tally.record(&old, exporter(1), T0, &f);
    let p = policy::load_str("t.toml", &POLICY.replace("100.64.7.0/24", "100.64.6.0/24"))
        .policy
        .unwrap();
    let new = Attribution::new(&p, &[], 2).unwrap();
    tally.record(&new, exporter(1), T0, &f);
    assert_eq!(tally.stats().attributed, 1);
    assert_eq!(tally.stats().unattributed, 1);
}

#[test]
fn two_2_62_byte_records_in_one_slot_never_reach_the_store_and_later_ones_still_do() {
    // Issue 12, item 2: two records of 2^62 bytes for one tenant, slot and
    // key summed to 2^63, which the store refuses, blocking every later
    // commit. No drained sample may come near what the store takes, and
    // a valid record after them is attributed as usual.
    let t = tables(&[]);
    let mut tally = Tally::new();
    let huge = flow("100.64.7.1", "198.51.100.1", 1 << 62, 1, T0, T0);
    tally.record(&t, exporter(1), T0, &huge);
    tally.record(&t, exporter(1), T0, &huge);
    tally.record(
        &t,
        exporter(1),
        T0,
        &flow("100.64.8.1", "198.51.100.1", 1500, 1, T0, T0),
    );
    let drained = tally.drain();
    for s in &drained {
        assert!(
            s.bytes <= i64::MAX as u64 / 1024 && s.packets <= i64::MAX as u64 / 1024,
            "a sample far above any link's capacity was drained: {s:?}"
        );
    }
    assert_eq!(brief(&drained), vec![(0, 8, 1, Direction::Up, 1500, 1)]);
    // Both are kept aside with what identifies them, and counted.
    let q = tally.take_quarantine();
    assert_eq!(q.len(), 2);
    assert_eq!(tally.stats().quarantined, 2);
    assert_eq!((q[0].exporter, q[0].counter), (exporter(1), Counter::Bytes));
    assert_eq!(q[0].value, Some(1 << 62));
    assert_eq!(
        q[0].reason,
        QuarantineReason::AboveSlotLimit {
            limit: SLOT_BYTES_LIMIT
        }
    );
    assert_eq!(
        q[0].to_string(),
        format!(
            "record from exporter 192.0.2.1 (100.64.7.1 → 198.51.100.1): bytes = {} ({} reported, sampling 1/1): more than {} in one 5-minute slot, beyond any link's capacity",
            1u64 << 62,
            1u64 << 62,
            SLOT_BYTES_LIMIT
        )
    );
    assert!(tally.take_quarantine().is_empty(), "taken once");
}

#[test]
fn records_that_fill_a_slot_past_any_links_capacity_are_quarantined_one_by_one() {
    // Each record is plausible on its own; the slot's sum is not. What
    // fits stays, what would overflow the slot is set aside.
    let t = tables(&[]);
    let mut tally = Tally::new();
    let big = flow(
        "100.64.7.1",
        "198.51.100.1",
        SLOT_BYTES_LIMIT / 2,
        1,
        T0,
        T0,
    );
    for _ in 0..3 {
        tally.record(&t, exporter(1), T0, &big);
    }
    assert_eq!(
        brief(&tally.drain()),
        vec![(0, 7, 1, Direction::Up, SLOT_BYTES_LIMIT, 2)]
    );
    let q = tally.take_quarantine();
    assert_eq!(q.len(), 1);
    assert_eq!(
        q[0].reason,
        QuarantineReason::SlotTotalAboveLimit {
            limit: SLOT_BYTES_LIMIT,
            held: SLOT_BYTES_LIMIT
        }
    );
    // A sampling that overflows 64 bits, and packets beyond their limit.
    let mut f = flow("100.64.7.1", "198.51.100.1", u64::MAX / 2, 1, T0, T0);
    f.sampling = Sampling::one_in(4, SamplingOrigin::Header);
    assert_eq!(tally.record(&t, exporter(1), T0, &f), Outcome::Quarantined);
    let p = flow(
        "100.64.7.1",
        "198.51.100.1",
        1,
        SLOT_PACKETS_LIMIT + 1,
        T0,
        T0,
    );
    assert_eq!(tally.record(&t, exporter(1), T0, &p), Outcome::Quarantined);
    let q = tally.take_quarantine();
    assert_eq!(
        (q[0].counter, q[0].value, q[0].reason),
        (Counter::Bytes, None, QuarantineReason::Overflow)
    );
    assert_eq!(q[1].counter, Counter::Packets);
    // A long flow is judged by its share of each slot: 2 × the limit over
    // 10 minutes is the limit per slot.
    let boundary = T0 + SAMPLE_MILLIS;
    let long = flow(
        "100.64.8.1",
        "198.51.100.1",
        2 * SLOT_BYTES_LIMIT,
        10,
        boundary - SAMPLE_MILLIS,
        boundary + SAMPLE_MILLIS,
    );
    assert_eq!(
        tally.record(&t, exporter(1), boundary, &long),
        Outcome::Attributed
    );
}

#[test]
fn quarantined_records_beyond_the_kept_number_are_counted_not_kept() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    let huge = flow("100.64.7.1", "198.51.100.1", u64::MAX, 1, T0, T0);
    for _ in 0..QUARANTINE_KEEP + 5 {
        tally.record(&t, exporter(1), T0, &huge);
    }
    assert_eq!(tally.take_quarantine().len(), QUARANTINE_KEEP);
    let s = tally.stats();
    assert_eq!(
        (s.quarantined, s.quarantine_dropped),
        (QUARANTINE_KEEP as u64 + 5, 5)
    );
}

#[test]
fn an_unsupported_selection_is_counted_as_unscaled_unless_the_policy_overrides() {
    let t = tables(&[]);
    let mut tally = Tally::new();
    let mut f = flow("100.64.7.1", "198.51.100.1", 100, 1, T0, T0);
    f.sampling = Sampling {
        population: 1,
        selected: 1,
        origin: SamplingOrigin::Unsupported(9),
    };
    tally.record(&t, exporter(1), T0, &f);
    assert_eq!(tally.stats().unscaled, 1);
    // Exporter 2 has `sampling = 100` in the policy: that is the scale.
    tally.record(&t, exporter(2), T0, &f);
    assert_eq!(tally.stats().unscaled, 1);
    assert_eq!(
        brief(&tally.drain()),
        vec![(0, 7, 1, Direction::Up, 10_100, 101)]
    );
}

#[test]
fn a_reload_that_changes_nothing_is_recognised() {
    let p = policy::load_str("t.toml", POLICY).policy.unwrap();
    let routes = [(Prefix::parse("203.0.113.0/24").unwrap(), RealmId(1))];
    let t = Attribution::new(&p, &routes, 1).unwrap();
    assert!(t.same_inputs(&p, &routes));
    assert!(!t.same_inputs(&p, &[]), "the routes changed");
    let q = policy::load_str("t.toml", &POLICY.replace("100.64.8.0/24", "100.64.18.0/24"))
        .policy
        .unwrap();
    assert!(!t.same_inputs(&q, &routes), "a tenant's prefix changed");
    let r = policy::load_str("t.toml", &POLICY.replace("sampling = 100", "sampling = 10"))
        .policy
        .unwrap();
    assert!(!t.same_inputs(&r, &routes), "a sampling override changed");
}

#[test]
fn the_fuzzing_entry_holds_on_generated_and_vendor_datagrams() {
    // Garbage, and then every vendor datagram of the `vendors` module
    // framed as one session: the invariants of `flows::fuzzing::attribute`
    // hold (one outcome per record, no address billed, limits, exact sums).
    let mut x = 7u64;
    for len in 0..300usize {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        flows::fuzzing::attribute(&data);
    }
    let mut framed = Vec::new();
    for d in vendors::all_datagrams() {
        framed.push(0);
        framed.extend((d.len() as u16).to_be_bytes());
        framed.extend(d);
    }
    flows::fuzzing::attribute(&framed);
}

/// Writes the fuzz seeds made from the vendor datagrams (run by hand:
/// `FUZZ_SEEDS=fuzz/seeds cargo test -p flows --test tests write_fuzz_seeds -- --ignored`).
#[test]
#[ignore = "writes files; run by hand to refresh fuzz/seeds"]
fn write_fuzz_seeds() {
    let Ok(dir) = std::env::var("FUZZ_SEEDS") else {
        panic!("set FUZZ_SEEDS to the fuzz/seeds folder");
    };
    let dir = std::path::Path::new(&dir);
    let mut framed = Vec::new();
    let mut decoder = flow_wire::Decoder::new();
    for d in vendors::all_datagrams() {
        framed.push(0);
        framed.extend((d.len() as u16).to_be_bytes());
        framed.extend(&d);
        let _ = decoder.decode("192.0.2.1:2055".parse().unwrap(), 0, &d, &mut |_| {});
    }
    for target in ["flow_decode", "flow_attribute"] {
        std::fs::create_dir_all(dir.join(target)).unwrap();
        std::fs::write(dir.join(target).join("vendors"), &framed).unwrap();
    }
    let state = decoder.save_state();
    std::fs::create_dir_all(dir.join("flow_state")).unwrap();
    std::fs::write(dir.join("flow_state").join("vendors"), &state).unwrap();
    // The collector's templates file: two workers' states.
    let mut two = vec![0, 0, 0, 2];
    for s in [&state, &flow_wire::Decoder::new().save_state()] {
        two.extend((s.len() as u32).to_be_bytes());
        two.extend(s.iter());
    }
    std::fs::create_dir_all(dir.join("flow_saved_states")).unwrap();
    std::fs::write(dir.join("flow_saved_states").join("two-workers"), &two).unwrap();
}
