//! UPDATE path attributes (RFC 4271 §4.3 and §5, RFC 1997, RFC 8092,
//! RFC 4760, RFC 6793): the decoded model, the validation rules of RFC 4271
//! §6.3, and the encoder.

use std::net::{IpAddr, Ipv4Addr};

use super::aspath;
pub use super::aspath::{AsPathSegment, SegmentKind};
use super::error::{subcode, DecodeError, EncodeError};
use super::open::AS_TRANS;
use super::update::{self, MpReach, MpUnreach};
use crate::bytes::{put_u16, put_u32, Reader};

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const PARTIAL: u8 = 0x20;
const EXTENDED: u8 = 0x10;

pub(crate) const ORIGIN: u8 = 1;
pub(crate) const AS_PATH: u8 = 2;
pub(crate) const NEXT_HOP: u8 = 3;
const MED: u8 = 4;
const LOCAL_PREF: u8 = 5;
const ATOMIC_AGGREGATE: u8 = 6;
const AGGREGATOR: u8 = 7;
const COMMUNITIES: u8 = 8;
pub(crate) const MP_REACH_NLRI: u8 = 14;
pub(crate) const MP_UNREACH_NLRI: u8 = 15;
const AS4_PATH: u8 = 17;
const AS4_AGGREGATOR: u8 = 18;
const LARGE_COMMUNITIES: u8 = 32;

/// The ORIGIN attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Learned from an interior protocol.
    Igp,
    /// Learned from EGP.
    Egp,
    /// Learned some other way, typically redistribution.
    Incomplete,
}

/// An attribute this crate does not interpret, kept so that nothing the
/// peer said is silently lost.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// The optional, transitive and partial flags; the extended-length flag
    /// is recomputed when encoding.
    pub flags: u8,
    /// The attribute type code.
    pub type_code: u8,
    /// The attribute value.
    pub value: Vec<u8>,
}

/// The path attributes of a route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    /// ORIGIN, absent only in UPDATEs that announce nothing.
    pub origin: Option<Origin>,
    /// AS_PATH, with 4-byte numbers whatever the wire encoding was.
    pub as_path: Vec<AsPathSegment>,
    /// The next hop. In an [`super::Update`] this is the NEXT_HOP attribute
    /// (IPv4 only); in a [`crate::Route`] it is the next hop for the route's
    /// family, taken from MP_REACH_NLRI for multiprotocol routes.
    pub next_hop: Option<IpAddr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE.
    pub atomic_aggregate: bool,
    /// AGGREGATOR: the aggregating AS and router.
    pub aggregator: Option<(u32, Ipv4Addr)>,
    /// COMMUNITIES (RFC 1997), each as `asn << 16 | value`.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITIES (RFC 8092): global administrator, two local parts.
    pub large_communities: Vec<[u32; 3]>,
    /// Optional attributes this crate does not interpret, in wire order.
    pub other: Vec<RawAttribute>,
}

impl PathAttributes {
    /// Every AS number of the path in order, sets and confederation
    /// segments included.
    pub fn as_path_flat(&self) -> Vec<u32> {
        self.as_path
            .iter()
            .flat_map(|s| s.asns.iter().copied())
            .collect()
    }

    /// The AS path length that route selection compares (RFC 4271
    /// §9.1.2.2): an AS_SET counts as one AS, confederation segments as
    /// none.
    pub fn path_len(&self) -> usize {
        self.as_path.iter().map(AsPathSegment::path_len).sum()
    }

    /// The neighbouring AS the route came through: the first AS of the
    /// first non-confederation segment. RFC 4271 §9.1.2.2 compares MEDs
    /// only between routes from the same neighbouring AS.
    pub fn neighbor_as(&self) -> Option<u32> {
        let first = self.as_path.iter().find(|s| !s.kind.is_confed())?;
        first.asns.first().copied()
    }

    /// The AS that originated the route: the last AS of a final
    /// AS_SEQUENCE, or the only member of a final one-element AS_SET. An
    /// aggregate whose final set has several members has no single origin.
    pub fn origin_as(&self) -> Option<u32> {
        let last = self.as_path.iter().rev().find(|s| !s.kind.is_confed())?;
        match last.kind {
            SegmentKind::Sequence => last.asns.last().copied(),
            SegmentKind::Set if last.asns.len() == 1 => last.asns.first().copied(),
            _ => None,
        }
    }
}

/// How attributes are laid out in the input being decoded.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AttrMode {
    /// AS_PATH and AGGREGATOR carry 4-byte AS numbers.
    pub four_byte_as: bool,
    /// The attributes come from an MRT RIB entry, where MP_REACH_NLRI may
    /// be abbreviated to the next hop (RFC 6396 §4.3.4).
    pub mrt: bool,
}

/// Everything the attribute block of an UPDATE (or MRT entry) holds.
#[derive(Clone, Debug)]
pub(crate) struct DecodedAttrs {
    pub attrs: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// The next hop of an abbreviated MRT MP_REACH_NLRI.
    pub mrt_next_hop: Option<IpAddr>,
    /// Which type codes appeared, for the mandatory-attribute check.
    pub seen: [bool; 256],
}

impl Default for DecodedAttrs {
    fn default() -> Self {
        DecodedAttrs {
            attrs: PathAttributes::default(),
            mp_reach: None,
            mp_unreach: None,
            mrt_next_hop: None,
            seen: [false; 256],
        }
    }
}

/// The flags a known attribute must carry: (optional, transitive).
fn expected_flags(type_code: u8) -> Option<(bool, bool)> {
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => (false, true),
        MED | MP_REACH_NLRI | MP_UNREACH_NLRI => (true, false),
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITIES => (true, true),
        _ => return None,
    })
}

/// Decodes an attribute block.
pub(crate) fn decode_attributes(bytes: &[u8], mode: AttrMode) -> Result<DecodedAttrs, DecodeError> {
    let mut out = DecodedAttrs::default();
    let mut as4_path = None;
    let mut as4_aggregator = None;
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let start = r.offset();
        let (Some(flags), Some(type_code)) = (r.u8(), r.u8()) else {
            return Err(list_error("truncated attribute header"));
        };
        let len = if flags & EXTENDED != 0 {
            r.u16().map(usize::from)
        } else {
            r.u8().map(usize::from)
        };
        let Some(len) = len else {
            return Err(list_error("truncated attribute length"));
        };
        let Some(value) = r.take(len) else {
            return Err(DecodeError::update(
                subcode::update::ATTRIBUTE_LENGTH_ERROR,
                &bytes[start..],
                "attribute overruns the attribute list",
            ));
        };
        let whole = &bytes[start..r.offset()];
        if std::mem::replace(&mut out.seen[type_code as usize], true) {
            return Err(list_error("attribute appears twice"));
        }
        let Some((optional, transitive)) = expected_flags(type_code) else {
            if flags & OPTIONAL == 0 {
                return Err(DecodeError::update(
                    subcode::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    whole,
                    "unknown well-known attribute",
                ));
            }
            out.attrs.other.push(RawAttribute {
                flags: flags & (OPTIONAL | TRANSITIVE | PARTIAL),
                type_code,
                value: value.to_vec(),
            });
            continue;
        };
        // The partial bit is only meaningful for optional transitive
        // attributes; RFC 4271 §4.3 requires it clear everywhere else.
        let partial_ok = optional && transitive || flags & PARTIAL == 0;
        // MRT dumps are records, not a peer's messages, and BIRD 2 writes
        // well-known attributes such as NEXT_HOP and LOCAL_PREF with all
        // flags clear; the type code alone identifies the attribute, so a
        // dump's flags are not checked.
        let flags_wrong = (flags & OPTIONAL != 0) != optional
            || (flags & TRANSITIVE != 0) != transitive
            || !partial_ok;
        if flags_wrong && !mode.mrt {
            return Err(DecodeError::update(
                subcode::update::ATTRIBUTE_FLAGS_ERROR,
                whole,
                "attribute flags do not match its type",
            ));
        }
        let bad_len = || {
            DecodeError::update(
                subcode::update::ATTRIBUTE_LENGTH_ERROR,
                whole,
                "attribute length does not match its type",
            )
        };
        let a = &mut out.attrs;
        match type_code {
            ORIGIN => {
                let [v] = value else { return Err(bad_len()) };
                a.origin = Some(match v {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => {
                        return Err(DecodeError::update(
                            subcode::update::INVALID_ORIGIN_ATTRIBUTE,
                            whole,
                            "undefined ORIGIN value",
                        ))
                    }
                });
            }
            AS_PATH => a.as_path = aspath::decode(value, mode.four_byte_as)?,
            NEXT_HOP => {
                let octets: [u8; 4] = value.try_into().map_err(|_| bad_len())?;
                a.next_hop = Some(IpAddr::from(octets));
            }
            MED => a.med = Some(be_u32(value).ok_or_else(bad_len)?),
            LOCAL_PREF => a.local_pref = Some(be_u32(value).ok_or_else(bad_len)?),
            ATOMIC_AGGREGATE if value.is_empty() => a.atomic_aggregate = true,
            ATOMIC_AGGREGATE => return Err(bad_len()),
            AGGREGATOR => {
                let mut v = Reader::new(value);
                let asn = match (mode.four_byte_as, value.len()) {
                    (true, 8) => v.u32(),
                    (false, 6) => v.u16().map(u32::from),
                    _ => None,
                };
                let (Some(asn), Some(ip)) = (asn, v.array::<4>()) else {
                    return Err(bad_len());
                };
                a.aggregator = Some((asn, Ipv4Addr::from(ip)));
            }
            COMMUNITIES => {
                if value.len() % 4 != 0 {
                    return Err(bad_len());
                }
                a.communities = value.chunks_exact(4).filter_map(be_u32).collect();
            }
            LARGE_COMMUNITIES => {
                if value.len() % 12 != 0 {
                    return Err(bad_len());
                }
                a.large_communities = value
                    .chunks_exact(12)
                    .filter_map(|c| Some([be_u32(&c[..4])?, be_u32(&c[4..8])?, be_u32(&c[8..])?]))
                    .collect();
            }
            MP_REACH_NLRI => update::decode_mp_reach(value, whole, mode, &mut out)?,
            MP_UNREACH_NLRI => update::decode_mp_unreach(value, whole, &mut out)?,
            // RFC 6793 §6: a malformed AS4_PATH or AS4_AGGREGATOR is
            // discarded rather than reset the session, and both are ignored
            // between four-octet speakers.
            AS4_PATH => as4_path = aspath::decode(value, true).ok(),
            AS4_AGGREGATOR => {
                let mut v = Reader::new(value);
                if let (Some(asn), Some(ip), true) = (v.u32(), v.array::<4>(), value.len() == 8) {
                    as4_aggregator = Some((asn, Ipv4Addr::from(ip)));
                }
            }
            _ => {}
        }
    }
    if !mode.four_byte_as {
        apply_as4(&mut out.attrs, as4_path, as4_aggregator);
    }
    Ok(out)
}

/// Folds AS4_PATH and AS4_AGGREGATOR into the attributes of a 2-byte
/// session. RFC 6793 §4.2.3: an AGGREGATOR from an old speaker (not
/// AS_TRANS) means both AS4 attributes are stale and must be ignored.
fn apply_as4(
    a: &mut PathAttributes,
    as4_path: Option<Vec<AsPathSegment>>,
    as4_aggregator: Option<(u32, Ipv4Addr)>,
) {
    if let Some((asn, _)) = a.aggregator {
        if asn != u32::from(AS_TRANS) {
            return;
        }
        // An AS4_AGGREGATOR whose AS fits two bytes has no reason to exist;
        // it is discarded as malformed (RFC 6793 §6) so that AGGREGATOR keeps
        // the AS_TRANS that marks the AS4_PATH as valid.
        if let Some(wide) = as4_aggregator.filter(|(asn, _)| *asn > u32::from(u16::MAX)) {
            a.aggregator = Some(wide);
        }
    }
    if let Some(as4) = as4_path {
        a.as_path = aspath::merge(std::mem::take(&mut a.as_path), as4);
    }
}

fn be_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn list_error(reason: &'static str) -> DecodeError {
    DecodeError::update(subcode::update::MALFORMED_ATTRIBUTE_LIST, &[], reason)
}

/// Appends one attribute, choosing the extended length when needed.
pub(crate) fn put_attr(
    out: &mut Vec<u8>,
    flags: u8,
    type_code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let flags = flags & !EXTENDED;
    if value.len() > 255 {
        let len =
            u16::try_from(value.len()).map_err(|_| EncodeError::AttributeTooLong { type_code })?;
        out.extend_from_slice(&[flags | EXTENDED, type_code]);
        put_u16(out, len);
    } else {
        out.extend_from_slice(&[flags, type_code, value.len() as u8]);
    }
    out.extend_from_slice(value);
    Ok(())
}

/// Encodes the attributes of an UPDATE, MP attributes included, in type
/// code order. AS_PATH is written whenever ORIGIN is, because an UPDATE
/// that announces routes needs both even when the path is empty (iBGP).
pub(crate) fn encode_attributes(
    a: &PathAttributes,
    mp_reach: Option<&MpReach>,
    mp_unreach: Option<&MpUnreach>,
    four: bool,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    const WELL_KNOWN: u8 = TRANSITIVE;
    const OPT_TRANS: u8 = OPTIONAL | TRANSITIVE;
    if let Some(origin) = a.origin {
        let v = match origin {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        };
        put_attr(out, WELL_KNOWN, ORIGIN, &[v])?;
    }
    if a.origin.is_some() || !a.as_path.is_empty() {
        let mut v = Vec::new();
        aspath::encode(&a.as_path, four, &mut v);
        put_attr(out, WELL_KNOWN, AS_PATH, &v)?;
    }
    if let Some(IpAddr::V4(nh)) = a.next_hop {
        put_attr(out, WELL_KNOWN, NEXT_HOP, &nh.octets())?;
    }
    if let Some(med) = a.med {
        put_attr(out, OPTIONAL, MED, &med.to_be_bytes())?;
    }
    if let Some(lp) = a.local_pref {
        put_attr(out, WELL_KNOWN, LOCAL_PREF, &lp.to_be_bytes())?;
    }
    if a.atomic_aggregate {
        put_attr(out, WELL_KNOWN, ATOMIC_AGGREGATE, &[])?;
    }
    let wide_aggregator = a.aggregator.filter(|(asn, _)| *asn > u32::from(u16::MAX));
    if let Some((asn, ip)) = a.aggregator {
        let mut v = Vec::new();
        if four {
            put_u32(&mut v, asn);
        } else {
            put_u16(&mut v, u16::try_from(asn).unwrap_or(AS_TRANS));
        }
        v.extend_from_slice(&ip.octets());
        put_attr(out, OPT_TRANS, AGGREGATOR, &v)?;
    }
    if !a.communities.is_empty() {
        let v: Vec<u8> = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        put_attr(out, OPT_TRANS, COMMUNITIES, &v)?;
    }
    if let Some(mp) = mp_reach {
        put_attr(out, OPTIONAL, MP_REACH_NLRI, &update::encode_mp_reach(mp))?;
    }
    if let Some(mp) = mp_unreach {
        put_attr(
            out,
            OPTIONAL,
            MP_UNREACH_NLRI,
            &update::encode_mp_unreach(mp),
        )?;
    }
    if !four && aspath::needs_as4(&a.as_path) {
        let mut v = Vec::new();
        aspath::encode(&aspath::as4_segments(&a.as_path), true, &mut v);
        put_attr(out, OPT_TRANS, AS4_PATH, &v)?;
    }
    if let (false, Some((asn, ip))) = (four, wide_aggregator) {
        let mut v = asn.to_be_bytes().to_vec();
        v.extend_from_slice(&ip.octets());
        put_attr(out, OPT_TRANS, AS4_AGGREGATOR, &v)?;
    }
    if !a.large_communities.is_empty() {
        let v: Vec<u8> = a
            .large_communities
            .iter()
            .flatten()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        put_attr(out, OPT_TRANS, LARGE_COMMUNITIES, &v)?;
    }
    for raw in &a.other {
        put_attr(out, raw.flags, raw.type_code, &raw.value)?;
    }
    Ok(())
}

/// Encodes the attributes alone, as an UPDATE's attribute block with
/// four-octet AS numbers, for storing routes compactly outside BGP (the
/// realm table's snapshots). `next_hop` is written only when it is IPv4,
/// as NEXT_HOP; callers that need an IPv6 next hop store it themselves.
pub fn encode_path_attributes(a: &PathAttributes) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_attributes(a, None, None, true, &mut out)?;
    Ok(out)
}

/// Decodes a block written by [`encode_path_attributes`] (or any UPDATE
/// attribute block with four-octet AS numbers). Multiprotocol attributes
/// are refused, because a stored route has no NLRI of its own.
pub fn decode_path_attributes(bytes: &[u8]) -> Result<PathAttributes, DecodeError> {
    let mode = AttrMode {
        four_byte_as: true,
        mrt: false,
    };
    let decoded = decode_attributes(bytes, mode)?;
    if decoded.mp_reach.is_some() || decoded.mp_unreach.is_some() {
        return Err(list_error("a stored attribute block carries NLRI"));
    }
    Ok(decoded.attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_attribute_blocks_round_trip() {
        let a = PathAttributes {
            origin: Some(Origin::Egp),
            as_path: vec![AsPathSegment {
                kind: SegmentKind::Sequence,
                asns: vec![65001, 4_200_000_000],
            }],
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            med: Some(5),
            local_pref: Some(200),
            communities: vec![65001 << 16 | 100],
            large_communities: vec![[65001, 1, 2]],
            ..PathAttributes::default()
        };
        let bytes = encode_path_attributes(&a).unwrap();
        assert_eq!(decode_path_attributes(&bytes), Ok(a.clone()));
        assert_eq!(a.path_len(), 2);
        assert_eq!(a.neighbor_as(), Some(65001));
    }

    fn decode2(bytes: &[u8]) -> PathAttributes {
        let mode = AttrMode {
            four_byte_as: false,
            mrt: false,
        };
        decode_attributes(bytes, mode).unwrap().attrs
    }

    #[test]
    fn origin_as_looks_through_confederations_and_single_sets() {
        let seg = |kind, asns: &[u32]| AsPathSegment {
            kind,
            asns: asns.to_vec(),
        };
        let mut a = PathAttributes {
            as_path: vec![
                seg(SegmentKind::ConfedSequence, &[1]),
                seg(SegmentKind::Sequence, &[2, 3]),
            ],
            ..PathAttributes::default()
        };
        assert_eq!(a.origin_as(), Some(3));
        assert_eq!(a.as_path_flat(), vec![1, 2, 3]);
        a.as_path.push(seg(SegmentKind::Set, &[4]));
        assert_eq!(a.origin_as(), Some(4));
        a.as_path.push(seg(SegmentKind::Set, &[5, 6]));
        assert_eq!(a.origin_as(), None);
        assert_eq!(PathAttributes::default().origin_as(), None);
    }

    #[test]
    fn as4_attributes_repair_a_two_byte_session() {
        // AS_PATH 1 AS_TRANS, AGGREGATOR AS_TRANS, AS4_PATH 70000,
        // AS4_AGGREGATOR 70001.
        let bytes = [
            0x40, 2, 6, 2, 2, 0, 1, 0x5b, 0xa0, //
            0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1, //
            0xc0, 17, 6, 2, 1, 0, 1, 0x11, 0x70, //
            0xc0, 18, 8, 0, 1, 0x11, 0x71, 10, 0, 0, 1,
        ];
        let a = decode2(&bytes);
        assert_eq!(a.as_path_flat(), vec![1, 70000]);
        assert_eq!(a.aggregator, Some((70001, Ipv4Addr::new(10, 0, 0, 1))));
        // With an AGGREGATOR from an old speaker, both AS4 attributes are
        // stale and ignored.
        let mut old = bytes;
        old[12..14].copy_from_slice(&[0, 9]);
        let a = decode2(&old);
        assert_eq!(a.as_path_flat(), vec![1, 23456]);
        assert_eq!(a.aggregator, Some((9, Ipv4Addr::new(10, 0, 0, 1))));
    }

    #[test]
    fn long_values_use_the_extended_length() {
        let mut out = Vec::new();
        put_attr(&mut out, 0xc0, 99, &[0; 300]).unwrap();
        assert_eq!(&out[..4], &[0xd0, 99, 1, 44]);
        assert_eq!(
            put_attr(&mut out, 0xc0, 99, &vec![0; 70_000]),
            Err(EncodeError::AttributeTooLong { type_code: 99 })
        );
    }
}
