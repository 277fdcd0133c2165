//! The realm table's hot path: UPDATEs from a peer, decoded and applied,
//! in prefixes per second.
//!
//! The feed is shaped like BIRD's full-table push: four prefixes per
//! UPDATE, a three-hop AS path, and a community that puts about half the
//! routes into the national realm.

use std::net::{IpAddr, Ipv4Addr};

use bgp::session::Event;
use bgp::wire::{
    self, AsPathSegment, Message, Origin, PathAttributes, SegmentKind, Update, WireOptions,
};
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use net_types::{Prefix, RealmId};
use policy::RouteRules;
use routes::{RealmRules, RouteTable};

fn main() {
    divan::main();
}

const PREFIXES: u32 = 100_000;
const PER_UPDATE: u32 = 4;
const OPTS: WireOptions = WireOptions { four_byte_as: true };
const NATIONAL: u32 = 65001 << 16 | 100;

fn rules() -> RealmRules {
    RealmRules::new(
        vec![(
            RealmId(1),
            "national".into(),
            RouteRules {
                communities: vec![NATIONAL],
                ..RouteRules::default()
            },
        )],
        (RealmId(2), "international".into()),
    )
}

/// The wire bytes of the feed; `flip` swaps which half is national.
fn feed(flip: bool) -> Vec<Vec<u8>> {
    (0..PREFIXES / PER_UPDATE)
        .map(|u| {
            let national = (u % 2 == 0) != flip;
            let attrs = PathAttributes {
                origin: Some(Origin::Igp),
                as_path: vec![AsPathSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![65001, 64500 + u % 100, 64400],
                }],
                next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                communities: if national {
                    vec![NATIONAL]
                } else {
                    vec![65001 << 16 | 200]
                },
                ..PathAttributes::default()
            };
            let nlri = (0..PER_UPDATE)
                .map(|k| {
                    let i = u * PER_UPDATE + k;
                    Prefix::V4(
                        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i * 32),
                        28,
                    )
                })
                .collect();
            let update = Update {
                attrs,
                nlri,
                ..Update::default()
            };
            Message::Update(update).encode(OPTS).unwrap()
        })
        .collect()
}

fn events(bytes: &[Vec<u8>]) -> Vec<Event> {
    bytes.iter().map(|m| decode(m)).collect()
}

fn decode(m: &[u8]) -> Event {
    let Ok(Message::Update(u)) = wire::decode(m, OPTS) else {
        panic!("the feed does not decode");
    };
    let (announced, withdrawn) = u.routes();
    Event::Update {
        announced,
        withdrawn,
    }
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Decoding and applying a whole table into an empty realm table.
#[divan::bench(sample_count = 10)]
fn decode_and_apply_full_push(bencher: Bencher) {
    let bytes = feed(false);
    bencher
        .counter(ItemsCount::new(PREFIXES))
        .with_inputs(|| RouteTable::new(rules()))
        .bench_local_values(|mut table| {
            for m in &bytes {
                black_box(table.apply(PEER, &decode(m)));
            }
            table
        });
}

/// Applying already decoded UPDATEs that move every prefix to the other
/// realm: the steady state of a community change on a full table.
#[divan::bench(sample_count = 10)]
fn apply_realm_moves(bencher: Bencher) {
    let (first, flipped) = (events(&feed(false)), events(&feed(true)));
    bencher
        .counter(ItemsCount::new(PREFIXES))
        .with_inputs(|| {
            let mut t = RouteTable::new(rules());
            for e in &first {
                t.apply(PEER, e);
            }
            t
        })
        .bench_local_values(|mut table| {
            let mut moved = 0;
            for e in &flipped {
                moved += table.apply(PEER, e).len();
            }
            assert_eq!(moved, PREFIXES as usize);
            table
        });
}

/// Withdrawing a whole peer (hold-timer expiry) from a full table.
#[divan::bench(sample_count = 10)]
fn withdraw_a_peer(bencher: Bencher) {
    let first = events(&feed(false));
    let down = Event::Down {
        reason: bgp::session::DownReason::HoldTimerExpired,
    };
    bencher
        .counter(ItemsCount::new(PREFIXES))
        .with_inputs(|| {
            let mut t = RouteTable::new(rules());
            for e in &first {
                t.apply(PEER, e);
            }
            t
        })
        .bench_local_values(|mut table| {
            black_box(table.apply(PEER, &down));
            table
        });
}
