//! Bounded per-host estimates: distinct 5-tuples ([`FlowSketch`]) and the
//! busiest UDP source and TCP/UDP destination ports ([`TopPorts`]), the
//! busiest remote sources ([`TopSources`]).

use std::net::IpAddr;

/// Registers in a [`FlowSketch`]: 128 bytes a host.
const REGISTERS: usize = 128;
const INDEX_BITS: u32 = 7;
/// α₁₂₈ from the HyperLogLog paper.
const ALPHA: f64 = 0.715;

/// A HyperLogLog sketch of distinct 5-tuples with 128 one-byte registers
/// (128 bytes, whatever the number of flows).
///
/// Error: below 320 distinct flows (2.5 × 128) the estimate is linear
/// counting over the empty registers: one standard error is about 4 % at
/// 20 flows, 7 % at 40 and 8 % at 300; above it, HyperLogLog's standard
/// error 1.04/√128 ≈ 9 %. The register sum and the count of empty
/// registers are kept up to date as registers grow (rarely: a register
/// only grows when a hash beats its rank), so an estimate costs O(1).
/// Sketches merge by taking the larger register, so two threads that saw
/// the same flow count it once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowSketch {
    registers: [u8; REGISTERS],
    /// Registers still 0.
    zeros: u32,
    /// Σ 2^−register (exact: every term is a power of two above 2^−60).
    sum: f64,
}

impl Default for FlowSketch {
    fn default() -> Self {
        Self::new()
    }
}

fn weight(rank: u8) -> f64 {
    1.0 / (1u64 << rank) as f64
}

impl FlowSketch {
    /// An empty sketch.
    pub const fn new() -> FlowSketch {
        FlowSketch {
            registers: [0; REGISTERS],
            zeros: REGISTERS as u32,
            sum: REGISTERS as f64,
        }
    }

    /// Adds a flow, given a well-mixed 64-bit hash of its 5-tuple.
    #[inline]
    pub fn add_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - INDEX_BITS)) as usize;
        // The rank of the first set bit in the remaining 57 bits (a sentinel
        // bit keeps it at most 58).
        let rest = (hash << INDEX_BITS) | (1 << (INDEX_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        let r = self.registers[index];
        if rank > r {
            self.sum += weight(rank) - weight(r);
            if r == 0 {
                self.zeros -= 1;
            }
            self.registers[index] = rank;
        }
    }

    /// Folds another sketch in (the union of both flow sets).
    pub fn merge(&mut self, other: &FlowSketch) {
        for (a, b) in self.registers.iter_mut().zip(other.registers.iter()) {
            *a = (*a).max(*b);
        }
        self.zeros = self.registers.iter().filter(|&&r| r == 0).count() as u32;
        self.sum = self.registers.iter().map(|&r| weight(r)).sum();
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.zeros == REGISTERS as u32
    }

    /// The estimated number of distinct flows added.
    #[inline]
    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let raw = ALPHA * m * m / self.sum;
        let e = if raw <= 2.5 * m && self.zeros > 0 {
            m * (m / f64::from(self.zeros)).ln()
        } else {
            raw
        };
        e.round() as u64
    }
}

/// How many source ports [`TopPorts`] keeps (the detector's `TOP_PORTS`).
pub const TOP_PORTS: usize = 8;

/// The busiest UDP source ports of one host in one tick, as `(port,
/// packets)`, by the Space-Saving algorithm (Metwally et al., 2005) with
/// [`TOP_PORTS`] counters: a port not listed takes the place of the
/// quietest one and inherits its count plus one.
///
/// So every port with more than 1/8 of the host's UDP packets is listed,
/// and a listed count over-estimates by at most the count it inherited
/// (at most 1/8 of the packets). With at most 8 ports in the tick, the
/// counts are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

    /// Counts `packets` more for `port`.
    #[inline]
    pub fn add(&mut self, port: u16, packets: u64) {
        let n = usize::from(self.len);
        if let Some(p) = self.ports[..n].iter_mut().find(|p| p.0 == port) {
            p.1 = p.1.saturating_add(packets);
            return;
        }
        if n < TOP_PORTS {
            self.ports[n] = (port, packets);
            self.len += 1;
            return;
        }
        let quietest = self
            .ports
            .iter_mut()
            .min_by_key(|p| p.1)
            .expect("TOP_PORTS > 0");
        *quietest = (port, quietest.1.saturating_add(packets));
    }

    /// The listed ports, busiest first (ties by port number).
    pub fn sorted(&self) -> Vec<(u16, u64)> {
        let mut v = self.as_slice().to_vec();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The listed ports, in no particular order.
    pub fn as_slice(&self) -> &[(u16, u64)] {
        &self.ports[..usize::from(self.len)]
    }

    /// Adds another list's counts (two threads' lists for one host).
    pub fn merge(&mut self, other: &TopPorts) {
        for &(port, packets) in other.as_slice() {
            self.add(port, packets);
        }
    }

    /// Whether no port is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// How many remote sources [`TopSources`] keeps per host and tick.
pub const TOP_SOURCES: usize = 8;

/// One remote source's traffic to a host in one tick (counts saturate at
/// `u32::MAX`: 4 GB from one source in one 100 ms tick is 340 Gbit/s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceCount {
    /// The remote address.
    pub addr: IpAddr,
    /// Its packets (scaled by sampling).
    pub packets: u32,
    /// Its bytes (IP lengths, scaled by sampling).
    pub bytes: u32,
}

/// The busiest remote sources of one host in one tick, by Space-Saving
/// with [`TOP_SOURCES`] counters, as [`TopPorts`] does for ports: every
/// source with more than 1/8 of the host's packets is listed, a listed
/// count over-estimates by at most the count it inherited, and with at
/// most 8 sources in the tick the counts are exact. 8 × 28 bytes a host
/// entry, whatever the number of sources (a spoofed flood included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopSources {
    len: u8,
    sources: [SourceCount; TOP_SOURCES],
}

impl Default for TopSources {
    fn default() -> Self {
        Self::new()
    }
}

impl TopSources {
    /// An empty list.
    pub const fn new() -> TopSources {
        TopSources {
            len: 0,
            sources: [SourceCount {
                addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                packets: 0,
                bytes: 0,
            }; TOP_SOURCES],
        }
    }

    /// Counts `packets` and `bytes` more for `addr`.
    #[inline]
    pub fn add(&mut self, addr: IpAddr, packets: u64, bytes: u64) {
        let packets = u32::try_from(packets).unwrap_or(u32::MAX);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let n = usize::from(self.len);
        if let Some(s) = self.sources[..n].iter_mut().find(|s| s.addr == addr) {
            s.packets = s.packets.saturating_add(packets);
            s.bytes = s.bytes.saturating_add(bytes);
            return;
        }
        if n < TOP_SOURCES {
            self.sources[n] = SourceCount {
                addr,
                packets,
                bytes,
            };
            self.len += 1;
            return;
        }
        let quietest = self
            .sources
            .iter_mut()
            .min_by_key(|s| s.packets)
            .expect("TOP_SOURCES > 0");
        *quietest = SourceCount {
            addr,
            packets: quietest.packets.saturating_add(packets),
            bytes: quietest.bytes.saturating_add(bytes),
        };
    }

    /// The listed sources, in no particular order.
    pub fn as_slice(&self) -> &[SourceCount] {
        &self.sources[..usize::from(self.len)]
    }

    /// The listed sources, busiest first (ties by address).
    pub fn sorted(&self) -> Vec<SourceCount> {
        let mut v = self.as_slice().to_vec();
        v.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.addr.cmp(&b.addr)));
        v
    }

    /// Adds another list's counts (two threads' lists for one host).
    pub fn merge(&mut self, other: &TopSources) {
        for s in other.as_slice() {
            self.add(s.addr, u64::from(s.packets), u64::from(s.bytes));
        }
    }

    /// Whether no source is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(x: u64) -> u64 {
        // splitmix64's finaliser: a well-mixed hash for the tests.
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn small_counts_are_close_and_repeats_do_not_count() {
        let mut s = FlowSketch::new();
        assert_eq!(s.estimate(), 0);
        for _ in 0..100 {
            s.add_hash(mix(7));
        }
        assert_eq!(s.estimate(), 1);
        for i in 0..10 {
            s.add_hash(mix(i));
        }
        let e = s.estimate();
        assert!((9..=11).contains(&e), "{e}");
    }

    #[test]
    fn large_counts_stay_within_the_stated_error() {
        for n in [500u64, 5_000, 100_000] {
            let mut s = FlowSketch::new();
            for i in 0..n {
                s.add_hash(mix(i * 7 + n));
            }
            let e = s.estimate() as f64;
            // Three standard errors (3 × 9 %).
            assert!((e / n as f64 - 1.0).abs() < 0.27, "{n}: {e}");
        }
    }

    #[test]
    fn merged_sketches_count_shared_flows_once() {
        let (mut a, mut b) = (FlowSketch::new(), FlowSketch::new());
        for i in 0..50 {
            a.add_hash(mix(i));
            b.add_hash(mix(i));
        }
        let alone = a.estimate();
        let before = a;
        a.merge(&b);
        assert_eq!(a.estimate(), alone);
        assert_eq!(a, before, "the kept sums agree with recomputed ones");
    }

    #[test]
    fn top_ports_are_exact_with_few_ports_and_keep_a_heavy_one() {
        let mut t = TopPorts::new();
        for _ in 0..10 {
            t.add(53, 1);
        }
        t.add(123, 3);
        assert_eq!(t.sorted(), vec![(53, 10), (123, 3)]);
        // 1,000 one-packet ports around a heavy one: it stays, first.
        let mut t = TopPorts::new();
        for i in 0..1000u16 {
            t.add(1024 + i, 1);
            t.add(11211, 1);
        }
        assert_eq!(t.sorted()[0].0, 11211);
        assert!(t.sorted()[0].1 >= 1000);
        let mut u = TopPorts::new();
        u.add(11211, 5);
        u.merge(&t);
        assert_eq!(u.sorted()[0].0, 11211);
    }

    #[test]
    fn top_sources_are_exact_with_few_sources_and_keep_a_heavy_one() {
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let mut t = TopSources::new();
        for _ in 0..10 {
            t.add(a, 1, 60);
        }
        t.add(b, 3, 300);
        let sorted = t.sorted();
        assert_eq!(
            (sorted[0].addr, sorted[0].packets, sorted[0].bytes),
            (a, 10, 600)
        );
        assert_eq!(
            (sorted[1].addr, sorted[1].packets, sorted[1].bytes),
            (b, 3, 300)
        );
        // 1,000 spoofed one-packet sources around a heavy one: it stays first.
        let mut t = TopSources::new();
        for i in 0..1000u32 {
            t.add(IpAddr::from((0xc000_0200u32 + i).to_be_bytes()), 1, 40);
            t.add(a, 1, 40);
        }
        assert_eq!(t.sorted()[0].addr, a);
        assert!(t.sorted()[0].packets >= 1000);
        assert_eq!(t.as_slice().len(), TOP_SOURCES);
        let mut u = TopSources::new();
        u.add(b, 5, 5);
        u.merge(&t);
        assert_eq!(u.sorted()[0].addr, a);
        // Counts saturate instead of wrapping.
        let mut s = TopSources::new();
        s.add(a, u64::MAX, u64::MAX);
        s.add(a, 1, 1);
        assert_eq!(s.as_slice()[0].packets, u32::MAX);
    }
}
