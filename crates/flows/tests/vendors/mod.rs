//! Records as vendors send them, decoded by flow-wire and attributed by a
//! [`Tally`]: what each one bills, to whom, in which direction (issue 12,
//! items 26, 27 and 28).
//!
//! Datagrams are written field by field with flow-wire's test builder, so
//! each test reads as the datagram a device sends.

#[path = "../../../flow-wire/tests/builder/mod.rs"]
mod builder;

use accounting::{Direction, SAMPLE_MILLIS};
use builder::*;
use flow_wire::{Decoder, Item};
use flows::{Attribution, Tally};
use std::net::{Ipv4Addr, SocketAddr};

/// Tenant 1 holds 0.0.0.0/1, where a missing address used to land;
/// tenant 2 the wireless stations and firewall clients (192.0.2.0/24);
/// tenant 3 a server network (203.0.113.0/24, in the default realm).
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
prefixes = ["198.51.100.0/24"]
[realms.international]
id = 2
[plans.basic]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["127.0.0.1:2055"]
[[flows.exporters]]
address = "192.0.2.1"
[[tenants]]
id = 1
plan = "basic"
prefixes = ["0.0.0.0/1"]
measured_by = "flows"
[[tenants]]
id = 2
plan = "basic"
prefixes = ["192.0.2.0/24"]
measured_by = "flows"
[[tenants]]
id = 3
plan = "basic"
prefixes = ["203.0.113.0/24"]
measured_by = "flows"
"#;

/// Export time of every datagram: a slot boundary plus a minute.
const EXPORT: u32 = 1_767_225_660;
const STATION: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const NATIONAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// Private enterprise number of the RFC 5103 reverse elements.
const REVERSE_PEN: u32 = 29_305;

fn exporter() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 2055))
}

/// (tenant, realm, direction, bytes, packets) per drained sample.
type Billed = Vec<(u32, u16, Direction, u64, u64)>;

/// Decodes `datagrams` in order with one decoder and attributes every
/// flow; returns what was billed and the tally.
fn bill(datagrams: &[Vec<u8>]) -> (Billed, Tally) {
    let p = policy::load_str("t.toml", POLICY)
        .policy
        .expect("valid policy");
    let tables = Attribution::new(&p, &[], 1).unwrap();
    let mut tally = Tally::new();
    let mut decoder = Decoder::new();
    let received = i64::from(EXPORT) * 1000;
    for d in datagrams {
        let from = exporter();
        decoder
            .decode(from, received, d, &mut |item| {
                if let Item::Flow(f) = item {
                    tally.record(&tables, from.ip(), received, f);
                }
            })
            .unwrap_or_else(|e| panic!("decode failed: {e}"));
    }
    let slot = received / SAMPLE_MILLIS;
    let billed = tally
        .drain()
        .iter()
        .map(|s| {
            assert_eq!(s.slot.0, slot, "every test flow is in the export's slot");
            (
                s.key.tenant.0,
                s.key.realm.0,
                s.key.direction,
                s.bytes,
                s.packets,
            )
        })
        .collect();
    (billed, tally)
}

fn ipfix_with_enterprise(id: u16, fields: &[(u16, u16, Option<u32>)]) -> Vec<u8> {
    let mut b = Bytes::new().u16(id).u16(fields.len() as u16);
    for &(t, l, pen) in fields {
        match pen {
            Some(pen) => b = b.u16(t | 0x8000).u16(l).u32(pen),
            None => b = b.u16(t).u16(l),
        }
    }
    b.build()
}

// ------------------------------------------------------------ item 27

/// The datagrams of [`wlc_station_records_bill_the_station_not_whoever_owns_0_0_0_0`].
fn wlc() -> Vec<Vec<u8>> {
    // Cisco WLC: staMacAddress (365), staIPv4Address (366), bytes, packets,
    // flowDirection (61: 0 ingress = the station sent, 1 egress = it
    // received). No sourceIPv4Address or destinationIPv4Address.
    let tpl = set(
        0,
        &template_record(256, &[(365, 6), (366, 4), (1, 4), (2, 4), (61, 1)]),
    );
    let rec = |dir: u8, bytes: u32| {
        Bytes::new()
            .raw(&[0x34, 0x02, 0x86, 0x75, 0xc0, 0x51])
            .ip4(STATION)
            .u32(bytes)
            .u32(bytes / 100)
            .u8(dir)
    };
    let data = set(256, &rec(0, 1000).raw(&rec(1, 3000).0).pad4().build());
    vec![v9(1_000, EXPORT, 0, 0, 3, &[tpl, data])]
}

#[test]
fn wlc_station_records_bill_the_station_not_whoever_owns_0_0_0_0() {
    let (billed, tally) = bill(&wlc());
    // The other end is not in the record: the default realm.
    assert_eq!(
        billed,
        vec![
            (2, 2, Direction::Down, 3000, 30),
            (2, 2, Direction::Up, 1000, 10),
        ]
    );
    assert_eq!(tally.stats().attributed, 2);
}

/// The datagrams of [`records_without_any_address_are_unattributed_not_billed_to_0_0_0_0`].
fn no_address() -> Vec<Vec<u8>> {
    // Bytes and packets only (a data-link record without its frame).
    let tpl = set(2, &template_record(256, &[(1, 8), (2, 8), (10, 4)]));
    let data = set(
        256,
        &Bytes::new().u64(143_000_000).u64(100_000).u32(3).build(),
    );
    vec![ipfix(EXPORT, 0, 0, &[tpl, data])]
}

#[test]
fn records_without_any_address_are_unattributed_not_billed_to_0_0_0_0() {
    let (billed, tally) = bill(&no_address());
    assert_eq!(billed, vec![], "nobody is billed for an unknown address");
    assert_eq!(tally.stats().unattributed, 1);
    assert_eq!(tally.stats().attributed, 0);
}

/// The datagrams of [`nsel_post_nat_addresses_stand_in_when_the_pre_nat_ones_are_absent`].
fn post_nat() -> Vec<Vec<u8>> {
    // postNATSourceIPv4Address (225), postNATDestinationIPv4Address (226).
    let tpl = set(
        0,
        &template_record(256, &[(225, 4), (226, 4), (1, 4), (2, 4)]),
    );
    let data = set(
        256,
        &Bytes::new()
            .ip4(STATION)
            .ip4(NATIONAL)
            .u32(700)
            .u32(7)
            .build(),
    );
    vec![v9(1_000, EXPORT, 0, 0, 2, &[tpl, data])]
}

#[test]
fn nsel_post_nat_addresses_stand_in_when_the_pre_nat_ones_are_absent() {
    let (billed, _) = bill(&post_nat());
    assert_eq!(billed, vec![(2, 1, Direction::Up, 700, 7)]);
}

// ------------------------------------------------------------ item 26

/// An IPFIX options template announcing one selector (scope selectorId,
/// 302) with `params`, its options data record, and a data template
/// whose records name the selector.
fn selector(params: &[(u16, u16)], values: Bytes) -> Vec<Vec<u8>> {
    let opts_tpl = set(3, &ipfix_options_record(600, &[(302, 8)], params));
    let opts = set(600, &Bytes::new().u64(1).raw(&values.0).pad4().build());
    let data_tpl = set(
        2,
        &template_record(256, &[(8, 4), (12, 4), (1, 8), (2, 8), (302, 8)]),
    );
    vec![ipfix(EXPORT, 0, 0, &[opts_tpl, opts, data_tpl])]
}

/// One sampled record of `bytes` and 10 packets from the station to a
/// national address, through selector 1.
fn sampled(bytes: u64) -> Vec<u8> {
    let rec = Bytes::new()
        .ip4(STATION)
        .ip4(NATIONAL)
        .u64(bytes)
        .u64(10)
        .u64(1)
        .build();
    ipfix(EXPORT, 1, 0, &[set(256, &rec)])
}

fn billed_up(mut datagrams: Vec<Vec<u8>>, bytes: u64) -> (u64, u64) {
    datagrams.push(sampled(bytes));
    let (billed, _) = bill(&datagrams);
    assert_eq!(billed.len(), 1, "{billed:?}");
    assert_eq!((billed[0].0, billed[0].2), (2, Direction::Up));
    (billed[0].3, billed[0].4)
}

#[test]
fn cisco_xr_random_n_out_of_n_scales_by_population_over_size() {
    // The issue's capture: selectorAlgorithm 3, samplingPacketInterval 1,
    // samplingSize 1, samplingPopulation 256. 10,632 B sampled are
    // 2,721,792 B on the wire (RFC 5477; pmacct agrees).
    let params = [(304, 2), (305, 4), (309, 4), (310, 4)];
    let values = Bytes::new().u16(3).u32(1).u32(1).u32(256);
    assert_eq!(
        billed_up(selector(&params, values), 10_632),
        (2_721_792, 2_560)
    );
}

#[test]
fn random_n_out_of_n_with_n_above_one_is_exact() {
    // 3 out of every 10: each sampled byte stands for 10/3.
    let params = [(304, 2), (309, 4), (310, 4)];
    let values = Bytes::new().u16(3).u32(3).u32(10);
    assert_eq!(billed_up(selector(&params, values), 3_000), (10_000, 33));
}

#[test]
fn systematic_count_based_scales_by_interval_plus_space_over_interval() {
    // selectorAlgorithm 1 (in a reduced-size, 1-byte field): select 1,
    // skip 99.
    let params = [(304, 1), (305, 4), (306, 4)];
    let values = Bytes::new().u8(1).u32(1).u32(99);
    assert_eq!(billed_up(selector(&params, values), 640), (64_000, 1_000));
    // Select 2, skip 6: ×4.
    let values = Bytes::new().u8(1).u32(2).u32(6);
    assert_eq!(billed_up(selector(&params, values), 640), (2_560, 40));
}

#[test]
fn systematic_time_based_scales_by_time_interval_plus_space_over_interval() {
    // selectorAlgorithm 2: 1 ms selected, 9 ms skipped (microseconds).
    let params = [(304, 2), (307, 4), (308, 4)];
    let values = Bytes::new().u16(2).u32(1_000).u32(9_000);
    assert_eq!(billed_up(selector(&params, values), 500), (5_000, 100));
}

#[test]
fn uniform_probabilistic_scales_by_one_over_the_probability() {
    // selectorAlgorithm 4, samplingProbability 0.01 (float64).
    let params = [(304, 2), (311, 8)];
    let values = Bytes::new().u16(4).u64(0.01f64.to_bits());
    assert_eq!(
        billed_up(selector(&params, values), 1_000),
        (100_000, 1_000)
    );
    // A reduced-size float32 0.25: ×4.
    let params = [(304, 2), (311, 4)];
    let values = Bytes::new().u16(4).u32(0.25f32.to_bits());
    assert_eq!(billed_up(selector(&params, values), 1_000), (4_000, 40));
}

#[test]
fn property_match_filtering_counts_what_matched_once() {
    // selectorAlgorithm 5 selects every packet that matches: whatever
    // count-based parameters come with it are not a sampling rate.
    let params = [(304, 2), (305, 4), (306, 4)];
    let values = Bytes::new().u16(5).u32(1).u32(99);
    assert_eq!(billed_up(selector(&params, values), 1_234), (1_234, 10));
}

#[test]
fn hash_based_filtering_scales_by_output_range_over_selected_range() {
    // hashOutputRangeMin/Max (329/330) 0..65535, selected (331/332)
    // 0..655: 656 of 65,536 hash values are kept.
    let params = [(304, 2), (329, 8), (330, 8), (331, 8), (332, 8)];
    for algorithm in [6u16, 7, 8] {
        let values = Bytes::new()
            .u16(algorithm)
            .u64(0)
            .u64(65_535)
            .u64(0)
            .u64(655);
        assert_eq!(
            billed_up(selector(&params, values), 656),
            (65_536, 999),
            "algorithm {algorithm}"
        );
    }
}

#[test]
fn an_algorithm_tollgate_cannot_scale_is_counted_as_unscaled_not_taken_as_one() {
    // RFC 7014 flow-state dependent selection (9) has no fixed scale.
    let params = [(304, 2)];
    let mut datagrams = selector(&params, Bytes::new().u16(9));
    datagrams.push(sampled(500));
    let (billed, tally) = bill(&datagrams);
    assert_eq!(billed, vec![(2, 1, Direction::Up, 500, 10)]);
    assert_eq!(tally.stats().unscaled, 1);
}

// ------------------------------------------------------------ item 28

/// The datagrams of [`h3c_v9_variable_length_fields_are_read_like_ipfix_ones`].
fn h3c() -> Vec<Vec<u8>> {
    // H3C NetStream v9: an interface name of length 65535 (variable).
    let tpl = set(
        0,
        &template_record(256, &[(8, 4), (12, 4), (1, 4), (2, 4), (82, 65535)]),
    );
    let data = set(
        256,
        &Bytes::new()
            .ip4(STATION)
            .ip4(NATIONAL)
            .u32(4_200)
            .u32(3)
            .var(b"GigabitEthernet1/0/1", false)
            .pad4()
            .build(),
    );
    vec![v9(1_000, EXPORT, 0, 0, 2, &[tpl, data])]
}

#[test]
fn h3c_v9_variable_length_fields_are_read_like_ipfix_ones() {
    let (billed, _) = bill(&h3c());
    assert_eq!(billed, vec![(2, 1, Direction::Up, 4_200, 3)]);
}

/// The datagrams of [`nsel_initiator_octets_go_source_to_destination_and_responder_octets_back`].
fn nsel() -> Vec<Vec<u8>> {
    // Cisco ASA NSEL: initiatorOctets (231), responderOctets (232), and
    // the connection's total (85, which must not count again).
    let tpl = set(
        0,
        &template_record(256, &[(8, 4), (12, 4), (231, 4), (232, 4), (85, 4)]),
    );
    let data = set(
        256,
        &Bytes::new()
            .ip4(STATION)
            .ip4(NATIONAL)
            .u32(5_000)
            .u32(70_000)
            .u32(75_000)
            .build(),
    );
    vec![v9(1_000, EXPORT, 0, 0, 2, &[tpl, data])]
}

#[test]
fn nsel_initiator_octets_go_source_to_destination_and_responder_octets_back() {
    let (billed, _) = bill(&nsel());
    assert_eq!(
        billed,
        vec![
            (2, 1, Direction::Down, 70_000, 0),
            (2, 1, Direction::Up, 5_000, 0),
        ]
    );
}

/// The datagrams of [`rfc5103_biflow_reverse_octets_are_traffic_the_other_way`].
fn biflow() -> Vec<Vec<u8>> {
    let tpl = set(
        2,
        &ipfix_with_enterprise(
            256,
            &[
                (8, 4, None),
                (12, 4, None),
                (1, 8, None),
                (2, 8, None),
                (1, 8, Some(REVERSE_PEN)),
                (2, 8, Some(REVERSE_PEN)),
            ],
        ),
    );
    let data = set(
        256,
        &Bytes::new()
            .ip4(STATION)
            .ip4(NATIONAL)
            .u64(100)
            .u64(2)
            .u64(4_000)
            .u64(5)
            .build(),
    );
    vec![ipfix(EXPORT, 0, 0, &[tpl, data])]
}

#[test]
fn rfc5103_biflow_reverse_octets_are_traffic_the_other_way() {
    let (billed, _) = bill(&biflow());
    assert_eq!(
        billed,
        vec![
            (2, 1, Direction::Down, 4_000, 5),
            (2, 1, Direction::Up, 100, 2),
        ]
    );
}

/// The datagrams of [`juniper_data_link_frame_sections_are_sampled_frames`].
fn juniper() -> Vec<Vec<u8>> {
    // Inline monitoring: dataLinkFrameSize (312), dataLinkFrameSection
    // (315, variable), sampled 1 in 1000 (an exporter-wide options record:
    // scope observationDomainId, samplingPacketInterval 1, space 999).
    let opts_tpl = set(
        3,
        &ipfix_options_record(600, &[(149, 4)], &[(304, 2), (305, 4), (306, 4)]),
    );
    let opts = set(
        600,
        &Bytes::new().u32(0).u16(1).u32(1).u32(999).pad4().build(),
    );
    let tpl = set(2, &template_record(256, &[(312, 2), (315, 65535)]));
    let frame = [
        ethernet(&[(0x8100, 20)], 0x0800),
        ipv4_header(STATION, NATIONAL, 6, 1500, 0),
        l4_ports(40_000, 443),
    ]
    .concat();
    let data = set(
        256,
        &Bytes::new().u16(1518).var(&frame, false).pad4().build(),
    );
    vec![ipfix(EXPORT, 0, 0, &[opts_tpl, opts, tpl, data])]
}

#[test]
fn juniper_data_link_frame_sections_are_sampled_frames() {
    let (billed, _) = bill(&juniper());
    assert_eq!(billed, vec![(2, 1, Direction::Up, 1_518_000, 1_000)]);
}

/// Every vendor datagram above and one of each selector, in an order that
/// makes sense as one exporter's session (for the fuzzing entry's test and
/// the fuzz seeds).
pub fn all_datagrams() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in [
        wlc(),
        no_address(),
        post_nat(),
        h3c(),
        nsel(),
        biflow(),
        juniper(),
    ] {
        out.extend(d);
    }
    out.extend(selector(
        &[(304, 2), (305, 4), (309, 4), (310, 4)],
        Bytes::new().u16(3).u32(1).u32(1).u32(256),
    ));
    out.push(sampled(10_632));
    out.extend(selector(
        &[(304, 2), (311, 8)],
        Bytes::new().u16(4).u64(0.01f64.to_bits()),
    ));
    out.push(sampled(1 << 62));
    out
}
