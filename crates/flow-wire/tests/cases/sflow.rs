//! sFlow v5: packet header samples, sampled IP records, counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flow_wire::{Decoder, InterfaceCounters, Protocol, Sampling, SamplingOrigin};

use super::{decode, decode_err, exporter, RECEIVED_MS};
use crate::builder::*;

fn a4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Ethernet + 802.1Q + IPv4 with options + TCP, cut at 64 bytes.
fn vlan_tcp_header() -> Vec<u8> {
    let mut h = ethernet(&[(0x8100, 100)], 0x0800);
    h.extend(ipv4_header(
        a4("198.51.100.7"),
        a4("203.0.113.9"),
        6,
        1500,
        2,
    ));
    h.extend(l4_ports(51_000, 443));
    h.extend([0u8; 64]);
    h.truncate(64);
    h
}

/// QinQ (802.1ad outer, 802.1Q inner) + IPv6 + hop-by-hop + UDP.
fn qinq_v6_udp_header() -> Vec<u8> {
    let mut h = ethernet(&[(0x88a8, 10), (0x8100, 20)], 0x86dd);
    h.extend(ipv6_header(a6("2001:db8::10"), a6("2001:db8::20"), 0, 100));
    h.extend([17, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, 8 bytes, next UDP
    h.extend(l4_ports(5353, 53));
    h
}

#[test]
fn header_samples_and_counters() {
    let counters = [1_000_000, 900, 50, 10, 3, 1, 2_000_000, 1800, 20, 5, 4, 2];
    let d = sflow(
        77,
        3,
        &[
            flow_sample(1024, &[raw_header(1, 1522, 4, &vlan_tcp_header())]),
            expanded_flow_sample(
                2048,
                &[
                    tlv(1001, &[0; 16]),
                    raw_header(1, 146, 4, &qinq_v6_udp_header()),
                ],
            ),
            counter_sample(3, counters),
            tlv(4_096 << 12 | 1, &[0; 12]), // an enterprise's own sample: skipped
        ],
    );
    let out = decode(&mut Decoder::new(), exporter(1), &d);
    assert_eq!(out.summary.protocol, Protocol::SflowV5);
    assert_eq!((out.summary.flows, out.summary.counters), (2, 1));
    assert_eq!((out.summary.sequence, out.summary.domain), (Some(77), 3));

    let f = out.flows[0];
    assert_eq!(
        (f.src, f.dst),
        (
            Some(IpAddr::V4(a4("198.51.100.7"))),
            Some(IpAddr::V4(a4("203.0.113.9")))
        )
    );
    assert_eq!((f.protocol, f.src_port, f.dst_port), (6, 51_000, 443));
    // frame_length less the stripped FCS; one packet; receive time.
    assert_eq!((f.bytes, f.packets), (1518, 1));
    assert_eq!((f.start_ms, f.end_ms), (RECEIVED_MS, RECEIVED_MS));
    assert_eq!(
        f.sampling,
        Sampling::one_in(1024, SamplingOrigin::SflowSample)
    );

    let g = out.flows[1];
    assert_eq!(
        (g.src, g.dst),
        (
            Some(IpAddr::V6(a6("2001:db8::10"))),
            Some(IpAddr::V6(a6("2001:db8::20")))
        )
    );
    assert_eq!((g.protocol, g.src_port, g.dst_port), (17, 5353, 53));
    assert_eq!(g.bytes, 142);
    assert_eq!((g.sampling.population, g.sampling.selected), (2048, 1));

    assert_eq!(
        out.counters[0],
        InterfaceCounters {
            if_index: 3,
            in_octets: 1_000_000,
            out_octets: 2_000_000,
            in_packets: 960,
            out_packets: 1825,
            in_discards: 3,
            out_discards: 4,
            in_errors: 1,
            out_errors: 2,
        }
    );
}

#[test]
fn sampled_ipv4_and_ipv6_records() {
    let v4 = Bytes::new()
        .u32(600)
        .u32(17)
        .ip4(a4("10.0.0.1"))
        .ip4(a4("10.0.0.2"))
        .u32(1000)
        .u32(2000)
        .u32(0)
        .u32(0)
        .build();
    let v6 = Bytes::new()
        .u32(1280)
        .u32(6)
        .ip6(a6("2001:db8::1"))
        .ip6(a6("2001:db8::2"))
        .u32(80)
        .u32(8080)
        .u32(0x12)
        .u32(0)
        .build();
    let d = sflow(
        1,
        0,
        &[
            flow_sample(10, &[tlv(3, &v4)]),
            flow_sample(20, &[tlv(4, &v6)]),
        ],
    );
    let out = decode(&mut Decoder::new(), exporter(1), &d);
    let (f, g) = (out.flows[0], out.flows[1]);
    assert_eq!(
        (f.src, f.protocol, f.src_port, f.dst_port, f.bytes),
        (Some(IpAddr::V4(a4("10.0.0.1"))), 17, 1000, 2000, 600)
    );
    assert_eq!(
        (g.dst, g.protocol, g.dst_port, g.bytes),
        (Some(IpAddr::V6(a6("2001:db8::2"))), 6, 8080, 1280)
    );
}

#[test]
fn raw_ip_headers_fragments_and_non_ip() {
    // Header protocol 11: the header starts at IPv4. A non-first fragment
    // has no ports.
    let mut frag = ipv4_header(a4("10.1.0.1"), a4("10.1.0.2"), 17, 1500, 0);
    frag[6..8].copy_from_slice(&0x00b9u16.to_be_bytes());
    frag.extend(l4_ports(1, 2));
    // An ARP frame: counted, with no addresses.
    let arp = [ethernet(&[], 0x0806), vec![0; 28]].concat();
    let icmp = [
        ipv4_header(a4("10.2.0.1"), a4("10.2.0.2"), 1, 84, 0),
        vec![8, 0, 0, 0],
    ]
    .concat();
    let d = sflow(
        1,
        0,
        &[
            flow_sample(5, &[raw_header(11, 1500, 0, &frag)]),
            flow_sample(5, &[raw_header(1, 64, 4, &arp)]),
            flow_sample(5, &[raw_header(11, 84, 0, &icmp)]),
        ],
    );
    let out = decode(&mut Decoder::new(), exporter(1), &d);
    assert_eq!(
        (
            out.flows[0].protocol,
            out.flows[0].src_port,
            out.flows[0].dst_port
        ),
        (17, 0, 0)
    );
    // An ARP frame has no IP addresses: none, not 0.0.0.0.
    assert_eq!((out.flows[1].src, out.flows[1].dst), (None, None));
    assert_eq!(out.flows[1].bytes, 60);
    assert_eq!((out.flows[2].protocol, out.flows[2].dst_port), (1, 0x0800));
}

#[test]
fn ipv6_agent_and_errors() {
    let mut d = Bytes::new()
        .u32(5)
        .u32(2)
        .ip6(a6("2001:db8::99"))
        .u32(0)
        .u32(5)
        .u32(0)
        .u32(1)
        .build();
    d.extend(flow_sample(1, &[]));
    assert_eq!(
        decode(&mut Decoder::new(), exporter(1), &d).summary.flows,
        1
    );
    // A sample longer than the datagram.
    let mut long = sflow(1, 0, &[flow_sample(1, &[])]);
    long[32..36].copy_from_slice(&5000u32.to_be_bytes());
    let e = decode_err(&mut Decoder::new(), exporter(1), &long);
    assert_eq!(e.offset(), 28);
    assert!(
        e.message()
            .contains("sample 0 (flow sample) claims length 5000"),
        "{e}"
    );
    // sFlow version 4 is named.
    let mut v4 = sflow(1, 0, &[]);
    v4[3] = 4;
    assert!(decode_err(&mut Decoder::new(), exporter(1), &v4)
        .message()
        .contains("sFlow version 4"));
    // A short generic interface record.
    let bad = tlv(
        2,
        &Bytes::new()
            .u32(1)
            .u32(1)
            .u32(1)
            .raw(&tlv(1, &[0; 40]))
            .build(),
    );
    let e = decode_err(&mut Decoder::new(), exporter(1), &sflow(1, 0, &[bad]));
    assert!(e.message().contains("generic interface"), "{e}");
    assert!(e.message().contains("needs 88"), "{e}");
}
