//! The BGP-4 message codec (RFC 4271 and the extensions tollgate's speaker
//! meets: RFC 4760 multiprotocol, RFC 6793 four-octet AS numbers, RFC 2918
//! route refresh, RFC 1997 and RFC 8092 communities).
//!
//! [`frame_len`] finds message boundaries in a TCP byte stream, [`decode`]
//! turns one whole message into a [`Message`], and [`Message::encode`]
//! does the reverse. Decoding depends on one negotiated fact, whether both
//! sides speak four-octet AS numbers, which is passed in [`WireOptions`].

mod aspath;
mod attrs;
mod error;
mod nlri;
mod open;
mod update;

use crate::bytes::{put_u16, Reader};

pub(crate) use attrs::{decode_attributes, AttrMode};
pub use attrs::{
    decode_path_attributes, encode_path_attributes, AsPathSegment, Origin, PathAttributes,
    RawAttribute, SegmentKind,
};
pub use error::{code, subcode, DecodeError, EncodeError};
pub(crate) use nlri::read_prefix;
pub use open::{Capability, Open, AS_TRANS};
pub use update::{MpReach, MpUnreach, Update};

/// The length of the fixed message header: marker, length and type.
pub const HEADER_LEN: usize = 19;
/// The largest message RFC 4271 allows.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Message type codes.
pub mod msg_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 5;
}

/// The negotiated facts that change how messages are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireOptions {
    /// Both sides announced the four-octet AS capability, so AS_PATH and
    /// AGGREGATOR carry 4-byte AS numbers (RFC 6793).
    pub four_byte_as: bool,
}

/// One BGP message.
// Nearly every message on an established session is an UPDATE, so boxing
// the large variant would cost an allocation per message to save stack
// space on the rare small ones.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// OPEN: the first message on a connection.
    Open(Open),
    /// UPDATE: routes announced and withdrawn.
    Update(Update),
    /// NOTIFICATION: an error, after which the connection closes.
    Notification(Notification),
    /// KEEPALIVE: proof of life, and the acknowledgement of an OPEN.
    Keepalive,
    /// ROUTE-REFRESH: a request to resend all routes of one family.
    RouteRefresh(RouteRefresh),
}

/// A NOTIFICATION message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The error code ([`code`]).
    pub code: u8,
    /// The error subcode ([`subcode`]).
    pub subcode: u8,
    /// Diagnostic data whose meaning depends on the code.
    pub data: Vec<u8>,
}

/// A ROUTE-REFRESH message (RFC 2918).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    /// The address family identifier.
    pub afi: u16,
    /// The subsequent address family identifier.
    pub safi: u8,
}

/// Finds the length of the first message in `buf`.
///
/// Returns `Ok(None)` while the header is incomplete and `Ok(Some(len))`
/// once the header is readable, even if the body has not fully arrived;
/// the caller waits until `buf.len() >= len`. A bad marker or a length
/// outside 19..=4096 is an error, because no later byte can repair it.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if header[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::new(
            code::MESSAGE_HEADER,
            subcode::header::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "marker is not all ones",
        ));
    }
    let len = u16::from_be_bytes([header[16], header[17]]);
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&(len as usize)) {
        return Err(bad_length(len));
    }
    Ok(Some(len as usize))
}

/// The error for a length field that does not fit the message type; RFC
/// 4271 §6.1 echoes the erroneous length field as data.
fn bad_length(len: u16) -> DecodeError {
    DecodeError::new(
        code::MESSAGE_HEADER,
        subcode::header::BAD_MESSAGE_LENGTH,
        len.to_be_bytes().to_vec(),
        "message length is out of range for its type",
    )
}

/// Decodes exactly one message; `msg` must hold the whole message and
/// nothing more (see [`frame_len`]).
pub fn decode(msg: &[u8], opts: WireOptions) -> Result<Message, DecodeError> {
    let declared = match frame_len(msg)? {
        Some(len) => len,
        None => return Err(bad_length(msg.len().min(u16::MAX as usize) as u16)),
    };
    if declared != msg.len() {
        return Err(bad_length(declared as u16));
    }
    let len = declared as u16;
    let kind = msg[18];
    let body = &msg[HEADER_LEN..];
    // RFC 4271 §6.1: each type has a minimum length, KEEPALIVE an exact one.
    let min = match kind {
        msg_type::OPEN => 29,
        msg_type::UPDATE => 23,
        msg_type::NOTIFICATION => 21,
        msg_type::KEEPALIVE => 19,
        // RFC 7313 gives ROUTE-REFRESH its own length error, checked below.
        msg_type::ROUTE_REFRESH => 19,
        other => {
            return Err(DecodeError::new(
                code::MESSAGE_HEADER,
                subcode::header::BAD_MESSAGE_TYPE,
                vec![other],
                "unknown message type",
            ))
        }
    };
    if (len as usize) < min || (kind == msg_type::KEEPALIVE && len as usize != min) {
        return Err(bad_length(len));
    }
    match kind {
        msg_type::OPEN => open::decode(body).map(Message::Open),
        msg_type::UPDATE => update::decode(body, opts).map(Message::Update),
        msg_type::NOTIFICATION => Ok(Message::Notification(Notification {
            code: body[0],
            subcode: body[1],
            data: body[2..].to_vec(),
        })),
        msg_type::KEEPALIVE => Ok(Message::Keepalive),
        _ => decode_route_refresh(body),
    }
}

fn decode_route_refresh(body: &[u8]) -> Result<Message, DecodeError> {
    // RFC 7313 §5 defines its own error for a ROUTE-REFRESH of the wrong
    // size and asks for the whole message as data; the body is enough to
    // identify it, and the header is fixed.
    let mut r = Reader::new(body);
    match (r.u16(), r.u8(), r.u8(), r.is_empty()) {
        (Some(afi), Some(_reserved), Some(safi), true) => {
            Ok(Message::RouteRefresh(RouteRefresh { afi, safi }))
        }
        _ => Err(DecodeError::new(
            code::ROUTE_REFRESH_MESSAGE,
            subcode::route_refresh::INVALID_MESSAGE_LENGTH,
            body.to_vec(),
            "ROUTE-REFRESH body is not 4 bytes",
        )),
    }
}

impl Message {
    /// Encodes the message with its header.
    pub fn encode(&self, opts: WireOptions) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![0xff; 16];
        out.extend_from_slice(&[0, 0, 0]);
        let kind = match self {
            Message::Open(open) => {
                open.encode_body(&mut out);
                msg_type::OPEN
            }
            Message::Update(update) => {
                update.encode_body(&mut out, opts)?;
                msg_type::UPDATE
            }
            Message::Notification(n) => {
                out.push(n.code);
                out.push(n.subcode);
                out.extend_from_slice(&n.data);
                msg_type::NOTIFICATION
            }
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(rr) => {
                put_u16(&mut out, rr.afi);
                out.push(0);
                out.push(rr.safi);
                msg_type::ROUTE_REFRESH
            }
        };
        if out.len() > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong { len: out.len() });
        }
        let len = (out.len() as u16).to_be_bytes();
        out[16] = len[0];
        out[17] = len[1];
        out[18] = kind;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u16, kind: u8) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&len.to_be_bytes());
        m.push(kind);
        m
    }

    #[test]
    fn keepalive_round_trips() {
        let bytes = Message::Keepalive.encode(WireOptions::default()).unwrap();
        assert_eq!(bytes, header(19, 4));
        assert_eq!(
            decode(&bytes, WireOptions::default()),
            Ok(Message::Keepalive)
        );
    }

    #[test]
    fn header_errors_carry_the_rfc_codes() {
        let mut bad_marker = header(19, 4);
        bad_marker[3] = 0;
        let e = decode(&bad_marker, WireOptions::default()).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 1));

        let mut long_keepalive = header(20, 4);
        long_keepalive.push(0);
        let e = decode(&long_keepalive, WireOptions::default()).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (1, 2, vec![0, 20]));

        let e = decode(&header(19, 9), WireOptions::default()).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (1, 3, vec![9]));

        assert_eq!(frame_len(&header(18, 4)).unwrap_err().subcode, 2);
        assert_eq!(frame_len(&header(4097, 2)).unwrap_err().subcode, 2);
        assert_eq!(frame_len(&header(19, 4)[..10]), Ok(None));
    }

    #[test]
    fn notification_and_route_refresh_round_trip() {
        let opts = WireOptions::default();
        for m in [
            Message::Notification(Notification {
                code: 6,
                subcode: 2,
                data: vec![1, 2, 3],
            }),
            Message::RouteRefresh(RouteRefresh { afi: 2, safi: 1 }),
        ] {
            assert_eq!(decode(&m.encode(opts).unwrap(), opts), Ok(m));
        }
        let mut short_rr = header(22, 5);
        short_rr.extend_from_slice(&[0, 1, 0]);
        let e = decode(&short_rr, opts).unwrap_err();
        assert_eq!((e.code, e.subcode), (7, 1));
        let mut long_rr = header(24, 5);
        long_rr.extend_from_slice(&[0, 1, 0, 1, 0]);
        let e = decode(&long_rr, opts).unwrap_err();
        assert_eq!((e.code, e.subcode), (7, 1));
    }
}
