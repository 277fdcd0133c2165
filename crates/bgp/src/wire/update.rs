//! The UPDATE message (RFC 4271 §4.3) and the multiprotocol attributes
//! that carry IPv6 (and optionally IPv4) routes (RFC 4760).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use net_types::Prefix;

use super::attrs::{self, AttrMode, DecodedAttrs, PathAttributes, RawAttribute};
use super::error::{subcode, DecodeError, EncodeError};
use super::nlri::{read_prefixes, write_prefix};
use super::WireOptions;
use crate::bytes::{put_u16, Reader};
use crate::route::{Family, Route};

/// An UPDATE message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// IPv4 prefixes withdrawn in the classic field.
    pub withdrawn: Vec<Prefix>,
    /// The path attributes other than the multiprotocol ones.
    pub attrs: PathAttributes,
    /// MP_REACH_NLRI for a family this crate knows.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI for a family this crate knows.
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 prefixes announced in the classic field.
    pub nlri: Vec<Prefix>,
}

/// The MP_REACH_NLRI attribute: routes of one family and their next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    /// The family of the prefixes.
    pub family: Family,
    /// The next hop (global address for IPv6).
    pub next_hop: IpAddr,
    /// The IPv6 link-local next hop that may follow the global one.
    pub link_local: Option<Ipv6Addr>,
    /// The announced prefixes.
    pub nlri: Vec<Prefix>,
}

/// The MP_UNREACH_NLRI attribute: withdrawn routes of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    /// The family of the prefixes.
    pub family: Family,
    /// The withdrawn prefixes.
    pub withdrawn: Vec<Prefix>,
}

impl Update {
    /// The routes this UPDATE announces and the prefixes it withdraws,
    /// across the classic fields and the multiprotocol attributes.
    ///
    /// Prefixes that share a next hop share one [`Arc`] of attributes.
    pub fn routes(&self) -> (Vec<Route>, Vec<Prefix>) {
        let mut announced = Vec::with_capacity(self.nlri.len());
        if !self.nlri.is_empty() {
            let shared = Arc::new(self.attrs.clone());
            announced.extend(self.nlri.iter().map(|&prefix| Route {
                prefix,
                attrs: Arc::clone(&shared),
            }));
        }
        if let Some(mp) = self.mp_reach.as_ref().filter(|mp| !mp.nlri.is_empty()) {
            let shared = Arc::new(PathAttributes {
                next_hop: Some(mp.next_hop),
                ..self.attrs.clone()
            });
            announced.extend(mp.nlri.iter().map(|&prefix| Route {
                prefix,
                attrs: Arc::clone(&shared),
            }));
        }
        let mut withdrawn = self.withdrawn.clone();
        if let Some(mp) = &self.mp_unreach {
            withdrawn.extend_from_slice(&mp.withdrawn);
        }
        (announced, withdrawn)
    }

    pub(super) fn encode_body(
        &self,
        out: &mut Vec<u8>,
        opts: WireOptions,
    ) -> Result<(), EncodeError> {
        let mut withdrawn = Vec::new();
        for &p in &self.withdrawn {
            write_prefix(&mut withdrawn, p);
        }
        let mut attrs = Vec::new();
        attrs::encode_attributes(
            &self.attrs,
            self.mp_reach.as_ref(),
            self.mp_unreach.as_ref(),
            opts.four_byte_as,
            &mut attrs,
        )?;
        // Both length fields are 16 bits; anything longer could never fit a
        // 4096-byte message anyway.
        let too_long = |n: usize| EncodeError::TooLong { len: n + 23 };
        put_u16(
            out,
            u16::try_from(withdrawn.len()).map_err(|_| too_long(withdrawn.len()))?,
        );
        out.extend_from_slice(&withdrawn);
        put_u16(
            out,
            u16::try_from(attrs.len()).map_err(|_| too_long(attrs.len()))?,
        );
        out.extend_from_slice(&attrs);
        for &p in &self.nlri {
            write_prefix(out, p);
        }
        Ok(())
    }
}

fn list_error(reason: &'static str) -> DecodeError {
    DecodeError::update(subcode::update::MALFORMED_ATTRIBUTE_LIST, &[], reason)
}

fn network_error(reason: &'static str) -> DecodeError {
    DecodeError::update(subcode::update::INVALID_NETWORK_FIELD, &[], reason)
}

pub(super) fn decode(body: &[u8], opts: WireOptions) -> Result<Update, DecodeError> {
    let mut r = Reader::new(body);
    let withdrawn_len = r
        .u16()
        .ok_or_else(|| list_error("truncated withdrawn length"))?;
    let withdrawn = r
        .take(withdrawn_len as usize)
        .ok_or_else(|| list_error("withdrawn routes overrun the message"))?;
    let attrs_len = r
        .u16()
        .ok_or_else(|| list_error("truncated attribute length"))?;
    let attr_bytes = r
        .take(attrs_len as usize)
        .ok_or_else(|| list_error("attributes overrun the message"))?;
    let nlri_bytes = r.rest();
    let withdrawn =
        read_prefixes(withdrawn, false).ok_or_else(|| network_error("bad withdrawn prefix"))?;
    let mode = AttrMode {
        four_byte_as: opts.four_byte_as,
        mrt: false,
    };
    let decoded = attrs::decode_attributes(attr_bytes, mode)?;
    let nlri = read_prefixes(nlri_bytes, false).ok_or_else(|| network_error("bad NLRI prefix"))?;
    check_mandatory(&decoded, !nlri.is_empty())?;
    Ok(Update {
        withdrawn,
        attrs: decoded.attrs,
        mp_reach: decoded.mp_reach,
        mp_unreach: decoded.mp_unreach,
        nlri,
    })
}

/// RFC 4271 §6.3: an UPDATE that announces anything needs ORIGIN and
/// AS_PATH, and NEXT_HOP too when it announces IPv4 in the classic field.
/// The data is the type code of the first missing attribute.
fn check_mandatory(d: &DecodedAttrs, classic_nlri: bool) -> Result<(), DecodeError> {
    let announces = classic_nlri || d.mp_reach.is_some();
    let mut required = vec![];
    if announces {
        required.extend([attrs::ORIGIN, attrs::AS_PATH]);
    }
    if classic_nlri {
        required.push(attrs::NEXT_HOP);
    }
    match required.into_iter().find(|&t| !d.seen[t as usize]) {
        Some(missing) => Err(DecodeError::update(
            subcode::update::MISSING_WELL_KNOWN_ATTRIBUTE,
            &[missing],
            "a mandatory attribute is missing",
        )),
        None => Ok(()),
    }
}

fn optional_error(whole: &[u8], reason: &'static str) -> DecodeError {
    DecodeError::update(subcode::update::OPTIONAL_ATTRIBUTE_ERROR, whole, reason)
}

/// Keeps a multiprotocol attribute for a family this crate does not know
/// as an opaque attribute, so that its routes are ignored, not refused.
fn keep_raw(type_code: u8, value: &[u8], out: &mut DecodedAttrs) {
    out.attrs.other.push(RawAttribute {
        flags: 0x80,
        type_code,
        value: value.to_vec(),
    });
}

fn read_next_hop(bytes: &[u8]) -> Option<(IpAddr, Option<Ipv6Addr>)> {
    let mut r = Reader::new(bytes);
    match bytes.len() {
        4 => Some((IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)), None)),
        16 => Some((IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)), None)),
        32 => {
            let global = Ipv6Addr::from(r.array::<16>()?);
            let link_local = Ipv6Addr::from(r.array::<16>()?);
            Some((IpAddr::V6(global), Some(link_local)))
        }
        _ => None,
    }
}

pub(super) fn decode_mp_reach(
    value: &[u8],
    whole: &[u8],
    mode: AttrMode,
    out: &mut DecodedAttrs,
) -> Result<(), DecodeError> {
    // RFC 6396 §4.3.4: TABLE_DUMP_V2 may keep only the next-hop length and
    // next hop. Writers disagree on whether they abbreviate, so the form is
    // recognised by the first byte giving exactly the rest of the value.
    if mode.mrt && value.first().map(|&n| n as usize + 1) == Some(value.len()) {
        let (nh, _) = read_next_hop(&value[1..])
            .ok_or_else(|| optional_error(whole, "bad MP_REACH_NLRI next hop"))?;
        out.mrt_next_hop = Some(nh);
        return Ok(());
    }
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err(optional_error(whole, "truncated MP_REACH_NLRI"));
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        keep_raw(attrs::MP_REACH_NLRI, value, out);
        return Ok(());
    };
    let nh = r.take(nh_len as usize).and_then(read_next_hop);
    let (Some((next_hop, link_local)), Some(_reserved)) = (nh, r.u8()) else {
        return Err(optional_error(whole, "bad MP_REACH_NLRI next hop"));
    };
    let nlri = read_prefixes(r.rest(), family.is_v6())
        .ok_or_else(|| optional_error(whole, "bad MP_REACH_NLRI prefix"))?;
    out.mp_reach = Some(MpReach {
        family,
        next_hop,
        link_local,
        nlri,
    });
    Ok(())
}

pub(super) fn decode_mp_unreach(
    value: &[u8],
    whole: &[u8],
    out: &mut DecodedAttrs,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(optional_error(whole, "truncated MP_UNREACH_NLRI"));
    };
    let Some(family) = Family::from_afi_safi(afi, safi) else {
        keep_raw(attrs::MP_UNREACH_NLRI, value, out);
        return Ok(());
    };
    let withdrawn = read_prefixes(r.rest(), family.is_v6())
        .ok_or_else(|| optional_error(whole, "bad MP_UNREACH_NLRI prefix"))?;
    out.mp_unreach = Some(MpUnreach { family, withdrawn });
    Ok(())
}

pub(super) fn encode_mp_reach(mp: &MpReach) -> Vec<u8> {
    let (afi, safi) = mp.family.afi_safi();
    let mut v = Vec::new();
    put_u16(&mut v, afi);
    v.push(safi);
    match (mp.next_hop, mp.link_local) {
        (IpAddr::V4(a), _) => {
            v.push(4);
            v.extend_from_slice(&a.octets());
        }
        (IpAddr::V6(a), None) => {
            v.push(16);
            v.extend_from_slice(&a.octets());
        }
        (IpAddr::V6(a), Some(ll)) => {
            v.push(32);
            v.extend_from_slice(&a.octets());
            v.extend_from_slice(&ll.octets());
        }
    }
    v.push(0);
    for &p in &mp.nlri {
        write_prefix(&mut v, p);
    }
    v
}

pub(super) fn encode_mp_unreach(mp: &MpUnreach) -> Vec<u8> {
    let (afi, safi) = mp.family.afi_safi();
    let mut v = Vec::new();
    put_u16(&mut v, afi);
    v.push(safi);
    for &p in &mp.withdrawn {
        write_prefix(&mut v, p);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    #[test]
    fn routes_share_attributes_per_next_hop() {
        let update = Update {
            attrs: PathAttributes {
                next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                ..PathAttributes::default()
            },
            nlri: vec![p("10.0.0.0/8"), p("10.1.0.0/16")],
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
                nlri: vec![p("2001:db8::/32")],
            }),
            withdrawn: vec![p("192.0.2.0/24")],
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![p("2001:db8:1::/48")],
            }),
        };
        let (routes, withdrawn) = update.routes();
        assert!(Arc::ptr_eq(&routes[0].attrs, &routes[1].attrs));
        assert_eq!(
            routes[2].attrs.next_hop,
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(withdrawn, vec![p("192.0.2.0/24"), p("2001:db8:1::/48")]);
    }

    #[test]
    fn unknown_families_are_kept_opaque() {
        let mut out = DecodedAttrs::default();
        let value = [0, 25, 70, 0, 0];
        decode_mp_reach(&value, &[], AttrMode::default(), &mut out).unwrap();
        decode_mp_unreach(&[0, 1, 2, 9], &[], &mut out).unwrap();
        assert!(out.mp_reach.is_none() && out.mp_unreach.is_none());
        assert_eq!(out.attrs.other.len(), 2);
    }

    #[test]
    fn link_local_next_hops_round_trip() {
        let mp = MpReach {
            family: Family::Ipv6Unicast,
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
            nlri: vec![p("2001:db8::/32")],
        };
        let mut out = DecodedAttrs::default();
        decode_mp_reach(&encode_mp_reach(&mp), &[], AttrMode::default(), &mut out).unwrap();
        assert_eq!(out.mp_reach, Some(mp));
    }
}
