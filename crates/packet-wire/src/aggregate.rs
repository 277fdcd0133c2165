//! Packet summaries → per (address, direction) counters for one tick.
//!
//! Direction comes from the local prefixes, as FastNetMon's
//! `networks_list` does: destination local and source not → `In` for the
//! destination; source local and destination not → `Out` for the source;
//! both local → internal (one set of counters, not per host: internal
//! traffic never triggers); neither → foreign (counted, then dropped).
//!
//! Memory is bounded: at most `max_hosts` (address, direction) entries,
//! each of a fixed size (counters, a 128-byte flow sketch, 8 source-port
//! and 8 destination-port counters, 8 remote-source counters); traffic of
//! a host that finds the table full goes to the `overflow` counters. Entries live for one flow window (a second by
//! default) so that `flows` can count each 5-tuple once per window.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use net_types::Prefix;
use prefix_map::PrefixMap;

use crate::parse::{parse, IpProtocol, LinkType, PacketSummary, ParseError, Reason};
use crate::scan::{ScanConfig, ScanSketch, ScanTable};
use crate::sketch::{FlowSketch, TopPorts, TopSources};

/// Which way traffic goes, seen from the local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// The local address is the destination.
    In,
    /// The local address is the source.
    Out,
}

/// Packet and byte counters; bytes are IP lengths ([`PacketSummary::ip_len`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// All packets.
    pub packets: u64,
    /// All bytes.
    pub bytes: u64,
    /// TCP packets.
    pub tcp_packets: u64,
    /// TCP bytes.
    pub tcp_bytes: u64,
    /// UDP packets.
    pub udp_packets: u64,
    /// UDP bytes.
    pub udp_bytes: u64,
    /// ICMP and ICMPv6 packets.
    pub icmp_packets: u64,
    /// ICMP and ICMPv6 bytes.
    pub icmp_bytes: u64,
    /// TCP segments with SYN set and ACK clear.
    pub tcp_syn: u64,
    /// IP fragments (see [`PacketSummary::is_fragment`]).
    pub fragments: u64,
    /// Bytes in those fragments.
    pub fragment_bytes: u64,
}

impl Counters {
    /// Counts one packet `weight` times (the sampling rate).
    #[inline]
    pub fn add(&mut self, p: &PacketSummary, weight: u64) {
        let bytes = u64::from(p.ip_len) * weight;
        self.packets += weight;
        self.bytes += bytes;
        match p.protocol {
            IpProtocol::TCP => {
                self.tcp_packets += weight;
                self.tcp_bytes += bytes;
                if p.tcp_flags.is_syn_only() {
                    self.tcp_syn += weight;
                }
            }
            IpProtocol::UDP => {
                self.udp_packets += weight;
                self.udp_bytes += bytes;
            }
            proto if proto.is_icmp() => {
                self.icmp_packets += weight;
                self.icmp_bytes += bytes;
            }
            _ => {}
        }
        if p.is_fragment {
            self.fragments += weight;
            self.fragment_bytes += bytes;
        }
    }

    /// Adds another set of counters.
    pub fn merge(&mut self, o: &Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.tcp_packets += o.tcp_packets;
        self.tcp_bytes += o.tcp_bytes;
        self.udp_packets += o.udp_packets;
        self.udp_bytes += o.udp_bytes;
        self.icmp_packets += o.icmp_packets;
        self.icmp_bytes += o.icmp_bytes;
        self.tcp_syn += o.tcp_syn;
        self.fragments += o.fragments;
        self.fragment_bytes += o.fragment_bytes;
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }
}

/// One (address, direction)'s traffic in one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostDelta {
    /// The local address.
    pub addr: IpAddr,
    /// Which way.
    pub direction: Direction,
    /// Packets and bytes.
    pub counters: Counters,
    /// 5-tuples first seen in this tick's flow window (estimated, see
    /// [`FlowSketch`]); over a window the ticks' `flows` add up to the
    /// window's distinct 5-tuples. Not scaled by sampling.
    pub flows: u64,
    /// The busiest UDP source ports (scaled by sampling).
    pub top_udp_src_ports: TopPorts,
    /// The busiest TCP and UDP destination ports (scaled by sampling).
    pub top_dst_ports: TopPorts,
    /// The busiest remote sources of an incoming host's traffic (scaled
    /// by sampling); empty for `Out`.
    pub top_sources: TopSources,
    /// The shortest IP packet seen in bytes; 0 if none.
    pub min_packet_len: u16,
    /// The longest IP packet seen in bytes (saturating at 65,535); 0 if none.
    pub max_packet_len: u16,
}

impl HostDelta {
    /// Folds in another delta for the same address and direction.
    pub fn merge(&mut self, o: &HostDelta) {
        self.counters.merge(&o.counters);
        self.flows += o.flows;
        self.top_udp_src_ports.merge(&o.top_udp_src_ports);
        self.top_dst_ports.merge(&o.top_dst_ports);
        self.top_sources.merge(&o.top_sources);
        self.min_packet_len = match (self.min_packet_len, o.min_packet_len) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        self.max_packet_len = self.max_packet_len.max(o.max_packet_len);
    }
}

/// Malformed frames by [`Reason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MalformedCounts([u64; Reason::COUNT]);

impl MalformedCounts {
    /// Counts one.
    pub fn add(&mut self, reason: Reason) {
        self.0[reason.index()] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason.index()]
    }

    /// All malformed frames.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counts.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }

    /// Adds another set.
    pub fn merge(&mut self, o: &MalformedCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }
}

/// Everything one aggregator saw in one tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TickCounts {
    /// Hosts with traffic (or new flows), sorted by address then direction
    /// after [`TickCounts::coalesce`].
    pub hosts: Vec<HostDelta>,
    /// Both ends local.
    pub internal: Counters,
    /// Neither end local.
    pub foreign: Counters,
    /// Traffic of hosts that found the host table full.
    pub overflow: Counters,
    /// Frames that were not IP (ARP, LLDP…).
    pub non_ip: u64,
    /// Malformed frames.
    pub malformed: MalformedCounts,
    /// At the end of a scan window (see [`crate::scan`]): the remote
    /// sources that reached several local addresses; empty otherwise.
    pub scans: Vec<ScanSketch>,
    /// At the end of a scan window: packets of sources the scan table had
    /// no room to follow.
    pub scan_untracked: u64,
}

impl TickCounts {
    /// Adds another aggregator's tick (another capture thread). Hosts are
    /// appended; call [`TickCounts::coalesce`] to merge repeats.
    pub fn merge(&mut self, o: TickCounts) {
        self.hosts.extend(o.hosts);
        self.internal.merge(&o.internal);
        self.foreign.merge(&o.foreign);
        self.overflow.merge(&o.overflow);
        self.non_ip += o.non_ip;
        self.malformed.merge(&o.malformed);
        self.scans.extend(o.scans);
        self.scan_untracked += o.scan_untracked;
    }

    /// Sorts the hosts by (address, direction) and merges repeats, so each
    /// appears once and the order is deterministic.
    pub fn coalesce(&mut self) {
        self.hosts.sort_unstable_by_key(|h| (h.addr, h.direction));
        let mut out: Vec<HostDelta> = Vec::with_capacity(self.hosts.len());
        for h in self.hosts.drain(..) {
            match out.last_mut() {
                Some(last) if last.addr == h.addr && last.direction == h.direction => {
                    last.merge(&h)
                }
                _ => out.push(h),
            }
        }
        self.hosts = out;
        self.scans.sort_unstable_by_key(|x| x.source);
        let mut scans: Vec<ScanSketch> = Vec::with_capacity(self.scans.len());
        for x in self.scans.drain(..) {
            match scans.last_mut() {
                Some(last) if last.source == x.source => last.merge(&x),
                _ => scans.push(x),
            }
        }
        self.scans = scans;
    }

    /// Every packet counted: hosts, internal, foreign and overflow (not
    /// the malformed and non-IP frames).
    pub fn packets(&self) -> u64 {
        self.hosts.iter().map(|h| h.counters.packets).sum::<u64>()
            + self.internal.packets
            + self.foreign.packets
            + self.overflow.packets
    }
}

/// The local prefixes, looked up by longest match. Built once and shared
/// (an `Arc`) by every capture thread: the IPv4 table's direct level is
/// 16 MiB.
pub struct LocalNets {
    v4: PrefixMap<u32, ()>,
    v6: PrefixMap<u128, ()>,
}

impl std::fmt::Debug for LocalNets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNets")
            .field("v4", &self.v4.len())
            .field("v6", &self.v6.len())
            .finish()
    }
}

impl LocalNets {
    /// The table of `prefixes`.
    pub fn new(prefixes: &[Prefix]) -> LocalNets {
        let mut v4 = PrefixMap::new();
        let mut v6 = PrefixMap::new();
        for p in prefixes {
            // A `Prefix` is valid by construction, so its length fits.
            match *p {
                Prefix::V4(a, len) => {
                    let _ = v4.insert(a, len, ());
                }
                Prefix::V6(a, len) => {
                    let _ = v6.insert(a, len, ());
                }
            }
        }
        LocalNets { v4, v6 }
    }

    /// Whether `addr` is inside a local prefix.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(a).is_some(),
            IpAddr::V6(a) => self.v6.lookup(a).is_some(),
        }
    }
}

/// The aggregator's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// The most (address, direction) entries kept in a flow window.
    pub max_hosts: usize,
    /// How many ticks a flow window lasts (10 ticks of 100 ms: flows per
    /// second, as FastNetMon counts them).
    pub flow_window_ticks: u32,
    /// The seed of the table's and the 5-tuples' hash. The capture picks a
    /// random one, so that no one can choose addresses that collide.
    pub hash_seed: u64,
    /// The scan table's limits.
    pub scan: ScanConfig,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            // 7/8 of 65,536: the hash table's buckets stay at 65,536 (it
            // grows to the next power of two past 7/8 full), so the table
            // is at most about 48 MiB a capture thread (65,536 × 769 bytes).
            max_hosts: 57_344,
            flow_window_ticks: 10,
            hash_seed: 0x7467_6361_7074_7572,
            scan: ScanConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct HostEntry {
    counters: Counters,
    top: TopPorts,
    dst_ports: TopPorts,
    sources: TopSources,
    min_len: u16,
    max_len: u16,
    sketch: FlowSketch,
    /// Flows already reported in this window.
    reported_flows: u64,
}

/// Counts packets per (address, direction) for one tick at a time. One per
/// capture thread; their [`TickCounts`] merge.
pub struct Aggregator {
    locals: Arc<LocalNets>,
    config: AggregatorConfig,
    hasher: foldhash::fast::FixedState,
    hosts: HashMap<(IpAddr, Direction), HostEntry, foldhash::fast::FixedState>,
    internal: Counters,
    foreign: Counters,
    overflow: Counters,
    non_ip: u64,
    malformed: MalformedCounts,
    ticks_in_window: u32,
    scans: ScanTable,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("config", &self.config)
            .field("hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

impl Aggregator {
    /// An empty aggregator over `locals`.
    pub fn new(locals: Arc<LocalNets>, config: AggregatorConfig) -> Aggregator {
        let state = foldhash::fast::FixedState::with_seed(config.hash_seed);
        Aggregator {
            locals,
            config,
            hasher: foldhash::fast::FixedState::with_seed(config.hash_seed ^ 0x5a5a_5a5a),
            hosts: HashMap::with_hasher(state),
            internal: Counters::default(),
            foreign: Counters::default(),
            overflow: Counters::default(),
            non_ip: 0,
            malformed: MalformedCounts::default(),
            ticks_in_window: 0,
            scans: ScanTable::new(config.scan, config.hash_seed),
        }
    }

    /// Parses a frame and counts it `weight` times; malformed and non-IP
    /// frames are counted as such (once: sampling does not scale them).
    /// Returns the parse error, if any, for callers that log samples.
    #[inline]
    pub fn add_frame(
        &mut self,
        link: LinkType,
        frame: &[u8],
        wire_len: u32,
        weight: u64,
    ) -> Result<(), ParseError> {
        match parse(link, frame, wire_len) {
            Ok(p) => {
                self.add(&p, weight);
                Ok(())
            }
            Err(e) => {
                match e.reason() {
                    Some(r) => self.malformed.add(r),
                    None => self.non_ip += 1,
                }
                Err(e)
            }
        }
    }

    /// Counts one packet `weight` times.
    #[inline]
    pub fn add(&mut self, p: &PacketSummary, weight: u64) {
        let src_local = self.locals.contains(p.src);
        let dst_local = self.locals.contains(p.dst);
        let key = match (src_local, dst_local) {
            (true, true) => return self.internal.add(p, weight),
            (false, false) => return self.foreign.add(p, weight),
            (false, true) => {
                self.scans.add(p.src, p.dst, weight);
                (p.dst, Direction::In)
            }
            (true, false) => (p.src, Direction::Out),
        };
        let flow = self
            .hasher
            .hash_one((p.src, p.dst, p.protocol.0, p.src_port, p.dst_port));
        let full = self.hosts.len() >= self.config.max_hosts;
        let entry = match self.hosts.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) if !full => v.insert(HostEntry {
                counters: Counters::default(),
                top: TopPorts::new(),
                dst_ports: TopPorts::new(),
                sources: TopSources::new(),
                min_len: 0,
                max_len: 0,
                sketch: FlowSketch::new(),
                reported_flows: 0,
            }),
            Entry::Vacant(_) => return self.overflow.add(p, weight),
        };
        entry.counters.add(p, weight);
        entry.sketch.add_hash(flow);
        if p.protocol == IpProtocol::UDP && (p.src_port != 0 || p.dst_port != 0) {
            entry.top.add(p.src_port, weight);
        }
        if matches!(p.protocol, IpProtocol::UDP | IpProtocol::TCP)
            && (p.src_port != 0 || p.dst_port != 0)
        {
            entry.dst_ports.add(p.dst_port, weight);
        }
        if key.1 == Direction::In {
            entry
                .sources
                .add(p.src, weight, u64::from(p.ip_len) * weight);
        }
        let len = u16::try_from(p.ip_len).unwrap_or(u16::MAX);
        entry.min_len = if entry.min_len == 0 {
            len
        } else {
            entry.min_len.min(len)
        };
        entry.max_len = entry.max_len.max(len);
    }

    /// Ends the tick: returns its counts (hosts in no particular order) and
    /// starts the next. Every `flow_window_ticks` ticks the host table is
    /// emptied, which also starts a new flow window.
    pub fn take(&mut self) -> TickCounts {
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for (&(addr, direction), e) in self.hosts.iter_mut() {
            let estimate = e.sketch.estimate();
            // The estimate can step down when it changes regime: report
            // only growth, so a window's ticks add up to its largest
            // estimate.
            let flows = estimate.saturating_sub(e.reported_flows);
            e.reported_flows += flows;
            if e.counters.packets > 0 || flows > 0 {
                hosts.push(HostDelta {
                    addr,
                    direction,
                    counters: e.counters,
                    flows,
                    top_udp_src_ports: e.top,
                    top_dst_ports: e.dst_ports,
                    top_sources: e.sources,
                    min_packet_len: e.min_len,
                    max_packet_len: e.max_len,
                });
            }
            e.counters = Counters::default();
            e.top = TopPorts::new();
            e.dst_ports = TopPorts::new();
            e.sources = TopSources::new();
            e.min_len = 0;
            e.max_len = 0;
        }
        self.ticks_in_window += 1;
        if self.ticks_in_window >= self.config.flow_window_ticks.max(1) {
            self.ticks_in_window = 0;
            self.hosts.clear();
        }
        let (scans, scan_untracked) = self.scans.tick().unwrap_or_default();
        TickCounts {
            hosts,
            scans,
            scan_untracked,
            internal: std::mem::take(&mut self.internal),
            foreign: std::mem::take(&mut self.foreign),
            overflow: std::mem::take(&mut self.overflow),
            non_ip: std::mem::take(&mut self.non_ip),
            malformed: std::mem::take(&mut self.malformed),
        }
    }

    /// How many (address, direction) entries the table holds now.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::build::*;
    use crate::TcpFlags;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: [u8; 4] = [203, 0, 113, 10];
    const LOCAL2: [u8; 4] = [203, 0, 113, 20];
    const REMOTE: [u8; 4] = [198, 51, 100, 2];
    const OTHER: [u8; 4] = [192, 0, 2, 1];

    fn agg(max_hosts: usize) -> Aggregator {
        let locals = Arc::new(LocalNets::new(&[
            Prefix::V4(Ipv4Addr::new(203, 0, 113, 0), 24),
            Prefix::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 64),
        ]));
        Aggregator::new(
            locals,
            AggregatorConfig {
                max_hosts,
                flow_window_ticks: 10,
                hash_seed: 7,
                scan: ScanConfig::default(),
            },
        )
    }

    fn feed(a: &mut Aggregator, f: &[u8]) -> Result<(), ParseError> {
        a.add_frame(LinkType::Ethernet, f, f.len() as u32, 1)
    }

    fn host(t: &TickCounts, addr: [u8; 4], d: Direction) -> HostDelta {
        *t.hosts
            .iter()
            .find(|h| h.addr == IpAddr::from(addr) && h.direction == d)
            .expect("host in the tick")
    }

    #[test]
    fn directions_follow_the_local_prefixes() {
        let mut a = agg(100);
        let syn = |s, d, sport| {
            eth(
                0x0800,
                &ip4(s, d, 6, 0, &[], &tcp(sport, 80, TcpFlags::SYN)),
            )
        };
        for i in 0..5 {
            feed(&mut a, &syn(REMOTE, LOCAL, 1000 + i)).unwrap();
        }
        feed(&mut a, &syn(LOCAL, REMOTE, 1)).unwrap();
        feed(&mut a, &syn(LOCAL, LOCAL2, 1)).unwrap();
        feed(&mut a, &syn(REMOTE, OTHER, 1)).unwrap();
        feed(&mut a, &eth(0x0806, &[0; 28])).unwrap_err();
        feed(&mut a, &eth(0x0800, &[0x44; 20])).unwrap_err();
        let mut t = a.take();
        t.coalesce();
        let inbound = host(&t, LOCAL, Direction::In);
        assert_eq!(inbound.counters.packets, 5);
        assert_eq!(inbound.counters.tcp_packets, 5);
        assert_eq!(inbound.counters.tcp_syn, 5);
        assert_eq!(inbound.counters.bytes, 200);
        assert_eq!(inbound.flows, 5);
        assert_eq!((inbound.min_packet_len, inbound.max_packet_len), (40, 40));
        assert_eq!(host(&t, LOCAL, Direction::Out).counters.packets, 1);
        assert_eq!(t.hosts.len(), 2, "internal traffic is not per host");
        assert_eq!(t.internal.packets, 1);
        assert_eq!(t.foreign.packets, 1);
        assert_eq!(t.non_ip, 1);
        assert_eq!(t.malformed.get(Reason::BadIhl), 1);
        assert_eq!(t.malformed.total(), 1);
        assert_eq!(t.packets(), 8);
        // The next tick starts empty.
        let t = a.take();
        assert!(t.hosts.is_empty() && t.packets() == 0 && t.malformed.total() == 0);
    }

    #[test]
    fn incoming_sources_and_destination_ports() {
        let mut a = agg(100);
        let syn = |s, d, dport| {
            eth(
                0x0800,
                &ip4(s, d, 6, 0, &[], &tcp(40000, dport, TcpFlags::SYN)),
            )
        };
        for _ in 0..4 {
            feed(&mut a, &syn(REMOTE, LOCAL, 80)).unwrap();
        }
        feed(&mut a, &syn(OTHER, LOCAL, 443)).unwrap();
        feed(&mut a, &syn(LOCAL, REMOTE, 22)).unwrap();
        let mut t = a.take();
        t.coalesce();
        let inbound = host(&t, LOCAL, Direction::In);
        let sources: Vec<(IpAddr, u32, u32)> = inbound
            .top_sources
            .sorted()
            .iter()
            .map(|s| (s.addr, s.packets, s.bytes))
            .collect();
        assert_eq!(
            sources,
            vec![(IpAddr::from(REMOTE), 4, 160), (IpAddr::from(OTHER), 1, 40)]
        );
        assert_eq!(inbound.top_dst_ports.sorted(), vec![(80, 4), (443, 1)]);
        let outbound = host(&t, LOCAL, Direction::Out);
        assert!(outbound.top_sources.is_empty(), "the source is ours");
        assert_eq!(outbound.top_dst_ports.sorted(), vec![(22, 1)]);
        // The next tick starts afresh (the entry lives on for flows).
        feed(&mut a, &syn(OTHER, LOCAL, 443)).unwrap();
        let t = a.take();
        assert_eq!(
            host(&t, LOCAL, Direction::In).top_sources.as_slice().len(),
            1
        );
    }

    #[test]
    fn protocols_fragments_and_udp_source_ports() {
        let mut a = agg(100);
        for _ in 0..3 {
            feed(
                &mut a,
                &eth(
                    0x0800,
                    &ip4(REMOTE, LOCAL, 17, 0, &[], &udp(53, 4000, &[0; 100])),
                ),
            )
            .unwrap();
        }
        feed(
            &mut a,
            &eth(
                0x0800,
                &ip4(REMOTE, LOCAL, 17, 0, &[], &udp(123, 4000, b"")),
            ),
        )
        .unwrap();
        feed(
            &mut a,
            &eth(0x0800, &ip4(REMOTE, LOCAL, 1, 0, &[], &[8, 0, 0, 0])),
        )
        .unwrap();
        // Two fragments of one UDP datagram: the first has the ports.
        feed(
            &mut a,
            &eth(
                0x0800,
                &ip4(REMOTE, LOCAL, 17, 0x2000, &[], &udp(53, 4000, &[0; 8])),
            ),
        )
        .unwrap();
        feed(
            &mut a,
            &eth(0x0800, &ip4(REMOTE, LOCAL, 17, 2, &[], &[0; 30])),
        )
        .unwrap();
        // IPv6 ICMP to a local /64 address.
        let v6 = eth(0x86dd, &ip6(1, 2, 58, &[128, 0, 0, 0]));
        let mut b = agg(100);
        feed(&mut b, &v6).unwrap();
        let t = a.take();
        let h = host(&t, LOCAL, Direction::In);
        assert_eq!(h.counters.udp_packets, 6);
        assert_eq!(h.counters.udp_bytes, 3 * 128 + 28 + 36 + 50);
        assert_eq!(h.counters.icmp_packets, 1);
        assert_eq!(h.counters.fragments, 2);
        assert_eq!(h.counters.fragment_bytes, 36 + 50);
        assert_eq!(h.top_udp_src_ports.sorted(), vec![(53, 4), (123, 1)]);
        let t6 = b.take();
        assert_eq!(t6.internal.icmp_packets, 1, "both ends in 2001:db8::/64");
    }

    #[test]
    fn the_host_table_is_bounded_and_overflow_is_counted() {
        let mut a = agg(3);
        for host in 1..=10u8 {
            let f = eth(
                0x0800,
                &ip4(REMOTE, [203, 0, 113, host], 17, 0, &[], &udp(1, 2, b"")),
            );
            feed(&mut a, &f).unwrap();
            feed(&mut a, &f).unwrap();
        }
        assert_eq!(a.hosts(), 3);
        let t = a.take();
        assert_eq!(t.hosts.len(), 3);
        assert_eq!(t.overflow.packets, 14);
        assert_eq!(t.packets(), 20);
    }

    #[test]
    fn flows_count_each_five_tuple_once_per_window() {
        let mut a = agg(100);
        let f = |sport| {
            eth(
                0x0800,
                &ip4(REMOTE, LOCAL, 6, 0, &[], &tcp(sport, 80, TcpFlags::ACK)),
            )
        };
        let mut total = 0;
        for tick in 0..10u16 {
            // The same 20 flows every tick, plus 2 new ones.
            for sport in 0..20 {
                feed(&mut a, &f(sport)).unwrap();
            }
            feed(&mut a, &f(1000 + 2 * tick)).unwrap();
            feed(&mut a, &f(1001 + 2 * tick)).unwrap();
            total += host(&a.take(), LOCAL, Direction::In).flows;
        }
        // 40 distinct 5-tuples in the window: within three standard
        // errors of linear counting (3 × 7 %).
        assert!((32..=48).contains(&total), "{total}");
        // A new window counts the 20 old flows again.
        for sport in 0..20 {
            feed(&mut a, &f(sport)).unwrap();
        }
        let again = host(&a.take(), LOCAL, Direction::In).flows;
        assert!((17..=23).contains(&again), "{again}");
    }

    #[test]
    fn sampling_weights_counts_but_not_malformations() {
        let mut a = agg(10);
        let f = eth(
            0x0800,
            &ip4(REMOTE, LOCAL, 6, 0, &[], &tcp(1, 2, TcpFlags::SYN)),
        );
        a.add_frame(LinkType::Ethernet, &f, f.len() as u32, 100)
            .unwrap();
        a.add_frame(LinkType::Ethernet, &f[..20], f.len() as u32, 100)
            .unwrap_err();
        let t = a.take();
        let h = host(&t, LOCAL, Direction::In);
        assert_eq!(
            (h.counters.packets, h.counters.tcp_syn, h.counters.bytes),
            (100, 100, 4000)
        );
        assert_eq!(t.malformed.total(), 1);
    }

    #[test]
    fn merging_and_coalescing_threads() {
        let f = eth(0x0800, &ip4(REMOTE, LOCAL, 17, 0, &[], &udp(53, 2, b"xx")));
        let mut a = agg(10);
        let mut b = agg(10);
        feed(&mut a, &f).unwrap();
        feed(&mut b, &f).unwrap();
        feed(
            &mut b,
            &eth(
                0x0800,
                &ip4(REMOTE, LOCAL, 17, 0, &[], &udp(53, 2, &[0; 100])),
            ),
        )
        .unwrap();
        let mut t = a.take();
        t.merge(b.take());
        assert_eq!(t.hosts.len(), 2);
        t.coalesce();
        assert_eq!(t.hosts.len(), 1);
        let h = t.hosts[0];
        assert_eq!(h.counters.packets, 3);
        assert_eq!(h.top_udp_src_ports.sorted(), vec![(53, 3)]);
        assert_eq!((h.min_packet_len, h.max_packet_len), (30, 128));
    }

    #[test]
    fn the_fuzzing_entry_accepts_its_own_framing() {
        let mut data = vec![2u8];
        for f in [
            eth(
                0x0800,
                &ip4(REMOTE, LOCAL, 6, 0, &[], &tcp(1, 2, TcpFlags::SYN)),
            ),
            eth(0x86dd, &ip6(1, 2, 44, &frag6(17, 3, false))),
            eth(0x0806, &[0; 28]),
            vec![0; 5],
        ] {
            data.extend((f.len() as u16).to_be_bytes());
            data.push(0);
            data.extend(f);
        }
        crate::fuzzing::frames(&data);
        crate::fuzzing::frames(&[]);
        crate::fuzzing::frames(&[1, 0, 200, 9, 0x45]);
    }
}

#[cfg(test)]
mod size {
    /// The host table's memory bound is its buckets (the next power of two
    /// above `max_hosts` × 8/7) times this size plus a control byte: at the
    /// default 57,344 hosts, 65,536 × 769 bytes ≈ 48 MiB a capture thread
    /// (the attack report's sources and destination ports took it from 409).
    #[test]
    fn a_host_entry_is_small_and_fixed() {
        let entry = std::mem::size_of::<((std::net::IpAddr, super::Direction), super::HostEntry)>();
        eprintln!("{entry} bytes");
        assert!(entry <= 768, "{entry} bytes");
    }
}
