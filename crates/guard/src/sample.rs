//! What the detector is fed: one [`Observation`] per tick, holding the
//! per-address counter deltas seen since the previous tick.
//!
//! The capture path (AF_PACKET) and the flow tap both produce these. The
//! counters are *deltas* for the tick, not running totals: the detector
//! divides them by the real elapsed time between two observations, so a
//! late tick does not look like a burst.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point on a monotonic clock: the time since an arbitrary origin (the
/// shell's start, usually). Only differences between two `Monotonic`
/// values mean anything; they never go backwards within one run, and they
/// are never stored across restarts (the ladder stores remaining
/// durations instead).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Monotonic(pub Duration);

impl Monotonic {
    /// The origin.
    pub const ZERO: Monotonic = Monotonic(Duration::ZERO);

    /// A time `millis` milliseconds after the origin (tests, benches).
    pub const fn from_millis(millis: u64) -> Monotonic {
        Monotonic(Duration::from_millis(millis))
    }

    /// A time `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Monotonic {
        Monotonic(Duration::from_secs(secs))
    }

    /// The time since `earlier`, zero if `earlier` is later (never panics).
    pub fn since(self, earlier: Monotonic) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// This time plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Monotonic {
        Monotonic(self.0.saturating_add(d))
    }
}

/// Which way the traffic goes, seen from the protected address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards the address: the address is the destination (a flood *at* it).
    In,
    /// From the address: the address is the source (a compromised host
    /// flooding someone, or a reflector answering).
    Out,
}

impl Direction {
    /// Both directions, `In` first.
    pub const ALL: [Direction; 2] = [Direction::In, Direction::Out];

    /// `incoming` or `outgoing`, the words FastNetMon's notify scripts get.
    pub fn as_script_word(self) -> &'static str {
        match self {
            Direction::In => "incoming",
            Direction::Out => "outgoing",
        }
    }

    /// 0 for `In`, 1 for `Out` (array index).
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// How many source ports [`TopPorts`] keeps.
pub const TOP_PORTS: usize = 8;

/// The busiest UDP source ports of one address in one tick, as
/// `(port, packets)`, at most [`TOP_PORTS`] of them, busiest first.
///
/// Amplification attacks (DNS, NTP, memcached…) come *from* one well-known
/// source port, so this is what names them. The list is a fixed array
/// (no allocation per host per tick); [`TopPorts::add`] keeps the busiest
/// ports when more are offered than fit, and merges repeated ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(u16, u64)>", into = "Vec<(u16, u64)>")]
pub struct TopPorts {
    len: u8,
    ports: [(u16, u64); TOP_PORTS],
}

impl TopPorts {
    /// An empty list.
    pub const fn new() -> TopPorts {
        TopPorts {
            len: 0,
            ports: [(0, 0); TOP_PORTS],
        }
    }

    /// Adds `packets` to `port`: merged with the same port if it is
    /// listed, else inserted if there is room or it is busier than the
    /// quietest listed port (which is then forgotten). Keeps the list
    /// sorted busiest first.
    pub fn add(&mut self, port: u16, packets: u64) {
        if packets == 0 {
            return;
        }
        let n = self.len as usize;
        let at = if let Some(i) = self.ports[..n].iter().position(|p| p.0 == port) {
            self.ports[i].1 = self.ports[i].1.saturating_add(packets);
            i
        } else if n < TOP_PORTS {
            self.ports[n] = (port, packets);
            self.len += 1;
            n
        } else if self.ports[n - 1].1 < packets {
            self.ports[n - 1] = (port, packets);
            n - 1
        } else {
            return;
        };
        // Bubble the changed entry up to keep the order (a few swaps at most).
        let mut i = at;
        while i > 0 && self.ports[i - 1].1 < self.ports[i].1 {
            self.ports.swap(i - 1, i);
            i -= 1;
        }
    }

    /// Merges another list into this one.
    pub fn merge(&mut self, other: &TopPorts) {
        for &(port, packets) in other.as_slice() {
            self.add(port, packets);
        }
    }

    /// The listed ports, busiest first.
    pub fn as_slice(&self) -> &[(u16, u64)] {
        &self.ports[..self.len as usize]
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl From<Vec<(u16, u64)>> for TopPorts {
    fn from(v: Vec<(u16, u64)>) -> TopPorts {
        let mut t = TopPorts::new();
        for (port, packets) in v {
            t.add(port, packets);
        }
        t
    }
}

impl From<TopPorts> for Vec<(u16, u64)> {
    fn from(t: TopPorts) -> Vec<(u16, u64)> {
        t.as_slice().to_vec()
    }
}

/// How many remote sources [`TopSources`] keeps per address and tick.
pub const TOP_SOURCES: usize = 8;

/// One remote source's traffic: in a tick, or over an attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    /// The remote address.
    pub addr: IpAddr,
    /// Its packets.
    pub packets: u64,
    /// Its bytes.
    pub bytes: u64,
}

impl Default for SourceCount {
    fn default() -> Self {
        SourceCount {
            addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            packets: 0,
            bytes: 0,
        }
    }
}

/// Adds `s` to a Space-Saving list of at most `cap` counters (Metwally
/// et al., 2005): merged with its own counter if listed, else appended
/// while there is room, else it takes the quietest counter's place and
/// inherits its counts. Every source with more than `1/cap` of the
/// packets stays listed; a count over-estimates by at most what it
/// inherited. Returns the new length.
pub(crate) fn space_saving(
    list: &mut [SourceCount],
    len: usize,
    cap: usize,
    s: SourceCount,
) -> usize {
    if s.packets == 0 && s.bytes == 0 {
        return len;
    }
    if let Some(c) = list[..len].iter_mut().find(|c| c.addr == s.addr) {
        c.packets = c.packets.saturating_add(s.packets);
        c.bytes = c.bytes.saturating_add(s.bytes);
        return len;
    }
    if len < cap {
        list[len] = s;
        return len + 1;
    }
    if let Some(q) = list[..len].iter_mut().min_by_key(|c| c.packets) {
        *q = SourceCount {
            addr: s.addr,
            packets: q.packets.saturating_add(s.packets),
            bytes: q.bytes.saturating_add(s.bytes),
        };
    }
    len
}

/// Sorts busiest first (ties by address, so the order is deterministic).
pub(crate) fn busiest_first(list: &mut [SourceCount]) {
    list.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.addr.cmp(&b.addr)));
}

/// The busiest remote sources sending to one address in one tick, at
/// most [`TOP_SOURCES`], busiest first, by Space-Saving (see
/// [`SourceCount`]); a fixed array, no allocation per host per tick.
/// Empty when the input cannot know (the eBPF counters, outgoing traffic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<SourceCount>", into = "Vec<SourceCount>")]
pub struct TopSources {
    len: u8,
    sources: [SourceCount; TOP_SOURCES],
}

impl TopSources {
    /// An empty list.
    pub fn new() -> TopSources {
        TopSources::default()
    }

    /// Adds `packets` and `bytes` to `addr`.
    pub fn add(&mut self, addr: IpAddr, packets: u64, bytes: u64) {
        let s = SourceCount {
            addr,
            packets,
            bytes,
        };
        let len = space_saving(&mut self.sources, usize::from(self.len), TOP_SOURCES, s);
        self.len = len as u8;
        busiest_first(&mut self.sources[..len]);
    }

    /// Merges another list into this one.
    pub fn merge(&mut self, other: &TopSources) {
        for s in other.as_slice() {
            self.add(s.addr, s.packets, s.bytes);
        }
    }

    /// The listed sources, busiest first.
    pub fn as_slice(&self) -> &[SourceCount] {
        &self.sources[..usize::from(self.len)]
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl From<Vec<SourceCount>> for TopSources {
    fn from(v: Vec<SourceCount>) -> TopSources {
        let mut t = TopSources::new();
        for s in v {
            t.add(s.addr, s.packets, s.bytes);
        }
        t
    }
}

impl From<TopSources> for Vec<SourceCount> {
    fn from(t: TopSources) -> Vec<SourceCount> {
        t.as_slice().to_vec()
    }
}

/// What one address sent or received in one tick (deltas, not totals).
///
/// Every count is as seen *after* sampling is undone: the flow tap
/// multiplies by the sampling rate before building these. Fields the
/// source cannot know stay 0 (`flows` from a capture without connection
/// tracking, `tcp_syn` from NetFlow v5…); 0 never triggers anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostCounters {
    /// All packets.
    pub packets: u64,
    /// All bytes (IP length: headers included, link layer excluded).
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
    /// TCP segments with SYN set and ACK clear (connection attempts).
    pub tcp_syn: u64,
    /// IP fragments (IPv4 MF or offset ≠ 0; IPv6 fragment header).
    pub fragments: u64,
    /// Bytes in those fragments.
    pub fragment_bytes: u64,
    /// New 5-tuples first seen in this tick; 0 when unknown.
    pub flows: u64,
    /// The busiest UDP source ports (amplification shows here).
    pub top_udp_src_ports: TopPorts,
    /// The busiest TCP and UDP destination ports (the attacked service).
    pub top_dst_ports: TopPorts,
    /// The busiest remote sources (incoming traffic; empty when unknown).
    pub top_sources: TopSources,
    /// The shortest packet seen, in bytes; 0 when unknown. With
    /// `max_packet_len` it makes a FlowSpec rule's packet-length match.
    pub min_packet_len: u16,
    /// The longest packet seen, in bytes; 0 when unknown.
    pub max_packet_len: u16,
}

impl HostCounters {
    /// Adds `other` to these counters (saturating), merging the port lists
    /// and widening the packet-length range.
    pub fn add(&mut self, other: &HostCounters) {
        self.packets = self.packets.saturating_add(other.packets);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.tcp_packets = self.tcp_packets.saturating_add(other.tcp_packets);
        self.tcp_bytes = self.tcp_bytes.saturating_add(other.tcp_bytes);
        self.udp_packets = self.udp_packets.saturating_add(other.udp_packets);
        self.udp_bytes = self.udp_bytes.saturating_add(other.udp_bytes);
        self.icmp_packets = self.icmp_packets.saturating_add(other.icmp_packets);
        self.icmp_bytes = self.icmp_bytes.saturating_add(other.icmp_bytes);
        self.tcp_syn = self.tcp_syn.saturating_add(other.tcp_syn);
        self.fragments = self.fragments.saturating_add(other.fragments);
        self.fragment_bytes = self.fragment_bytes.saturating_add(other.fragment_bytes);
        self.flows = self.flows.saturating_add(other.flows);
        self.top_udp_src_ports.merge(&other.top_udp_src_ports);
        self.top_dst_ports.merge(&other.top_dst_ports);
        self.top_sources.merge(&other.top_sources);
        if other.min_packet_len != 0
            && (self.min_packet_len == 0 || other.min_packet_len < self.min_packet_len)
        {
            self.min_packet_len = other.min_packet_len;
        }
        self.max_packet_len = self.max_packet_len.max(other.max_packet_len);
    }

    /// Whether every counter is zero.
    pub fn is_empty(&self) -> bool {
        self.packets == 0 && self.bytes == 0 && self.flows == 0
    }
}

/// One address's counters for one direction in one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSample {
    /// The protected address (the destination for `In`, the source for `Out`).
    pub addr: IpAddr,
    /// Which way the traffic went.
    pub direction: Direction,
    /// The deltas.
    pub counters: HostCounters,
}

/// Everything seen in one tick: the time the tick was read and the
/// addresses that had traffic (an address absent here had none).
///
/// `at` is when the counters were read, on the monotonic clock; the rate
/// of a host is its delta divided by the time since the previous
/// observation's `at`. An address may appear more than once (two capture
/// threads); its samples are summed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// When the tick's counters were read.
    pub at: Monotonic,
    /// The addresses with traffic in the tick.
    pub hosts: Vec<HostSample>,
}

/// The capture's samples and flow records' samples as one input.
///
/// Packets captured on the box and flow records exported by a router
/// often describe the same traffic, and the records arrive late (an
/// exporter's active timeout, then the spread over the flow's span).
/// Summing the two would count a flood twice, and even a per-tick
/// maximum would count it again for as long as the records lag behind.
/// So an address the capture has seen within `horizon` is watched from
/// the capture alone (exact, and on time), and flow records fill in
/// only the addresses the capture has not seen: traffic that reaches the
/// router but not this box. What this leaves out: flow records about
/// an address that the capture also sees, for traffic the capture does
/// not (two paths to one address); the capture's part stands for it.
#[derive(Clone, Debug)]
pub struct MergedInputs {
    horizon: Duration,
    seen: std::collections::HashMap<(IpAddr, Direction), Monotonic>,
    pruned: Monotonic,
}

impl MergedInputs {
    /// Flow records are ignored for an address the capture saw less than
    /// `horizon` ago.
    pub fn new(horizon: Duration) -> MergedInputs {
        MergedInputs {
            horizon,
            seen: std::collections::HashMap::new(),
            pruned: Monotonic::ZERO,
        }
    }

    /// One tick: the capture's samples as they are, and the flow
    /// samples of addresses the capture has not seen within the horizon.
    /// Memory: one entry per address the capture saw within the horizon
    /// (the capture bounds how many it follows).
    pub fn merge(
        &mut self,
        at: Monotonic,
        mut capture: Vec<HostSample>,
        flows: Vec<HostSample>,
    ) -> Vec<HostSample> {
        for s in &capture {
            self.seen.insert((s.addr, s.direction), at);
        }
        let horizon = self.horizon;
        capture.extend(flows.into_iter().filter(|s| {
            self.seen
                .get(&(s.addr, s.direction))
                .is_none_or(|&t| at.since(t) > horizon)
        }));
        if at.since(self.pruned) >= Duration::from_secs(1) {
            self.pruned = at;
            self.seen.retain(|_, t| at.since(*t) <= horizon);
        }
        capture
    }

    /// Addresses the capture saw within the horizon (for tests and
    /// status).
    pub fn followed(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(addr: &str, direction: Direction, packets: u64) -> HostSample {
        HostSample {
            addr: addr.parse().unwrap(),
            direction,
            counters: HostCounters {
                packets,
                bytes: packets * 60,
                ..HostCounters::default()
            },
        }
    }

    fn at(ms: u64) -> Monotonic {
        Monotonic(Duration::from_millis(ms))
    }

    #[test]
    fn late_flow_records_of_an_address_the_capture_sees_are_not_counted_again() {
        let mut m = MergedInputs::new(Duration::from_secs(120));
        let flood = |n| sample("203.0.113.10", Direction::In, n);
        // The flood in the capture from the start, in the records later.
        let t = m.merge(at(100), vec![flood(500)], vec![]);
        assert_eq!(t, vec![flood(500)]);
        let t = m.merge(at(2_000), vec![flood(500)], vec![flood(480)]);
        assert_eq!(t, vec![flood(500)]);
        // The flood is over in the capture; its records keep coming for a
        // while, and are still the capture's address.
        let t = m.merge(at(8_000), vec![], vec![flood(480)]);
        assert!(t.is_empty(), "{t:?}");
        // Another direction of the same address is another key.
        let out = sample("203.0.113.10", Direction::Out, 7);
        assert_eq!(m.merge(at(8_100), vec![], vec![out]), vec![out]);
        // Long after the horizon the records count again.
        let t = m.merge(at(200_000), vec![], vec![flood(42)]);
        assert_eq!(t, vec![flood(42)]);
        assert_eq!(m.followed(), 0);
    }

    #[test]
    fn flow_records_fill_in_addresses_the_capture_does_not_see() {
        let mut m = MergedInputs::new(Duration::from_secs(120));
        let a = sample("203.0.113.10", Direction::In, 500);
        let b = sample("2001:db8::7", Direction::In, 300);
        assert_eq!(m.merge(at(100), vec![a], vec![b]), vec![a, b]);
        assert_eq!(m.followed(), 1);
    }

    #[test]
    fn top_ports_keep_the_busiest_in_order() {
        let mut t = TopPorts::new();
        for p in 0..20u16 {
            t.add(p, u64::from(p) + 1);
        }
        let ports: Vec<u16> = t.as_slice().iter().map(|p| p.0).collect();
        assert_eq!(ports, vec![19, 18, 17, 16, 15, 14, 13, 12]);
        t.add(12, 100);
        assert_eq!(t.as_slice()[0], (12, 113));
        t.add(3, 1);
        assert_eq!(t.as_slice().len(), TOP_PORTS);
        assert!(!t.as_slice().iter().any(|p| p.0 == 3));
    }

    #[test]
    fn counters_add_widens_lengths() {
        let mut a = HostCounters {
            packets: 1,
            min_packet_len: 60,
            max_packet_len: 60,
            ..HostCounters::default()
        };
        let b = HostCounters {
            packets: 2,
            min_packet_len: 40,
            max_packet_len: 1500,
            ..HostCounters::default()
        };
        a.add(&b);
        assert_eq!(
            (a.packets, a.min_packet_len, a.max_packet_len),
            (3, 40, 1500)
        );
        a.add(&HostCounters::default());
        assert_eq!(a.min_packet_len, 40);
    }

    #[test]
    fn top_sources_keep_a_heavy_source_among_spoofed_ones() {
        let heavy: IpAddr = "198.51.100.7".parse().unwrap();
        let mut t = TopSources::new();
        for i in 0..500u32 {
            t.add(IpAddr::from((0xc000_0200u32 + i).to_be_bytes()), 1, 40);
            t.add(heavy, 2, 80);
        }
        assert_eq!(t.as_slice().len(), TOP_SOURCES);
        assert_eq!(t.as_slice()[0].addr, heavy);
        assert!(t.as_slice()[0].packets >= 1000);
        let mut exact = TopSources::new();
        exact.add(heavy, 3, 120);
        exact.add("2001:db8::9".parse().unwrap(), 5, 500);
        exact.add(heavy, 3, 120);
        let got: Vec<(String, u64, u64)> = exact
            .as_slice()
            .iter()
            .map(|s| (s.addr.to_string(), s.packets, s.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                ("198.51.100.7".into(), 6, 240),
                ("2001:db8::9".into(), 5, 500)
            ]
        );
        let back: TopSources =
            serde_json::from_str(&serde_json::to_string(&exact).unwrap()).unwrap();
        assert_eq!(back, exact);
    }

    #[test]
    fn observation_round_trips_through_json() {
        let mut c = HostCounters {
            packets: 5,
            ..HostCounters::default()
        };
        c.top_udp_src_ports.add(53, 5);
        let o = Observation {
            at: Monotonic::from_millis(1500),
            hosts: vec![HostSample {
                addr: "2001:db8::1".parse().unwrap(),
                direction: Direction::In,
                counters: c,
            }],
        };
        let s = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Observation>(&s).unwrap(), o);
    }
}
