//! FlowSpec rules (RFC 8955 for IPv4, RFC 8956 for IPv6; SAFI 133) as
//! bytes: the NLRI of one rule, the traffic-rate action, and the UPDATE
//! that announces or withdraws rules.
//!
//! Encoding only: tollgate originates rules (the guard's `flowspec` rung)
//! and never needs to read a peer's. Components are written in the
//! ascending type order RFC 8955 §4.2 requires whatever order the caller
//! gave them in, so two spellings of one rule are the same NLRI (and
//! withdraw each other).

use net_types::Prefix;

use crate::bytes::put_u16;
use crate::wire::{EncodeError, Message, PathAttributes, RawAttribute, Update, WireOptions};

/// SAFI of dissemination of flow specification rules (RFC 8955 §4).
pub const SAFI_FLOWSPEC: u8 = 133;

/// The largest NLRI length the two-byte length form can carry (RFC 8955
/// §4.1: 0xfff).
const MAX_NLRI_LEN: usize = 0x0fff;

/// One comparison of a numeric component (RFC 8955 §4.2.1.1): true when
/// the value is `<`, `>` or `==` the operand as the flags say (`lt` and
/// `eq` is `<=`; none of them is false, all three is true).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric {
    /// ANDed with the previous comparison (otherwise ORed).
    pub and: bool,
    /// Less than.
    pub lt: bool,
    /// Greater than.
    pub gt: bool,
    /// Equal.
    pub eq: bool,
    /// The operand.
    pub value: u64,
}

impl Numeric {
    /// `== value`, ORed with what precedes.
    pub fn eq(value: u64) -> Numeric {
        Numeric {
            and: false,
            lt: false,
            gt: false,
            eq: true,
            value,
        }
    }

    /// `>= value`, ORed with what precedes.
    pub fn ge(value: u64) -> Numeric {
        Numeric {
            gt: true,
            ..Numeric::eq(value)
        }
    }

    /// `<= value`, ANDed with what precedes: with [`Numeric::ge`] before
    /// it, a range.
    pub fn and_le(value: u64) -> Numeric {
        Numeric {
            and: true,
            lt: true,
            ..Numeric::eq(value)
        }
    }
}

/// One test of a bitmask component (RFC 8955 §4.2.1.2): with `matches`,
/// all the bits of `bits` are set; without, any is; `not` inverts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitmask {
    /// ANDed with the previous test (otherwise ORed).
    pub and: bool,
    /// The result is inverted.
    pub not: bool,
    /// All bits (otherwise any).
    pub matches: bool,
    /// The bits.
    pub bits: u16,
}

impl Bitmask {
    /// Any of `bits` set, ORed with what precedes.
    pub fn any(bits: u16) -> Bitmask {
        Bitmask {
            and: false,
            not: false,
            matches: false,
            bits,
        }
    }

    /// All of `bits` set (and only the bits of `bits` looked at), ORed
    /// with what precedes.
    pub fn all(bits: u16) -> Bitmask {
        Bitmask {
            matches: true,
            ..Bitmask::any(bits)
        }
    }
}

/// TCP flag bits as the TCP flags component (type 9) carries them.
pub mod tcp {
    /// FIN.
    pub const FIN: u16 = 0x01;
    /// SYN.
    pub const SYN: u16 = 0x02;
    /// RST.
    pub const RST: u16 = 0x04;
    /// PSH.
    pub const PSH: u16 = 0x08;
    /// ACK.
    pub const ACK: u16 = 0x10;
}

/// Fragment bits of the fragment component (type 12, RFC 8955 §4.2.2.12).
pub mod fragment {
    /// Don't Fragment (IPv4 only).
    pub const DF: u16 = 0x01;
    /// Is a Fragment.
    pub const IS_F: u16 = 0x02;
    /// First Fragment.
    pub const FF: u16 = 0x04;
    /// Last Fragment.
    pub const LF: u16 = 0x08;
}

/// One component of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Component {
    /// Type 1: destination prefix.
    Destination(Prefix),
    /// Type 2: source prefix.
    Source(Prefix),
    /// Type 3: IP protocol (IPv4) or last next header (IPv6).
    Protocol(Vec<Numeric>),
    /// Type 4: source or destination port.
    Port(Vec<Numeric>),
    /// Type 5: destination port.
    DestinationPort(Vec<Numeric>),
    /// Type 6: source port.
    SourcePort(Vec<Numeric>),
    /// Type 7: ICMP type.
    IcmpType(Vec<Numeric>),
    /// Type 8: ICMP code.
    IcmpCode(Vec<Numeric>),
    /// Type 9: TCP flags.
    TcpFlags(Vec<Bitmask>),
    /// Type 10: packet length (IP total length, or IPv6 payload length).
    PacketLength(Vec<Numeric>),
    /// Type 11: DSCP.
    Dscp(Vec<Numeric>),
    /// Type 12: fragment.
    Fragment(Vec<Bitmask>),
}

impl Component {
    fn type_code(&self) -> u8 {
        match self {
            Component::Destination(_) => 1,
            Component::Source(_) => 2,
            Component::Protocol(_) => 3,
            Component::Port(_) => 4,
            Component::DestinationPort(_) => 5,
            Component::SourcePort(_) => 6,
            Component::IcmpType(_) => 7,
            Component::IcmpCode(_) => 8,
            Component::TcpFlags(_) => 9,
            Component::PacketLength(_) => 10,
            Component::Dscp(_) => 11,
            Component::Fragment(_) => 12,
        }
    }
}

/// Why a rule cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowSpecError {
    /// A rule needs at least one component.
    Empty,
    /// Two components of one type (RFC 8955 §4.2: at most one each).
    Repeated(u8),
    /// A numeric or bitmask component with no test.
    NoOperand(u8),
    /// IPv4 and IPv6 prefixes in one rule, or a prefix of the other
    /// family than the rule's.
    MixedFamilies,
    /// The NLRI is longer than 4095 bytes.
    TooLong(usize),
    /// The UPDATE would not fit a BGP message.
    Encode(EncodeError),
}

impl std::fmt::Display for FlowSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowSpecError::Empty => write!(f, "a FlowSpec rule needs at least one component"),
            FlowSpecError::Repeated(t) => write!(f, "component type {t} appears twice"),
            FlowSpecError::NoOperand(t) => write!(f, "component type {t} has no operand"),
            FlowSpecError::MixedFamilies => write!(f, "the rule mixes IPv4 and IPv6 prefixes"),
            FlowSpecError::TooLong(n) => write!(f, "the rule is {n} bytes long; at most 4095 fit"),
            FlowSpecError::Encode(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FlowSpecError {}

impl From<EncodeError> for FlowSpecError {
    fn from(e: EncodeError) -> Self {
        FlowSpecError::Encode(e)
    }
}

/// One FlowSpec rule: its components (any order; they are sorted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The components.
    pub components: Vec<Component>,
}

impl Rule {
    /// Whether the rule is an IPv6 one (RFC 8956): it is if a prefix
    /// component is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.components
            .iter()
            .any(|c| matches!(c, Component::Destination(p) | Component::Source(p) if !p.is_ipv4()))
    }

    /// The rule's NLRI: its length (one byte under 240, else two) and its
    /// components in type order.
    pub fn encode_nlri(&self) -> Result<Vec<u8>, FlowSpecError> {
        if self.components.is_empty() {
            return Err(FlowSpecError::Empty);
        }
        let v6 = self.is_ipv6();
        let mut sorted: Vec<&Component> = self.components.iter().collect();
        sorted.sort_by_key(|c| c.type_code());
        let mut body = Vec::new();
        let mut last = 0u8;
        for c in sorted {
            let t = c.type_code();
            if t == last {
                return Err(FlowSpecError::Repeated(t));
            }
            last = t;
            body.push(t);
            match c {
                Component::Destination(p) | Component::Source(p) => {
                    if p.is_ipv4() == v6 {
                        return Err(FlowSpecError::MixedFamilies);
                    }
                    write_prefix(&mut body, *p);
                }
                Component::Protocol(ops)
                | Component::Port(ops)
                | Component::DestinationPort(ops)
                | Component::SourcePort(ops)
                | Component::IcmpType(ops)
                | Component::IcmpCode(ops)
                | Component::PacketLength(ops)
                | Component::Dscp(ops) => {
                    if ops.is_empty() {
                        return Err(FlowSpecError::NoOperand(t));
                    }
                    for (i, op) in ops.iter().enumerate() {
                        write_numeric(&mut body, op, i + 1 == ops.len());
                    }
                }
                Component::TcpFlags(ops) | Component::Fragment(ops) => {
                    if ops.is_empty() {
                        return Err(FlowSpecError::NoOperand(t));
                    }
                    for (i, op) in ops.iter().enumerate() {
                        write_bitmask(&mut body, op, i + 1 == ops.len());
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(body.len() + 2);
        match body.len() {
            n if n < 240 => out.push(n as u8),
            n if n <= MAX_NLRI_LEN => put_u16(&mut out, 0xf000 | n as u16),
            n => return Err(FlowSpecError::TooLong(n)),
        }
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// A prefix component: length and the significant bytes for IPv4; length,
/// offset (always 0 here) and the significant bytes for IPv6 (RFC 8956
/// §3.1).
fn write_prefix(out: &mut Vec<u8>, p: Prefix) {
    let p = p.network();
    let len = p.len();
    let n = (len as usize).div_ceil(8);
    out.push(len);
    match p {
        Prefix::V4(a, _) => out.extend_from_slice(&a.octets()[..n]),
        Prefix::V6(a, _) => {
            out.push(0);
            out.extend_from_slice(&a.octets()[..n]);
        }
    }
}

/// The operand length code (bits 4–5 of the operator) and its bytes: the
/// shortest of 1, 2, 4 or 8 that holds the value.
fn operand(value: u64) -> (u8, Vec<u8>) {
    if let Ok(v) = u8::try_from(value) {
        (0x00, vec![v])
    } else if let Ok(v) = u16::try_from(value) {
        (0x10, v.to_be_bytes().to_vec())
    } else if let Ok(v) = u32::try_from(value) {
        (0x20, v.to_be_bytes().to_vec())
    } else {
        (0x30, value.to_be_bytes().to_vec())
    }
}

fn write_numeric(out: &mut Vec<u8>, op: &Numeric, end: bool) {
    let (len, bytes) = operand(op.value);
    let mut b = len;
    if end {
        b |= 0x80;
    }
    if op.and {
        b |= 0x40;
    }
    if op.lt {
        b |= 0x04;
    }
    if op.gt {
        b |= 0x02;
    }
    if op.eq {
        b |= 0x01;
    }
    out.push(b);
    out.extend_from_slice(&bytes);
}

fn write_bitmask(out: &mut Vec<u8>, op: &Bitmask, end: bool) {
    let (len, bytes) = operand(u64::from(op.bits));
    let mut b = len;
    if end {
        b |= 0x80;
    }
    if op.and {
        b |= 0x40;
    }
    if op.not {
        b |= 0x02;
    }
    if op.matches {
        b |= 0x01;
    }
    out.push(b);
    out.extend_from_slice(&bytes);
}

/// The traffic-rate extended community (RFC 8955 §7.3: type 0x80, subtype
/// 0x06): `asn` informative, the rate in bytes per second as an IEEE 754
/// single; 0 discards.
pub fn traffic_rate(asn: u16, bytes_per_second: f32) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[0] = 0x80;
    v[1] = 0x06;
    v[2..4].copy_from_slice(&asn.to_be_bytes());
    v[4..8].copy_from_slice(&bytes_per_second.to_be_bytes());
    v
}

/// EXTENDED COMMUNITIES (RFC 4360), optional transitive.
const EXTENDED_COMMUNITIES: u8 = 16;
const MP_REACH_NLRI: u8 = 14;
const MP_UNREACH_NLRI: u8 = 15;
const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;

/// An UPDATE announcing `rules` (all of one family) with the given path
/// attributes (ORIGIN and AS_PATH as for any route) and extended
/// communities (the actions, e.g. [`traffic_rate`]). FlowSpec's
/// MP_REACH_NLRI has no next hop (length 0, RFC 8955 §4).
pub fn announce_update(
    rules: &[Rule],
    attrs: &PathAttributes,
    extended: &[[u8; 8]],
    opts: WireOptions,
) -> Result<Vec<u8>, FlowSpecError> {
    let v6 = rules.first().is_some_and(|r| r.is_ipv6());
    let mut value = Vec::new();
    put_u16(&mut value, if v6 { 2 } else { 1 });
    value.push(SAFI_FLOWSPEC);
    value.push(0); // next hop length
    value.push(0); // reserved
    for r in rules {
        if r.is_ipv6() != v6 {
            return Err(FlowSpecError::MixedFamilies);
        }
        value.extend(r.encode_nlri()?);
    }
    let mut attrs = PathAttributes {
        next_hop: None,
        ..attrs.clone()
    };
    attrs.other.push(RawAttribute {
        flags: OPTIONAL,
        type_code: MP_REACH_NLRI,
        value,
    });
    if !extended.is_empty() {
        attrs.other.push(RawAttribute {
            flags: OPTIONAL | TRANSITIVE,
            type_code: EXTENDED_COMMUNITIES,
            value: extended.concat(),
        });
    }
    let update = Update {
        attrs,
        ..Update::default()
    };
    Ok(Message::Update(update).encode(opts)?)
}

/// An UPDATE withdrawing `rules` (all of one family).
pub fn withdraw_update(rules: &[Rule], opts: WireOptions) -> Result<Vec<u8>, FlowSpecError> {
    let v6 = rules.first().is_some_and(|r| r.is_ipv6());
    let mut value = Vec::new();
    put_u16(&mut value, if v6 { 2 } else { 1 });
    value.push(SAFI_FLOWSPEC);
    for r in rules {
        if r.is_ipv6() != v6 {
            return Err(FlowSpecError::MixedFamilies);
        }
        value.extend(r.encode_nlri()?);
    }
    let update = Update {
        attrs: PathAttributes {
            other: vec![RawAttribute {
                flags: OPTIONAL,
                type_code: MP_UNREACH_NLRI,
                value,
            }],
            ..PathAttributes::default()
        },
        ..Update::default()
    };
    Ok(Message::Update(update).encode(opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, AsPathSegment, Origin, SegmentKind};

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    /// RFC 8955 §4.2.3, first example: packets to 192.0.2.0/24 and TCP
    /// port 25.
    #[test]
    fn rfc8955_example_1() {
        let rule = Rule {
            components: vec![
                Component::Port(vec![Numeric::eq(25)]),
                Component::Protocol(vec![Numeric::eq(6)]),
                Component::Destination(p("192.0.2.0/24")),
            ],
        };
        assert_eq!(
            rule.encode_nlri().unwrap(),
            [0x0b, 0x01, 0x18, 0xc0, 0x00, 0x02, 0x03, 0x81, 0x06, 0x04, 0x81, 0x19]
        );
    }

    /// RFC 8955 §4.2.3, second example: packets to 192.0.2.0/24 from
    /// 203.0.113.0/24 and port {range [137, 139] or 8080}.
    #[test]
    fn rfc8955_example_2() {
        let rule = Rule {
            components: vec![
                Component::Destination(p("192.0.2.0/24")),
                Component::Source(p("203.0.113.0/24")),
                Component::Port(vec![
                    Numeric::ge(137),
                    Numeric::and_le(139),
                    Numeric::eq(8080),
                ]),
            ],
        };
        assert_eq!(
            rule.encode_nlri().unwrap(),
            [
                0x12, 0x01, 0x18, 0xc0, 0x00, 0x02, 0x02, 0x18, 0xcb, 0x00, 0x71, 0x04, 0x03, 0x89,
                0x45, 0x8b, 0x91, 0x1f, 0x90
            ]
        );
    }

    /// RFC 8955 §4.2.3, third example: packets to 192.0.2.1/32 and
    /// fragment {DF or FF}.
    #[test]
    fn rfc8955_example_3() {
        let rule = Rule {
            components: vec![
                Component::Destination(p("192.0.2.1/32")),
                Component::Fragment(vec![Bitmask::any(fragment::DF | fragment::FF)]),
            ],
        };
        assert_eq!(
            rule.encode_nlri().unwrap(),
            [0x09, 0x01, 0x20, 0xc0, 0x00, 0x02, 0x01, 0x0c, 0x80, 0x05]
        );
    }

    /// RFC 8956 §3.1: an IPv6 prefix carries an offset byte; a SYN flood
    /// rule for one address with a packet length range.
    #[test]
    fn ipv6_prefixes_carry_an_offset_and_syn_and_lengths_encode() {
        let rule = Rule {
            components: vec![
                Component::Destination(p("2001:db8::7/128")),
                Component::Protocol(vec![Numeric::eq(6)]),
                Component::TcpFlags(vec![Bitmask::all(tcp::SYN)]),
                Component::PacketLength(vec![Numeric::ge(40), Numeric::and_le(1500)]),
            ],
        };
        let nlri = rule.encode_nlri().unwrap();
        let mut want = vec![0x01, 128, 0];
        want.extend_from_slice(
            &"2001:db8::7"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        want.extend_from_slice(&[0x03, 0x81, 0x06]);
        want.extend_from_slice(&[0x09, 0x81, 0x02]);
        // >= 40 (one byte), AND <= 1500 (two bytes, end of list).
        want.extend_from_slice(&[0x0a, 0x03, 40, 0xd5, 0x05, 0xdc]);
        assert_eq!(nlri[0] as usize, want.len());
        assert_eq!(&nlri[1..], &want[..]);
    }

    #[test]
    fn long_rules_use_two_length_bytes_and_mistakes_are_refused() {
        let ports: Vec<Numeric> = (1..=100).map(|i| Numeric::eq(1000 + i)).collect();
        let rule = Rule {
            components: vec![Component::DestinationPort(ports)],
        };
        let nlri = rule.encode_nlri().unwrap();
        let len = 1 + 100 * 3;
        assert_eq!(&nlri[..2], &(0xf000u16 | len as u16).to_be_bytes());
        assert_eq!(nlri.len(), len + 2);
        let bad = |components| Rule { components }.encode_nlri().unwrap_err();
        assert_eq!(bad(vec![]), FlowSpecError::Empty);
        assert_eq!(
            bad(vec![
                Component::Protocol(vec![Numeric::eq(6)]),
                Component::Protocol(vec![Numeric::eq(17)])
            ]),
            FlowSpecError::Repeated(3)
        );
        assert_eq!(
            bad(vec![Component::Port(vec![])]),
            FlowSpecError::NoOperand(4)
        );
        assert_eq!(
            bad(vec![
                Component::Destination(p("2001:db8::/32")),
                Component::Source(p("192.0.2.0/24"))
            ]),
            FlowSpecError::MixedFamilies
        );
    }

    #[test]
    fn traffic_rate_zero_discards() {
        assert_eq!(
            traffic_rate(65000, 0.0),
            [0x80, 0x06, 0xfd, 0xe8, 0, 0, 0, 0]
        );
        // 125,000 bytes/s (1 Mbit/s) is 0x47f42400 as an IEEE single.
        assert_eq!(
            traffic_rate(0, 125_000.0),
            [0x80, 0x06, 0, 0, 0x47, 0xf4, 0x24, 0x00]
        );
    }

    #[test]
    fn updates_carry_the_rule_in_mp_reach_and_mp_unreach() {
        let rule = Rule {
            components: vec![
                Component::Destination(p("192.0.2.0/24")),
                Component::Protocol(vec![Numeric::eq(6)]),
                Component::Port(vec![Numeric::eq(25)]),
            ],
        };
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: vec![AsPathSegment {
                kind: SegmentKind::Sequence,
                asns: vec![65000],
            }],
            ..PathAttributes::default()
        };
        let opts = WireOptions { four_byte_as: true };
        let bytes = announce_update(
            std::slice::from_ref(&rule),
            &attrs,
            &[traffic_rate(65000, 0.0)],
            opts,
        )
        .unwrap();
        // The UPDATE decodes (its unknown family kept opaque), and the
        // MP_REACH value is AFI 1, SAFI 133, no next hop, the NLRI.
        let Message::Update(u) = wire::decode(&bytes, opts).unwrap() else {
            panic!("not an UPDATE");
        };
        let reach = u.attrs.other.iter().find(|a| a.type_code == 14).unwrap();
        let mut want = vec![0, 1, 133, 0, 0];
        want.extend(rule.encode_nlri().unwrap());
        assert_eq!(reach.value, want);
        let ext = u.attrs.other.iter().find(|a| a.type_code == 16).unwrap();
        assert_eq!(ext.value, traffic_rate(65000, 0.0));
        assert_eq!(u.attrs.as_path_flat(), vec![65000]);
        let bytes = withdraw_update(std::slice::from_ref(&rule), opts).unwrap();
        let Message::Update(u) = wire::decode(&bytes, opts).unwrap() else {
            panic!("not an UPDATE");
        };
        let unreach = u.attrs.other.iter().find(|a| a.type_code == 15).unwrap();
        let mut want = vec![0, 1, 133];
        want.extend(rule.encode_nlri().unwrap());
        assert_eq!(unreach.value, want);
    }
}
