//! Flow records kept (`[history.flows]`) against a real server: top
//! talkers equal a computation over the same records for ragged and
//! aligned ranges and every `by`; a batch written twice counts once;
//! retention drops whole partitions.

use super::{open, options};
use history::flows::top_of;
use history::{FlowBy, FlowRetention, FlowRow, FlowTopQuery, Store, StoreError};
use history_clickhouse::testing::server;
use history_clickhouse::ClickHouseStore;
use jiff::Timestamp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// 2026-12-01T00:00:00Z.
const BASE: i64 = 1_796_083_200;

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` records over three hours after `BASE`: 40 sources, 25
/// destinations (some IPv6, some absent), a handful of ports.
fn records(n: usize, seed: u64) -> Vec<FlowRow> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let s = rng.below(40) as u8;
            let d = rng.below(25) as u16;
            let dst = match d {
                0 => None,
                1..=5 => Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, d))),
                _ => Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, d as u8))),
            };
            FlowRow {
                time: BASE + rng.below(3 * 3600) as i64,
                exporter: "192.0.2.1".parse().unwrap(),
                src: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, s))),
                dst,
                src_port: [53, 443, 40000, 40001][rng.below(4) as usize],
                dst_port: [53, 80, 443, 22, 123][rng.below(5) as usize],
                protocol: [6, 17, 1][rng.below(3) as usize],
                tcp_flags: 0x12,
                src_as: [0, 64500, 64501][rng.below(3) as usize],
                dst_as: 0,
                bytes: 40 + rng.below(1_500_000),
                packets: 1 + rng.below(1000),
            }
        })
        .collect()
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

#[test]
fn top_talkers_equal_a_computation_over_the_same_records_and_a_batch_counts_once() {
    let Some(server) =
        server("top_talkers_equal_a_computation_over_the_same_records_and_a_batch_counts_once")
    else {
        return;
    };
    let store = open(&server);
    let rows = records(30_000, 0x5eed);
    assert_eq!(store.flows_last_sequence("collector").unwrap(), None);
    for (i, batch) in rows.chunks(10_000).enumerate() {
        store.keep_flows("collector", i as u64 + 1, batch).unwrap();
    }
    assert_eq!(store.flows_last_sequence("collector").unwrap(), Some(3));
    // The second batch again: refused, nothing added.
    let again = store.keep_flows("collector", 2, &rows[10_000..20_000]);
    assert!(
        matches!(
            again,
            Err(StoreError::AlreadyAppended {
                sequence: 2,
                last: 3
            })
        ),
        "{again:?}"
    );
    // Another writer's sequences are its own.
    store.keep_flows("other", 1, &[]).unwrap();
    let ranges = [
        (BASE, BASE + 3 * 3600),                    // whole hours
        (BASE + 17, BASE + 2 * 3600 + 7 * 60 + 41), // ragged at both ends
        (BASE + 3599, BASE + 3601),                 // two seconds
        (BASE + 300, BASE + 900),                   // whole 5 minutes
        (BASE - 86400, BASE + 86400),               // wider than the data
    ];
    for (from, to) in ranges {
        for by in FlowBy::ALL {
            let q = FlowTopQuery {
                by,
                from: at(from),
                to: at(to),
                limit: 7,
            };
            let got = store.flow_top(&q).unwrap();
            let want = top_of(&rows, &q);
            assert_eq!(got, want, "by {} over {from} .. {to}", by.name());
            assert!(!got.is_empty() || from == BASE + 3599);
        }
    }
    // A reopened store (the schema already there) reads the same.
    let q = FlowTopQuery {
        by: FlowBy::DstPort,
        from: at(BASE),
        to: at(BASE + 3 * 3600),
        limit: 3,
    };
    let reopened = ClickHouseStore::open(&options(&server)).unwrap();
    assert!(
        reopened.flow_top(&q).unwrap().is_empty(),
        "another database"
    );
    assert_eq!(store.flow_top(&q).unwrap(), top_of(&rows, &q));
}

#[test]
fn retention_drops_whole_days_of_records_and_keeps_the_coarser_tables_longer() {
    let Some(server) =
        server("retention_drops_whole_days_of_records_and_keeps_the_coarser_tables_longer")
    else {
        return;
    };
    let store = open(&server);
    let rows = records(2_000, 7);
    store.keep_flows("collector", 1, &rows).unwrap();
    let q = FlowTopQuery {
        by: FlowBy::Src,
        from: at(BASE),
        to: at(BASE + 3 * 3600),
        limit: 50,
    };
    let all = top_of(&rows, &q);
    // 20 days later: the records (15 days) are gone, the sums are not;
    // whole hours read the same from flows_1h.
    let now = at(BASE + 20 * 86400);
    let report = store.forget_flows(now, &FlowRetention::default()).unwrap();
    assert_eq!(report.partitions_dropped, 1, "the raw table's one day");
    assert_eq!(store.flow_top(&q).unwrap(), all);
    let ragged = FlowTopQuery {
        from: at(BASE + 10),
        ..q
    };
    let seconds: Vec<FlowRow> = rows
        .iter()
        .filter(|r| r.time >= BASE + 60)
        .copied()
        .collect();
    assert_eq!(
        store.flow_top(&ragged).unwrap(),
        top_of(&seconds, &ragged),
        "the first minute's seconds were in the raw table only"
    );
    // After every table's retention, nothing.
    let later = at(BASE + 800 * 86400);
    store
        .forget_flows(later, &FlowRetention::default())
        .unwrap();
    assert!(store.flow_top(&q).unwrap().is_empty());
}
