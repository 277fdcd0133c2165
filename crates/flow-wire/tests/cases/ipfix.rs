//! IPFIX: field encodings, templates, withdrawals, times.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flow_wire::{Decoder, Protocol};

use super::{decode, decode_err, exporter};
use crate::builder::*;

const EXPORT: u32 = 1_767_225_600;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A template with 8-byte counters, IPv6 addresses, a variable-length
/// field (applicationName, 96) and an enterprise-specific field between
/// the ones we read.
fn rich_template() -> Vec<u8> {
    let rec = Bytes::new()
        .u16(400)
        .u16(8)
        .u16(27)
        .u16(16)
        .u16(28)
        .u16(16)
        .u16(96)
        .u16(65535) // variable length
        .u16(0x8000 | 42)
        .u16(6)
        .u32(29305) // enterprise field, 6 bytes
        .u16(4)
        .u16(1)
        .u16(7)
        .u16(2)
        .u16(1)
        .u16(8)
        .u16(2)
        .u16(8)
        .build();
    set(2, &rec)
}

fn rich_record(src: Ipv6Addr, name: &[u8], long: bool, bytes: u64) -> Bytes {
    Bytes::new()
        .ip6(src)
        .ip6(v6("2001:db8::2"))
        .var(name, long)
        .raw(&[0xee; 6])
        .u8(17)
        .u16(4500)
        .u64(bytes)
        .u64(3)
}

#[test]
fn ipv6_variable_enterprise_and_padding() {
    let mut dec = Decoder::new();
    let t = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 0, 5, &[rich_template()]),
    );
    assert_eq!(t.summary.protocol, Protocol::Ipfix);
    assert_eq!(t.summary.templates_learned, 1);
    let long_name = vec![b'x'; 300];
    let body = rich_record(v6("2001:db8::1"), b"dns", false, 1 << 40)
        .raw(&rich_record(v6("2001:db8::3"), b"web", true, 2).0)
        .raw(&rich_record(v6("2001:db8::4"), &long_name, false, 5).0)
        .pad4()
        .raw(&[0, 0, 0, 0])
        .build();
    let out = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 1, 5, &[set(400, &body)]),
    );
    assert_eq!(out.summary.flows, 3, "{:?}", out.flows);
    assert_eq!(out.summary.domain, 5);
    let f = out.flows[0];
    assert_eq!(f.src, Some(IpAddr::V6(v6("2001:db8::1"))));
    assert_eq!(f.dst, Some(IpAddr::V6(v6("2001:db8::2"))));
    assert_eq!(
        (f.protocol, f.src_port, f.bytes, f.packets),
        (17, 4500, 1 << 40, 3)
    );
    assert_eq!(
        (f.start_ms, f.end_ms),
        (i64::from(EXPORT) * 1000, i64::from(EXPORT) * 1000)
    );
    assert_eq!(out.flows[1].src, Some(IpAddr::V6(v6("2001:db8::3"))));
    assert_eq!(out.flows[1].bytes, 2);
    assert_eq!(out.flows[2].src, Some(IpAddr::V6(v6("2001:db8::4"))));
    assert_eq!(out.flows[2].bytes, 5);
}

#[test]
fn variable_field_running_past_the_set_names_the_record() {
    let mut dec = Decoder::new();
    decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 0, 5, &[rich_template()]),
    );
    let mut body = rich_record(v6("2001:db8::1"), b"dns", false, 1).build();
    // Claim a 200-byte name where 3 bytes are.
    body[32] = 200;
    let e = decode_err(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 1, 5, &[set(400, &body)]),
    );
    assert_eq!(e.offset(), 16 + 4 + 33);
    let text = e.to_string();
    assert!(text.contains("set 400 (data)"), "{text}");
    assert!(
        text.contains("record 0: field 2 (element 96) needs 200 bytes"),
        "{text}"
    );
}

#[test]
fn flowgen_ipfix_exact() {
    let gen = Flowgen::new(true, 4, 30, 3);
    let mut dec = Decoder::new();
    decode(&mut dec, exporter(1), &gen.template);
    for (d, truth) in gen.datagrams.iter().zip(&gen.truth) {
        let out = decode(&mut dec, exporter(1), d);
        assert_eq!(out.flows.len(), 30);
        for (f, t) in out.flows.iter().zip(truth) {
            assert_eq!(
                (f.src, f.dst),
                (Some(IpAddr::V4(t.src)), Some(IpAddr::V4(t.dst)))
            );
            assert_eq!((f.bytes, f.packets), (t.bytes, t.packets));
            assert_eq!((f.start_ms, f.end_ms), (t.start_ms, t.end_ms));
        }
    }
}

fn small_template(id: u16) -> Vec<u8> {
    template_record(id, &[(8, 4), (12, 4), (1, 4)])
}

fn small_data(id: u16, bytes: u32) -> Vec<u8> {
    set(
        id,
        &Bytes::new()
            .ip4(Ipv4Addr::new(10, 0, 0, 1))
            .ip4(Ipv4Addr::new(10, 0, 0, 2))
            .u32(bytes)
            .build(),
    )
}

#[test]
fn withdrawal_then_data_is_unknown() {
    let mut dec = Decoder::new();
    decode(
        &mut dec,
        exporter(1),
        &ipfix(
            EXPORT,
            0,
            1,
            &[set(2, &[small_template(300), small_template(301)].concat())],
        ),
    );
    assert_eq!(dec.template_count(), 2);
    let withdraw = ipfix(
        EXPORT,
        1,
        1,
        &[set(2, &Bytes::new().u16(300).u16(0).build())],
    );
    assert_eq!(
        decode(&mut dec, exporter(1), &withdraw)
            .summary
            .templates_withdrawn,
        1
    );
    assert_eq!(dec.template_count(), 1);
    let out = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 2, 1, &[small_data(300, 1), small_data(301, 2)]),
    );
    // IPFIX does not say how many records an unknown set holds: the set
    // is counted, its records are not.
    assert_eq!(out.summary.unknown_template_sets, 1);
    assert_eq!(out.summary.unknown_template_records, 0);
    assert_eq!(out.summary.flows, 1);
    assert_eq!(out.flows[0].bytes, 2);
}

#[test]
fn withdraw_all_templates_keeps_options_templates() {
    let mut dec = Decoder::new();
    let opts = set(3, &ipfix_options_record(500, &[(302, 4)], &[(34, 4)]));
    decode(
        &mut dec,
        exporter(1),
        &ipfix(
            EXPORT,
            0,
            1,
            &[
                set(2, &[small_template(300), small_template(301)].concat()),
                opts,
            ],
        ),
    );
    assert_eq!(dec.template_count(), 3);
    // Template id 2 in set 2 with no fields: withdraw all (data) templates.
    let all = ipfix(EXPORT, 1, 1, &[set(2, &Bytes::new().u16(2).u16(0).build())]);
    assert_eq!(
        decode(&mut dec, exporter(1), &all)
            .summary
            .templates_withdrawn,
        2
    );
    assert_eq!(dec.template_count(), 1);
    let all_opts = ipfix(EXPORT, 2, 1, &[set(3, &Bytes::new().u16(3).u16(0).build())]);
    assert_eq!(
        decode(&mut dec, exporter(1), &all_opts)
            .summary
            .templates_withdrawn,
        1
    );
    assert_eq!(dec.template_count(), 0);
}

#[test]
fn same_id_from_two_exporters_and_two_domains_do_not_mix() {
    let mut dec = Decoder::new();
    let a = template_record(256, &[(8, 4), (12, 4), (1, 4)]);
    let b = template_record(256, &[(12, 4), (8, 4), (2, 4), (1, 4)]);
    decode(&mut dec, exporter(1), &ipfix(EXPORT, 0, 1, &[set(2, &a)]));
    decode(&mut dec, exporter(2), &ipfix(EXPORT, 0, 1, &[set(2, &b)]));
    decode(&mut dec, exporter(1), &ipfix(EXPORT, 0, 2, &[set(2, &b)]));
    // The same exporter speaking v9 with the same id keeps its own too.
    decode(
        &mut dec,
        exporter(1),
        &v9(0, EXPORT, 0, 1, 1, &[set(0, &b)]),
    );
    assert_eq!(dec.template_count(), 4);
    let rec12 = Bytes::new()
        .ip4(Ipv4Addr::new(1, 1, 1, 1))
        .ip4(Ipv4Addr::new(2, 2, 2, 2))
        .u32(10)
        .build();
    let rec16 = Bytes::new()
        .ip4(Ipv4Addr::new(1, 1, 1, 1))
        .ip4(Ipv4Addr::new(2, 2, 2, 2))
        .u32(10)
        .u32(20)
        .build();
    let one = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 1, 1, &[set(256, &rec12)]),
    )
    .flows;
    assert_eq!(
        (one.len(), one[0].src, one[0].bytes),
        (1, Some("1.1.1.1".parse().unwrap()), 10)
    );
    let two = decode(
        &mut dec,
        exporter(2),
        &ipfix(EXPORT, 1, 1, &[set(256, &rec16)]),
    )
    .flows;
    assert_eq!(
        (two.len(), two[0].src, two[0].packets, two[0].bytes),
        (1, Some("2.2.2.2".parse().unwrap()), 10, 20)
    );
    let dom2 = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 1, 2, &[set(256, &rec16)]),
    )
    .flows;
    assert_eq!(
        (dom2[0].src, dom2[0].bytes),
        (Some("2.2.2.2".parse().unwrap()), 20)
    );
    // Domain 3 of exporter 1 knows nothing.
    let none = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 1, 3, &[set(256, &rec16)]),
    );
    assert_eq!(none.summary.unknown_template_sets, 1);
    // An IPv4-mapped IPv6 source is the same exporter.
    let mapped = "[::ffff:192.0.2.1]:9999".parse().unwrap();
    assert_eq!(
        decode(&mut dec, mapped, &ipfix(EXPORT, 1, 1, &[set(256, &rec12)]))
            .summary
            .flows,
        1
    );
}

#[test]
fn time_encodings() {
    let mut dec = Decoder::new();
    // Template 300: seconds; 301: NTP microseconds; 302: sysUpTime-relative.
    let tpl = [
        template_record(300, &[(150, 4), (151, 4), (1, 4)]),
        template_record(301, &[(154, 8), (155, 8), (1, 4)]),
        template_record(302, &[(22, 4), (21, 4), (1, 4)]),
        template_record(303, &[(158, 4), (159, 4), (1, 4)]),
    ]
    .concat();
    let opts = set(3, &ipfix_options_record(500, &[(149, 4)], &[(160, 8)]));
    decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 0, 1, &[set(2, &tpl), opts]),
    );
    let ntp =
        |unix_s: u64, half: bool| ((unix_s + 2_208_988_800) << 32) | if half { 1 << 31 } else { 0 };
    let data = [
        set(
            300,
            &Bytes::new().u32(EXPORT - 10).u32(EXPORT - 5).u32(1).build(),
        ),
        set(
            301,
            &Bytes::new()
                .u64(ntp(u64::from(EXPORT) - 10, true))
                .u64(ntp(u64::from(EXPORT) - 5, false))
                .u32(1)
                .build(),
        ),
        // Before systemInitTime is known, uptime times cannot be placed.
        set(302, &Bytes::new().u32(1_000).u32(2_000).u32(1).build()),
        set(
            303,
            &Bytes::new().u32(10_000_000).u32(5_000_000).u32(1).build(),
        ),
        // The options record announcing systemInitTimeMilliseconds...
        set(500, &Bytes::new().u32(1).u64(1_767_000_000_000).build()),
        // ...after which they can.
        set(302, &Bytes::new().u32(1_000).u32(2_000).u32(1).build()),
    ];
    let out = decode(&mut dec, exporter(1), &ipfix(EXPORT, 1, 1, &data));
    let ms = i64::from(EXPORT) * 1000;
    let times: Vec<(i64, i64)> = out.flows.iter().map(|f| (f.start_ms, f.end_ms)).collect();
    assert_eq!(
        times,
        vec![
            (ms - 10_000, ms - 5_000),
            (ms - 9_500, ms - 5_000),
            (ms, ms),
            (ms - 10_000, ms - 5_000),
            (1_767_000_001_000, 1_767_000_002_000),
        ]
    );
    assert_eq!(out.summary.options_records, 1);
}

#[test]
fn message_length_beyond_datagram() {
    let mut d = ipfix(EXPORT, 0, 1, &[set(2, &small_template(300))]);
    d[2..4].copy_from_slice(&2000u16.to_be_bytes());
    let e = decode_err(&mut Decoder::new(), exporter(1), &d);
    assert_eq!(e.offset(), 2);
    assert!(e.message().contains("IPFIX message length 2000"), "{e}");
}

#[test]
fn bad_scope_count_and_reserved_ids() {
    let mut dec = Decoder::new();
    let bad_scope = Bytes::new().u16(500).u16(1).u16(2).u16(34).u16(4).build();
    let e = decode_err(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 0, 1, &[set(3, &bad_scope)]),
    );
    assert_eq!(e.offset(), 16 + 4 + 4);
    assert!(e.message().contains("scope field count 2"), "{e}");
    let reserved = template_record(12, &[(8, 4)]);
    let e = decode_err(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 0, 1, &[set(2, &reserved)]),
    );
    assert_eq!(e.offset(), 20);
    assert!(e.message().contains("template record 0 (id 12)"), "{e}");
}
