//! NetFlow v5 and v9.

use std::net::{IpAddr, Ipv4Addr};

use flow_wire::{Decoder, Protocol, Sampling, SamplingOrigin};

use super::{decode, decode_err, exporter};
use crate::builder::ipfix as ipfix_message;
use crate::builder::*;

fn v5_records() -> Vec<V5Record> {
    vec![
        V5Record {
            src: Ipv4Addr::new(10, 1, 1, 1),
            dst: Ipv4Addr::new(10, 2, 2, 2),
            packets: 10,
            bytes: 15_000,
            first: 90_000,
            last: 95_000,
            src_port: 44_321,
            dst_port: 443,
            protocol: 6,
        },
        V5Record {
            src: Ipv4Addr::new(10, 3, 3, 3),
            dst: Ipv4Addr::new(10, 4, 4, 4),
            packets: 1,
            bytes: 76,
            first: 99_000,
            last: 99_000,
            src_port: 53,
            dst_port: 5353,
            protocol: 17,
        },
    ]
}

#[test]
fn v5_with_sampling() {
    // Mode 01 (packet interval) in the top two bits, interval 100.
    let d = v5(
        100_000,
        1_767_225_600,
        500_000_000,
        42,
        0x4000 | 100,
        &v5_records(),
    );
    let out = decode(&mut Decoder::new(), exporter(1), &d);
    assert_eq!(out.summary.protocol, Protocol::NetflowV5);
    assert_eq!(out.summary.flows, 2);
    assert_eq!(out.summary.sequence, Some(42));
    assert_eq!(out.summary.domain, 0x0102);
    let f = out.flows[0];
    assert_eq!(f.src, Some(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1))));
    assert_eq!(f.dst, Some(IpAddr::V4(Ipv4Addr::new(10, 2, 2, 2))));
    assert_eq!((f.protocol, f.src_port, f.dst_port), (6, 44_321, 443));
    assert_eq!(f.tcp_flags, 0x18, "v5 tcp_flags (ACK PSH)");
    assert_eq!((f.bytes, f.packets), (15_000, 10));
    // Export at 1767225600.500; uptime 100 s; first at uptime 90 s.
    assert_eq!(f.start_ms, 1_767_225_590_500);
    assert_eq!(f.end_ms, 1_767_225_595_500);
    assert_eq!(f.sampling, Sampling::one_in(100, SamplingOrigin::Header));
    assert_eq!(out.flows[1].bytes, 76);
}

#[test]
fn v5_unsampled_is_interval_one() {
    let d = v5(100_000, 1_767_225_600, 0, 1, 0, &v5_records());
    let out = decode(&mut Decoder::new(), exporter(1), &d);
    assert!(out.flows.iter().all(|f| f.sampling == Sampling::UNKNOWN));
}

#[test]
fn v5_count_beyond_length_names_the_missing_record() {
    let mut d = v5(1, 1, 0, 1, 0, &v5_records());
    d[3] = 3; // three records claimed, two present
    let e = decode_err(&mut Decoder::new(), exporter(1), &d);
    assert_eq!(e.offset(), 24 + 2 * 48);
    assert!(e.to_string().contains("header count says 3 records"), "{e}");
}

#[test]
fn v9_template_then_data_exact_totals() {
    let gen = Flowgen::new(false, 8, 30, 7);
    let mut dec = Decoder::new();
    let t = decode(&mut dec, exporter(1), &gen.template);
    assert_eq!(t.summary.templates_learned, 1);
    assert_eq!(t.summary.flows, 0);
    assert_eq!(dec.template_count(), 1);
    for (d, truth) in gen.datagrams.iter().zip(&gen.truth) {
        let out = decode(&mut dec, exporter(1), d);
        assert_eq!(out.summary.protocol, Protocol::NetflowV9);
        assert_eq!(out.summary.flows, 30);
        assert_eq!(out.summary.unknown_template_records, 0);
        let bytes: u64 = out.flows.iter().map(|f| f.bytes).sum();
        let packets: u64 = out.flows.iter().map(|f| f.packets).sum();
        assert_eq!(bytes, truth.iter().map(|t| t.bytes).sum::<u64>());
        assert_eq!(packets, truth.iter().map(|t| t.packets).sum::<u64>());
        for (f, t) in out.flows.iter().zip(truth) {
            assert_eq!(f.src, Some(IpAddr::V4(t.src)));
            assert_eq!(f.dst, Some(IpAddr::V4(t.dst)));
            assert_eq!(
                (f.protocol, f.src_port, f.dst_port),
                (t.protocol, t.src_port, t.dst_port)
            );
            assert_eq!((f.start_ms, f.end_ms), (t.start_ms, t.end_ms));
            assert_eq!(f.sampling, Sampling::UNKNOWN);
        }
    }
}

#[test]
fn v9_records_before_their_template_are_counted_as_records_not_sets() {
    // Issue 12, item 30: a set of 30 records before its template counted 1.
    // A v9 header counts every record of the packet, so what the known
    // sets do not account for is the unknown sets' records.
    let gen = Flowgen::new(false, 1, 30, 7);
    let mut dec = Decoder::new();
    let out = decode(&mut dec, exporter(1), &gen.datagrams[0]);
    assert_eq!(out.summary.flows, 0);
    assert_eq!(out.summary.unknown_template_records, 30);
    decode(&mut dec, exporter(1), &gen.template);
    assert_eq!(
        decode(&mut dec, exporter(1), &gen.datagrams[0])
            .summary
            .flows,
        30
    );
}

#[test]
fn v9_unknown_records_beside_known_sets_are_what_the_header_count_leaves() {
    // A template record, a known set of 2 and an unknown set of 11 records:
    // the header counts 14.
    let mut dec = Decoder::new();
    let tpl = set(0, &template_record(256, &[(8, 4), (12, 4), (1, 4)]));
    let rec = |n: u32| {
        Bytes::new()
            .ip4(Ipv4Addr::new(10, 0, 0, 1))
            .ip4(Ipv4Addr::new(10, 0, 0, 2))
            .u32(n)
    };
    let known = set(256, &rec(1).raw(&rec(2).0).build());
    let mut unknown = Bytes::new();
    for i in 0..11 {
        unknown = unknown.raw(&rec(i).0);
    }
    let unknown = set(300, &unknown.build());
    let out = decode(
        &mut dec,
        exporter(1),
        &v9(0, 1_767_225_600, 0, 0, 14, &[tpl, known, unknown]),
    );
    assert_eq!(out.summary.flows, 2);
    assert_eq!(out.summary.unknown_template_records, 11);
}

#[test]
fn v9_resent_template_replaces_the_old_layout() {
    let mut dec = Decoder::new();
    let t1 = v9(
        1000,
        1_767_225_600,
        0,
        0,
        1,
        &[set(0, &template_record(300, &[(8, 4), (12, 4), (1, 4)]))],
    );
    let t2 = v9(
        1000,
        1_767_225_600,
        1,
        0,
        1,
        &[set(0, &template_record(300, &[(12, 4), (8, 4), (2, 4)]))],
    );
    let data = set(
        300,
        &Bytes::new()
            .ip4(Ipv4Addr::new(1, 1, 1, 1))
            .ip4(Ipv4Addr::new(2, 2, 2, 2))
            .u32(7)
            .build(),
    );
    decode(&mut dec, exporter(1), &t1);
    let a = decode(
        &mut dec,
        exporter(1),
        &v9(1000, 1_767_225_600, 2, 0, 1, std::slice::from_ref(&data)),
    );
    assert_eq!(
        (a.flows[0].src, a.flows[0].bytes, a.flows[0].packets),
        (Some("1.1.1.1".parse().unwrap()), 7, 0)
    );
    decode(&mut dec, exporter(1), &t2);
    assert_eq!(dec.template_count(), 1);
    let b = decode(
        &mut dec,
        exporter(1),
        &v9(1000, 1_767_225_600, 3, 0, 1, &[data]),
    );
    assert_eq!(
        (b.flows[0].src, b.flows[0].bytes, b.flows[0].packets),
        (Some("2.2.2.2".parse().unwrap()), 0, 7)
    );
    // No time fields: both times are the export time.
    assert_eq!(
        (b.flows[0].start_ms, b.flows[0].end_ms),
        (1_767_225_600_000, 1_767_225_600_000)
    );
}

#[test]
fn v9_fallback_counters_and_reduced_sizes() {
    // OUT_BYTES (23) and OUT_PKTS (24) stand in when 1 and 2 are absent;
    // lengths other than 4 are read as big-endian integers of that size.
    let fields = [(8, 4), (12, 4), (23, 3), (24, 2), (4, 1), (7, 2), (11, 2)];
    let mut dec = Decoder::new();
    decode(
        &mut dec,
        exporter(1),
        &v9(0, 1, 0, 0, 1, &[set(0, &template_record(256, &fields))]),
    );
    let rec = Bytes::new()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .ip4(Ipv4Addr::new(10, 0, 0, 2))
        .uint(0x01_0203, 3)
        .u16(9)
        .u8(17)
        .u16(5000)
        .u16(53);
    let out = decode(
        &mut dec,
        exporter(1),
        &v9(0, 1, 1, 0, 1, &[set(256, &rec.pad4().build())]),
    );
    let f = out.flows[0];
    assert_eq!(
        (f.bytes, f.packets, f.protocol, f.src_port, f.dst_port),
        (0x01_0203, 9, 17, 5000, 53)
    );
}

#[test]
fn v9_and_ipfix_tcp_control_bits_are_the_flows_tcp_flags() {
    // TCP_FLAGS (6): one byte in v9, two in IPFIX (flags in the low
    // eight bits, the header length's nibble above them ignored).
    for (ipfix, len) in [(false, 1u16), (true, 2)] {
        let fields = [(8, 4), (12, 4), (1, 4), (2, 4), (4, 1), (6, len)];
        let tpl = template_record(256, &fields);
        let mut rec = Bytes::new()
            .ip4(Ipv4Addr::new(10, 0, 0, 1))
            .ip4(Ipv4Addr::new(10, 0, 0, 2))
            .u32(4000)
            .u32(100)
            .u8(6);
        rec = if ipfix { rec.u16(0x5002) } else { rec.u8(0x02) };
        let data = set(256, &rec.pad4().build());
        let mut dec = Decoder::new();
        let out = if ipfix {
            decode(
                &mut dec,
                exporter(1),
                &ipfix_message(1, 0, 0, &[set(2, &tpl)]),
            );
            decode(&mut dec, exporter(1), &ipfix_message(1, 1, 0, &[data]))
        } else {
            decode(&mut dec, exporter(1), &v9(0, 1, 0, 0, 1, &[set(0, &tpl)]));
            decode(&mut dec, exporter(1), &v9(0, 1, 1, 0, 1, &[data]))
        };
        assert_eq!(out.flows.len(), 1, "ipfix {ipfix}");
        assert_eq!((out.flows[0].protocol, out.flows[0].tcp_flags), (6, 0x02));
    }
}

#[test]
fn v9_set_longer_than_datagram_names_offset_and_set() {
    let gen = Flowgen::new(false, 1, 30, 7);
    let mut d = gen.datagrams[0].clone();
    d[22..24].copy_from_slice(&9000u16.to_be_bytes());
    let e = decode_err(&mut Decoder::new(), exporter(1), &d);
    assert_eq!(e.offset(), 20);
    assert_eq!(
        e.to_string(),
        format!(
            "offset 20: set 256 (data) claims length 9000 but only {} bytes remain",
            d.len() - 20
        )
    );
}
