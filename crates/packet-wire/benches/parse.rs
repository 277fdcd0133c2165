//! ns per packet: parsing a frame, and parsing plus aggregating it.
//!
//! `cargo bench -p packet-wire --bench parse`

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use divan::Bencher;
use net_types::Prefix;
use packet_wire::{parse, Aggregator, AggregatorConfig, LinkType, LocalNets};

fn main() {
    divan::main();
}

/// An Ethernet + IPv4 + TCP SYN frame from `src` to 203.0.113.`host`.
fn syn_v4(src: u32, host: u8, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.to_be_bytes());
    ip[16..20].copy_from_slice(&[203, 0, 113, host]);
    let tcp = &mut ip[20..];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x02;
    f
}

/// An Ethernet + IPv6 + hop-by-hop + fragment + UDP frame.
fn udp_v6_ext(sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8 + 8 + 8];
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&24u16.to_be_bytes());
    ip[6] = 0; // hop-by-hop
    ip[8..24].copy_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1).octets());
    ip[24..40].copy_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1).octets());
    ip[40] = 44; // → fragment
    ip[48] = 17; // → UDP; offset 0, M = 0 (atomic)
    ip[56..58].copy_from_slice(&sport.to_be_bytes());
    ip[58..60].copy_from_slice(&53u16.to_be_bytes());
    f
}

fn frames() -> Vec<Vec<u8>> {
    (0..1024u32)
        .map(|i| {
            if i % 4 == 3 {
                udp_v6_ext(i as u16)
            } else {
                syn_v4(0xc633_6400 | (i & 0xff), (i % 64) as u8, i as u16)
            }
        })
        .collect()
}

#[divan::bench]
fn parse_only(b: Bencher) {
    let frames = frames();
    b.counter(divan::counter::ItemsCount::new(frames.len()))
        .bench(|| {
            let mut ok = 0;
            for f in &frames {
                ok += usize::from(
                    parse(LinkType::Ethernet, divan::black_box(f), f.len() as u32).is_ok(),
                );
            }
            ok
        });
}

#[divan::bench]
fn parse_and_aggregate(b: Bencher) {
    let frames = frames();
    let locals = Arc::new(LocalNets::new(&[
        Prefix::V4(Ipv4Addr::new(203, 0, 113, 0), 24),
        Prefix::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0), 48),
    ]));
    let mut agg = Aggregator::new(locals, AggregatorConfig::default());
    b.counter(divan::counter::ItemsCount::new(frames.len()))
        .bench_local(|| {
            for f in &frames {
                let _ = agg.add_frame(LinkType::Ethernet, divan::black_box(f), f.len() as u32, 1);
            }
            agg.take().hosts.len()
        });
}
