//! The detector's hot path: one tick with every tracked address present
//! (each one a sample, its eleven EWMAs updated and checked), for 10k and
//! 100k active addresses, IPv4 and IPv6, quiet and with 100 addresses
//! under attack (reports updated, ladder timers run).
//!
//! `cargo bench -p guard --bench detect`; ticks/s is 1 / the time shown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use guard::{
    Action, Config, Detector, Direction, HostCounters, HostSample, Limit, Metric, Monotonic,
    Observation, RungConfig, Thresholds,
};
use net_types::Prefix;

fn main() {
    divan::main();
}

fn config() -> Config {
    let mut c = Config::new(vec![
        Prefix::parse("100.64.0.0/10").unwrap(),
        Prefix::parse("2001:db8::/32").unwrap(),
    ]);
    c.instant = Some(Duration::from_millis(300));
    c.global = Thresholds::new()
        .with(Direction::In, Metric::Pps, Limit::At(20_000))
        .with(Direction::In, Metric::Syn, Limit::At(5_000))
        .with(Direction::In, Metric::Bps, Limit::At(1_000_000_000))
        .with(Direction::Out, Metric::Pps, Limit::At(20_000));
    c.ladder = vec![
        RungConfig::new(
            Action::Notify {
                script: None,
                webhook: None,
                every: None,
            },
            Duration::ZERO,
            Duration::from_secs(300),
        ),
        RungConfig::new(
            Action::Blackhole,
            Duration::from_secs(5),
            Duration::from_secs(600),
        ),
    ];
    c
}

/// `n` addresses, each with a 100 ms tick of ordinary traffic (100 pps of
/// mixed TCP and UDP); the first `attacked` get a SYN flood instead.
fn observation(n: u32, v6: bool, attacked: u32) -> Observation {
    let hosts = (0..n)
        .map(|i| {
            let addr = if v6 {
                IpAddr::V6(Ipv6Addr::from(
                    0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + (u128::from(i) << 16),
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 + i))
            };
            let mut c = if i < attacked {
                HostCounters {
                    packets: 10_000,
                    bytes: 600_000,
                    tcp_packets: 10_000,
                    tcp_bytes: 600_000,
                    tcp_syn: 10_000,
                    ..HostCounters::default()
                }
            } else {
                HostCounters {
                    packets: 10,
                    bytes: 8_000,
                    tcp_packets: 6,
                    tcp_bytes: 6_000,
                    udp_packets: 4,
                    udp_bytes: 2_000,
                    flows: 1,
                    ..HostCounters::default()
                }
            };
            c.top_udp_src_ports.add(443, c.udp_packets);
            HostSample {
                addr,
                direction: Direction::In,
                counters: c,
            }
        })
        .collect();
    Observation {
        at: Monotonic::ZERO,
        hosts,
    }
}

fn run(bencher: divan::Bencher, n: u32, v6: bool, attacked: u32) {
    let mut d = Detector::new(config()).unwrap();
    let mut obs = observation(n, v6, attacked);
    // Warm up: every address in the table, attacks detected.
    let mut t = 0;
    for _ in 0..20 {
        obs.at = Monotonic::from_millis(t);
        d.tick(&obs);
        t += 100;
    }
    assert_eq!(d.stats().hosts, n as usize);
    assert_eq!(d.stats().incidents, attacked as usize);
    bencher.bench_local(|| {
        obs.at = Monotonic::from_millis(t);
        t += 100;
        d.tick(&obs)
    });
}

#[divan::bench(args = [10_000, 100_000])]
fn tick_v4(bencher: divan::Bencher, n: u32) {
    run(bencher, n, false, 0);
}

#[divan::bench(args = [10_000, 100_000])]
fn tick_v6(bencher: divan::Bencher, n: u32) {
    run(bencher, n, true, 0);
}

#[divan::bench(args = [10_000, 100_000])]
fn tick_v4_100_attacked(bencher: divan::Bencher, n: u32) {
    run(bencher, n, false, 100);
}
