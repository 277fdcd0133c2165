//! One queue reading of N classes through the monitor: what the daemon's
//! engine spends per second on latency at N classes (the kernel dump and
//! the status file are measured by `bench/latency_cost.sh`).

use latency::monitor::QueueEntry;
use latency::{ClassSample, Config, Monitor};
use std::time::Duration;

fn main() {
    divan::main();
}

fn config() -> Config {
    Config {
        queue_delay: Duration::from_secs(1),
        queue_for: Duration::ZERO,
        probe_rtt: None,
        probe_factor: Some(2),
        probe_floor: Duration::from_millis(5),
        probe_for: Duration::ZERO,
        loss_percent: Some(10.0),
        loss_min_probes: 10,
        idle_for: Duration::from_secs(10),
        window: Duration::from_secs(60),
        baseline: Duration::from_secs(600),
        probes: Vec::new(),
        tcp_rtt: false,
        tenant_rtt: None,
        realm_names: Default::default(),
    }
}

fn entries(n: u32, second: u64) -> Vec<QueueEntry> {
    (0..n)
        .map(|i| QueueEntry {
            class: format!("tg-down {}:{:x}", 2 + i / 60_000, i % 60_000 + 4),
            tenant: Some(i),
            label: "national down".into(),
            sample: ClassSample {
                bytes: second * 1_000_000 + u64::from(i),
                packets: second * 1_000,
                backlog_bytes: if i % 100 == 0 { 30_000 } else { 0 },
                backlog_packets: if i % 100 == 0 { 20 } else { 0 },
                rate: net_types::Rate::from_bps(10_000_000),
                ceil: net_types::Rate::from_bps(100_000),
                ..ClassSample::default()
            },
        })
        .collect()
}

#[divan::bench(args = [1_000, 10_000])]
fn one_reading(b: divan::Bencher, n: u32) {
    let mut m = Monitor::new(config());
    m.queues(Duration::from_secs(1), entries(n, 1));
    let mut second = 2;
    b.with_inputs(|| {
        second += 1;
        (second, entries(n, second))
    })
    .bench_local_values(|(at, e)| m.queues(Duration::from_secs(at), e));
}

/// The history's recorder fed the monitor's class views after each
/// reading (what the engine adds per reading for the stored minutes).
#[divan::bench(args = [1_000, 10_000, 20_002])]
fn one_reading_recorded(b: divan::Bencher, n: u32) {
    let mut m = Monitor::new(config());
    let mut r = latency::Recorder::default();
    let mut second = 1;
    for _ in 0..2 {
        second += 1;
        m.queues(Duration::from_secs(second), entries(n, second));
        let at = Duration::from_secs(second);
        r.queues(1_796_616_000 + second as i64, at, &m.view().classes);
    }
    let views = m.view().classes.clone();
    b.bench_local(|| {
        second += 1;
        r.queues(
            1_796_616_000 + second as i64,
            Duration::from_secs(second),
            &views,
        )
    });
}
