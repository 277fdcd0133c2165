//! Entry points for fuzz targets (a target is a one-liner over these).
//!
//! The detector's input is built from untrusted packets (addresses and
//! counts an attacker chooses), so it is fuzzed like a parser: any bytes
//! become a sequence of observations and commands, and the invariants are
//! checked after every step.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use net_types::Prefix;

use crate::{
    Action, Command, Config, Decision, Detector, Direction, GroupConfig, HostCounters, HostSample,
    Limit, Metric, Monotonic, Observation, Rung, RungConfig, Target, Thresholds,
};

/// Reads little pieces off the front of the bytes; zero once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| v << 8 | u64::from(self.u8()))
    }
}

/// The fixed configuration: 198.51.100.0/24 and 2001:db8::/32, a group
/// with totals, every rung on the ladder, short times.
pub fn config() -> Config {
    let mut c = Config::new(vec![
        Prefix::parse("198.51.100.0/24").expect("valid"),
        Prefix::parse("2001:db8::/32").expect("valid"),
    ]);
    c.instant = Some(Duration::from_millis(200));
    c.ewma = Duration::from_secs(1);
    c.calm = Duration::from_secs(2);
    c.idle = Duration::from_secs(5);
    c.max_hosts = 32;
    c.min_prefix_v4 = 26;
    c.global = Thresholds::new()
        .with(Direction::In, Metric::Pps, Limit::At(1_000))
        .with(Direction::In, Metric::Syn, Limit::At(500))
        .with(Direction::Out, Metric::Bps, Limit::At(10_000_000));
    let mut g = GroupConfig::new(
        "g",
        vec![Prefix::parse("198.51.100.0/25").expect("valid")],
        None,
    );
    g.totals = Thresholds::new().with(Direction::In, Metric::Pps, Limit::At(2_000));
    c.groups = vec![g];
    let s = Duration::from_secs;
    c.ladder = vec![
        RungConfig::new(
            Action::Notify {
                script: None,
                webhook: None,
                every: Some(s(1)),
            },
            Duration::ZERO,
            s(3),
        ),
        RungConfig::new(Action::Drop { signature: true }, s(1), s(3)),
        RungConfig::new(Action::Blackhole, s(1), s(3)),
        RungConfig::new(
            Action::Rtbh {
                communities: vec![crate::Community::BLACKHOLE],
                next_hop: None,
            },
            s(1),
            s(3),
        ),
        RungConfig::new(Action::Flowspec { rate: None }, s(1), s(3)),
    ];
    c
}

fn addr(b: &mut Bytes<'_>) -> IpAddr {
    match b.u8() % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, b.u8())),
        1 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, b.u16() % 64)),
        2 => IpAddr::V4(Ipv4Addr::from(b.u64() as u32)),
        _ => IpAddr::V6(Ipv6Addr::from(
            u128::from(b.u64()) << 64 | u128::from(b.u64()),
        )),
    }
}

fn counters(b: &mut Bytes<'_>) -> HostCounters {
    let scale = if b.u8() == 255 {
        b.u64()
    } else {
        u64::from(b.u16())
    };
    let mut c = HostCounters {
        packets: scale,
        bytes: scale.saturating_mul(u64::from(b.u8())),
        tcp_packets: scale / u64::from(b.u8() % 4 + 1),
        udp_packets: scale / u64::from(b.u8() % 4 + 1),
        icmp_packets: scale / u64::from(b.u8() % 4 + 1),
        tcp_syn: scale / u64::from(b.u8() % 4 + 1),
        fragments: scale / u64::from(b.u8() % 8 + 1),
        flows: u64::from(b.u8()),
        min_packet_len: b.u16(),
        max_packet_len: b.u16(),
        ..HostCounters::default()
    };
    for _ in 0..b.u8() % 4 {
        c.top_udp_src_ports.add(b.u16(), u64::from(b.u16()));
    }
    c
}

/// Runs the detector over `data` and panics if an invariant breaks:
/// no decision names an address outside the networks, or a blackhole,
/// RTBH or FlowSpec prefix outside them or shorter than the limits; the
/// table stays within `max_hosts`; a save restored under the same
/// configuration has the same incidents. Returns how many decisions were
/// made (so tests can tell the input exercised the ladder).
pub fn detect(data: &[u8]) -> usize {
    let c = config();
    let networks = c.networks.clone();
    let Ok(mut d) = Detector::new(c) else {
        panic!("the fuzzing configuration is valid")
    };
    let mut b = Bytes(data);
    let mut t = 0u64;
    let mut made = 0;
    let mut step = 0u32;
    while !b.0.is_empty() {
        t += u64::from(b.u16());
        let now = Monotonic::from_millis(t);
        let hosts = (0..b.u8() % 16)
            .map(|_| HostSample {
                addr: addr(&mut b),
                direction: if b.u8() % 2 == 0 {
                    Direction::In
                } else {
                    Direction::Out
                },
                counters: counters(&mut b),
            })
            .collect();
        let mut ds = d.tick(&Observation { at: now, hosts });
        let op = b.u8();
        if op < 24 {
            let a = addr(&mut b);
            let rung = Rung::ALL[usize::from(op % 6)];
            let cmd = match op / 6 {
                0 => Command::Ban {
                    addr: a,
                    direction: Direction::In,
                    rung,
                    duration: Some(Duration::from_millis(u64::from(b.u16()))),
                },
                1 => Command::Permanent {
                    addr: a,
                    direction: Direction::Out,
                    rung,
                },
                2 => Command::Unban {
                    addr: a,
                    direction: None,
                },
                _ => Command::UnbanGroup {
                    group: "g".into(),
                    direction: None,
                },
            };
            if let Ok(more) = d.command(now, &cmd) {
                ds.extend(more);
            }
        }
        for dec in &ds {
            check(dec, &networks);
        }
        made += ds.len();
        assert!(d.stats().hosts <= 32, "the table outgrew max_hosts");
        // A restore builds new tables (16 MiB for IPv4): every 8th step
        // and the last, so the fuzzer keeps its pace.
        step += 1;
        if !step.is_multiple_of(8) && !b.0.is_empty() {
            continue;
        }
        let saved = d.save(now);
        let Ok((again, _)) = Detector::restore(config(), &saved, now) else {
            panic!("a saved state restores under its own configuration")
        };
        assert_eq!(again.stats().incidents, d.stats().incidents);
    }
    made
}

fn check(dec: &Decision, networks: &[Prefix]) {
    let Some(s) = dec.step() else {
        return;
    };
    if let Target::Host(a) = s.target {
        assert!(
            networks.iter().any(|n| n.contains(a)),
            "a decision names {a}, outside the networks"
        );
    }
    if s.rung.announces() {
        assert!(
            !s.prefixes.is_empty(),
            "an announcing rung without prefixes"
        );
        for p in &s.prefixes {
            let min = if p.is_ipv4() { 26 } else { 48 };
            assert!(p.len() >= min, "{p} is shorter than the limit");
            assert!(
                networks
                    .iter()
                    .any(|n| n.len() <= p.len() && n.overlaps(*p)),
                "{p} is outside the networks"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_few_inputs_run_clean() {
        assert_eq!(super::detect(&[]), 0);
        super::detect(&[0xff; 4096]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(super::detect(&bytes) > 10);
    }
}
