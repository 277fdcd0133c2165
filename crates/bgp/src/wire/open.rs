//! The OPEN message and its capabilities (RFC 4271 §4.2, RFC 5492).

use std::net::Ipv4Addr;

use super::error::{code, subcode, DecodeError};
use crate::bytes::{put_u16, put_u32, Reader};

/// The AS number a four-octet speaker puts in 2-byte fields when its real
/// number does not fit (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// The optional parameter type that carries capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_FOUR_OCTET_AS: u8 = 65;

/// An OPEN message. The version is always 4; other versions fail to decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The sender's AS number, or [`AS_TRANS`] if it needs four octets.
    pub my_as: u16,
    /// The proposed hold time in seconds.
    pub hold_time: u16,
    /// The sender's BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// The capabilities, in the order they appeared.
    pub capabilities: Vec<Capability>,
}

/// One capability from an OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions for one AFI/SAFI (RFC 4760).
    Multiprotocol {
        /// The address family identifier (1 IPv4, 2 IPv6).
        afi: u16,
        /// The subsequent address family identifier (1 unicast).
        safi: u8,
    },
    /// Route refresh (RFC 2918).
    RouteRefresh,
    /// Four-octet AS numbers, with the sender's real AS (RFC 6793).
    FourOctetAs(u32),
    /// A capability this crate does not interpret; RFC 5492 says to ignore
    /// it, so it is only kept for logging and re-encoding.
    Unknown {
        /// The capability code.
        code: u8,
        /// The capability value.
        value: Vec<u8>,
    },
}

impl Open {
    /// The sender's real AS: the four-octet capability if present, otherwise
    /// the 2-byte field.
    pub fn peer_as(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(4);
        put_u16(out, self.my_as);
        put_u16(out, self.hold_time);
        out.extend_from_slice(&self.bgp_id.octets());
        // Capabilities are packed into as few optional parameters as fit in
        // the 255-byte parameter length, which never makes the parameter
        // block longer than one capability per parameter would.
        let mut params = Vec::new();
        let mut param: Vec<u8> = Vec::new();
        for cap in &self.capabilities {
            let encoded = encode_capability(cap);
            if param.len() + encoded.len() > 255 {
                push_param(&mut params, &param);
                param.clear();
            }
            param.extend_from_slice(&encoded);
        }
        if !param.is_empty() {
            push_param(&mut params, &param);
        }
        // A parameter block over 255 bytes needs RFC 9072 extended
        // parameters, which this crate does not speak; it is truncated at a
        // parameter boundary so the message at least stays well formed.
        let mut total = 0;
        let mut kept = Vec::new();
        let mut r = Reader::new(&params);
        while let (Some(kind), Some(len)) = (r.u8(), r.u8()) {
            let value = r.take(len as usize).unwrap_or_default();
            if total + 2 + value.len() > 255 {
                break;
            }
            total += 2 + value.len();
            kept.extend_from_slice(&[kind, len]);
            kept.extend_from_slice(value);
        }
        out.push(kept.len() as u8);
        out.extend_from_slice(&kept);
    }
}

fn push_param(params: &mut Vec<u8>, value: &[u8]) {
    params.push(PARAM_CAPABILITIES);
    params.push(value.len() as u8);
    params.extend_from_slice(value);
}

fn encode_capability(cap: &Capability) -> Vec<u8> {
    let mut out = Vec::new();
    match cap {
        Capability::Multiprotocol { afi, safi } => {
            out.extend_from_slice(&[CAP_MULTIPROTOCOL, 4]);
            put_u16(&mut out, *afi);
            out.extend_from_slice(&[0, *safi]);
        }
        Capability::RouteRefresh => out.extend_from_slice(&[CAP_ROUTE_REFRESH, 0]),
        Capability::FourOctetAs(asn) => {
            out.extend_from_slice(&[CAP_FOUR_OCTET_AS, 4]);
            put_u32(&mut out, *asn);
        }
        Capability::Unknown { code, value } => {
            // A value longer than 253 bytes cannot be framed; decoding never
            // produces one, so truncating only affects hand-built messages.
            let value = &value[..value.len().min(253)];
            out.extend_from_slice(&[*code, value.len() as u8]);
            out.extend_from_slice(value);
        }
    }
    out
}

/// An OPEN Message Error with the unspecific subcode, used for lengths that
/// do not add up inside the optional parameters: RFC 4271 names no subcode
/// for that case.
fn malformed(reason: &'static str) -> DecodeError {
    DecodeError::open(subcode::UNSPECIFIC, reason)
}

pub(super) fn decode(body: &[u8]) -> Result<Open, DecodeError> {
    let mut r = Reader::new(body);
    let fixed = (r.u8(), r.u16(), r.u16(), r.array::<4>(), r.u8());
    let (Some(version), Some(my_as), Some(hold_time), Some(id), Some(params_len)) = fixed else {
        return Err(malformed("OPEN is shorter than its fixed fields"));
    };
    if version != 4 {
        // RFC 4271 §6.2: the data is the largest version we support.
        return Err(DecodeError::new(
            code::OPEN_MESSAGE,
            subcode::open::UNSUPPORTED_VERSION_NUMBER,
            vec![0, 4],
            "BGP version is not 4",
        ));
    }
    if r.remaining() != params_len as usize {
        return Err(malformed(
            "optional parameter length does not match the message",
        ));
    }
    let mut capabilities = Vec::new();
    while !r.is_empty() {
        let (Some(kind), Some(len)) = (r.u8(), r.u8()) else {
            return Err(malformed("truncated optional parameter header"));
        };
        let Some(value) = r.take(len as usize) else {
            return Err(malformed("optional parameter overruns the message"));
        };
        if kind != PARAM_CAPABILITIES {
            return Err(DecodeError::open(
                subcode::open::UNSUPPORTED_OPTIONAL_PARAMETER,
                "unknown optional parameter type",
            ));
        }
        decode_capabilities(value, &mut capabilities)?;
    }
    Ok(Open {
        my_as,
        hold_time,
        bgp_id: Ipv4Addr::from(id),
        capabilities,
    })
}

fn decode_capabilities(value: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let mut r = Reader::new(value);
    while !r.is_empty() {
        let (Some(code), Some(len)) = (r.u8(), r.u8()) else {
            return Err(malformed("truncated capability header"));
        };
        let Some(value) = r.take(len as usize) else {
            return Err(malformed("capability overruns its parameter"));
        };
        let mut v = Reader::new(value);
        let cap = match (code, len) {
            (CAP_MULTIPROTOCOL, 4) => {
                let (afi, _reserved, safi) = (v.u16(), v.u8(), v.u8());
                match (afi, safi) {
                    (Some(afi), Some(safi)) => Capability::Multiprotocol { afi, safi },
                    _ => return Err(malformed("multiprotocol capability is truncated")),
                }
            }
            (CAP_ROUTE_REFRESH, 0) => Capability::RouteRefresh,
            (CAP_FOUR_OCTET_AS, 4) => match v.u32() {
                Some(asn) => Capability::FourOctetAs(asn),
                None => return Err(malformed("four-octet AS capability is truncated")),
            },
            (CAP_MULTIPROTOCOL | CAP_ROUTE_REFRESH | CAP_FOUR_OCTET_AS, _) => {
                return Err(malformed("known capability has the wrong length"))
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        };
        out.push(cap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_round_trips_and_finds_the_real_as() {
        let open = Open {
            my_as: AS_TRANS,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            capabilities: vec![
                Capability::Multiprotocol { afi: 2, safi: 1 },
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_000),
                Capability::Unknown {
                    code: 70,
                    value: vec![1, 2],
                },
            ],
        };
        let mut body = Vec::new();
        open.encode_body(&mut body);
        assert_eq!(decode(&body), Ok(open.clone()));
        assert_eq!(open.peer_as(), 4_200_000_000);
    }

    #[test]
    fn bad_version_and_unknown_parameter_are_open_errors() {
        let body = [3, 0, 1, 0, 90, 1, 2, 3, 4, 0];
        let e = decode(&body).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (2, 1, vec![0, 4]));
        let body = [4, 0, 1, 0, 90, 1, 2, 3, 4, 2, 1, 0];
        assert_eq!(decode(&body).unwrap_err().subcode, 4);
        let body = [4, 0, 1, 0, 90, 1, 2, 3, 4, 4, 2, 2, 65, 9];
        assert_eq!(decode(&body).unwrap_err().subcode, 0);
    }

    #[test]
    fn many_capabilities_are_split_into_parameters() {
        let caps: Vec<_> = (0..60)
            .map(|i| Capability::Unknown {
                code: 100,
                value: vec![i; 2],
            })
            .collect();
        let open = Open {
            my_as: 1,
            hold_time: 0,
            bgp_id: Ipv4Addr::new(1, 1, 1, 1),
            capabilities: caps,
        };
        let mut body = Vec::new();
        open.encode_body(&mut body);
        assert_eq!(decode(&body), Ok(open));
    }
}
