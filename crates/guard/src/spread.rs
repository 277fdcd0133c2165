//! Flow records as detector input, spread over their duration.
//!
//! An exporter reports a flow once, when it ends or when its active
//! timeout splits it: a 60 s download arrives as one record of 60 s of
//! bytes. Counted in the tick it arrived, it would look like a burst 600
//! times its real rate (FastNetMon users hit this with NetFlow). A
//! [`Spreader`] instead spreads each record's packets and bytes evenly
//! over as many ticks as the flow lasted, *from the tick it arrives in*:
//! the detector sees the flow's real rate, late by the exporter's delay
//! (the only honest choice for a detector that runs in real time; the
//! ticks the flow really covered are already past).
//!
//! Counts are multiplied by the sampling rate. A flow longer than
//! `max_span` ticks is spread over `max_span` ticks at its real rate (the
//! part before is dropped, not squeezed in), so memory stays bounded.
//!
//! A record costs the same whatever its span (a change where its spread
//! starts, one where it ends), so long spans are cheap. What is exact:
//! every additive count per tick (packets, bytes, per protocol, SYN,
//! fragments) and new flows. What is approximate: the UDP source ports
//! (at most 16 followed per address) and the packet length range (the
//! records' mean lengths, widened while the address has spread records).
//! An incoming record's source and destination port are followed like the
//! UDP source ports (at most 16 each per address), with the record's
//! per-tick packets and bytes over its spread, for the report's top
//! sources and ports.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use foldhash::fast::FixedState;

use crate::sample::{Direction, HostCounters, HostSample, Monotonic, Observation};

/// One decoded flow record about a protected address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// The protected address (destination for `In`, source for `Out`).
    pub addr: IpAddr,
    /// Which way.
    pub direction: Direction,
    /// How long the flow lasted (last switched − first switched).
    pub duration: Duration,
    /// Packets as exported (sampled).
    pub packets: u64,
    /// Bytes as exported (sampled).
    pub bytes: u64,
    /// IP protocol.
    pub protocol: u8,
    /// Source port (UDP/TCP), 0 if none.
    pub src_port: u16,
    /// Destination port (UDP/TCP), 0 if none.
    pub dst_port: u16,
    /// The flow's other end (its source for `In`), if the record has it:
    /// what the report's top sources are made of.
    pub remote: Option<IpAddr>,
    /// TCP flags seen in the flow (OR of every packet's).
    pub tcp_flags: u8,
    /// Whether the flow is of IP fragments.
    pub fragment: bool,
    /// 1 in this many packets was sampled (0 and 1: unsampled).
    pub sampling: u32,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

type Key = (IpAddr, Direction);

/// The additive counters as signed per-tick amounts: packets, bytes,
/// TCP, UDP and ICMP packets and bytes, SYN, fragments, fragment bytes
/// (the order of [`HostCounters`]' fields).
type Amounts = [i64; 11];

/// What a record's packets and bytes count as, per packet and per byte.
#[derive(Clone, Copy)]
struct Class {
    protocol: Option<usize>,
    syn: bool,
    fragment: bool,
}

impl Class {
    fn of(rec: &FlowRecord) -> Class {
        Class {
            protocol: match rec.protocol {
                6 => Some(2),
                17 => Some(4),
                1 | 58 => Some(6),
                _ => None,
            },
            syn: rec.protocol == 6 && rec.tcp_flags & SYN != 0 && rec.tcp_flags & ACK == 0,
            fragment: rec.fragment,
        }
    }

    /// `sign` × (`p` packets and `b` bytes of this class) into `a`.
    fn add(self, a: &mut Amounts, p: u64, b: u64, sign: i64) {
        let (p, b) = (p as i64 * sign, b as i64 * sign);
        a[0] += p;
        a[1] += b;
        if let Some(i) = self.protocol {
            a[i] += p;
            a[i + 1] += b;
        }
        if self.syn {
            a[8] += p;
        }
        if self.fragment {
            a[9] += p;
            a[10] += b;
        }
    }
}

/// What changes for one address at one tick: per-tick amounts that
/// start (or stop, negative) there, flows that begin there.
#[derive(Default)]
struct Change {
    amounts: Amounts,
    /// Flows beginning at this tick (each a new flow, counted once).
    flows: u64,
    /// Records whose last tick was the one before (their spread ends).
    ended: u32,
    /// UDP source ports' per-tick packets, starting or stopping here;
    /// at most [`PORTS`] ports (the rest not followed).
    ports: Vec<(u16, i64)>,
    /// The packet lengths of the flows beginning here.
    lengths: Option<(u16, u16)>,
    /// Incoming records' sources and destination ports: per-tick packets
    /// and bytes starting or stopping here, at most [`PORTS`] each.
    sources: Ranked<IpAddr>,
    dst_ports: Ranked<u16>,
}

/// Keys with per-tick packets and bytes (see [`add_ranked`]).
type Ranked<K> = Vec<(K, i64, i64)>;

/// The UDP source ports followed per change and per address: enough to
/// name an amplification (one port dominates) without a flood of ports
/// growing memory.
const PORTS: usize = 16;

fn add_port(ports: &mut Vec<(u16, i64)>, port: u16, packets: i64) {
    if let Some(p) = ports.iter_mut().find(|p| p.0 == port) {
        p.1 += packets;
    } else if ports.len() < PORTS {
        ports.push((port, packets));
    }
}

/// Adds per-tick `packets` and `bytes` to `key`, following at most
/// [`PORTS`] keys (the rest not followed).
fn add_ranked<K: PartialEq>(list: &mut Ranked<K>, key: K, packets: i64, bytes: i64) {
    if let Some(e) = list.iter_mut().find(|e| e.0 == key) {
        e.1 += packets;
        e.2 += bytes;
    } else if list.len() < PORTS {
        list.push((key, packets, bytes));
    }
}

/// One address's spread flows now.
#[derive(Default)]
struct Active {
    /// What its spread records add per tick.
    amounts: Amounts,
    /// UDP source ports' packets per tick.
    ports: Vec<(u16, i64)>,
    /// The lengths of the flows seen since it became active.
    lengths: Option<(u16, u16)>,
    /// Incoming records' sources and destination ports, per tick.
    sources: Ranked<IpAddr>,
    dst_ports: Ranked<u16>,
    /// Records added whose spread has not ended.
    records: u32,
}

/// Spreads flow records over ticks; see the module documentation.
///
/// A record costs the same whatever its span: it adds a change where its
/// spread starts and one where it ends (and one where its remainder
/// stops), not a share in every tick; each tick then applies its changes
/// to the addresses' running amounts. Memory is bounded by `max_hosts`
/// addresses followed at once, each with at most one change per tick of
/// the span.
pub struct Spreader {
    tick: Duration,
    max_span: u32,
    max_hosts: usize,
    /// `ring[i]` holds the changes at tick `base + i`.
    ring: VecDeque<HashMap<Key, Change, FixedState>>,
    base: u64,
    active: HashMap<Key, Active, FixedState>,
    overflow: u64,
}

impl Spreader {
    /// Ticks of `tick` (at least 1 ms), flows spread over at most
    /// `max_span` ticks, at most `max_hosts` addresses followed at once
    /// (records for more are counted in [`Spreader::overflow`]).
    pub fn new(tick: Duration, max_span: u32, max_hosts: usize) -> Spreader {
        Spreader {
            tick: tick.max(Duration::from_millis(1)),
            max_span: max_span.max(1),
            max_hosts,
            ring: VecDeque::new(),
            base: 0,
            active: HashMap::with_hasher(FixedState::with_seed(2)),
            overflow: 0,
        }
    }

    /// Records dropped because `max_hosts` addresses were followed.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    fn index(&self, t: Monotonic) -> u64 {
        (t.0.as_nanos() / self.tick.as_nanos()) as u64
    }

    fn change(&mut self, tick: u64, key: Key) -> &mut Change {
        let slot = (tick - self.base) as usize;
        self.ring[slot].entry(key).or_default()
    }

    /// Adds a record that arrived at `now`.
    pub fn add(&mut self, now: Monotonic, rec: &FlowRecord) {
        let scale = u64::from(rec.sampling.max(1));
        let mut packets = rec.packets.saturating_mul(scale);
        let mut bytes = rec.bytes.saturating_mul(scale);
        if packets == 0 && bytes == 0 {
            return;
        }
        let key = (rec.addr, rec.direction);
        if !self.active.contains_key(&key) && self.active.len() >= self.max_hosts {
            self.overflow += 1;
            return;
        }
        let want = rec
            .duration
            .as_nanos()
            .div_ceil(self.tick.as_nanos())
            .max(1);
        let n = want.min(u128::from(self.max_span)) as u64;
        if u128::from(n) < want {
            // Keep the rate: only the last `n` ticks' share.
            packets = (u128::from(packets) * u128::from(n) / want) as u64;
            bytes = (u128::from(bytes) * u128::from(n) / want) as u64;
        }
        // Amounts beyond i64 are no real traffic; keep the arithmetic whole.
        let (packets, bytes) = (packets.min(1 << 62), bytes.min(1 << 62));
        if self.ring.is_empty() {
            self.base = self.index(now);
        }
        let first = self.index(now).max(self.base);
        let end = first + n;
        while self.base + (self.ring.len() as u64) <= end {
            self.ring
                .push_back(HashMap::with_hasher(FixedState::with_seed(3)));
        }
        self.active.entry(key).or_default().records += 1;
        // Tick `first + i` gets `total / n`, plus one for the first
        // `total % n` ticks: two steps each, one at the start, one where
        // the remainder stops, and the rest at the end.
        let class = Class::of(rec);
        let (p_each, p_more) = (packets / n, packets % n);
        let (b_each, b_more) = (bytes / n, bytes % n);
        let udp_port = (rec.protocol == 17 && rec.src_port != 0).then_some(rec.src_port);
        // The flow's mean packet length: all a record says about lengths.
        let len = bytes
            .checked_div(packets)
            .map_or(0, |l| l.min(u64::from(u16::MAX)) as u16);
        let c = self.change(first, key);
        class.add(
            &mut c.amounts,
            p_each + u64::from(p_more > 0),
            b_each + u64::from(b_more > 0),
            1,
        );
        c.flows += 1;
        if let Some(port) = udp_port {
            add_port(&mut c.ports, port, (p_each + u64::from(p_more > 0)) as i64);
        }
        c.lengths = Some(
            c.lengths
                .map_or((len, len), |(lo, hi)| (lo.min(len), hi.max(len))),
        );
        // What the report ranks: the record's per-tick share, from its
        // first tick to its end (the remainder's extra packet and byte
        // kept to the end, which only ranks).
        let ranked = (
            rec.direction == Direction::In,
            (p_each + u64::from(p_more > 0)) as i64,
            (b_each + u64::from(b_more > 0)) as i64,
        );
        let dst_port =
            (rec.dst_port != 0 && matches!(rec.protocol, 6 | 17)).then_some(rec.dst_port);
        if let (true, p, b) = ranked {
            if let Some(remote) = rec.remote {
                add_ranked(&mut c.sources, remote, p, b);
            }
            if let Some(port) = dst_port {
                add_ranked(&mut c.dst_ports, port, p, 0);
            }
        }
        if p_more > 0 {
            let c = self.change(first + p_more, key);
            class.add(&mut c.amounts, 1, 0, -1);
            if let Some(port) = udp_port {
                add_port(&mut c.ports, port, -1);
            }
        }
        if b_more > 0 {
            class.add(&mut self.change(first + b_more, key).amounts, 0, 1, -1);
        }
        let c = self.change(end, key);
        class.add(&mut c.amounts, p_each, b_each, -1);
        if let Some(port) = udp_port {
            add_port(&mut c.ports, port, -(p_each as i64));
        }
        if let (true, p, b) = ranked {
            if let Some(remote) = rec.remote {
                add_ranked(&mut c.sources, remote, -p, -b);
            }
            if let Some(port) = dst_port {
                add_ranked(&mut c.dst_ports, port, -p, 0);
            }
        }
        c.ended += 1;
    }

    /// Every tick that ended by `now`, summed into one observation at
    /// `now` (addresses in order).
    pub fn take(&mut self, now: Monotonic) -> Observation {
        let current = self.index(now);
        let mut sum: HashMap<Key, HostCounters, FixedState> =
            HashMap::with_hasher(FixedState::with_seed(4));
        while self.base < current {
            let Some(changes) = self.ring.pop_front() else {
                self.base = current;
                break;
            };
            self.base += 1;
            let mut flows: Vec<(Key, u64)> = Vec::new();
            for (key, c) in changes {
                let Some(a) = self.active.get_mut(&key) else {
                    continue;
                };
                for (have, d) in a.amounts.iter_mut().zip(c.amounts) {
                    *have += d;
                }
                for (port, d) in c.ports {
                    add_port(&mut a.ports, port, d);
                }
                a.ports.retain(|p| p.1 > 0);
                for (addr, p, b) in c.sources {
                    add_ranked(&mut a.sources, addr, p, b);
                }
                a.sources.retain(|e| e.1 > 0 || e.2 > 0);
                for (port, p, _) in c.dst_ports {
                    add_ranked(&mut a.dst_ports, port, p, 0);
                }
                a.dst_ports.retain(|e| e.1 > 0);
                if let Some((lo, hi)) = c.lengths {
                    a.lengths = Some(a.lengths.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
                }
                if c.flows > 0 {
                    flows.push((key, c.flows));
                }
                a.records = a.records.saturating_sub(c.ended);
                if a.records == 0 {
                    // Its last spread ended: every change of it is applied.
                    self.active.remove(&key);
                }
            }
            // This tick's counts: every address with spread records.
            for (key, a) in &self.active {
                let c = counters(a);
                if !c.is_empty() {
                    sum.entry(*key).or_default().add(&c);
                }
            }
            for (key, n) in flows {
                sum.entry(key).or_default().flows += n;
            }
        }
        let mut hosts: Vec<HostSample> = sum
            .into_iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|((addr, direction), counters)| HostSample {
                addr,
                direction,
                counters,
            })
            .collect();
        hosts.sort_by_key(|h| (h.addr, h.direction));
        Observation { at: now, hosts }
    }
}

/// One address's counters for one tick from its running amounts.
fn counters(a: &Active) -> HostCounters {
    let v = |i: usize| u64::try_from(a.amounts[i]).unwrap_or(0);
    let mut c = HostCounters {
        packets: v(0),
        bytes: v(1),
        tcp_packets: v(2),
        tcp_bytes: v(3),
        udp_packets: v(4),
        udp_bytes: v(5),
        icmp_packets: v(6),
        icmp_bytes: v(7),
        tcp_syn: v(8),
        fragments: v(9),
        fragment_bytes: v(10),
        ..HostCounters::default()
    };
    if c.packets > 0 || c.bytes > 0 {
        for &(port, p) in &a.ports {
            c.top_udp_src_ports.add(port, u64::try_from(p).unwrap_or(0));
        }
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        for &(addr, p, b) in &a.sources {
            c.top_sources.add(addr, count(p), count(b));
        }
        for &(port, p, _) in &a.dst_ports {
            c.top_dst_ports.add(port, count(p));
        }
        if let Some((lo, hi)) = a.lengths {
            (c.min_packet_len, c.max_packet_len) = (lo, hi);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(duration_ms: u64, packets: u64, bytes: u64) -> FlowRecord {
        FlowRecord {
            addr: "192.0.2.1".parse().unwrap(),
            direction: Direction::In,
            duration: Duration::from_millis(duration_ms),
            packets,
            bytes,
            protocol: 17,
            src_port: 53,
            dst_port: 0,
            remote: None,
            tcp_flags: 0,
            fragment: false,
            sampling: 1,
        }
    }

    #[test]
    fn a_long_flow_is_spread_at_its_rate_and_adds_up() {
        let mut s = Spreader::new(Duration::from_secs(1), 300, 100);
        // 60 s of 1000 pps, reported at once at t = 100 s.
        s.add(Monotonic::from_secs(100), &rec(60_000, 60_000, 60_000_000));
        let mut total = 0;
        for t in 101..=161 {
            let o = s.take(Monotonic::from_secs(t));
            let p: u64 = o.hosts.iter().map(|h| h.counters.packets).sum();
            assert!(p == 0 || p == 1000, "tick {t}: {p}");
            total += p;
        }
        assert_eq!(total, 60_000);
    }

    #[test]
    fn sampling_is_undone_and_a_short_flow_lands_in_one_tick() {
        let mut s = Spreader::new(Duration::from_millis(100), 10, 100);
        let mut r = rec(0, 3, 300);
        r.sampling = 1000;
        s.add(Monotonic::from_millis(1050), &r);
        let o = s.take(Monotonic::from_millis(1100));
        assert_eq!(o.hosts.len(), 1);
        let c = o.hosts[0].counters;
        assert_eq!((c.packets, c.bytes, c.udp_packets), (3000, 300_000, 3000));
        assert_eq!(c.top_udp_src_ports.as_slice(), &[(53, 3000)]);
        assert!(s.take(Monotonic::from_millis(1200)).hosts.is_empty());
    }

    #[test]
    fn a_flow_longer_than_the_span_keeps_its_rate() {
        let mut s = Spreader::new(Duration::from_secs(1), 10, 100);
        s.add(Monotonic::from_secs(5), &rec(100_000, 100_000, 100));
        let o = s.take(Monotonic::from_secs(6));
        assert_eq!(o.hosts[0].counters.packets, 1000);
    }

    #[test]
    fn ticks_hold_at_most_max_hosts() {
        let mut s = Spreader::new(Duration::from_secs(1), 10, 1);
        let mut r = rec(0, 1, 100);
        s.add(Monotonic::from_secs(1), &r);
        r.addr = "192.0.2.2".parse().unwrap();
        s.add(Monotonic::from_secs(1), &r);
        assert_eq!(s.overflow(), 1);
        assert_eq!(s.take(Monotonic::from_secs(2)).hosts.len(), 1);
    }

    #[test]
    fn every_tick_holds_exactly_each_records_share() {
        // Records of many lengths, spans and arrival ticks for three
        // addresses, against the shares counted tick by tick.
        let mut s = Spreader::new(Duration::from_millis(100), 50, 100);
        let mut want: std::collections::BTreeMap<(u64, IpAddr), (u64, u64, u64)> =
            Default::default();
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        for arrival in 0..40u64 {
            for _ in 0..5 {
                let mut r = rec(next() % 9_000, next() % 5_000, next() % 900_000);
                r.addr = IpAddr::from([192, 0, 2, (next() % 3) as u8]);
                r.protocol = [6, 17, 1][(next() % 3) as usize];
                r.tcp_flags = 0x02;
                let n = (r.duration.as_millis().div_ceil(100).max(1) as u64).min(50);
                let want_n = r.duration.as_millis().div_ceil(100).max(1) as u64;
                let (p, b) = (r.packets * n / want_n, r.bytes * n / want_n);
                if r.packets == 0 && r.bytes == 0 {
                    continue;
                }
                for i in 0..n {
                    let part = |t: u64| t / n + u64::from(i < t % n);
                    let e = want.entry((arrival + i, r.addr)).or_default();
                    e.0 += part(p);
                    e.1 += part(b);
                    if r.protocol == 6 {
                        e.2 += part(p);
                    }
                }
                s.add(Monotonic::from_millis(arrival * 100 + 50), &r);
            }
            // Take every other tick: two ticks' worth at once adds up too.
            if arrival % 2 == 1 {
                let o = s.take(Monotonic::from_millis((arrival + 1) * 100));
                let busy: Vec<IpAddr> = (0..3u8)
                    .map(|a| IpAddr::from([192, 0, 2, a]))
                    .filter(|a| {
                        [arrival - 1, arrival]
                            .iter()
                            .any(|t| want.get(&(*t, *a)).is_some_and(|e| e.0 + e.1 > 0))
                    })
                    .collect();
                let seen: Vec<IpAddr> = o.hosts.iter().map(|h| h.addr).collect();
                assert_eq!(seen, busy, "ticks {}-{arrival}", arrival - 1);
                for h in o.hosts {
                    let e0 = want
                        .get(&(arrival - 1, h.addr))
                        .copied()
                        .unwrap_or_default();
                    let e1 = want.get(&(arrival, h.addr)).copied().unwrap_or_default();
                    let c = h.counters;
                    assert_eq!(
                        (c.packets, c.bytes, c.tcp_syn),
                        (e0.0 + e1.0, e0.1 + e1.1, e0.2 + e1.2),
                        "ticks {}-{arrival}, {}",
                        arrival - 1,
                        h.addr
                    );
                }
            }
        }
        // Everything ends: the spreader forgets every address.
        for t in 41..100 {
            s.take(Monotonic::from_millis(t * 100));
        }
        assert!(s.active.is_empty());
        assert!(s.take(Monotonic::from_millis(10_100)).hosts.is_empty());
    }

    #[test]
    fn incoming_records_name_their_sources_and_ports_over_their_spread() {
        let mut s = Spreader::new(Duration::from_millis(100), 100, 100);
        let flooder: IpAddr = "198.51.100.2".parse().unwrap();
        let other: IpAddr = "198.51.100.3".parse().unwrap();
        // 1 s of a flood, 1 in 10 sampled: 9,000 packets over 10 ticks.
        let mut a = rec(1_000, 900, 36_000);
        (a.remote, a.dst_port, a.protocol, a.sampling) = (Some(flooder), 80, 6, 10);
        let mut b = rec(0, 10, 400);
        (b.remote, b.dst_port, b.protocol) = (Some(other), 443, 6);
        let mut out = rec(0, 50, 5_000);
        (out.direction, out.remote, out.dst_port) = (Direction::Out, Some(other), 53);
        for r in [&a, &b, &out] {
            s.add(Monotonic::from_millis(1_000), r);
        }
        let o = s.take(Monotonic::from_millis(1_100));
        let inc = o
            .hosts
            .iter()
            .find(|h| h.direction == Direction::In)
            .unwrap();
        let top = inc.counters.top_sources.as_slice();
        assert_eq!(
            (top[0].addr, top[0].packets, top[0].bytes),
            (flooder, 900, 36_000)
        );
        assert_eq!((top[1].addr, top[1].packets), (other, 10));
        assert_eq!(
            inc.counters.top_dst_ports.as_slice(),
            &[(80, 900), (443, 10)]
        );
        let outgoing = o
            .hosts
            .iter()
            .find(|h| h.direction == Direction::Out)
            .unwrap();
        assert!(outgoing.counters.top_sources.is_empty());
        // The flood's later ticks still name it; the short flow is gone.
        let o = s.take(Monotonic::from_millis(1_500));
        let mut total = 900;
        for h in &o.hosts {
            assert_eq!(h.counters.top_sources.as_slice().len(), 1);
            total += h.counters.top_sources.as_slice()[0].packets;
        }
        let o = s.take(Monotonic::from_millis(2_500));
        total += o
            .hosts
            .iter()
            .map(|h| h.counters.top_sources.as_slice()[0].packets)
            .sum::<u64>();
        assert_eq!(total, 9_000, "the source's packets over the spread");
        assert!(s.take(Monotonic::from_millis(3_000)).hosts.is_empty());
    }
}
