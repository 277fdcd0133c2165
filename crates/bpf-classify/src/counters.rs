//! The guard's per-address counters (`tg_addrs`), as the C program lays
//! them out: an LRU per-CPU hash from (local address, direction) to
//! eleven `u64` counters. Written by the programs only when
//! [`crate::config::F_COUNT`] is set; `linux-dataplane` reads it (never
//! writes it) and sums the CPUs' copies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The map's name in the object.
pub const MAP: &str = "tg_addrs";

/// Its size in the object: (address, direction) entries. At the bound the
/// least recently counted entry is evicted (LRU).
pub const MAX_ENTRIES: u32 = 65536;

/// `struct addr_key`: 16 address bytes, the family, the direction, 2 pad.
pub const KEY_LEN: usize = 20;

/// `struct addr_counts`: eleven `u64`.
pub const VALUE_WORDS: usize = 11;

/// Which way, seen from the local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Way {
    /// To the local address.
    In,
    /// From it.
    Out,
}

/// One entry's counters, in the C struct's order; summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrCounts {
    /// Packets.
    pub packets: u64,
    /// Bytes of IP (the IP header's length, as the AF_PACKET capture).
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
    /// TCP segments with SYN and without ACK.
    pub tcp_syn: u64,
    /// IP fragments, first or later.
    pub fragments: u64,
    /// Their bytes.
    pub fragment_bytes: u64,
}

impl AddrCounts {
    /// The counters from the map's words (one CPU's copy).
    pub fn from_words(w: [u64; VALUE_WORDS]) -> AddrCounts {
        AddrCounts {
            packets: w[0],
            bytes: w[1],
            tcp_packets: w[2],
            tcp_bytes: w[3],
            udp_packets: w[4],
            udp_bytes: w[5],
            icmp_packets: w[6],
            icmp_bytes: w[7],
            tcp_syn: w[8],
            fragments: w[9],
            fragment_bytes: w[10],
        }
    }

    fn words(&self) -> [u64; VALUE_WORDS] {
        [
            self.packets,
            self.bytes,
            self.tcp_packets,
            self.tcp_bytes,
            self.udp_packets,
            self.udp_bytes,
            self.icmp_packets,
            self.icmp_bytes,
            self.tcp_syn,
            self.fragments,
            self.fragment_bytes,
        ]
    }

    /// Adds another CPU's copy.
    pub fn add(&mut self, o: &AddrCounts) {
        let (a, b) = (self.words(), o.words());
        *self = AddrCounts::from_words(std::array::from_fn(|i| a[i].wrapping_add(b[i])));
    }

    /// What was counted since `before`. An entry whose packets went down
    /// was evicted and made again meanwhile (LRU): its counts start over,
    /// so the delta is all of them.
    pub fn since(&self, before: &AddrCounts) -> AddrCounts {
        if self.packets < before.packets {
            return *self;
        }
        let (a, b) = (self.words(), before.words());
        AddrCounts::from_words(std::array::from_fn(|i| a[i].saturating_sub(b[i])))
    }
}

/// Decodes a key: the address and direction, `None` for bytes the
/// program never writes.
pub fn read_key(k: &[u8]) -> Option<(IpAddr, Way)> {
    if k.len() != KEY_LEN {
        return None;
    }
    let way = match k[17] {
        0 => Way::In,
        1 => Way::Out,
        _ => return None,
    };
    let addr = match k[16] {
        0 => IpAddr::V4(Ipv4Addr::new(k[0], k[1], k[2], k[3])),
        1 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&k[..16]).ok()?)),
        _ => return None,
    };
    Some((addr, way))
}

/// Encodes a key (for tests and tools; the program writes them).
pub fn key_bytes(addr: IpAddr, way: Way) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    match addr {
        IpAddr::V4(a) => k[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => {
            k[..16].copy_from_slice(&a.octets());
            k[16] = 1;
        }
    }
    k[17] = u8::from(way == Way::Out);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for (a, w) in [
            ("203.0.113.7".parse().unwrap(), Way::In),
            ("2001:db8::7".parse().unwrap(), Way::Out),
        ] {
            assert_eq!(read_key(&key_bytes(a, w)), Some((a, w)));
        }
        assert_eq!(read_key(&[0; 19]), None);
        let mut k = key_bytes("192.0.2.1".parse().unwrap(), Way::In);
        k[17] = 2;
        assert_eq!(read_key(&k), None);
    }

    #[test]
    fn deltas_take_an_evicted_entry_as_new() {
        let before = AddrCounts {
            packets: 10,
            bytes: 1000,
            ..Default::default()
        };
        let mut now = before;
        now.add(&AddrCounts {
            packets: 5,
            bytes: 300,
            tcp_syn: 5,
            ..Default::default()
        });
        let d = now.since(&before);
        assert_eq!((d.packets, d.bytes, d.tcp_syn), (5, 300, 5));
        let fresh = AddrCounts {
            packets: 3,
            bytes: 90,
            ..Default::default()
        };
        assert_eq!(fresh.since(&before), fresh);
    }
}
