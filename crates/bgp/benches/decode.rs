//! Throughput of UPDATE decoding and of MRT TABLE_DUMP_V2 reading, on
//! generated data shaped like a full-table feed: one prefix or a few per
//! UPDATE, AS paths of three to six hops, a handful of communities.

use std::net::{IpAddr, Ipv4Addr};

use bgp::mrt::MrtReader;
use bgp::wire::{self, AsPathSegment, Message, Origin, PathAttributes, SegmentKind, Update};
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use net_types::Prefix;

fn main() {
    divan::main();
}

const OPTS: wire::WireOptions = wire::WireOptions { four_byte_as: true };

use bgp::fuzzing::Xorshift64 as Rng;

fn attributes(rng: &mut Rng) -> PathAttributes {
    let hops = 3 + rng.next_u64() % 4;
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: vec![AsPathSegment {
            kind: SegmentKind::Sequence,
            asns: (0..hops)
                .map(|_| 1 + (rng.next_u64() % 400_000) as u32)
                .collect(),
        }],
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        med: Some(10),
        communities: (0..rng.next_u64() % 6)
            .map(|_| rng.next_u64() as u32)
            .collect(),
        large_communities: vec![[64_512, 1, rng.next_u64() as u32]],
        ..PathAttributes::default()
    }
}

/// A network address and a length from /16 to /24, host bits clear.
fn address(rng: &mut Rng) -> (Ipv4Addr, u8) {
    let len = 16 + (rng.next_u64() % 9) as u8;
    let bits = (rng.next_u64() as u32) & (u32::MAX << (32 - u32::from(len)));
    (Ipv4Addr::from(bits), len)
}

fn prefix(rng: &mut Rng) -> Prefix {
    let (addr, len) = address(rng);
    Prefix::V4(addr, len)
}

fn updates(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|_| {
            let update = Update {
                attrs: attributes(&mut rng),
                nlri: (0..1 + rng.next_u64() % 3)
                    .map(|_| prefix(&mut rng))
                    .collect(),
                ..Update::default()
            };
            Message::Update(update).encode(OPTS).unwrap()
        })
        .collect()
}

fn mrt_record(subtype: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![0, 0, 0, 0, 0, 13];
    r.extend_from_slice(&subtype.to_be_bytes());
    r.extend_from_slice(&(body.len() as u32).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A dump with two peers and `n` IPv4 RIB records of two entries each.
fn mrt_dump(n: usize) -> Vec<u8> {
    let mut peers = vec![192, 0, 2, 100, 0, 0, 0, 2];
    peers.extend_from_slice(&[2, 10, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0xfd, 0xe8]);
    peers.extend_from_slice(&[2, 10, 0, 0, 2, 10, 0, 0, 2, 0, 0, 0xfd, 0xe9]);
    let mut out = mrt_record(1, &peers);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seq in 0..n as u32 {
        let mut body = seq.to_be_bytes().to_vec();
        let (addr, len) = address(&mut rng);
        body.push(len);
        body.extend_from_slice(&addr.octets()[..(len as usize).div_ceil(8)]);
        body.extend_from_slice(&2u16.to_be_bytes());
        for peer in 0..2u16 {
            // The attribute block of an UPDATE without NLRI is exactly the
            // block an MRT RIB entry carries.
            let update = Update {
                attrs: attributes(&mut rng),
                ..Update::default()
            };
            let msg = Message::Update(update).encode(OPTS).unwrap();
            let attrs = &msg[23..];
            body.extend_from_slice(&peer.to_be_bytes());
            body.extend_from_slice(&[0, 0, 0, 0]);
            body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            body.extend_from_slice(attrs);
        }
        out.extend(mrt_record(2, &body));
    }
    out
}

#[divan::bench]
fn decode_update(bencher: Bencher) {
    let msgs = updates(10_000);
    bencher.counter(ItemsCount::new(msgs.len())).bench(|| {
        for m in &msgs {
            let _ = black_box(wire::decode(black_box(m), OPTS));
        }
    });
}

#[divan::bench]
fn read_mrt(bencher: Bencher) {
    let records = 10_000;
    let dump = mrt_dump(records);
    bencher.counter(ItemsCount::new(records)).bench(|| {
        MrtReader::new(black_box(&dump))
            .filter(Result::is_ok)
            .count()
    });
}
