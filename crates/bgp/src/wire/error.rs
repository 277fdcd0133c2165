//! Decoding errors that already know which NOTIFICATION to send.
//!
//! RFC 4271 §6 ties every kind of malformed input to an error code, a
//! subcode and the data to echo back. Choosing them at the place where the
//! problem is found, rather than in the session, keeps that knowledge next
//! to the parsing rule it belongs to.

use std::fmt;

use super::Notification;

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313).
pub mod code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN_MESSAGE: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
}

/// NOTIFICATION error subcodes, grouped by the code they belong to.
pub mod subcode {
    /// The subcode for errors no specific subcode describes.
    pub const UNSPECIFIC: u8 = 0;

    /// Message Header Error subcodes.
    pub mod header {
        /// The marker is not all ones.
        pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
        /// The length field is out of range for the message.
        pub const BAD_MESSAGE_LENGTH: u8 = 2;
        /// The type field is unknown.
        pub const BAD_MESSAGE_TYPE: u8 = 3;
    }

    /// OPEN Message Error subcodes.
    pub mod open {
        /// The version is not 4.
        pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
        /// The peer's AS is not the one configured.
        pub const BAD_PEER_AS: u8 = 2;
        /// The BGP identifier is not acceptable.
        pub const BAD_BGP_IDENTIFIER: u8 = 3;
        /// An optional parameter type is unknown.
        pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
        /// The hold time is one or two seconds.
        pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    }

    /// UPDATE Message Error subcodes.
    pub mod update {
        /// Lengths do not add up, or an attribute appears twice.
        pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
        /// A well-known attribute type is unknown.
        pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
        /// A mandatory attribute is missing.
        pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
        /// The attribute flags do not match the type.
        pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
        /// The attribute length does not match the type.
        pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
        /// The ORIGIN value is undefined.
        pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
        /// The NEXT_HOP is not a usable address.
        pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
        /// An optional attribute is malformed.
        pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
        /// A prefix in the withdrawn or NLRI field is malformed.
        pub const INVALID_NETWORK_FIELD: u8 = 10;
        /// The AS_PATH is malformed.
        pub const MALFORMED_AS_PATH: u8 = 11;
    }

    /// ROUTE-REFRESH Message Error subcodes (RFC 7313).
    pub mod route_refresh {
        /// The message is not exactly 23 bytes long.
        pub const INVALID_MESSAGE_LENGTH: u8 = 1;
    }
}

/// Why a message could not be decoded, and what to tell the peer about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The NOTIFICATION error code to send.
    pub code: u8,
    /// The NOTIFICATION error subcode to send.
    pub subcode: u8,
    /// The NOTIFICATION data field, as RFC 4271 §6 prescribes for the case.
    pub data: Vec<u8>,
    /// A short human explanation, for logs.
    pub reason: &'static str,
}

impl DecodeError {
    /// Builds an error from its parts.
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, reason: &'static str) -> Self {
        DecodeError {
            code,
            subcode,
            data,
            reason,
        }
    }

    /// An UPDATE Message Error with the given subcode and data.
    pub(crate) fn update(subcode: u8, data: &[u8], reason: &'static str) -> Self {
        DecodeError::new(code::UPDATE_MESSAGE, subcode, data.to_vec(), reason)
    }

    /// An OPEN Message Error with the given subcode and no data.
    pub(crate) fn open(subcode: u8, reason: &'static str) -> Self {
        DecodeError::new(code::OPEN_MESSAGE, subcode, Vec::new(), reason)
    }

    /// The NOTIFICATION message that reports this error to the peer.
    pub fn notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (NOTIFICATION {}/{})",
            self.reason, self.code, self.subcode
        )
    }
}

impl std::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The message would exceed the 4096-byte maximum of RFC 4271.
    TooLong {
        /// The length the message would have had.
        len: usize,
    },
    /// An attribute value is longer than the 65535 bytes its length field holds.
    AttributeTooLong {
        /// The attribute type code.
        type_code: u8,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { len } => {
                write!(f, "message of {len} bytes exceeds the BGP maximum of 4096")
            }
            EncodeError::AttributeTooLong { type_code } => {
                write!(f, "attribute {type_code} is longer than 65535 bytes")
            }
        }
    }
}

impl std::error::Error for EncodeError {}
