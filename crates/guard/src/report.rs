//! What an attack looks like: its named kind, the report kept while it
//! lasts, and the FlowSpec rule built from its signature.

use std::fmt;
use std::net::IpAddr;

use net_types::{Prefix, Rate};
use serde::{Deserialize, Serialize};

use crate::config::{Metric, METRICS};
use crate::sample::{
    busiest_first, space_saving, Direction, HostCounters, Monotonic, SourceCount, TopPorts,
};

/// A kind of traffic *dominates* when it is at least this share of the
/// packets (FastNetMon's rule, kept so reports compare).
pub const DOMINANT: f64 = 0.9;

/// How many sources an attack report names.
pub const REPORT_SOURCES: usize = 10;

/// What the attack is, named from its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttackKind {
    /// TCP SYN packets dominate, or the SYN threshold fired.
    SynFlood,
    /// UDP dominates with no single amplifying source port.
    UdpFlood,
    /// ICMP dominates.
    IcmpFlood,
    /// IP fragments dominate.
    FragmentFlood,
    /// UDP from one source port dominates, and the port is a known
    /// amplifier or below 1024.
    Amplification {
        /// The source port.
        port: u16,
    },
    /// No kind dominates: the named metric (pps, bps, flows…) is over.
    Generic {
        /// The metric that fired.
        metric: Metric,
    },
}

impl AttackKind {
    /// The IP protocol a rule against this attack matches, if one.
    pub fn protocol(self, v6: bool) -> Option<u8> {
        match self {
            AttackKind::SynFlood => Some(6),
            AttackKind::UdpFlood | AttackKind::Amplification { .. } => Some(17),
            AttackKind::IcmpFlood => Some(if v6 { 58 } else { 1 }),
            AttackKind::FragmentFlood | AttackKind::Generic { .. } => None,
        }
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttackKind::SynFlood => f.write_str("SYN flood"),
            AttackKind::UdpFlood => f.write_str("UDP flood"),
            AttackKind::IcmpFlood => f.write_str("ICMP flood"),
            AttackKind::FragmentFlood => f.write_str("fragment flood"),
            AttackKind::Amplification { port } => match amplifier(*port) {
                Some(name) => write!(f, "{name} amplification (UDP source port {port})"),
                None => write!(f, "amplification from UDP source port {port}"),
            },
            AttackKind::Generic { metric } => write!(f, "flood ({metric} over threshold)"),
        }
    }
}

/// The protocol commonly abused for amplification on a UDP source port.
pub fn amplifier(port: u16) -> Option<&'static str> {
    Some(match port {
        17 => "QOTD",
        19 => "chargen",
        53 => "DNS",
        69 => "TFTP",
        111 => "portmap",
        123 => "NTP",
        137 => "NetBIOS",
        161 => "SNMP",
        389 => "CLDAP",
        427 => "SLP",
        520 => "RIP",
        1434 => "MS-SQL",
        1900 => "SSDP",
        3283 => "ARMS",
        3478 => "STUN",
        3702 => "WS-Discovery",
        5353 => "mDNS",
        5683 => "CoAP",
        10001 => "Ubiquiti discovery",
        11211 => "memcached",
        37810 => "DHDiscover",
        _ => return None,
    })
}

/// Names the attack from its smoothed rates (by [`Metric::index`]), the
/// metric that fired, and the tick's source ports.
pub(crate) fn classify(rates: &[f64; METRICS], trigger: Metric, ports: &TopPorts) -> AttackKind {
    let share = |m: Metric| {
        let all = rates[Metric::Pps.index()];
        if all > 0.0 {
            rates[m.index()] / all
        } else {
            0.0
        }
    };
    let udp = || {
        let udp = rates[Metric::UdpPps.index()];
        match ports.as_slice().first() {
            Some(&(port, packets))
                if udp > 0.0
                    && packets as f64 >= DOMINANT * port_total(ports)
                    && (amplifier(port).is_some() || port < 1024) =>
            {
                AttackKind::Amplification { port }
            }
            _ => AttackKind::UdpFlood,
        }
    };
    match trigger {
        Metric::Syn => return AttackKind::SynFlood,
        Metric::UdpPps | Metric::UdpBps => return udp(),
        Metric::IcmpPps | Metric::IcmpBps => return AttackKind::IcmpFlood,
        Metric::Frag => return AttackKind::FragmentFlood,
        _ => {}
    }
    if share(Metric::UdpPps) >= DOMINANT {
        udp()
    } else if share(Metric::Syn) >= DOMINANT {
        AttackKind::SynFlood
    } else if share(Metric::IcmpPps) >= DOMINANT {
        AttackKind::IcmpFlood
    } else if share(Metric::Frag) >= DOMINANT {
        AttackKind::FragmentFlood
    } else {
        AttackKind::Generic { metric: trigger }
    }
}

fn port_total(ports: &TopPorts) -> f64 {
    ports.as_slice().iter().map(|p| p.1 as f64).sum()
}

/// Which check fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// The smoothed (EWMA) rate went over the threshold.
    Smoothed,
    /// The rate over every tick stayed over the threshold for the
    /// configured time.
    Instant,
    /// The group's total went over its total threshold.
    GroupTotal,
    /// An operator's command.
    Manual,
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TriggerKind::Smoothed => "smoothed",
            TriggerKind::Instant => "instant",
            TriggerKind::GroupTotal => "group_total",
            TriggerKind::Manual => "manual",
        })
    }
}

/// The check that started the attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Which check.
    pub by: TriggerKind,
    /// The metric over its threshold.
    pub metric: Metric,
    /// The rate seen, per second (bits for bit metrics).
    pub rate: u64,
    /// The threshold.
    pub threshold: u64,
}

/// Packets per protocol seen during the attack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolMix {
    /// TCP packets.
    pub tcp: u64,
    /// Of which SYN without ACK.
    pub syn: u64,
    /// UDP packets.
    pub udp: u64,
    /// ICMP packets.
    pub icmp: u64,
    /// Other protocols.
    pub other: u64,
    /// Fragments (of any protocol).
    pub fragments: u64,
}

/// The attack report: kept up to date while the attack lasts, carried by
/// every decision about it, and stored in the history at its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    /// The named kind.
    pub kind: AttackKind,
    /// Which way the attack goes.
    pub direction: Direction,
    /// The group whose thresholds applied (`global` for none).
    pub group: String,
    /// What fired.
    pub trigger: Trigger,
    /// When it was detected.
    pub started: Monotonic,
    /// When it was detected on the caller's wall clock, in Unix
    /// milliseconds. The detector has no wall clock: the caller stamps
    /// it ([`crate::Detector::stamp`]) in the round that started the
    /// attack, and it is saved with the report, so the attack keeps its
    /// start (and its key in the history) across restarts.
    #[serde(default)]
    pub started_at_ms: Option<i64>,
    /// When the last rung ended; `None` while it lasts.
    pub ended: Option<Monotonic>,
    /// The highest rate over one tick, in packets per second.
    pub peak_pps: u64,
    /// The highest rate over one tick, in bits per second.
    pub peak_bps: u64,
    /// Packets seen since detection.
    pub packets: u64,
    /// Bytes seen since detection.
    pub bytes: u64,
    /// Those packets by protocol.
    pub protocols: ProtocolMix,
    /// The busiest UDP source ports since detection, as (port, packets).
    pub top_src_ports: Vec<(u16, u64)>,
    /// The busiest TCP and UDP destination ports since detection, as
    /// (port, packets): the attacked service.
    #[serde(default)]
    pub top_dst_ports: Vec<(u16, u64)>,
    /// The busiest sources since detection, at most [`REPORT_SOURCES`],
    /// busiest first: Space-Saving over the ticks' own lists, so a source
    /// with more than a tenth of the attack's packets is always named and
    /// a count is over by at most what it inherited from a quieter one.
    /// Empty for outgoing attacks and inputs that do not know sources
    /// (the eBPF counters).
    #[serde(default)]
    pub top_sources: Vec<SourceCount>,
    /// The shortest and longest packet seen, if the source knew.
    pub packet_len: Option<(u16, u16)>,
}

impl AttackReport {
    pub(crate) fn new(
        kind: AttackKind,
        direction: Direction,
        group: &str,
        trigger: Trigger,
        now: Monotonic,
    ) -> AttackReport {
        AttackReport {
            kind,
            direction,
            group: group.to_owned(),
            trigger,
            started: now,
            started_at_ms: None,
            ended: None,
            peak_pps: 0,
            peak_bps: 0,
            packets: 0,
            bytes: 0,
            protocols: ProtocolMix::default(),
            top_src_ports: Vec::new(),
            top_dst_ports: Vec::new(),
            top_sources: Vec::new(),
            packet_len: None,
        }
    }

    /// Adds one tick of the target's traffic; `pps` and `bps` are that
    /// tick's rates.
    pub(crate) fn add(&mut self, c: &HostCounters, pps: f64, bps: f64) {
        self.peak_pps = self.peak_pps.max(pps as u64);
        self.peak_bps = self.peak_bps.max(bps as u64);
        self.packets = self.packets.saturating_add(c.packets);
        self.bytes = self.bytes.saturating_add(c.bytes);
        let p = &mut self.protocols;
        p.tcp = p.tcp.saturating_add(c.tcp_packets);
        p.syn = p.syn.saturating_add(c.tcp_syn);
        p.udp = p.udp.saturating_add(c.udp_packets);
        p.icmp = p.icmp.saturating_add(c.icmp_packets);
        p.fragments = p.fragments.saturating_add(c.fragments);
        let known = c
            .tcp_packets
            .saturating_add(c.udp_packets)
            .saturating_add(c.icmp_packets);
        p.other = p.other.saturating_add(c.packets.saturating_sub(known));
        let mut top = TopPorts::from(std::mem::take(&mut self.top_src_ports));
        top.merge(&c.top_udp_src_ports);
        self.top_src_ports = top.into();
        let mut dst = TopPorts::from(std::mem::take(&mut self.top_dst_ports));
        dst.merge(&c.top_dst_ports);
        self.top_dst_ports = dst.into();
        if !c.top_sources.is_empty() {
            let mut len = self.top_sources.len().min(REPORT_SOURCES);
            self.top_sources
                .resize(REPORT_SOURCES, SourceCount::default());
            for s in c.top_sources.as_slice() {
                len = space_saving(&mut self.top_sources, len, REPORT_SOURCES, *s);
            }
            self.top_sources.truncate(len);
            busiest_first(&mut self.top_sources);
        }
        if c.min_packet_len != 0 && c.max_packet_len != 0 {
            self.packet_len = Some(match self.packet_len {
                None => (c.min_packet_len, c.max_packet_len),
                Some((lo, hi)) => (lo.min(c.min_packet_len), hi.max(c.max_packet_len)),
            });
        }
    }
}

/// What a FlowSpec rule does to matching traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowAction {
    /// Drop it (traffic-rate 0).
    Discard,
    /// Police it to this rate.
    RateLimit(Rate),
}

/// A FlowSpec rule (RFC 8955/8956) built from the attack's signature.
/// Unset fields match anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpecRule {
    /// Destination prefix (the victim, for incoming attacks).
    pub destination: Option<Prefix>,
    /// Source prefix (the sender, for outgoing attacks).
    pub source: Option<Prefix>,
    /// IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub protocol: Option<u8>,
    /// Source ports (amplification).
    pub source_ports: Vec<u16>,
    /// Packet length range, inclusive.
    pub packet_len: Option<(u16, u16)>,
    /// Match only TCP SYN without ACK.
    pub tcp_syn: bool,
    /// Match only fragments.
    pub fragments: bool,
    /// What to do.
    pub action: FlowAction,
}

impl FlowSpecRule {
    /// The rule against `report`'s attack on `prefix`.
    pub(crate) fn build(prefix: Prefix, report: &AttackReport, action: FlowAction) -> FlowSpecRule {
        let kind = report.kind;
        let (destination, source) = match report.direction {
            Direction::In => (Some(prefix), None),
            Direction::Out => (None, Some(prefix)),
        };
        FlowSpecRule {
            destination,
            source,
            protocol: kind.protocol(!prefix.is_ipv4()),
            source_ports: match kind {
                AttackKind::Amplification { port } => vec![port],
                _ => Vec::new(),
            },
            packet_len: report.packet_len,
            tcp_syn: kind == AttackKind::SynFlood,
            fragments: kind == AttackKind::FragmentFlood,
            action,
        }
    }
}

/// The host prefix (/32 or /128) of an address.
pub fn host_prefix(addr: IpAddr) -> Prefix {
    match addr {
        IpAddr::V4(a) => Prefix::V4(a, 32),
        IpAddr::V6(a) => Prefix::V6(a, 128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(pairs: &[(Metric, f64)]) -> [f64; METRICS] {
        let mut r = [0.0; METRICS];
        for &(m, v) in pairs {
            r[m.index()] = v;
        }
        r
    }

    #[test]
    fn the_report_names_the_busiest_sources_bounded() {
        let trigger = Trigger {
            by: TriggerKind::Smoothed,
            metric: Metric::Pps,
            rate: 1,
            threshold: 1,
        };
        let mut r = AttackReport::new(
            AttackKind::SynFlood,
            Direction::In,
            "global",
            trigger,
            Monotonic::ZERO,
        );
        let flooders: Vec<std::net::IpAddr> = ["198.51.100.1", "198.51.100.2", "2001:db8::3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        // 50 ticks: the three flooders send 100, 200 and 300 packets a
        // tick, and 8 spoofed one-packet sources a tick come and go.
        for tick in 0..50u32 {
            let mut c = HostCounters::default();
            for (i, a) in flooders.iter().enumerate() {
                let p = 100 * (i as u64 + 1);
                c.top_sources.add(*a, p, p * 40);
            }
            for k in 0..8u32 {
                let spoofed = std::net::IpAddr::from((0xcb00_7100u32 + tick * 8 + k).to_be_bytes());
                c.top_sources.add(spoofed, 1, 40);
            }
            c.top_dst_ports.add(80, 600);
            c.packets = 608;
            c.bytes = 608 * 40;
            r.add(&c, 6080.0, 6080.0 * 320.0);
        }
        assert!(r.top_sources.len() <= REPORT_SOURCES);
        let named: Vec<std::net::IpAddr> = r.top_sources.iter().take(3).map(|s| s.addr).collect();
        assert_eq!(named, vec![flooders[2], flooders[1], flooders[0]]);
        assert_eq!(r.top_sources[0].packets, 300 * 50);
        assert_eq!(r.top_sources[0].bytes, 300 * 50 * 40);
        assert_eq!(r.top_dst_ports, vec![(80, 600 * 50)]);
        assert_eq!(r.peak_pps, 6080);
        // The JSON names them; a report saved before the field reads back.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["top_sources"][0]["addr"], "2001:db8::3");
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("top_sources");
        old.as_object_mut().unwrap().remove("top_dst_ports");
        let back: AttackReport = serde_json::from_value(old).unwrap();
        assert!(back.top_sources.is_empty());
    }

    #[test]
    fn names_the_dominant_kind() {
        let none = TopPorts::new();
        let syn = rates(&[
            (Metric::Pps, 100.0),
            (Metric::TcpPps, 99.0),
            (Metric::Syn, 95.0),
        ]);
        assert_eq!(classify(&syn, Metric::Pps, &none), AttackKind::SynFlood);
        let icmp = rates(&[(Metric::Pps, 100.0), (Metric::IcmpPps, 91.0)]);
        assert_eq!(classify(&icmp, Metric::Bps, &none), AttackKind::IcmpFlood);
        let mixed = rates(&[
            (Metric::Pps, 100.0),
            (Metric::IcmpPps, 50.0),
            (Metric::UdpPps, 50.0),
        ]);
        assert_eq!(
            classify(&mixed, Metric::Pps, &none),
            AttackKind::Generic {
                metric: Metric::Pps
            }
        );
    }

    #[test]
    fn amplification_needs_one_known_or_low_source_port() {
        let udp = rates(&[(Metric::Pps, 100.0), (Metric::UdpPps, 100.0)]);
        let ntp = TopPorts::from(vec![(123, 95), (40000, 5)]);
        assert_eq!(
            classify(&udp, Metric::Pps, &ntp),
            AttackKind::Amplification { port: 123 }
        );
        assert_eq!(
            AttackKind::Amplification { port: 123 }.to_string(),
            "NTP amplification (UDP source port 123)"
        );
        let high = TopPorts::from(vec![(40000, 100)]);
        assert_eq!(classify(&udp, Metric::Pps, &high), AttackKind::UdpFlood);
        let spread = TopPorts::from(vec![(53, 50), (123, 50)]);
        assert_eq!(classify(&udp, Metric::Pps, &spread), AttackKind::UdpFlood);
        assert_eq!(
            classify(&udp, Metric::Pps, &TopPorts::from(vec![(11211, 9)])),
            AttackKind::Amplification { port: 11211 }
        );
    }
}
