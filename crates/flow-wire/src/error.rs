//! The one error type of the crate: where in the input a problem is, and what it is.

use std::fmt;

/// A datagram (or a saved state) that could not be decoded.
///
/// The offset counts bytes from the start of the datagram (or of the saved
/// state), so an operator can find the place in a packet capture; the
/// message names the structure being read there, outermost first, for
/// example `offset 84: set 256 (data) claims length 9000 but only 1380
/// bytes remain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    message: String,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        DecodeError {
            offset,
            message: message.into(),
        }
    }

    /// Prefixes the message with the structure the failing read was part
    /// of. It is only called on the error path, so the formatting costs
    /// nothing while decoding succeeds.
    pub(crate) fn within(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The byte offset of the problem, from the start of the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What is wrong there, without the offset.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}
