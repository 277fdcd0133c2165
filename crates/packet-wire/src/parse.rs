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
