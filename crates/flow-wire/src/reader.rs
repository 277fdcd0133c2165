//! A bounds-checked cursor over a datagram, and big-endian reads that
//! cannot panic.

use crate::error::DecodeError;

/// Reads big-endian integers from a window of a datagram. Positions are
/// absolute (counted from the start of the whole datagram) so that errors
/// raised deep inside a set still name the offset an operator would see in
/// a capture.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            end: data.len(),
        }
    }

    /// The absolute position of the next byte to read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// How many bytes are left in this window.
    pub(crate) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// The unread bytes of this window.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..self.end).unwrap_or_default()
    }

    /// Takes the next `n` bytes, or fails naming `what` was being read.
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let taken = self
            .pos
            .checked_add(n)
            .filter(|&stop| stop <= self.end)
            .and_then(|stop| self.data.get(self.pos..stop));
        match taken {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(DecodeError::new(
                self.pos,
                format!(
                    "{what} needs {n} bytes but only {} remain",
                    self.remaining()
                ),
            )),
        }
    }

    /// Splits off the next `n` bytes as a window of their own (keeping
    /// absolute positions), and moves past them.
    pub(crate) fn window(&mut self, n: usize, what: &str) -> Result<Reader<'a>, DecodeError> {
        let start = self.pos;
        self.bytes(n, what)?;
        Ok(Reader {
            data: self.data,
            pos: start,
            end: self.pos,
        })
    }

    /// Moves past `n` bytes.
    pub(crate) fn skip(&mut self, n: usize, what: &str) -> Result<(), DecodeError> {
        self.bytes(n, what).map(|_| ())
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(be_uint(self.bytes(1, what)?) as u8)
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(be16(self.bytes(2, what)?, 0))
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(be32(self.bytes(4, what)?, 0))
    }

    /// Reads a big-endian `u64`.
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(be64(self.bytes(8, what)?, 0))
    }

    /// Takes a fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, what)?;
        Ok(b.try_into().unwrap_or([0; N]))
    }
}

/// True when `b` is empty or all zero: what padding looks like.
pub(crate) fn is_padding(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Reads `N` bytes at `off`. Callers check lengths first; a read out of
/// range yields zeros instead of panicking, so a mistake there shows up as
/// a wrong value in a test rather than as a crash on the wire.
#[inline]
fn at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    off.checked_add(N)
        .and_then(|stop| b.get(off..stop))
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

/// The big-endian `u16` at `off` (zero when out of range).
#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes(at(b, off))
}

/// The big-endian `u32` at `off` (zero when out of range).
#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(at(b, off))
}

/// The big-endian `u64` at `off` (zero when out of range).
#[inline]
pub(crate) fn be64(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(at(b, off))
}

/// An unsigned integer of any length up to 8 bytes, big-endian. IPFIX's
/// reduced-size encoding (RFC 7011 §6.2) lets an exporter send a counter
/// in fewer bytes than its type, so every integer field is read this way.
/// Longer inputs keep their last 8 bytes; they are never passed here by
/// the decoders, which only map fields of 1 to 8 bytes.
#[inline]
pub(crate) fn be_uint(b: &[u8]) -> u64 {
    match b.len() {
        1 => u64::from(b.first().copied().unwrap_or(0)),
        2 => u64::from(be16(b, 0)),
        4 => u64::from(be32(b, 0)),
        8 => be64(b, 0),
        _ => b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_size_integers() {
        assert_eq!(be_uint(&[]), 0);
        assert_eq!(be_uint(&[1]), 1);
        assert_eq!(be_uint(&[1, 2, 3]), 0x010203);
        assert_eq!(be_uint(&[0, 0, 0, 0, 0, 0, 1, 0]), 256);
        assert_eq!(be_uint(&[1, 2, 3, 4, 5, 6, 7]), 0x01020304050607);
    }

    #[test]
    fn windows_keep_absolute_offsets() {
        let data = [0u8; 10];
        let mut r = Reader::new(&data);
        r.skip(4, "head").unwrap();
        let mut w = r.window(4, "body").unwrap();
        assert_eq!(w.pos(), 4);
        w.skip(3, "x").unwrap();
        let e = w.u16("field").unwrap_err();
        assert_eq!(e.offset(), 7);
        assert_eq!(e.message(), "field needs 2 bytes but only 1 remain");
        assert_eq!(r.pos(), 8);
    }
}
