//! Best-effort reading of a sampled packet header (sFlow raw packet
//! header records): Ethernet with 802.1Q/802.1ad tags, IPv4 with options,
//! IPv6 with extension headers, and TCP/UDP/SCTP ports.
//!
//! The header is a snapshot cut at a fixed length (128 bytes by default),
//! so running out of bytes is normal here and never an error: whatever
//! could be read is returned, and the rest stays zero.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reader::be16;

/// What a packet header says about its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layer3 {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP's flags byte, when the snapshot holds it; 0 otherwise.
    pub tcp_flags: u8,
    /// The IP packet's length from its header (IPv4 total length, IPv6
    /// payload length plus the 40-byte header).
    pub ip_len: u64,
}

/// EtherTypes of VLAN tags: 802.1Q, 802.1ad (QinQ) and the older 0x9100.
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// More stacked tags than this is not a real frame.
const MAX_TAGS: usize = 4;

/// An Ethernet frame.
pub(crate) fn ethernet(frame: &[u8]) -> Option<Layer3> {
    let mut off = 12;
    let mut ether_type = be16(frame.get(..14)?, 12);
    let mut tags = 0;
    while VLAN_TAGS.contains(&ether_type) && tags < MAX_TAGS {
        ether_type = be16(frame.get(off + 4..off + 6)?, 0);
        off += 4;
        tags += 1;
    }
    let payload = frame.get(off + 2..)?;
    match ether_type {
        0x0800 => ipv4(payload),
        0x86dd => ipv6(payload),
        _ => None,
    }
}

/// The first bytes of a sampled frame (IPFIX dataLinkFrameSection):
/// Ethernet, or, if that does not parse, a bare IP packet.
pub(crate) fn frame(section: &[u8]) -> Option<Layer3> {
    ethernet(section).or_else(|| ip(section))
}

/// The first bytes of an IP packet of either version.
pub(crate) fn ip(p: &[u8]) -> Option<Layer3> {
    match p.first()? >> 4 {
        4 => ipv4(p),
        6 => ipv6(p),
        _ => None,
    }
}

/// An IPv4 packet.
pub(crate) fn ipv4(p: &[u8]) -> Option<Layer3> {
    let first = *p.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 {
        return None;
    }
    let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
    let protocol = *p.get(9)?;
    let mut l3 = Layer3 {
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        protocol,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        ip_len: u64::from(be16(p, 2)),
    };
    // Only the first fragment carries the transport header.
    if be16(p, 6) & 0x1fff == 0 {
        ports(&mut l3, p.get(ihl..).unwrap_or_default());
    }
    Some(l3)
}

/// An IPv6 packet. Hop-by-hop, routing, destination options, fragment and
/// AH extension headers are skipped (at most 8 of them); if the snapshot
/// ends inside one, the protocol is that header's type and ports are 0.
pub(crate) fn ipv6(p: &[u8]) -> Option<Layer3> {
    if *p.first()? >> 4 != 6 {
        return None;
    }
    let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
    let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
    let mut next = *p.get(6)?;
    let mut l3 = Layer3 {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: next,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        ip_len: u64::from(be16(p, 4)) + 40,
    };
    let mut off = 40usize;
    for _ in 0..8 {
        let (Some(&after), Some(&ext_len)) = (p.get(off), p.get(off + 1)) else {
            return Some(l3);
        };
        let len = match next {
            0 | 43 | 60 => (usize::from(ext_len) + 1) * 8,
            44 => {
                // A later fragment has no transport header.
                if be16(p.get(off..off + 8)?, 2) & 0xfff8 != 0 {
                    l3.protocol = after;
                    return Some(l3);
                }
                8
            }
            51 => (usize::from(ext_len) + 2) * 4,
            _ => break,
        };
        next = after;
        l3.protocol = next;
        off += len;
    }
    ports(&mut l3, p.get(off..).unwrap_or_default());
    Some(l3)
}

/// Fills in ports for TCP, UDP, SCTP and UDP-Lite, and ICMP type and code
/// in the destination port (NetFlow's convention), when the snapshot holds
/// them.
fn ports(l3: &mut Layer3, l4: &[u8]) {
    match l3.protocol {
        6 | 17 | 132 | 136 if l4.len() >= 4 => {
            l3.src_port = be16(l4, 0);
            l3.dst_port = be16(l4, 2);
            if l3.protocol == 6 {
                l3.tcp_flags = l4.get(13).copied().unwrap_or(0);
            }
        }
        1 | 58 if l4.len() >= 2 => l3.dst_port = be16(l4, 0),
        _ => {}
    }
}
