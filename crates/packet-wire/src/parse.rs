//! One captured frame → one [`PacketSummary`], or a [`ParseError`] naming
//! the malformation.
//!
//! Every read goes through checked slice access (`get`, or an index after
//! a length check), so a frame can be cut anywhere without a read past
//! its end: the parser returns `Truncated` instead. Lengths the headers
//! claim are checked against what the frame can hold (`wire_len`, the
//! length before the capture cut it) and against what was captured, in
//! that order: a header that claims more than the frame holds is
//! malformed; a payload that was merely cut by the snap length is not.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most VLAN tags walked before a frame is refused (802.1ad carries
/// two; more than four is not a network, it is a crafted frame).
pub const MAX_VLAN_TAGS: usize = 4;

/// The most IPv6 extension headers walked before a packet is refused.
/// RFC 8200 orders at most one of each (destination options twice), so a
/// legitimate chain has at most 7; the limit bounds the work a crafted
/// chain can cause.
pub const MAX_EXTENSION_HEADERS: usize = 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// The pre-standard QinQ outer tag some switches still send.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// What a captured frame starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// An Ethernet II header (veth, physical NICs, bridges, loopback).
    Ethernet,
    /// The IP header itself (tun devices, WireGuard: `ARPHRD_NONE`).
    RawIp,
}

/// An IP protocol number (IPv4's protocol field, or the last IPv6 next
/// header after the extension headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// ICMP.
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// TCP.
    pub const TCP: IpProtocol = IpProtocol(6);
    /// UDP.
    pub const UDP: IpProtocol = IpProtocol(17);
    /// ICMPv6.
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 "no next header".
    pub const NONE: IpProtocol = IpProtocol(59);

    /// Whether this is ICMP or ICMPv6 (the detector counts them together).
    pub fn is_icmp(self) -> bool {
        self == Self::ICMP || self == Self::ICMPV6
    }
}

/// TCP flags (the low 8 bits of the TCP header's 13th and 14th bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// A connection attempt: SYN set, ACK clear (a SYN-ACK is an answer).
    pub fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN | Self::ACK) == Self::SYN
    }
}

/// What the detector needs of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketSummary {
    /// The IP source.
    pub src: IpAddr,
    /// The IP destination.
    pub dst: IpAddr,
    /// The transport protocol (after IPv6 extension headers).
    pub protocol: IpProtocol,
    /// The frame's length on the wire in bytes, link header included (the
    /// kernel's `tp_len`: before the snap length cut it; no FCS).
    pub wire_len: u32,
    /// The IP packet's length in bytes as its header says (IPv4 total
    /// length; IPv6 40 + payload length). This is what byte counters add
    /// up, as FastNetMon and flow exporters do.
    pub ip_len: u32,
    /// TCP flags; zero for other protocols and for fragments that carry
    /// no TCP header.
    pub tcp_flags: TcpFlags,
    /// An IP fragment: IPv4 with MF set or a non-zero offset; IPv6 with a
    /// fragment header whose M bit or offset is set (an "atomic fragment",
    /// RFC 6946, is not one).
    pub is_fragment: bool,
    /// The TCP/UDP source port; 0 when there is none (ICMP, later
    /// fragments, first fragments cut before the ports).
    pub src_port: u16,
    /// The TCP/UDP destination port; 0 when there is none.
    pub dst_port: u16,
}

/// Where in a frame a malformation was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The Ethernet II header.
    Ethernet,
    /// An 802.1Q or 802.1ad tag.
    Vlan,
    /// The IPv4 header (options included).
    Ipv4,
    /// The fixed IPv6 header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Extension,
    /// The TCP header.
    Tcp,
    /// The UDP header.
    Udp,
    /// The ICMP or ICMPv6 header.
    Icmp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN tag",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Extension => "IPv6 extension",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
            Layer::Icmp => "ICMP",
        })
    }
}

/// Why a frame gave no summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Not IP at all (ARP, LLDP, an 802.3 length field…): not malformed,
    /// just not counted.
    NotIp {
        /// The ethertype (or 802.3 length) after the VLAN tags.
        ethertype: u16,
    },
    /// The frame ends inside a header.
    Truncated {
        /// The header that was cut.
        layer: Layer,
        /// Bytes the header needs from its start.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// More than [`MAX_VLAN_TAGS`] VLAN tags.
    TooManyVlanTags,
    /// The IP version nibble disagrees with the ethertype (or is neither 4
    /// nor 6 on a raw IP link).
    BadIpVersion {
        /// The version found.
        version: u8,
    },
    /// An IPv4 header length below 5 words.
    BadIhl {
        /// The IHL field (32-bit words).
        ihl: u8,
    },
    /// The IP length field is shorter than the IP header or longer than
    /// the frame.
    BadIpLength {
        /// What the header claims, in bytes.
        claimed: usize,
        /// What the frame can hold from the IP header on, in bytes.
        frame: usize,
    },
    /// More than [`MAX_EXTENSION_HEADERS`] IPv6 extension headers.
    TooManyExtensionHeaders,
    /// An IPv6 extension header that runs past the packet's payload length.
    ExtensionPastPayload,
    /// A TCP data offset below 5 words, or beyond the packet.
    BadTcpDataOffset {
        /// The data offset field (32-bit words).
        offset: u8,
    },
}

impl ParseError {
    /// The counter this error is added to; `None` for [`ParseError::NotIp`],
    /// which is not a malformation.
    pub fn reason(&self) -> Option<Reason> {
        Some(match self {
            ParseError::NotIp { .. } => return None,
            ParseError::Truncated { layer, .. } => match layer {
                Layer::Ethernet => Reason::TruncatedEthernet,
                Layer::Vlan => Reason::TruncatedVlan,
                Layer::Ipv4 => Reason::TruncatedIpv4,
                Layer::Ipv6 => Reason::TruncatedIpv6,
                Layer::Ipv6Extension => Reason::TruncatedExtensionHeader,
                Layer::Tcp => Reason::TruncatedTcp,
                Layer::Udp => Reason::TruncatedUdp,
                Layer::Icmp => Reason::TruncatedIcmp,
            },
            ParseError::TooManyVlanTags => Reason::TooManyVlanTags,
            ParseError::BadIpVersion { .. } => Reason::BadIpVersion,
            ParseError::BadIhl { .. } => Reason::BadIhl,
            ParseError::BadIpLength { .. } => Reason::BadIpLength,
            ParseError::TooManyExtensionHeaders => Reason::TooManyExtensionHeaders,
            ParseError::ExtensionPastPayload => Reason::ExtensionPastPayload,
            ParseError::BadTcpDataOffset { .. } => Reason::BadTcpDataOffset,
        })
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotIp { ethertype } => write!(f, "not IP (ethertype {ethertype:#06x})"),
            ParseError::Truncated {
                layer,
                needed,
                available,
            } => write!(
                f,
                "truncated {layer} header: needs {needed} bytes, {available} left"
            ),
            ParseError::TooManyVlanTags => {
                write!(f, "more than {MAX_VLAN_TAGS} VLAN tags")
            }
            ParseError::BadIpVersion { version } => write!(f, "bad IP version {version}"),
            ParseError::BadIhl { ihl } => write!(f, "IPv4 header length {ihl} words (< 5)"),
            ParseError::BadIpLength { claimed, frame } => write!(
                f,
                "IP length {claimed} bytes does not fit the header and the frame ({frame} bytes)"
            ),
            ParseError::TooManyExtensionHeaders => {
                write!(
                    f,
                    "more than {MAX_EXTENSION_HEADERS} IPv6 extension headers"
                )
            }
            ParseError::ExtensionPastPayload => {
                write!(f, "an IPv6 extension header runs past the payload length")
            }
            ParseError::BadTcpDataOffset { offset } => {
                write!(f, "TCP data offset {offset} words does not fit")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Malformations, one counter each (see [`ParseError::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Shorter than an Ethernet header.
    TruncatedEthernet,
    /// Cut inside a VLAN tag.
    TruncatedVlan,
    /// More than [`MAX_VLAN_TAGS`] tags.
    TooManyVlanTags,
    /// Cut inside the IPv4 header or its options.
    TruncatedIpv4,
    /// Cut inside the fixed IPv6 header.
    TruncatedIpv6,
    /// The version nibble is wrong.
    BadIpVersion,
    /// IPv4 IHL < 5.
    BadIhl,
    /// The IP length field does not fit.
    BadIpLength,
    /// Cut inside an IPv6 extension header.
    TruncatedExtensionHeader,
    /// Too long an extension header chain.
    TooManyExtensionHeaders,
    /// An extension header past the payload length.
    ExtensionPastPayload,
    /// Cut inside the TCP header.
    TruncatedTcp,
    /// TCP data offset out of range.
    BadTcpDataOffset,
    /// Cut inside the UDP header.
    TruncatedUdp,
    /// Cut inside the ICMP header.
    TruncatedIcmp,
}

impl Reason {
    /// How many reasons there are.
    pub const COUNT: usize = 15;

    /// Every reason, in counter order.
    pub const ALL: [Reason; Reason::COUNT] = [
        Reason::TruncatedEthernet,
        Reason::TruncatedVlan,
        Reason::TooManyVlanTags,
        Reason::TruncatedIpv4,
        Reason::TruncatedIpv6,
        Reason::BadIpVersion,
        Reason::BadIhl,
        Reason::BadIpLength,
        Reason::TruncatedExtensionHeader,
        Reason::TooManyExtensionHeaders,
        Reason::ExtensionPastPayload,
        Reason::TruncatedTcp,
        Reason::BadTcpDataOffset,
        Reason::TruncatedUdp,
        Reason::TruncatedIcmp,
    ];

    /// Its index in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A snake_case name for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Reason::TruncatedEthernet => "truncated_ethernet",
            Reason::TruncatedVlan => "truncated_vlan",
            Reason::TooManyVlanTags => "too_many_vlan_tags",
            Reason::TruncatedIpv4 => "truncated_ipv4",
            Reason::TruncatedIpv6 => "truncated_ipv6",
            Reason::BadIpVersion => "bad_ip_version",
            Reason::BadIhl => "bad_ihl",
            Reason::BadIpLength => "bad_ip_length",
            Reason::TruncatedExtensionHeader => "truncated_extension_header",
            Reason::TooManyExtensionHeaders => "too_many_extension_headers",
            Reason::ExtensionPastPayload => "extension_past_payload",
            Reason::TruncatedTcp => "truncated_tcp",
            Reason::BadTcpDataOffset => "bad_tcp_data_offset",
            Reason::TruncatedUdp => "truncated_udp",
            Reason::TruncatedIcmp => "truncated_icmp",
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn need(b: &[u8], n: usize, layer: Layer) -> Result<(), ParseError> {
    if b.len() < n {
        Err(ParseError::Truncated {
            layer,
            needed: n,
            available: b.len(),
        })
    } else {
        Ok(())
    }
}

/// Parses one captured frame. `frame` is what was captured (possibly cut
/// by the snap length); `wire_len` is the frame's length on the wire (the
/// kernel's `tp_len`); a `wire_len` below `frame.len()` is taken as
/// `frame.len()`.
pub fn parse(link: LinkType, frame: &[u8], wire_len: u32) -> Result<PacketSummary, ParseError> {
    // What the frame held beyond what was captured: added to the captured
    // bytes left at the IP header to know what the IP header may claim.
    let wire_len = wire_len.max(u32::try_from(frame.len()).unwrap_or(u32::MAX));
    let cut = (wire_len as usize).saturating_sub(frame.len());
    let (ip, version_wanted) = match link {
        LinkType::RawIp => (frame, None),
        LinkType::Ethernet => {
            need(frame, 14, Layer::Ethernet)?;
            let mut ethertype = be16(frame, 12).unwrap_or(0);
            let mut at = 14;
            let mut tags = 0;
            while matches!(
                ethertype,
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
            ) {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(ParseError::TooManyVlanTags);
                }
                need(&frame[at..], 4, Layer::Vlan)?;
                ethertype = be16(frame, at + 2).unwrap_or(0);
                at += 4;
            }
            let version = match ethertype {
                ETHERTYPE_IPV4 => 4,
                ETHERTYPE_IPV6 => 6,
                _ => return Err(ParseError::NotIp { ethertype }),
            };
            (&frame[at..], Some(version))
        }
    };
    let first = *ip.first().ok_or(ParseError::Truncated {
        layer: match version_wanted {
            Some(6) => Layer::Ipv6,
            _ => Layer::Ipv4,
        },
        needed: 1,
        available: 0,
    })?;
    let version = first >> 4;
    if version_wanted.is_some_and(|v| v != version) {
        return Err(ParseError::BadIpVersion { version });
    }
    // Bytes from the IP header to the frame's end on the wire.
    let frame_room = ip.len() + cut;
    match version {
        4 => ipv4(ip, frame_room, wire_len),
        6 => ipv6(ip, frame_room, wire_len),
        _ => Err(ParseError::BadIpVersion { version }),
    }
}

fn ipv4(ip: &[u8], frame_room: usize, wire_len: u32) -> Result<PacketSummary, ParseError> {
    need(ip, 20, Layer::Ipv4)?;
    let ihl = ip[0] & 0x0f;
    if ihl < 5 {
        return Err(ParseError::BadIhl { ihl });
    }
    let header = usize::from(ihl) * 4;
    need(ip, header, Layer::Ipv4)?;
    let total = usize::from(be16(ip, 2).unwrap_or(0));
    if total < header || total > frame_room {
        return Err(ParseError::BadIpLength {
            claimed: total,
            frame: frame_room,
        });
    }
    let frag = be16(ip, 6).unwrap_or(0);
    let more_fragments = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let protocol = IpProtocol(ip[9]);
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let mut summary = PacketSummary {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        protocol,
        wire_len,
        ip_len: total as u32,
        tcp_flags: TcpFlags(0),
        is_fragment: more_fragments || offset != 0,
        src_port: 0,
        dst_port: 0,
    };
    if offset == 0 {
        // The transport header: what was captured, without the Ethernet
        // padding after the IP packet.
        let l4 = ip.get(header..total.min(ip.len())).unwrap_or(&[]);
        let strict = !summary.is_fragment;
        transport(&mut summary, l4, total - header, strict)?;
    }
    Ok(summary)
}

/// Whether `next` is an extension header the walk steps over, and how its
/// length is encoded.
fn extension_len(next: u8, hdr: &[u8]) -> Option<usize> {
    let len = usize::from(*hdr.get(1)?);
    match next {
        // Hop-by-hop, routing, destination options: (len + 1) × 8 bytes.
        0 | 43 | 60 => Some((len + 1) * 8),
        // Fragment: always 8.
        44 => Some(8),
        // Authentication header: (len + 2) × 4 bytes.
        51 => Some((len + 2) * 4),
        _ => None,
    }
}

fn ipv6(ip: &[u8], frame_room: usize, wire_len: u32) -> Result<PacketSummary, ParseError> {
    need(ip, 40, Layer::Ipv6)?;
    let payload = usize::from(be16(ip, 4).unwrap_or(0));
    let total = 40 + payload;
    if total > frame_room {
        return Err(ParseError::BadIpLength {
            claimed: total,
            frame: frame_room,
        });
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let mut summary = PacketSummary {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: IpProtocol(ip[6]),
        wire_len,
        ip_len: total as u32,
        tcp_flags: TcpFlags(0),
        is_fragment: false,
        src_port: 0,
        dst_port: 0,
    };
    // The packet's bytes as captured, without padding.
    let packet = &ip[..total.min(ip.len())];
    let mut next = ip[6];
    let mut at = 40;
    let mut walked = 0;
    let mut later_fragment = false;
    loop {
        let rest = packet.get(at..).unwrap_or(&[]);
        let is_extension = matches!(next, 0 | 43 | 44 | 51 | 60);
        if !is_extension {
            break;
        }
        walked += 1;
        if walked > MAX_EXTENSION_HEADERS {
            return Err(ParseError::TooManyExtensionHeaders);
        }
        if at + 2 > total {
            return Err(ParseError::ExtensionPastPayload);
        }
        need(rest, 2, Layer::Ipv6Extension)?;
        let len = extension_len(next, rest).unwrap_or(8);
        if at + len > total {
            return Err(ParseError::ExtensionPastPayload);
        }
        need(rest, len, Layer::Ipv6Extension)?;
        if next == 44 {
            let field = be16(rest, 2).unwrap_or(0);
            let offset = field >> 3;
            let more = field & 1 != 0;
            if offset != 0 || more {
                summary.is_fragment = true;
            }
            if offset != 0 {
                // What follows is the middle of the payload: no headers.
                later_fragment = true;
                next = rest[0];
                break;
            }
        }
        next = rest[0];
        at += len;
    }
    summary.protocol = IpProtocol(next);
    if !later_fragment {
        let l4 = packet.get(at..).unwrap_or(&[]);
        let strict = !summary.is_fragment;
        transport(&mut summary, l4, total - at, strict)?;
    }
    Ok(summary)
}

/// Reads the transport header into `summary`. `l4` is what was captured
/// of it, `room` what the IP length gives it. `strict`: a whole packet,
/// whose header must be there; a first fragment only gives what it has
/// (a tiny first fragment is a known evasion, and is still counted).
fn transport(
    summary: &mut PacketSummary,
    l4: &[u8],
    room: usize,
    strict: bool,
) -> Result<(), ParseError> {
    let (layer, header) = match summary.protocol {
        IpProtocol::TCP => (Layer::Tcp, 20),
        IpProtocol::UDP => (Layer::Udp, 8),
        IpProtocol::ICMP | IpProtocol::ICMPV6 => (Layer::Icmp, 4),
        _ => return Ok(()),
    };
    if strict {
        // A header that the IP length leaves no room for is malformed; one
        // that was only cut by the snap length is truncated. Both refuse.
        if room < header {
            return Err(ParseError::Truncated {
                layer,
                needed: header,
                available: room,
            });
        }
        need(l4, header, layer)?;
    }
    if layer == Layer::Icmp {
        return Ok(());
    }
    if let (Some(s), Some(d)) = (be16(l4, 0), be16(l4, 2)) {
        summary.src_port = s;
        summary.dst_port = d;
    }
    if layer == Layer::Tcp {
        if let Some(&flags) = l4.get(13) {
            summary.tcp_flags = TcpFlags(flags);
        }
        if strict {
            let offset = l4[12] >> 4;
            if offset < 5 || usize::from(offset) * 4 > room {
                return Err(ParseError::BadTcpDataOffset { offset });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Frame builders for the tests (also used by the aggregator's).
    pub(crate) mod build {
        pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
            eth_tagged(&[], ethertype, payload)
        }

        pub fn eth_tagged(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
            let mut f = vec![2u8; 6];
            f.extend([4u8; 6]);
            for &tpid in tags {
                f.extend(tpid.to_be_bytes());
                f.extend(100u16.to_be_bytes());
            }
            f.extend(ethertype.to_be_bytes());
            f.extend(payload);
            f
        }

        pub fn ip4(
            src: [u8; 4],
            dst: [u8; 4],
            proto: u8,
            frag: u16,
            options: &[u8],
            l4: &[u8],
        ) -> Vec<u8> {
            assert_eq!(options.len() % 4, 0);
            let ihl = 5 + options.len() / 4;
            let total = (ihl * 4 + l4.len()) as u16;
            let mut p = vec![0x40 | ihl as u8, 0];
            p.extend(total.to_be_bytes());
            p.extend([0, 1]);
            p.extend(frag.to_be_bytes());
            p.extend([64, proto, 0, 0]);
            p.extend(src);
            p.extend(dst);
            p.extend(options);
            p.extend(l4);
            p
        }

        pub fn ip6(src: u16, dst: u16, next: u8, payload: &[u8]) -> Vec<u8> {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend((payload.len() as u16).to_be_bytes());
            p.extend([next, 64]);
            p.extend(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, src).octets());
            p.extend(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, dst).octets());
            p.extend(payload);
            p
        }

        pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
            let mut t = Vec::new();
            t.extend(sport.to_be_bytes());
            t.extend(dport.to_be_bytes());
            t.extend([0; 8]);
            t.extend([0x50, flags, 2, 0, 0, 0, 0, 0]);
            t
        }

        pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
            let mut u = Vec::new();
            u.extend(sport.to_be_bytes());
            u.extend(dport.to_be_bytes());
            u.extend(((8 + data.len()) as u16).to_be_bytes());
            u.extend([0, 0]);
            u.extend(data);
            u
        }

        /// An IPv6 extension header of `len8` 8-byte units.
        pub fn ext(next: u8, len8: usize) -> Vec<u8> {
            let mut e = vec![next, (len8 - 1) as u8];
            e.resize(len8 * 8, 0);
            e
        }

        pub fn frag6(next: u8, offset: u16, more: bool) -> Vec<u8> {
            let field = (offset << 3) | u16::from(more);
            let mut e = vec![next, 0];
            e.extend(field.to_be_bytes());
            e.extend([0, 0, 0, 7]);
            e
        }
    }

    use build::*;

    const A: [u8; 4] = [198, 51, 100, 2];
    const B: [u8; 4] = [203, 0, 113, 10];

    fn p(frame: &[u8]) -> Result<PacketSummary, ParseError> {
        parse(LinkType::Ethernet, frame, frame.len() as u32)
    }

    #[test]
    fn ipv4_tcp_syn() {
        let f = eth(
            0x0800,
            &ip4(A, B, 6, 0, &[], &tcp(40000, 80, TcpFlags::SYN)),
        );
        let s = p(&f).unwrap();
        assert_eq!(s.src, IpAddr::from(A));
        assert_eq!(s.dst, IpAddr::from(B));
        assert_eq!(s.protocol, IpProtocol::TCP);
        assert_eq!((s.src_port, s.dst_port), (40000, 80));
        assert!(s.tcp_flags.is_syn_only());
        assert!(!s.is_fragment);
        assert_eq!((s.wire_len, s.ip_len), (54, 40));
        let sa = eth(
            0x0800,
            &ip4(A, B, 6, 0, &[], &tcp(1, 2, TcpFlags::SYN | TcpFlags::ACK)),
        );
        assert!(!p(&sa).unwrap().tcp_flags.is_syn_only());
    }

    #[test]
    fn ethernet_padding_and_snap_length_are_not_malformations() {
        // A 46-byte minimum payload pads the 40-byte packet.
        let mut f = eth(0x0800, &ip4(A, B, 6, 0, &[], &tcp(1, 2, 0)));
        f.resize(60, 0);
        assert_eq!(p(&f).unwrap().ip_len, 40);
        // A 1500-byte UDP packet captured to 64 bytes: the wire length says
        // the rest existed.
        let big = eth(0x0800, &ip4(A, B, 17, 0, &[], &udp(53, 9, &[0; 1472])));
        let s = parse(LinkType::Ethernet, &big[..64], big.len() as u32).unwrap();
        assert_eq!((s.wire_len, s.ip_len, s.src_port), (1514, 1500, 53));
    }

    #[test]
    fn vlan_tags_802_1q_and_802_1ad_are_walked() {
        let ip = ip4(A, B, 17, 0, &[], &udp(123, 5000, b"x"));
        for tags in [&[0x8100][..], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
            let s = p(&eth_tagged(tags, 0x0800, &ip)).unwrap();
            assert_eq!((s.protocol, s.src_port), (IpProtocol::UDP, 123));
        }
        let five = eth_tagged(&[0x8100; 5], 0x0800, &ip);
        assert_eq!(p(&five), Err(ParseError::TooManyVlanTags));
        let cut = eth_tagged(&[0x8100], 0x0800, &ip);
        assert!(matches!(
            p(&cut[..16]),
            Err(ParseError::Truncated {
                layer: Layer::Vlan,
                ..
            })
        ));
    }

    #[test]
    fn ipv4_options_are_skipped_by_ihl() {
        let f = eth(
            0x0800,
            &ip4(
                A,
                B,
                6,
                0,
                &[1, 1, 1, 0, 7, 3, 4, 0],
                &tcp(5, 6, TcpFlags::ACK),
            ),
        );
        let s = p(&f).unwrap();
        assert_eq!((s.src_port, s.dst_port, s.ip_len), (5, 6, 48));
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: MF set, offset 0, the UDP header is there.
        let first = eth(
            0x0800,
            &ip4(A, B, 17, 0x2000, &[], &udp(53, 1000, &[0; 16])),
        );
        let s = p(&first).unwrap();
        assert!(s.is_fragment);
        assert_eq!(s.src_port, 53);
        // A later fragment: no transport header, ports 0, still UDP.
        let later = eth(0x0800, &ip4(A, B, 17, 185, &[], &[0xff; 40]));
        let s = p(&later).unwrap();
        assert!(s.is_fragment);
        assert_eq!(
            (s.protocol, s.src_port, s.dst_port),
            (IpProtocol::UDP, 0, 0)
        );
        // A tiny first fragment (hping3 -f: 16 bytes of TCP): counted, with
        // what it has (ports and flags fit in 16 bytes).
        let tiny = eth(
            0x0800,
            &ip4(A, B, 6, 0x2000, &[], &tcp(7, 80, TcpFlags::SYN)[..16]),
        );
        let s = p(&tiny).unwrap();
        assert!(s.is_fragment && s.tcp_flags.is_syn_only());
        assert_eq!(s.dst_port, 80);
        // Even 2 bytes: counted, no ports.
        let tinier = eth(0x0800, &ip4(A, B, 6, 0x2000, &[], &[1, 2]));
        assert_eq!(p(&tinier).unwrap().dst_port, 0);
    }

    #[test]
    fn ipv4_malformations() {
        let good = ip4(A, B, 6, 0, &[], &tcp(1, 2, 0));
        // Truncated header.
        assert!(matches!(
            p(&eth(0x0800, &good[..19])),
            Err(ParseError::Truncated {
                layer: Layer::Ipv4,
                needed: 20,
                available: 19
            })
        ));
        // Bad IHL.
        let mut bad = good.clone();
        bad[0] = 0x44;
        assert_eq!(p(&eth(0x0800, &bad)), Err(ParseError::BadIhl { ihl: 4 }));
        // IHL past the captured bytes.
        let mut bad = good.clone();
        bad[0] = 0x4f;
        assert!(matches!(
            p(&eth(0x0800, &bad[..30])),
            Err(ParseError::Truncated {
                layer: Layer::Ipv4,
                needed: 60,
                ..
            })
        ));
        // Version 6 behind an IPv4 ethertype.
        let mut bad = good.clone();
        bad[0] = 0x65;
        assert_eq!(
            p(&eth(0x0800, &bad)),
            Err(ParseError::BadIpVersion { version: 6 })
        );
        // Total length below the header, and beyond the frame.
        let mut bad = good.clone();
        bad[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert!(matches!(
            p(&eth(0x0800, &bad)),
            Err(ParseError::BadIpLength { claimed: 10, .. })
        ));
        let mut bad = good.clone();
        bad[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert!(matches!(
            p(&eth(0x0800, &bad)),
            Err(ParseError::BadIpLength {
                claimed: 1500,
                frame: 40
            })
        ));
        // A TCP header the total length leaves no room for.
        let mut bad = good.clone();
        bad[2..4].copy_from_slice(&30u16.to_be_bytes());
        assert!(matches!(
            p(&eth(0x0800, &bad)),
            Err(ParseError::Truncated {
                layer: Layer::Tcp,
                needed: 20,
                available: 10
            })
        ));
        // A data offset below 5 words, and beyond the packet.
        for (off, _) in [(0x40u8, 4), (0xf0, 15)] {
            let mut bad = good.clone();
            bad[20 + 12] = off;
            assert_eq!(
                p(&eth(0x0800, &bad)),
                Err(ParseError::BadTcpDataOffset { offset: off >> 4 })
            );
        }
        // Short UDP and ICMP headers.
        let u = eth(0x0800, &ip4(A, B, 17, 0, &[], &[0; 7]));
        assert!(matches!(
            p(&u),
            Err(ParseError::Truncated {
                layer: Layer::Udp,
                ..
            })
        ));
        let i = eth(0x0800, &ip4(A, B, 1, 0, &[], &[8, 0, 0]));
        assert!(matches!(
            p(&i),
            Err(ParseError::Truncated {
                layer: Layer::Icmp,
                ..
            })
        ));
        // Every malformation has a counter.
        assert_eq!(ParseError::BadIhl { ihl: 1 }.reason(), Some(Reason::BadIhl));
        assert_eq!(ParseError::NotIp { ethertype: 0x0806 }.reason(), None);
    }

    #[test]
    fn icmp_and_other_protocols() {
        let s = p(&eth(
            0x0800,
            &ip4(A, B, 1, 0, &[], &[8, 0, 0, 0, 0, 0, 0, 0]),
        ))
        .unwrap();
        assert!(s.protocol.is_icmp());
        assert_eq!((s.src_port, s.dst_port, s.tcp_flags.0), (0, 0, 0));
        // GRE: counted, no ports, no transport check.
        let s = p(&eth(0x0800, &ip4(A, B, 47, 0, &[], &[]))).unwrap();
        assert_eq!(s.protocol, IpProtocol(47));
    }

    #[test]
    fn non_ip_frames_are_not_malformed() {
        assert_eq!(
            p(&eth(0x0806, &[0; 28])),
            Err(ParseError::NotIp { ethertype: 0x0806 })
        );
        // An 802.3 length field.
        assert_eq!(
            p(&eth(0x0040, &[0; 64])),
            Err(ParseError::NotIp { ethertype: 0x0040 })
        );
        assert!(matches!(
            p(&[0; 13]),
            Err(ParseError::Truncated {
                layer: Layer::Ethernet,
                ..
            })
        ));
    }

    #[test]
    fn ipv6_with_extension_headers() {
        let mut chain = ext(43, 1); // hop-by-hop → routing
        chain.extend(ext(60, 2)); // routing → destination options
        chain.extend(ext(6, 1)); // destination options → TCP
        chain.extend(tcp(443, 5555, TcpFlags::SYN));
        let f = eth(0x86dd, &ip6(1, 2, 0, &chain));
        let s = p(&f).unwrap();
        assert_eq!(s.protocol, IpProtocol::TCP);
        assert_eq!((s.src_port, s.dst_port), (443, 5555));
        assert!(s.tcp_flags.is_syn_only() && !s.is_fragment);
        assert_eq!(s.ip_len as usize, 40 + chain.len());
        // An authentication header: (len + 2) × 4 bytes.
        let mut ah = vec![17, 4];
        ah.resize(24, 0);
        ah.extend(udp(53, 53, b""));
        assert_eq!(p(&eth(0x86dd, &ip6(1, 2, 51, &ah))).unwrap().src_port, 53);
    }

    #[test]
    fn ipv6_fragments() {
        let mut first = frag6(17, 0, true);
        first.extend(udp(123, 40000, &[0; 32]));
        let s = p(&eth(0x86dd, &ip6(1, 2, 44, &first))).unwrap();
        assert!(s.is_fragment);
        assert_eq!((s.protocol, s.src_port), (IpProtocol::UDP, 123));
        let mut later = frag6(17, 181, false);
        later.extend([0xee; 64]);
        let s = p(&eth(0x86dd, &ip6(1, 2, 44, &later))).unwrap();
        assert!(s.is_fragment);
        assert_eq!((s.protocol, s.src_port), (IpProtocol::UDP, 0));
        // An atomic fragment (offset 0, M clear) is a whole packet.
        let mut atomic = frag6(58, 0, false);
        atomic.extend([128, 0, 0, 0, 0, 0, 0, 0]);
        let s = p(&eth(0x86dd, &ip6(1, 2, 44, &atomic))).unwrap();
        assert!(!s.is_fragment && s.protocol.is_icmp());
    }

    #[test]
    fn ipv6_malformations() {
        let ok = ip6(1, 2, 59, &[]);
        assert_eq!(p(&eth(0x86dd, &ok)).unwrap().protocol, IpProtocol::NONE);
        assert!(matches!(
            p(&eth(0x86dd, &ok[..39])),
            Err(ParseError::Truncated {
                layer: Layer::Ipv6,
                ..
            })
        ));
        let mut v4 = ok.clone();
        v4[0] = 0x45;
        assert_eq!(
            p(&eth(0x86dd, &v4)),
            Err(ParseError::BadIpVersion { version: 4 })
        );
        // Payload length past the frame.
        let mut long = ok.clone();
        long[4..6].copy_from_slice(&100u16.to_be_bytes());
        assert!(matches!(
            p(&eth(0x86dd, &long)),
            Err(ParseError::BadIpLength { claimed: 140, .. })
        ));
        // Nine extension headers.
        let mut chain = Vec::new();
        for _ in 0..9 {
            chain.extend(ext(60, 1));
        }
        chain.extend(tcp(1, 2, 0));
        assert_eq!(
            p(&eth(0x86dd, &ip6(1, 2, 60, &chain))),
            Err(ParseError::TooManyExtensionHeaders)
        );
        // A header that claims more than the payload length.
        let mut over = ext(6, 1);
        over[1] = 10;
        over.extend(tcp(1, 2, 0));
        assert_eq!(
            p(&eth(0x86dd, &ip6(1, 2, 0, &over))),
            Err(ParseError::ExtensionPastPayload)
        );
        // A chain cut by the snap length.
        let mut chain = ext(60, 4);
        chain.extend(ext(17, 1));
        chain.extend(udp(1, 2, b""));
        let f = eth(0x86dd, &ip6(1, 2, 0, &chain));
        assert!(matches!(
            parse(LinkType::Ethernet, &f[..14 + 40 + 20], f.len() as u32),
            Err(ParseError::Truncated {
                layer: Layer::Ipv6Extension,
                ..
            })
        ));
        // A TCP header cut short inside a whole IPv6 packet.
        assert!(matches!(
            p(&eth(0x86dd, &ip6(1, 2, 6, &[0; 12]))),
            Err(ParseError::Truncated {
                layer: Layer::Tcp,
                ..
            })
        ));
    }

    #[test]
    fn raw_ip_links() {
        let v4 = ip4(A, B, 17, 0, &[], &udp(1, 2, b""));
        assert_eq!(parse(LinkType::RawIp, &v4, 28).unwrap().wire_len, 28);
        let v6 = ip6(1, 2, 59, &[]);
        assert!(parse(LinkType::RawIp, &v6, 40).unwrap().src.is_ipv6());
        assert_eq!(
            parse(LinkType::RawIp, &[0x70; 40], 40),
            Err(ParseError::BadIpVersion { version: 7 })
        );
        assert!(matches!(
            parse(LinkType::RawIp, &[], 0),
            Err(ParseError::Truncated { .. })
        ));
    }

    #[test]
    fn every_reason_has_a_distinct_index_and_name() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::COUNT);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_any_cut_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), extra in 0u32..3000, raw in proptest::bool::ANY) {
            let link = if raw { LinkType::RawIp } else { LinkType::Ethernet };
            if let Ok(s) = parse(link, &bytes, bytes.len() as u32 + extra) {
                proptest::prop_assert!(s.ip_len <= s.wire_len);
            }
        }
    }
}
