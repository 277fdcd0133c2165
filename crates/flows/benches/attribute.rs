//! The collector's per-record hot path without sockets: attribution alone,
//! and NetFlow v9 decoding plus attribution, on records shaped like
//! `../shared/bench/flowgen.py`'s (2,000 source hosts in 198.18.0.0/15,
//! 200 destinations in 203.0.113.0/24, 30 records a datagram), with the
//! policy `bench/flow_policy.py` writes (512 tenants, two realms).
//!
//! `cargo bench -p flows --bench attribute`

use flow_wire::{Decoder, FlowRecord, Item, Sampling};
use flows::{Attribution, Tally};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn main() {
    divan::main();
}

fn policy() -> policy::Policy {
    let mut text = String::from(
        r#"[site]
mode = "router"
uplink = "eth0"
lan = "eth1"
capacity = { down = "100gbit", up = "100gbit" }
[realms]
default = "international"
[realms.national]
id = 1
prefixes = ["203.0.113.0/24"]
[realms.international]
id = 2
[plans.flat]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["127.0.0.1:2055"]
[[flows.exporters]]
address = "127.0.0.1"
"#,
    );
    for i in 0..512u32 {
        text.push_str(&format!(
            "[[tenants]]\nid = {}\nplan = \"flat\"\nprefixes = [\"198.{}.{}.0/24\"]\nmeasured_by = \"flows\"\n",
            i + 1,
            18 + i / 256,
            i % 256
        ));
    }
    policy::load_str("bench.toml", &text)
        .policy
        .expect("valid policy")
}

/// A small deterministic generator (xorshift), so the bench needs no crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const NOW: i64 = 1_795_000_000_000;

fn records(n: usize) -> Vec<FlowRecord> {
    let mut r = Rng(0x1234_5678);
    let srcs: Vec<u32> = (0..2000)
        .map(|_| 0xC612_0000 | (r.next() as u32 & 0x1_FFFF))
        .collect();
    let dsts: Vec<u32> = (0..200)
        .map(|_| 0xCB00_7100 | (r.next() as u32 & 0xFF))
        .collect();
    (0..n)
        .map(|_| {
            let end = NOW - (r.next() % 30_000) as i64;
            FlowRecord {
                src: Some(IpAddr::V4(Ipv4Addr::from(
                    srcs[r.next() as usize % srcs.len()],
                ))),
                dst: Some(IpAddr::V4(Ipv4Addr::from(
                    dsts[r.next() as usize % dsts.len()],
                ))),
                protocol: 6,
                src_port: 40000,
                dst_port: 443,
                tcp_flags: 0x12,
                bytes: 1000 + r.next() % 100_000,
                packets: 1 + r.next() % 100,
                start_ms: end - (r.next() % 60_000) as i64,
                end_ms: end,
                sampling: Sampling::UNKNOWN,
            }
        })
        .collect()
}

#[divan::bench(sample_count = 20)]
fn attribute_100k_records(b: divan::Bencher) {
    let p = policy();
    let tables = Attribution::new(&p, &[], 1).unwrap();
    let recs = records(100_000);
    let exporter: IpAddr = Ipv4Addr::LOCALHOST.into();
    let mut tally = Tally::new();
    b.counter(divan::counter::ItemsCount::new(recs.len()))
        .bench_local(|| {
            for f in &recs {
                tally.record(&tables, exporter, NOW, f);
            }
            divan::black_box(tally.pending());
        });
}

/// NetFlow v9 datagrams with flowgen's template (15 fields, 30 records).
fn v9_datagrams(recs: &[FlowRecord]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let fields: [(u16, u16); 15] = [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 1),
        (5, 1),
        (1, 4),
        (2, 4),
        (22, 4),
        (21, 4),
        (10, 4),
        (14, 4),
        (16, 4),
        (17, 4),
    ];
    let uptime: u32 = 3_600_000;
    let secs = (NOW / 1000) as u32;
    let header = |count: u16, seq: u32| {
        let mut h = Vec::new();
        for v in [9u16, count] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        for v in [uptime, secs, seq, 0] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h
    };
    let mut t = header(1, 0);
    t.extend_from_slice(&0u16.to_be_bytes());
    t.extend_from_slice(&(4 + 4 + 4 * fields.len() as u16).to_be_bytes());
    t.extend_from_slice(&256u16.to_be_bytes());
    t.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ty, len) in fields {
        t.extend_from_slice(&ty.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    let mut out = Vec::new();
    for (i, chunk) in recs.chunks(30).enumerate() {
        let mut body = Vec::new();
        for f in chunk {
            let (Some(IpAddr::V4(s)), Some(IpAddr::V4(d))) = (f.src, f.dst) else {
                continue;
            };
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            body.extend_from_slice(&f.src_port.to_be_bytes());
            body.extend_from_slice(&f.dst_port.to_be_bytes());
            body.extend_from_slice(&[f.protocol, 0x18, 0]);
            let rel = |ms: i64| uptime.wrapping_sub((NOW - ms) as u32);
            for v in [
                f.bytes as u32,
                f.packets as u32,
                rel(f.start_ms),
                rel(f.end_ms),
                1,
                2,
                64500,
                65001,
            ] {
                body.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut d = header(chunk.len() as u16, i as u32);
        let pad = (4 - (4 + body.len()) % 4) % 4;
        d.extend_from_slice(&256u16.to_be_bytes());
        d.extend_from_slice(&((4 + body.len() + pad) as u16).to_be_bytes());
        d.extend_from_slice(&body);
        d.extend(std::iter::repeat_n(0u8, pad));
        out.push(d);
    }
    (t, out)
}

#[divan::bench(sample_count = 20)]
fn decode_and_attribute_v9(b: divan::Bencher) {
    let p = policy();
    let tables = Attribution::new(&p, &[], 1).unwrap();
    let recs = records(30 * 3000);
    let (template, datagrams) = v9_datagrams(&recs);
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut decoder = Decoder::new();
    decoder.decode(from, NOW, &template, &mut |_| {}).unwrap();
    let mut tally = Tally::new();
    let ip = from.ip();
    b.counter(divan::counter::ItemsCount::new(recs.len()))
        .bench_local(|| {
            for d in &datagrams {
                let _ = decoder.decode(from, NOW, d, &mut |item| {
                    if let Item::Flow(f) = item {
                        tally.record(&tables, ip, NOW, f);
                    }
                });
            }
            divan::black_box(tally.pending());
        });
}
