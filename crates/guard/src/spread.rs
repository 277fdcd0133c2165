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
    /// TCP flags seen in the flow (OR of every packet's).
    pub tcp_flags: u8,
    /// Whether the flow is of IP fragments.
    pub fragment: bool,
    /// 1 in this many packets was sampled (0 and 1: unsampled).
    pub sampling: u32,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

type Bucket = HashMap<(IpAddr, Direction), HostCounters, FixedState>;

/// Spreads flow records over ticks; see the module documentation.
pub struct Spreader {
    tick: Duration,
    max_span: u32,
    max_hosts: usize,
    /// `ring[i]` holds tick `base + i`.
    ring: VecDeque<Bucket>,
    base: u64,
    overflow: u64,
}

impl Spreader {
    /// Ticks of `tick` (at least 1 ms), flows spread over at most
    /// `max_span` ticks, at most `max_hosts` addresses per tick (records
    /// for more are counted in [`Spreader::overflow`]).
    pub fn new(tick: Duration, max_span: u32, max_hosts: usize) -> Spreader {
        Spreader {
            tick: tick.max(Duration::from_millis(1)),
            max_span: max_span.max(1),
            max_hosts,
            ring: VecDeque::new(),
            base: 0,
            overflow: 0,
        }
    }

    /// Records dropped because a tick already held `max_hosts` addresses.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    fn index(&self, t: Monotonic) -> u64 {
        (t.0.as_nanos() / self.tick.as_nanos()) as u64
    }

    /// Adds a record that arrived at `now`.
    pub fn add(&mut self, now: Monotonic, rec: &FlowRecord) {
        let scale = u64::from(rec.sampling.max(1));
        let mut packets = rec.packets.saturating_mul(scale);
        let mut bytes = rec.bytes.saturating_mul(scale);
        if packets == 0 && bytes == 0 {
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
        if self.ring.is_empty() {
            self.base = self.index(now);
        }
        let first = self.index(now).max(self.base);
        let end = first + n;
        while self.base + (self.ring.len() as u64) < end {
            self.ring
                .push_back(Bucket::with_hasher(FixedState::with_seed(2)));
        }
        // The flow's mean packet length: all a record says about lengths.
        let len = bytes
            .checked_div(packets)
            .map_or(0, |l| l.min(u64::from(u16::MAX)) as u16);
        for i in 0..n {
            let part = |total: u64| total / n + u64::from(i < total % n);
            let p = part(packets);
            let b = part(bytes);
            if p == 0 && b == 0 && i > 0 {
                continue;
            }
            let mut c = HostCounters {
                packets: p,
                bytes: b,
                flows: u64::from(i == 0),
                min_packet_len: len,
                max_packet_len: len,
                ..HostCounters::default()
            };
            match rec.protocol {
                6 => {
                    c.tcp_packets = p;
                    c.tcp_bytes = b;
                    if rec.tcp_flags & SYN != 0 && rec.tcp_flags & ACK == 0 {
                        c.tcp_syn = p;
                    }
                }
                17 => {
                    c.udp_packets = p;
                    c.udp_bytes = b;
                    if rec.src_port != 0 {
                        c.top_udp_src_ports.add(rec.src_port, p);
                    }
                }
                1 | 58 => {
                    c.icmp_packets = p;
                    c.icmp_bytes = b;
                }
                _ => {}
            }
            if rec.fragment {
                c.fragments = p;
                c.fragment_bytes = b;
            }
            let slot = (first + i - self.base) as usize;
            let max = self.max_hosts;
            let bucket = &mut self.ring[slot];
            let key = (rec.addr, rec.direction);
            let full = bucket.len() >= max;
            match bucket.get_mut(&key) {
                Some(have) => have.add(&c),
                None if !full => {
                    bucket.insert(key, c);
                }
                None => self.overflow += 1,
            }
        }
    }

    /// Every tick that ended by `now`, summed into one observation at
    /// `now` (addresses in order).
    pub fn take(&mut self, now: Monotonic) -> Observation {
        let current = self.index(now);
        let mut sum: Bucket = Bucket::with_hasher(FixedState::with_seed(3));
        while self.base < current {
            let Some(b) = self.ring.pop_front() else {
                self.base = current;
                break;
            };
            self.base += 1;
            for (k, c) in b {
                sum.entry(k).or_default().add(&c);
            }
        }
        let mut hosts: Vec<HostSample> = sum
            .into_iter()
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
}
