//! Flow records kept per second from one writer (`[history.flows]`): a
//! collector's records at 1 million per second of flow time (each batch
//! one second of them, its records ending within that second), from
//! 5,000 local hosts to 50,000 remote ones, half of them to a server port
//! from an ephemeral one; written with `ClickHouseStore::keep_flows`, the
//! daemon's path (the sequence read, the encoding and per-level sums, the
//! insert and its views). Starts its own `clickhouse-server`. Run with
//! `flock -o /work/locks/bench cargo bench -p history-clickhouse --features testing --bench flows`
//! (`TOLLGATE_BENCH_FLOW_BATCHES`, default 10; `TOLLGATE_BENCH_FLOW_BATCH`,
//! records per batch, default 200,000; `TOLLGATE_BENCH_FLOW_SPREAD=low`:
//! 50 local and 500 remote hosts, ports 1024 to 1123, to see what the
//! per-minute sums cost beside the records).

use history::{FlowBy, FlowRow, FlowTopQuery, Store};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};
use jiff::Timestamp;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// 2026-03-01T00:00:00Z.
const BASE: i64 = 1_772_323_200;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn batch(rng: &mut Rng, second: i64, n: usize, low: bool) -> Vec<FlowRow> {
    let exporter = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let (locals, remotes, ephemerals, first) = if low {
        (50, 500, 100, 1024)
    } else {
        (5_000, 50_000, 28_000, 32768)
    };
    (0..n)
        .map(|_| {
            let local = rng.below(locals) as u32;
            let remote = rng.below(remotes) as u32;
            let server_port = [443, 80, 53, 123, 22][rng.below(5) as usize];
            let ephemeral = first + rng.below(ephemerals) as u16;
            let up = rng.below(2) == 0;
            let (l, r) = (
                IpAddr::V4(Ipv4Addr::from(0x6440_0000 | local)),
                IpAddr::V4(Ipv4Addr::from(0xc633_0000 | remote)),
            );
            let (src, dst, sp, dp) = if up {
                (l, r, ephemeral, server_port)
            } else {
                (r, l, server_port, ephemeral)
            };
            FlowRow {
                time: second,
                exporter,
                src: Some(src),
                dst: Some(dst),
                src_port: sp,
                dst_port: dp,
                protocol: if server_port == 53 || server_port == 123 {
                    17
                } else {
                    6
                },
                tcp_flags: 0x18,
                src_as: 0,
                dst_as: 0,
                bytes: 64 + rng.below(1_000_000),
                packets: 1 + rng.below(800),
            }
        })
        .collect()
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let batches = env("TOLLGATE_BENCH_FLOW_BATCHES", 10);
    let per = env("TOLLGATE_BENCH_FLOW_BATCH", 200_000);
    let low = std::env::var("TOLLGATE_BENCH_FLOW_SPREAD").as_deref() == Ok("low");
    let server = history_clickhouse::testing::Server::start();
    let store = ClickHouseStore::open(&ClickHouseOptions {
        url: server.url.clone(),
        database: "bench".into(),
        timeout: Duration::from_secs(300),
    })
    .expect("open ClickHouse");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<Vec<FlowRow>> = (0..batches)
        .map(|i| batch(&mut rng, BASE + i as i64, per, low))
        .collect();
    println!(
        "{batches} batches of {per} flow records from one writer ({} spread), ClickHouse {}",
        if low { "low" } else { "wide" },
        store.server_version().expect("the server's version")
    );
    // The encoding alone (records → one RowBinary row with the sums).
    let start = Instant::now();
    let mut body = 0;
    for (i, b) in data.iter().enumerate() {
        body += history_clickhouse::testing::flow_batch_row("bench", i as u64, b)
            .expect("encode")
            .len();
    }
    let encode = start.elapsed();
    let start = Instant::now();
    for (i, b) in data.iter().enumerate() {
        store.keep_flows("bench", i as u64 + 1, b).expect("keep");
    }
    let keep = start.elapsed();
    let total = (batches * per) as f64;
    println!(
        "encode (sums per minute, 5 min, hour): {:>12.0} records/s ({:.1} bytes/record)",
        total / encode.as_secs_f64(),
        body as f64 / total
    );
    println!(
        "kept (encode + insert + views):        {:>12.0} records/s ({:.0} ms per batch)",
        total / keep.as_secs_f64(),
        keep.as_secs_f64() * 1000.0 / batches as f64
    );
    for by in [FlowBy::Dst, FlowBy::DstPort] {
        let q = FlowTopQuery {
            by,
            from: Timestamp::from_second(BASE).expect("time"),
            to: Timestamp::from_second(BASE + batches as i64).expect("time"),
            limit: 10,
        };
        let start = Instant::now();
        let top = store.flow_top(&q).expect("top");
        assert_eq!(top.len(), 10);
        println!(
            "top 10 by {} over the {} records:  {:>8.1} ms",
            by.name(),
            batches * per,
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
}
