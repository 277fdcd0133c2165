//! The flow input's cost per record: `Spreader::add` of 10,000 records
//! lasting 0 s (one tick), 1 s (10 ticks) and 10 s (100 ticks, the
//! span here), towards one address (a flood) or spread over 1,000, then
//! the ticks taken. Records/s is 10,000 / the time shown.
//!
//! `cargo bench -p guard --bench spread`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use guard::spread::{FlowRecord, Spreader};
use guard::{Direction, Monotonic};

fn main() {
    divan::main();
}

const RECORDS: u64 = 10_000;

fn record(i: u64, hosts: u64, duration: Duration) -> FlowRecord {
    FlowRecord {
        addr: IpAddr::V4(Ipv4Addr::from(0x6440_0000 + (i % hosts) as u32)),
        direction: Direction::In,
        duration,
        packets: 1_000,
        bytes: 400_000,
        protocol: 17,
        src_port: 53,
        dst_port: 0,
        remote: None,
        tcp_flags: 0,
        fragment: false,
        sampling: 1,
    }
}

#[divan::bench(args = [0, 1_000, 10_000], consts = [1, 1_000])]
fn add_then_take<const HOSTS: u64>(b: divan::Bencher, duration_ms: u64) {
    let duration = Duration::from_millis(duration_ms);
    let records: Vec<FlowRecord> = (0..RECORDS).map(|i| record(i, HOSTS, duration)).collect();
    b.bench_local(|| {
        let mut s = Spreader::new(Duration::from_millis(100), 100, 4_096);
        // Records arrive over one tick, then every tick is taken.
        for r in &records {
            s.add(Monotonic::from_millis(1_000), r);
        }
        let mut hosts = 0;
        for t in 1..=101 {
            hosts += s.take(Monotonic::from_millis(1_000 + t * 100)).hosts.len();
        }
        hosts
    });
}
