//! Decoding throughput in records per second, for flow-wire and, on the
//! identical datagrams, for the crates.io decoders the house rule asks us
//! to prefer where good enough: `netflow_parser` (v5, v9, IPFIX) and
//! `sflow-parser` (sFlow v5).
//!
//! The v9 and IPFIX datagrams are shaped like `shared/bench/flowgen.py`'s
//! (the same 15-field template, 30 records per datagram, the same value
//! ranges), built by the tests' builder. Each iteration decodes a pool of
//! 256 datagrams; divan's items counter is the number of flow records in
//! it, so "items/s" is records/s.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-flowwire cargo bench -p flow-wire --bench decode`

#[path = "../tests/builder/mod.rs"]
mod builder;

use std::net::{Ipv4Addr, SocketAddr};

use builder::*;
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use flow_wire::{Decoder, Item};

fn main() {
    divan::main();
}

const POOL: usize = 256;
const RECORDS: usize = 30;
const SFLOW_SAMPLES: usize = 8;

/// Datagrams of one protocol, the template datagram to learn first (if
/// any), and how many flow records the pool holds.
struct Pool {
    template: Option<Vec<u8>>,
    datagrams: Vec<Vec<u8>>,
    records: usize,
}

fn pool(proto: &str) -> Pool {
    match proto {
        "v9" | "ipfix" => {
            let gen = Flowgen::new(proto == "ipfix", POOL, RECORDS, 1);
            Pool {
                template: Some(gen.template),
                datagrams: gen.datagrams,
                records: POOL * RECORDS,
            }
        }
        "v5" => {
            let mut rng = Rng::new(5);
            let datagrams = (0..POOL)
                .map(|seq| {
                    let recs: Vec<V5Record> = (0..RECORDS)
                        .map(|_| V5Record {
                            src: Ipv4Addr::from(0xC612_0000 + rng.below(0x1_FFFF) as u32),
                            dst: Ipv4Addr::from(0xCB00_7100 + rng.below(255) as u32),
                            packets: 1 + rng.below(200) as u32,
                            bytes: 40 + rng.below(100_000) as u32,
                            first: 3_000_000,
                            last: 3_050_000,
                            src_port: rng.below(65_536) as u16,
                            dst_port: 443,
                            protocol: 6,
                        })
                        .collect();
                    v5(3_600_000, 1_767_225_600, 0, seq as u32, 0x4000 | 100, &recs)
                })
                .collect();
            Pool {
                template: None,
                datagrams,
                records: POOL * RECORDS,
            }
        }
        "sflow" => {
            let mut rng = Rng::new(6);
            let datagrams = (0..POOL)
                .map(|seq| {
                    let samples: Vec<Vec<u8>> = (0..SFLOW_SAMPLES)
                        .map(|_| {
                            // A 128-byte snapshot, as switches send by default.
                            let mut h = ethernet(&[(0x8100, 100)], 0x0800);
                            h.extend(ipv4_header(
                                Ipv4Addr::from(0xC612_0000 + rng.below(0x1_FFFF) as u32),
                                Ipv4Addr::from(0xCB00_7100 + rng.below(255) as u32),
                                6,
                                1500,
                                0,
                            ));
                            h.extend(l4_ports(rng.below(65_536) as u16, 443));
                            h.resize(128, 0);
                            flow_sample(2048, &[raw_header(1, 1518, 4, &h)])
                        })
                        .collect();
                    sflow(seq as u32, 0, &samples)
                })
                .collect();
            Pool {
                template: None,
                datagrams,
                records: POOL * SFLOW_SAMPLES,
            }
        }
        other => panic!("no pool for {other}"),
    }
}

fn exporter() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

/// flow-wire: decode to `FlowRecord`s. The sink passes every record
/// through `black_box`, so each one is fully built (addresses, ports,
/// times, sampling) as a collector's sink would need it.
#[divan::bench(args = ["v5", "v9", "ipfix", "sflow"])]
fn flow_wire(b: Bencher, proto: &str) {
    let pool = pool(proto);
    let mut dec = Decoder::new();
    if let Some(t) = &pool.template {
        dec.decode(exporter(), 0, t, &mut |_| {})
            .expect("template decodes");
    }
    // Check the count once, outside the measurement.
    let mut seen = 0usize;
    for d in &pool.datagrams {
        dec.decode(exporter(), 0, d, &mut |_| seen += 1)
            .expect("datagram decodes");
    }
    assert_eq!(seen, pool.records);
    b.counter(ItemsCount::new(pool.records)).bench_local(|| {
        let mut total = 0u64;
        for d in &pool.datagrams {
            let r = dec.decode(exporter(), 0, black_box(d), &mut |item| {
                if let Item::Flow(f) = item {
                    total = total.wrapping_add(black_box(f).bytes);
                }
            });
            black_box(&r);
        }
        total
    });
}

/// netflow_parser 1.0.6, `parse_bytes`: packets with every field parsed
/// into its typed value (the crate's native output).
#[divan::bench(args = ["v5", "v9", "ipfix"])]
fn netflow_parser_parse(b: Bencher, proto: &str) {
    let pool = pool(proto);
    let mut parser = netflow_parser::NetflowParser::default();
    if let Some(t) = &pool.template {
        black_box(parser.parse_bytes(t).packets.len());
    }
    let flows: usize = pool
        .datagrams
        .iter()
        .map(|d| parser.parse_bytes_as_netflow_common_flowsets(d).0.len())
        .sum();
    assert_eq!(
        flows, pool.records,
        "netflow_parser decoded a different number of records"
    );
    b.counter(ItemsCount::new(pool.records)).bench_local(|| {
        for d in &pool.datagrams {
            black_box(parser.parse_bytes(black_box(d)).packets.len());
        }
    });
}

/// netflow_parser 1.0.6, `parse_bytes_as_netflow_common_flowsets`: the
/// crate's flat per-flow view (addresses, ports, protocol, times), the
/// closest equivalent of a `FlowRecord`.
#[divan::bench(args = ["v5", "v9", "ipfix"])]
fn netflow_parser_common(b: Bencher, proto: &str) {
    let pool = pool(proto);
    let mut parser = netflow_parser::NetflowParser::default();
    if let Some(t) = &pool.template {
        black_box(parser.parse_bytes(t).packets.len());
    }
    b.counter(ItemsCount::new(pool.records)).bench_local(|| {
        let mut n = 0usize;
        for d in &pool.datagrams {
            n += parser
                .parse_bytes_as_netflow_common_flowsets(black_box(d))
                .0
                .len();
        }
        n
    });
}

/// sflow-parser 0.7.0, `parse_datagram`: samples and records parsed, the
/// sampled packet header left as bytes (it decodes less than flow-wire,
/// which also reads Ethernet, VLAN, IPv4 and TCP from the header).
#[divan::bench(args = ["sflow"])]
fn sflow_parser(b: Bencher, proto: &str) {
    let pool = pool(proto);
    let samples: usize = pool
        .datagrams
        .iter()
        .map(|d| {
            sflow_parser::parse_datagram(d)
                .expect("sflow-parser parses")
                .samples
                .len()
        })
        .sum();
    assert_eq!(samples, pool.records);
    b.counter(ItemsCount::new(pool.records)).bench_local(|| {
        for d in &pool.datagrams {
            black_box(sflow_parser::parse_datagram(black_box(d)).ok());
        }
    });
}
