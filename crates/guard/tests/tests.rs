//! The guard crate at its boundary: observations and commands in,
//! decisions out.

use std::net::IpAddr;
use std::time::Duration;

use guard::{
    Action, AttackKind, Command, CommandError, Config, Decision, Detector, Direction, FlowAction,
    GroupConfig, HostCounters, HostSample, Limit, Metric, Monotonic, Observation, Refusal, Rung,
    RungConfig, Target, Thresholds, TriggerKind,
};
use net_types::Prefix;
use proptest::prelude::*;

const IN: Direction = Direction::In;
const OUT: Direction = Direction::Out;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// 203.0.113.0/24 and 2001:db8:100::/48, τ = 5 s, pps_in 20k, syn_in 5k,
/// a notify-only ladder.
fn config() -> Config {
    let mut c = Config::new(vec![pfx("203.0.113.0/24"), pfx("2001:db8:100::/48")]);
    c.global = Thresholds::new()
        .with(IN, Metric::Pps, Limit::At(20_000))
        .with(IN, Metric::Syn, Limit::At(5_000));
    c
}

fn notify() -> Action {
    Action::Notify {
        script: None,
        webhook: None,
        every: None,
    }
}

/// `pps` SYN packets per second of 60 bytes, for a tick of `ms`.
fn syn(pps: u64, ms: u64) -> HostCounters {
    let p = pps.saturating_mul(ms) / 1000;
    HostCounters {
        packets: p,
        bytes: p.saturating_mul(60),
        tcp_packets: p,
        tcp_bytes: p.saturating_mul(60),
        tcp_syn: p,
        min_packet_len: 60,
        max_packet_len: 60,
        ..HostCounters::default()
    }
}

/// `pps` UDP packets per second of 468 bytes from source port `port`.
fn udp(pps: u64, ms: u64, port: u16) -> HostCounters {
    let p = pps.saturating_mul(ms) / 1000;
    let mut c = HostCounters {
        packets: p,
        bytes: p.saturating_mul(468),
        udp_packets: p,
        udp_bytes: p.saturating_mul(468),
        min_packet_len: 468,
        max_packet_len: 468,
        ..HostCounters::default()
    };
    c.top_udp_src_ports.add(port, p);
    c
}

fn sample(addr: &str, direction: Direction, counters: HostCounters) -> HostSample {
    HostSample {
        addr: ip(addr),
        direction,
        counters,
    }
}

/// Runs ticks of `ms` from `from` (exclusive) to `to` (inclusive), with
/// the samples `f(t)` gives, and returns every decision with its time.
fn run(
    d: &mut Detector,
    from: u64,
    to: u64,
    ms: u64,
    mut f: impl FnMut(u64) -> Vec<HostSample>,
) -> Vec<(u64, Decision)> {
    let mut out = Vec::new();
    let mut t = from + ms;
    while t <= to {
        let obs = Observation {
            at: Monotonic::from_millis(t),
            hosts: f(t),
        };
        for dec in d.tick(&obs) {
            out.push((t, dec));
        }
        t += ms;
    }
    out
}

/// A detector that has seen its first (rate-less) tick at 0.
fn detector(c: Config) -> Detector {
    let mut d = Detector::new(c).unwrap();
    assert!(d
        .tick(&Observation {
            at: Monotonic::ZERO,
            hosts: vec![]
        })
        .is_empty());
    d
}

fn starts(ds: &[(u64, Decision)]) -> Vec<(u64, Target, Rung)> {
    ds.iter()
        .filter_map(|(t, d)| match d {
            Decision::Start(s) => Some((*t, s.target.clone(), s.rung)),
            _ => None,
        })
        .collect()
}

fn kinds(ds: &[(u64, Decision)]) -> Vec<(u64, &'static str, Rung)> {
    ds.iter()
        .map(|(t, d)| match d {
            Decision::Start(s) => (*t, "start", s.rung),
            Decision::Escalate { step, .. } => (*t, "escalate", step.rung),
            Decision::Stop { step, ended } => (*t, if *ended { "end" } else { "stop" }, step.rung),
            Decision::Restore(s) => (*t, "restore", s.rung),
            Decision::Update(s) => (*t, "update", s.rung),
            Decision::Refused { rung, .. } => (*t, "refused", *rung),
        })
        .collect()
}

#[test]
fn a_syn_flood_is_detected_by_the_ewma_after_the_ticks_tau_predicts() {
    // 10k SYN/s against a 5k threshold with τ = 5 s in 100 ms ticks: the
    // EWMA is R(1 − e^(−n/50)) after n ticks, over R/2 from n > 50 ln 2
    // = 34.66, so at the 35th tick.
    let mut d = detector(config());
    let ds = run(&mut d, 0, 10_000, 100, |_| {
        vec![sample("203.0.113.10", IN, syn(10_000, 100))]
    });
    assert_eq!(
        starts(&ds),
        vec![(3_500, Target::Host(ip("203.0.113.10")), Rung::Notify)]
    );
    let Decision::Start(s) = &ds[0].1 else {
        panic!("{ds:?}")
    };
    assert_eq!(
        s.script_args(true),
        ["203.0.113.10", "incoming", "10000", "ban"].map(String::from)
    );
    assert_eq!(s.attack.kind, AttackKind::SynFlood);
    assert_eq!(s.attack.trigger.by, TriggerKind::Smoothed);
    assert_eq!(s.attack.trigger.metric, Metric::Syn);
    assert_eq!(s.attack.peak_pps, 10_000);
    assert_eq!(s.attack.group, "global");
}

#[test]
fn rates_come_from_the_real_elapsed_time() {
    // The same 1,000 packets per tick are 10k pps in 100 ms ticks but 5k
    // pps in 200 ms ticks: with τ = 5 s only the first crosses 6k pps.
    let mut c = config();
    c.global = Thresholds::new().with(IN, Metric::Pps, Limit::At(6_000));
    let per_tick = || vec![sample("203.0.113.10", IN, syn(10_000, 100))];
    let mut fast = detector(c.clone());
    assert_eq!(
        starts(&run(&mut fast, 0, 30_000, 100, |_| per_tick())).len(),
        1
    );
    let mut slow = detector(c);
    assert!(starts(&run(&mut slow, 0, 60_000, 200, |_| per_tick())).is_empty());
}

#[test]
fn the_instantaneous_trigger_fires_in_one_tick() {
    let mut c = config();
    c.instant = Some(Duration::ZERO);
    let mut d = detector(c);
    let ds = run(&mut d, 0, 1_000, 100, |t| {
        if t >= 500 {
            vec![sample("203.0.113.10", IN, syn(50_000, 100))]
        } else {
            vec![]
        }
    });
    assert_eq!(
        starts(&ds),
        vec![(500, Target::Host(ip("203.0.113.10")), Rung::Notify)]
    );
    let Decision::Start(s) = &ds[0].1 else {
        panic!()
    };
    assert_eq!(s.attack.trigger.by, TriggerKind::Instant);
}

#[test]
fn the_instantaneous_trigger_needs_every_tick_over_for_its_time() {
    let mut c = config();
    c.instant = Some(Duration::from_millis(300));
    c.ewma = secs(60);
    let mut d = detector(c);
    // Over at 100, 200, a gap at 300, then over from 400: fires when
    // 400..=600 have been over for 300 ms, at 600.
    let ds = run(&mut d, 0, 1_000, 100, |t| {
        if t == 300 {
            vec![]
        } else {
            vec![sample("203.0.113.10", IN, syn(50_000, 100))]
        }
    });
    assert_eq!(starts(&ds).first().map(|s| s.0), Some(600));
}

/// τ = 100 ms so rates follow the traffic at once; instant trigger on;
/// notify held 10 s, then drop after 2 s (held 10 s), then blackhole after
/// 3 s (held 60 s); calm for 30 s.
fn ladder_config() -> Config {
    let mut c = config();
    c.ewma = Duration::from_millis(100);
    c.instant = Some(Duration::ZERO);
    c.ladder = vec![
        RungConfig::new(notify(), Duration::ZERO, secs(10)),
        RungConfig::new(Action::Drop { signature: false }, secs(2), secs(10)),
        RungConfig::new(Action::Blackhole, secs(3), secs(60)),
    ];
    c
}

#[test]
fn the_ladder_escalates_while_the_attack_persists_and_unwinds_top_down() {
    let mut d = detector(ladder_config());
    // Flood from 1 s to 20 s, then nothing.
    let ds = run(&mut d, 0, 200_000, 1_000, |t| {
        if (1_000..=20_000).contains(&t) {
            vec![sample("203.0.113.10", IN, syn(50_000, 1_000))]
        } else {
            vec![]
        }
    });
    // Calm from 21 s; blackhole added at 6 s is held to 66 s, calm since
    // 21 s for 30 s is 51 s: it goes at 66 s, and the drop and notify
    // (their holds long passed) go with it, top down.
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (3_000, "escalate", Rung::Drop),
            (6_000, "escalate", Rung::Blackhole),
            (66_000, "stop", Rung::Blackhole),
            (66_000, "stop", Rung::Drop),
            (66_000, "end", Rung::Notify),
        ]
    );
    let Decision::Stop { step, .. } = &ds.last().unwrap().1 else {
        panic!()
    };
    assert_eq!(step.attack.ended, Some(Monotonic::from_secs(66)));
    assert_eq!(step.attack.started, Monotonic::from_secs(1));
    let Decision::Escalate { step, from } = &ds[2].1 else {
        panic!()
    };
    assert_eq!(*from, Rung::Drop);
    assert_eq!(step.prefixes, vec![pfx("203.0.113.10/32")]);
}

#[test]
fn hysteresis_keeps_the_ban_while_traffic_stays_near_the_threshold() {
    let mut c = ladder_config();
    c.ladder.truncate(1);
    let mut d = detector(c);
    // 50k pps (over 20k) at 1 s, then 17k pps (85%: above 0.8 × 20k) until
    // 100 s, then 10k pps (50%).
    let ds = run(&mut d, 0, 200_000, 1_000, |t| {
        let pps = match t {
            1_000 => 50_000,
            t if t <= 100_000 => 17_000,
            _ => 10_000,
        };
        vec![sample("203.0.113.10", IN, syn(pps, 1_000).with_syn(0))]
    });
    // Calm from 101 s; 30 s later, at 131 s, it ends (the 10 s hold is long past).
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (131_000, "end", Rung::Notify)
        ]
    );
}

trait WithSyn {
    fn with_syn(self, syn: u64) -> Self;
}

impl WithSyn for HostCounters {
    fn with_syn(mut self, syn: u64) -> Self {
        self.tcp_syn = syn;
        self
    }
}

#[test]
fn a_rung_is_held_for_its_hold_time_even_if_the_attack_stops_at_once() {
    let mut c = ladder_config();
    c.calm = secs(1);
    let mut d = detector(c);
    let ds = run(&mut d, 0, 30_000, 1_000, |t| {
        if t == 1_000 {
            vec![sample("203.0.113.10", IN, syn(50_000, 1_000))]
        } else {
            vec![]
        }
    });
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (11_000, "end", Rung::Notify)
        ]
    );
}

fn groups_config() -> Config {
    let mut c = config();
    c.instant = Some(Duration::ZERO);
    c.ewma = Duration::from_millis(100);
    c.global = Thresholds::new()
        .with(IN, Metric::Pps, Limit::At(100_000))
        .with(IN, Metric::Syn, Limit::At(50_000))
        .with(OUT, Metric::Pps, Limit::At(100_000));
    let mut tenant = GroupConfig::new("tenant", vec![pfx("203.0.113.0/24")], Some("global"));
    tenant.thresholds = Thresholds::new().with(IN, Metric::Pps, Limit::At(1_000));
    let mut voip = GroupConfig::new("voip", vec![pfx("203.0.113.64/26")], Some("tenant"));
    voip.thresholds = Thresholds::new().with(IN, Metric::Pps, Limit::At(100));
    c.groups = vec![voip, tenant];
    c
}

#[test]
fn the_longest_matching_group_sets_the_thresholds() {
    let mut d = detector(groups_config());
    assert_eq!(d.group_of(ip("203.0.113.70")), Some("voip"));
    assert_eq!(d.group_of(ip("203.0.113.10")), Some("tenant"));
    assert_eq!(d.group_of(ip("2001:db8:100::1")), Some("global"));
    assert_eq!(d.group_of(ip("198.51.100.1")), None);
    let ds = run(&mut d, 0, 5_000, 1_000, |_| {
        vec![
            sample("203.0.113.70", IN, udp(500, 1_000, 40_000)),
            sample("203.0.113.10", IN, udp(500, 1_000, 40_000)),
            sample("2001:db8:100::1", IN, udp(5_000, 1_000, 40_000)),
        ]
    });
    assert_eq!(
        starts(&ds),
        vec![(1_000, Target::Host(ip("203.0.113.70")), Rung::Notify)]
    );
    let Decision::Start(s) = &ds[0].1 else {
        panic!()
    };
    assert_eq!(s.attack.group, "voip");
    assert_eq!(s.attack.kind, AttackKind::UdpFlood);
}

#[test]
fn unset_thresholds_inherit_and_off_switches_a_check_off() {
    // voip sets only pps_in: syn_in comes from global through tenant.
    let mut d = detector(groups_config());
    let syn_only = |pps| {
        let mut c = syn(pps, 1_000);
        c.packets = 0;
        c
    };
    let ds = run(&mut d, 0, 2_000, 1_000, |_| {
        vec![sample("203.0.113.70", IN, syn_only(60_000))]
    });
    assert_eq!(starts(&ds).len(), 1);
    let Decision::Start(s) = &ds[0].1 else {
        panic!()
    };
    assert_eq!(s.attack.trigger.metric, Metric::Syn);
    assert_eq!(s.attack.trigger.threshold, 50_000);

    // With syn_in = off in voip, the same flood is no attack there.
    let mut c = groups_config();
    c.groups[0].thresholds.set(IN, Metric::Syn, Limit::Off);
    let mut d = detector(c);
    let ds = run(&mut d, 0, 2_000, 1_000, |_| {
        vec![
            sample("203.0.113.70", IN, syn_only(60_000)),
            sample("203.0.113.10", IN, syn_only(60_000)),
        ]
    });
    assert_eq!(
        starts(&ds),
        vec![(1_000, Target::Host(ip("203.0.113.10")), Rung::Notify)]
    );
}

#[test]
fn thresholds_are_per_direction() {
    let mut d = detector(groups_config());
    // 5,000 pps out of a tenant address: over tenant's pps_in (1,000), but
    // outgoing traffic inherits global's pps_out (100,000).
    let ds = run(&mut d, 0, 3_000, 1_000, |_| {
        vec![sample("203.0.113.10", OUT, udp(5_000, 1_000, 40_000))]
    });
    assert!(ds.is_empty(), "{ds:?}");
    let ds = run(&mut d, 3_000, 5_000, 1_000, |_| {
        vec![sample("203.0.113.10", OUT, udp(200_000, 1_000, 40_000))]
    });
    assert_eq!(starts(&ds).len(), 1);
    assert_eq!(ds[0].1.step().unwrap().direction, OUT);
}

#[test]
fn a_group_total_over_its_threshold_is_an_attack_on_the_group() {
    let mut c = groups_config();
    c.groups[1].totals = Thresholds::new().with(IN, Metric::Pps, Limit::At(3_000));
    let mut d = detector(c);
    // Ten tenant addresses at 400 pps each: each under 1,000, the total
    // (4,000) over 3,000. A voip address at 50 pps counts in it too: it
    // lies inside the tenant's /24.
    let ds = run(&mut d, 0, 3_000, 1_000, |_| {
        let mut v: Vec<HostSample> = (1..=10)
            .map(|i| sample(&format!("203.0.113.{i}"), IN, udp(400, 1_000, 40_000)))
            .collect();
        v.push(sample("203.0.113.70", IN, udp(50, 1_000, 40_000)));
        v
    });
    assert_eq!(
        starts(&ds),
        vec![(1_000, Target::Group("tenant".into()), Rung::Notify)]
    );
    let s = ds[0].1.step().unwrap();
    assert_eq!(s.attack.trigger.by, TriggerKind::GroupTotal);
    assert_eq!(s.attack.trigger.rate, 4_050);
    assert_eq!(s.prefixes, vec![pfx("203.0.113.0/24")]);
    let unban = Command::UnbanGroup {
        group: "tenant".into(),
        direction: None,
    };
    let ds = d.command(Monotonic::from_secs(3), &unban).unwrap();
    assert!(
        matches!(ds[..], [Decision::Stop { ended: true, .. }]),
        "{ds:?}"
    );
    assert_eq!(
        d.command(Monotonic::from_secs(3), &unban),
        Err(CommandError::GroupNotBanned("tenant".into()))
    );
}

#[test]
fn ipv6_addresses_are_detected_and_blackholed_as_a_128() {
    let mut d = detector(ladder_config());
    let ds = run(&mut d, 0, 8_000, 1_000, |_| {
        vec![sample("2001:db8:100::1", IN, syn(50_000, 1_000))]
    });
    let last = ds.last().unwrap().1.step().unwrap();
    assert_eq!(last.rung, Rung::Blackhole);
    assert_eq!(last.prefixes, vec![pfx("2001:db8:100::1/128")]);
}

#[test]
fn manual_ban_holds_for_its_time_and_permanent_until_unban() {
    let mut d = detector(ladder_config());
    let addr = ip("203.0.113.99");
    let ds = d
        .command(
            Monotonic::from_secs(1),
            &Command::Ban {
                addr,
                direction: IN,
                rung: Rung::Drop,
                duration: Some(secs(100)),
            },
        )
        .unwrap();
    let ks: Vec<_> = ds.into_iter().map(|x| (1_000, x)).collect();
    assert_eq!(
        kinds(&ks),
        vec![
            (1_000, "start", Rung::Notify),
            (1_000, "escalate", Rung::Drop)
        ]
    );
    // No traffic at all: the ban still holds to 101 s, and never escalates.
    let ds = run(&mut d, 0, 200_000, 1_000, |_| vec![]);
    assert_eq!(
        kinds(&ds),
        vec![
            (101_000, "stop", Rung::Drop),
            (101_000, "end", Rung::Notify)
        ]
    );

    let ds = d
        .command(
            Monotonic::from_secs(201),
            &Command::Permanent {
                addr,
                direction: IN,
                rung: Rung::Blackhole,
            },
        )
        .unwrap();
    assert_eq!(ds.len(), 3);
    assert!(run(&mut d, 200_000, 100_000_000, 100_000, |_| vec![]).is_empty());
    let ds = d
        .command(
            Monotonic::from_secs(100_001),
            &Command::Unban {
                addr,
                direction: None,
            },
        )
        .unwrap();
    let ks: Vec<_> = ds.into_iter().map(|x| (0, x)).collect();
    assert_eq!(
        kinds(&ks),
        vec![
            (0, "stop", Rung::Blackhole),
            (0, "stop", Rung::Drop),
            (0, "end", Rung::Notify)
        ]
    );
    assert_eq!(
        d.command(
            Monotonic::from_secs(100_002),
            &Command::Unban {
                addr,
                direction: None
            }
        ),
        Err(CommandError::NotBanned(addr))
    );
}

#[test]
fn nothing_is_ever_decided_for_an_address_outside_the_networks() {
    let mut d = detector(ladder_config());
    let ds = run(&mut d, 0, 10_000, 1_000, |_| {
        vec![
            sample("198.51.100.1", IN, syn(1_000_000, 1_000)),
            sample("2001:db8:200::1", IN, syn(1_000_000, 1_000)),
        ]
    });
    assert!(ds.is_empty());
    assert_eq!(d.stats().outside, 20);
    assert_eq!(d.stats().hosts, 0);
    let outside = ip("198.51.100.1");
    assert_eq!(
        d.command(
            Monotonic::from_secs(11),
            &Command::Permanent {
                addr: outside,
                direction: IN,
                rung: Rung::Blackhole
            }
        ),
        Err(CommandError::OutsideNetworks(outside))
    );
}

#[test]
fn a_group_prefix_shorter_than_the_limit_is_never_announced() {
    let mut c = ladder_config();
    c.networks = vec![pfx("100.64.0.0/10")];
    c.min_prefix_v4 = 24;
    let mut g = GroupConfig::new("big", vec![pfx("100.64.0.0/16")], None);
    g.totals = Thresholds::new().with(IN, Metric::Pps, Limit::At(1_000));
    c.groups = vec![g];
    let mut d = detector(c);
    let ds = run(&mut d, 0, 20_000, 1_000, |_| {
        (1..=10)
            .map(|i| sample(&format!("100.64.{i}.1"), IN, udp(500, 1_000, 40_000)))
            .collect()
    });
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (3_000, "escalate", Rung::Drop),
            (6_000, "refused", Rung::Blackhole),
        ]
    );
    assert!(matches!(
        ds[2].1,
        Decision::Refused {
            reason: Refusal::NoAnnounceablePrefix,
            ..
        }
    ));
}

#[test]
fn the_host_table_is_bounded_and_idle_hosts_expire() {
    let mut c = config();
    c.max_hosts = 100;
    c.idle = secs(10);
    let mut d = detector(c);
    let many = |_| -> Vec<HostSample> {
        (0..1_000u32)
            .map(|i| HostSample {
                addr: IpAddr::V6(std::net::Ipv6Addr::from(
                    0x2001_0db8_0100_0000_0000_0000_0000_0000u128 + u128::from(i),
                )),
                direction: IN,
                counters: udp(10, 1_000, 40_000),
            })
            .collect()
    };
    run(&mut d, 0, 1_000, 1_000, many);
    assert_eq!(d.stats().hosts, 100);
    assert_eq!(d.stats().overflow, 900);
    run(&mut d, 1_000, 20_000, 1_000, |_| vec![]);
    assert_eq!(d.stats().hosts, 0);
    assert_eq!(d.stats().expired, 100);
}

#[test]
fn amplification_is_named_and_its_flowspec_rule_built_from_the_signature() {
    let mut c = ladder_config();
    c.ladder = vec![
        RungConfig::new(notify(), Duration::ZERO, secs(10)),
        RungConfig::new(Action::Flowspec { rate: None }, secs(1), secs(60)),
    ];
    let mut d = detector(c);
    let ds = run(&mut d, 0, 3_000, 1_000, |_| {
        vec![sample("203.0.113.10", IN, udp(60_000, 1_000, 123))]
    });
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (2_000, "escalate", Rung::Flowspec)
        ]
    );
    let s = ds[1].1.step().unwrap();
    assert_eq!(s.attack.kind, AttackKind::Amplification { port: 123 });
    // Two ticks of the attack so far.
    assert_eq!(s.attack.top_src_ports, vec![(123, 120_000)]);
    let rule = &s.flowspec[0];
    assert_eq!(rule.destination, Some(pfx("203.0.113.10/32")));
    assert_eq!(rule.protocol, Some(17));
    assert_eq!(rule.source_ports, vec![123]);
    assert_eq!(rule.packet_len, Some((468, 468)));
    assert_eq!(rule.action, FlowAction::Discard);
}

#[test]
fn the_wall_clock_start_is_stamped_once_and_survives_a_restart() {
    let mut d = detector(ladder_config());
    let mut first = Vec::new();
    for t in 1..=3u64 {
        let mut ds = d.tick(&Observation {
            at: Monotonic::from_secs(t),
            hosts: vec![sample("203.0.113.10", IN, syn(50_000, 1_000))],
        });
        // The caller's wall clock: 1,000 s past the epoch plus t.
        d.stamp(1_000_000 + t as i64 * 1_000, &mut ds);
        first.extend(ds);
    }
    let starts: Vec<Option<i64>> = first
        .iter()
        .filter_map(|x| x.step().map(|s| s.attack.started_at_ms))
        .collect();
    assert!(!starts.is_empty());
    assert!(starts.iter().all(|s| *s == Some(1_001_000)), "{starts:?}");
    let saved = d.save(Monotonic::from_secs(3));
    assert_eq!(saved.incidents[0].report.started_at_ms, Some(1_001_000));
    // Restored later (another wall time): the start stays.
    let (mut d, mut ds) =
        Detector::restore(ladder_config(), &saved, Monotonic::from_secs(1)).unwrap();
    d.stamp(9_999_000, &mut ds);
    assert!(ds
        .iter()
        .all(|x| x.step().unwrap().attack.started_at_ms == Some(1_001_000)));
}

#[test]
fn bans_survive_a_restart_with_their_remaining_hold() {
    let mut d = detector(ladder_config());
    // Flood 1..=10 s: notify at 1, drop at 3, blackhole at 6 (held to 66).
    run(&mut d, 0, 10_000, 1_000, |_| {
        vec![sample("203.0.113.10", IN, syn(50_000, 1_000))]
    });
    let saved = d.save(Monotonic::from_secs(10));
    let json = serde_json::to_string(&saved).unwrap();
    let saved: guard::SavedState = serde_json::from_str(&json).unwrap();
    assert_eq!(saved.incidents[0].rungs[2].hold_left, secs(56));

    // The new process's clock starts again: now = 2 s.
    let (mut d, ds) = Detector::restore(ladder_config(), &saved, Monotonic::from_secs(2)).unwrap();
    let ks: Vec<_> = ds.into_iter().map(|x| (0, x)).collect();
    assert_eq!(
        kinds(&ks),
        vec![
            (0, "restore", Rung::Notify),
            (0, "restore", Rung::Drop),
            (0, "restore", Rung::Blackhole)
        ]
    );
    // Quiet from now: calm from 3 s (the first tick with a rate), the
    // blackhole's hold runs to 2 + 56 = 58 s.
    d.tick(&Observation {
        at: Monotonic::from_secs(2),
        hosts: vec![],
    });
    let ds = run(&mut d, 2_000, 100_000, 1_000, |_| vec![]);
    assert_eq!(
        ds.first().map(|x| (x.0, x.1.step().unwrap().rung)),
        Some((58_000, Rung::Blackhole))
    );

    // Restored under a policy that no longer protects the address: every
    // rung is withdrawn.
    let mut other = ladder_config();
    other.networks = vec![pfx("2001:db8:100::/48")];
    let (d2, ds) = Detector::restore(other, &saved, Monotonic::from_secs(1)).unwrap();
    let ks: Vec<_> = ds.into_iter().map(|x| (0, x)).collect();
    assert_eq!(
        kinds(&ks),
        vec![
            (0, "stop", Rung::Blackhole),
            (0, "stop", Rung::Drop),
            (0, "end", Rung::Notify)
        ]
    );
    assert_eq!(d2.stats().incidents, 0);
}

#[test]
fn config_mistakes_are_all_reported() {
    let mut c = groups_config();
    c.groups[0].parent = Some("nobody".into());
    c.groups.push(GroupConfig::new(
        "outside",
        vec![pfx("198.51.100.0/24")],
        None,
    ));
    let mut a = GroupConfig::new("a", vec![pfx("203.0.113.128/27")], Some("b"));
    a.ladder = Some(vec![]);
    let b = GroupConfig::new("b", vec![pfx("203.0.113.160/27")], Some("a"));
    c.groups.push(a);
    c.groups.push(b);
    c.ladder.push(RungConfig::new(notify(), secs(1), secs(1)));
    c.hysteresis = 1.5;
    let errors = c.check();
    use guard::ConfigError::*;
    assert!(errors.contains(&UnknownParent { group: 0 }), "{errors:?}");
    assert!(errors.contains(&OutsideNetworks {
        group: 2,
        prefix: 0
    }));
    assert!(errors.contains(&InheritanceCycle { group: 3 }));
    assert!(errors.contains(&InheritanceCycle { group: 4 }));
    assert!(errors.contains(&EmptyLadder { group: Some(3) }));
    assert!(errors.contains(&RungTwice {
        group: None,
        rung: 1
    }));
    assert!(errors.contains(&Hysteresis));
    assert!(Detector::new(c).is_err());
}

// ---------------------------------------------------------------- proptests

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..=255).prop_map(|l| IpAddr::from([203, 0, 113, l])),
        (0u8..=255).prop_map(|l| IpAddr::from([198, 51, 100, l])),
        any::<u16>()
            .prop_map(|l| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, l))),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        any::<[u8; 4]>().prop_map(IpAddr::from),
    ]
}

fn arb_counters() -> impl Strategy<Value = HostCounters> {
    (
        any::<u64>(),
        0u64..2_000_000,
        0u8..8,
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(big, p, kind, port, len)| {
            let p = if kind == 7 { big } else { p };
            let mut c = match kind % 3 {
                0 => syn(p, 1_000),
                _ => udp(p, 1_000, port),
            };
            c.fragments = p / 2;
            c.flows = big % 1_000_000;
            c.max_packet_len = len;
            c
        })
}

fn arb_sample() -> impl Strategy<Value = HostSample> {
    (arb_addr(), any::<bool>(), arb_counters()).prop_map(|(addr, out, counters)| HostSample {
        addr,
        direction: if out { OUT } else { IN },
        counters,
    })
}

fn arb_command() -> impl Strategy<Value = Command> {
    (arb_addr(), 0usize..6, 0u8..3, 0u64..1_000).prop_map(|(addr, r, k, s)| {
        let rung = Rung::ALL[r];
        match k {
            0 => Command::Ban {
                addr,
                direction: IN,
                rung,
                duration: Some(secs(s)),
            },
            1 => Command::Permanent {
                addr,
                direction: OUT,
                rung,
            },
            _ => Command::Unban {
                addr,
                direction: None,
            },
        }
    })
}

fn prop_config(tiny_group: bool) -> Config {
    let mut c = ladder_config();
    c.ladder.push(RungConfig::new(
        Action::Rtbh {
            communities: vec![guard::Community::BLACKHOLE],
            next_hop: None,
        },
        secs(1),
        secs(5),
    ));
    c.ladder.push(RungConfig::new(
        Action::Flowspec { rate: None },
        secs(1),
        secs(5),
    ));
    c.max_hosts = 64;
    c.idle = secs(5);
    c.calm = secs(2);
    let mut g = GroupConfig::new(
        "g",
        vec![pfx(if tiny_group {
            "203.0.113.0/28"
        } else {
            "203.0.113.0/25"
        })],
        None,
    );
    g.totals = Thresholds::new().with(IN, Metric::Pps, Limit::At(10_000));
    c.min_prefix_v4 = 26;
    c.groups = vec![g];
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever arrives, the detector does not panic, and every decision
    /// names only addresses inside the networks, with blackhole, RTBH and
    /// FlowSpec prefixes no shorter than the limits.
    #[test]
    fn never_panics_and_never_decides_outside_the_networks(
        ticks in proptest::collection::vec(
            (0u64..3_000, proptest::collection::vec(arb_sample(), 0..24), proptest::option::of(arb_command())),
            1..60,
        ),
        tiny in any::<bool>(),
    ) {
        let c = prop_config(tiny);
        let networks = c.networks.clone();
        let mut d = Detector::new(c.clone()).unwrap();
        // A twin fed the same inputs must decide the same (determinism).
        let mut twin = Detector::new(c).unwrap();
        let mut t = 0u64;
        for (gap, hosts, cmd) in ticks {
            t += gap;
            let now = Monotonic::from_millis(t);
            let obs = Observation { at: now, hosts };
            let mut ds = d.tick(&obs);
            let mut twin_ds = twin.tick(&obs);
            if let Some(cmd) = cmd {
                if let Ok(more) = d.command(now, &cmd) {
                    ds.extend(more);
                }
                if let Ok(more) = twin.command(now, &cmd) {
                    twin_ds.extend(more);
                }
            }
            prop_assert_eq!(&ds, &twin_ds);
            for dec in &ds {
                let Some(s) = dec.step() else { continue };
                if let Target::Host(a) = s.target {
                    prop_assert!(networks.iter().any(|n| n.contains(a)), "{a}");
                }
                if s.rung.announces() {
                    prop_assert!(!s.prefixes.is_empty());
                    for p in &s.prefixes {
                        let min = if p.is_ipv4() { 26 } else { 48 };
                        prop_assert!(p.len() >= min, "{p}");
                        prop_assert!(
                            networks.iter().any(|n| n.len() <= p.len() && n.overlaps(*p)),
                            "{p}"
                        );
                    }
                }
            }
            prop_assert!(d.stats().hosts <= 64);
            // Save and restore must not lose or invent incidents.
            let saved = d.save(now);
            let (d2, _) = Detector::restore(prop_config(tiny), &saved, now).unwrap();
            prop_assert_eq!(d2.stats().incidents, d.stats().incidents);
        }
    }
}

#[test]
fn a_long_flow_reported_at_once_is_no_burst_once_spread() {
    use guard::spread::{FlowRecord, Spreader};
    let mut c = config();
    c.instant = Some(Duration::ZERO);
    let rec = FlowRecord {
        addr: ip("203.0.113.10"),
        direction: IN,
        duration: secs(60),
        packets: 60,
        bytes: 60 * 1_400,
        protocol: 6,
        src_port: 443,
        dst_port: 50_000,
        remote: Some(ip("198.51.100.7")),
        tcp_flags: 0x18,
        fragment: false,
        // 1 in 1,000 sampled: 60,000 packets in 60 s, 1,000 pps.
        sampling: 1_000,
    };
    // Spread: 1,000 pps for 60 ticks, never over 20k pps.
    let mut spreader = Spreader::new(secs(1), 300, 10_000);
    let mut d = detector(c.clone());
    spreader.add(Monotonic::from_secs(1), &rec);
    let ds = run(&mut d, 0, 70_000, 1_000, |t| {
        spreader.take(Monotonic::from_millis(t)).hosts
    });
    assert!(ds.is_empty(), "{ds:?}");
    // Counted in the tick it arrived in, the same record is 60k pps.
    let mut d = detector(c);
    let ds = run(&mut d, 0, 1_000, 1_000, |_| {
        vec![sample(
            "203.0.113.10",
            IN,
            HostCounters {
                packets: 60_000,
                bytes: 60_000 * 1_400,
                ..HostCounters::default()
            },
        )]
    });
    assert_eq!(starts(&ds).len(), 1);
}

#[test]
fn an_incident_whose_only_rung_is_refused_ends_when_calm() {
    let mut c = ladder_config();
    c.networks = vec![pfx("100.64.0.0/10")];
    c.calm = secs(5);
    c.ladder = vec![RungConfig::new(Action::Blackhole, Duration::ZERO, secs(60))];
    let mut g = GroupConfig::new("big", vec![pfx("100.64.0.0/16")], None);
    g.totals = Thresholds::new().with(IN, Metric::Pps, Limit::At(1_000));
    c.groups = vec![g];
    let mut d = detector(c);
    let ds = run(&mut d, 0, 20_000, 1_000, |t| {
        if t <= 2_000 {
            (1..=10)
                .map(|i| sample(&format!("100.64.{i}.1"), IN, udp(500, 1_000, 40_000)))
                .collect()
        } else {
            vec![]
        }
    });
    assert_eq!(kinds(&ds), vec![(1_000, "refused", Rung::Blackhole)]);
    assert_eq!(d.stats().incidents, 0);
}

#[test]
fn status_lists_open_incidents_and_a_reload_keeps_them() {
    let mut d = detector(ladder_config());
    run(&mut d, 0, 4_000, 1_000, |_| {
        vec![sample("203.0.113.10", IN, syn(50_000, 1_000))]
    });
    let now = Monotonic::from_secs(4);
    let view = d.incidents(now);
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].target, Target::Host(ip("203.0.113.10")));
    assert_eq!(
        view[0].rungs,
        vec![
            (Rung::Notify, secs(3), secs(7)),
            (Rung::Drop, secs(1), secs(9))
        ]
    );
    assert_eq!(view[0].hold, guard::Hold::Auto);
    let (d2, ds) = d.reconfigure(ladder_config(), now).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(d2.incidents(now), view);
}

#[test]
fn a_full_table_makes_room_for_a_flooded_address() {
    // Someone touches max_hosts addresses, then floods one more: a quiet
    // address is forgotten to track it.
    let mut c = config();
    c.max_hosts = 100;
    c.instant = Some(Duration::ZERO);
    let mut d = detector(c);
    run(&mut d, 0, 1_000, 1_000, |_| {
        (0..100)
            .map(|i| sample(&format!("203.0.113.{i}"), IN, udp(1, 1_000, 40_000)))
            .collect()
    });
    assert_eq!(d.stats().hosts, 100);
    let ds = run(&mut d, 1_000, 2_000, 1_000, |_| {
        let mut v: Vec<HostSample> = (0..100)
            .map(|i| sample(&format!("203.0.113.{i}"), IN, udp(1, 1_000, 40_000)))
            .collect();
        v.push(sample("203.0.113.200", IN, syn(50_000, 1_000)));
        v.push(sample("203.0.113.201", IN, udp(1, 1_000, 40_000)));
        v
    });
    assert_eq!(
        starts(&ds),
        vec![(2_000, Target::Host(ip("203.0.113.200")), Rung::Notify)]
    );
    let st = d.stats();
    assert_eq!((st.hosts, st.evicted, st.overflow), (100, 1, 1));
}

#[test]
fn a_rung_removed_while_a_lower_one_holds_comes_back_with_the_attack() {
    let mut c = ladder_config();
    c.calm = secs(5);
    // notify held 10 minutes, drop after 2 s held 10 s.
    c.ladder = vec![
        RungConfig::new(notify(), Duration::ZERO, secs(600)),
        RungConfig::new(Action::Drop { signature: false }, secs(2), secs(10)),
    ];
    let mut d = detector(c);
    let flood = |t: u64| (1_000..=5_000).contains(&t) || (40_000..=45_000).contains(&t);
    let ds = run(&mut d, 0, 50_000, 1_000, |t| {
        if flood(t) {
            vec![sample("203.0.113.10", IN, syn(50_000, 1_000))]
        } else {
            vec![]
        }
    });
    // Calm from 6 s: drop (added at 3 s, held to 13 s) goes at 13 s; the
    // flood is back at 40 s: drop again 2 s later.
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (3_000, "escalate", Rung::Drop),
            (13_000, "stop", Rung::Drop),
            (42_000, "escalate", Rung::Drop),
        ]
    );
}

#[test]
fn a_notify_rung_with_every_sends_the_report_again_while_the_attack_lasts() {
    let mut c = ladder_config();
    c.calm = secs(1);
    c.ladder = vec![RungConfig::new(
        Action::Notify {
            script: Some("/usr/local/bin/notify_about_attack.sh".into()),
            webhook: None,
            every: Some(secs(20)),
        },
        Duration::ZERO,
        secs(10),
    )];
    let mut d = detector(c);
    let ds = run(&mut d, 0, 80_000, 1_000, |t| {
        if t <= 50_000 {
            vec![sample("203.0.113.10", IN, syn(50_000, 1_000))]
        } else {
            vec![]
        }
    });
    assert_eq!(
        kinds(&ds),
        vec![
            (1_000, "start", Rung::Notify),
            (21_000, "update", Rung::Notify),
            (41_000, "update", Rung::Notify),
            (52_000, "end", Rung::Notify),
        ]
    );
    let Decision::Update(s) = &ds[2].1 else {
        panic!()
    };
    assert_eq!(s.attack.packets, 41 * 50_000);
}

#[test]
fn ten_minutes_of_legitimate_load_at_80_percent_raise_nothing() {
    // 200 addresses, each at 80% of pps_in (16k of 20k) and of syn_in
    // (4k of 5k) on average, ±15% from tick to tick, in 100 ms ticks for
    // 10 minutes, with the instantaneous trigger at 300 ms: no decision.
    let mut c = config();
    c.instant = Some(Duration::from_millis(300));
    let mut d = detector(c);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut jitter = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        0.85 + (rng % 3001) as f64 / 10_000.0 // 0.85 ..= 1.15
    };
    let ds = run(&mut d, 0, 600_000, 100, |_| {
        (0..200u32)
            .map(|i| {
                let k = jitter();
                let mut c = syn((4_000.0 * k) as u64, 100);
                let other = (12_000.0 * k) as u64 / 10;
                c.packets += other;
                c.bytes += other * 1_200;
                c.udp_packets += other;
                c.udp_bytes += other * 1_200;
                let addr = if i % 2 == 0 {
                    format!("203.0.113.{}", i / 2)
                } else {
                    format!("2001:db8:100::{:x}", i)
                };
                sample(&addr, IN, c)
            })
            .collect()
    });
    assert!(ds.is_empty(), "{:?}", &ds[..ds.len().min(3)]);
    assert_eq!(d.stats().hosts, 200);
}

#[test]
fn ten_thousand_tenant_groups_resolve_and_cost_nothing_per_tick() {
    // Tenants' groups are the normal case at 10,000 tenants: checking and
    // resolving them must not compare every pair.
    let mut c = config();
    c.networks = (0..10_000u32)
        .map(|i| Prefix::V4(std::net::Ipv4Addr::from(0x6440_0000 + (i << 4)), 28))
        .collect();
    c.groups = c
        .networks
        .iter()
        .enumerate()
        .map(|(i, p)| GroupConfig::new(&format!("tenant-{i}"), vec![*p], None))
        .collect();
    assert!(c.check().is_empty());
    let mut d = detector(c);
    assert_eq!(d.group_of(ip("100.64.0.17")), Some("tenant-1"));
    let ds = run(&mut d, 0, 1_000, 100, |_| {
        vec![sample("100.64.0.17", IN, udp(100, 100, 40_000))]
    });
    assert!(ds.is_empty());
}
