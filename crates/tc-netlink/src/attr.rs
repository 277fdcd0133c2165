//! Netlink message and attribute framing: writing into a `Vec<u8>` and
//! reading from a byte slice.
//!
//! Writing never allocates beyond growing the caller's buffer: lengths of
//! messages and nests are patched in place once their contents are known.

use crate::consts::{NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN};
use crate::decode::DecodeError;

/// Rounds up to netlink's 4-byte alignment.
pub(crate) const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn pad(out: &mut Vec<u8>) {
    out.resize(align4(out.len()), 0);
}

/// Starts a message: pads `out` so the message begins 4-aligned, writes a
/// header with a zero length, and returns the message's start offset for
/// [`end_msg`].
pub(crate) fn begin_msg(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32) -> usize {
    pad(out);
    let start = out.len();
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    // Port id 0: the kernel fills in the sender's.
    out.extend_from_slice(&0u32.to_ne_bytes());
    start
}

/// Finishes a message: pads it and writes its length.
pub(crate) fn end_msg(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Appends one attribute. A payload too long for the 16-bit length is cut
/// (the kernel then refuses the message, as it would refuse the whole
/// payload: nothing tollgate sends comes near 64 KiB).
pub(crate) fn put(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let payload = &payload[..payload.len().min(u16::MAX as usize - NLA_HDRLEN)];
    out.extend_from_slice(&((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    pad(out);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, ty: u16, v: u16) {
    put(out, ty, &v.to_ne_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, ty: u16, v: u32) {
    put(out, ty, &v.to_ne_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, ty: u16, v: u64) {
    put(out, ty, &v.to_ne_bytes());
}

/// Appends a NUL-terminated string attribute.
pub(crate) fn put_str(out: &mut Vec<u8>, ty: u16, s: &str) {
    let len = (s.len() + 1).min(u16::MAX as usize - NLA_HDRLEN);
    out.extend_from_slice(&((NLA_HDRLEN + len) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&s.as_bytes()[..len - 1]);
    out.push(0);
    pad(out);
}

/// Starts a nested attribute; returns its offset for [`end_nest`].
pub(crate) fn begin_nest(out: &mut Vec<u8>, ty: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    start
}

/// Finishes a nested attribute by writing its length.
pub(crate) fn end_nest(out: &mut [u8], start: usize) {
    let len = (out.len() - start).min(u16::MAX as usize) as u16;
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// A bounds-checked little reader over a fixed-layout struct.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Reads a struct of at least `min` bytes; a shorter payload is an error
    /// naming `field`. Longer payloads are accepted: the kernel may append
    /// members to uapi structs.
    pub(crate) fn new(buf: &'a [u8], min: usize, field: &'static str) -> Result<Self, DecodeError> {
        if buf.len() < min {
            return Err(DecodeError::Truncated {
                field,
                need: min,
                have: buf.len(),
            });
        }
        Ok(Fields { buf })
    }

    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        // `new` checked the minimum length; callers only read inside it, and
        // a mistake here must still not panic, so fall back to zeros.
        let mut a = [0u8; N];
        if let Some(s) = self.buf.get(at..at + N) {
            a.copy_from_slice(s);
        }
        a
    }

    pub(crate) fn u16(&self, at: usize) -> u16 {
        u16::from_ne_bytes(self.bytes(at))
    }
    pub(crate) fn u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.bytes(at))
    }
    pub(crate) fn i32(&self, at: usize) -> i32 {
        i32::from_ne_bytes(self.bytes(at))
    }
    pub(crate) fn u64(&self, at: usize) -> u64 {
        u64::from_ne_bytes(self.bytes(at))
    }
}

/// Reads a u32 attribute payload exactly.
pub(crate) fn get_u32(p: &[u8], field: &'static str) -> Result<u32, DecodeError> {
    match <[u8; 4]>::try_from(p) {
        Ok(a) => Ok(u32::from_ne_bytes(a)),
        Err(_) => Err(DecodeError::Length {
            field,
            len: p.len(),
        }),
    }
}

/// Reads a u16 attribute payload exactly.
pub(crate) fn get_u16(p: &[u8], field: &'static str) -> Result<u16, DecodeError> {
    match <[u8; 2]>::try_from(p) {
        Ok(a) => Ok(u16::from_ne_bytes(a)),
        Err(_) => Err(DecodeError::Length {
            field,
            len: p.len(),
        }),
    }
}

/// Reads a u64 attribute payload exactly.
pub(crate) fn get_u64(p: &[u8], field: &'static str) -> Result<u64, DecodeError> {
    match <[u8; 8]>::try_from(p) {
        Ok(a) => Ok(u64::from_ne_bytes(a)),
        Err(_) => Err(DecodeError::Length {
            field,
            len: p.len(),
        }),
    }
}

/// Reads a string attribute: up to the first NUL (the kernel always sends
/// one, but a missing one is tolerated), bytes that are not UTF-8 replaced.
pub(crate) fn get_str(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

/// Iterates over the attributes in `buf`, yielding `(type, payload)` with
/// the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` flags removed from the type.
/// An attribute whose length is below the header size or runs past the
/// buffer ends the iteration with an error naming `field`.
pub(crate) struct Attrs<'a> {
    buf: &'a [u8],
    field: &'static str,
}

pub(crate) fn attrs<'a>(buf: &'a [u8], field: &'static str) -> Attrs<'a> {
    Attrs { buf, field }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Fewer than a header's worth of bytes left is trailing padding.
        if self.buf.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes([self.buf[0], self.buf[1]]) as usize;
        let ty = u16::from_ne_bytes([self.buf[2], self.buf[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > self.buf.len() {
            let err = DecodeError::Attribute {
                field: self.field,
                ty,
                len,
                have: self.buf.len(),
            };
            self.buf = &[];
            return Some(Err(err));
        }
        let payload = &self.buf[NLA_HDRLEN..len];
        self.buf = self.buf.get(align4(len)..).unwrap_or(&[]);
        Some(Ok((ty, payload)))
    }
}

/// The header of one message, split off the front of a buffer.
pub(crate) struct RawMsg<'a> {
    pub(crate) len: u32,
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) pid: u32,
    /// Everything after the 16-byte header, up to `len`.
    pub(crate) payload: &'a [u8],
}

/// Splits the first message off `buf`. On success returns the message and
/// the rest of the buffer (from the next 4-aligned offset); on error the
/// message boundaries are lost and parsing must stop.
pub(crate) fn split_msg(buf: &[u8]) -> Result<(RawMsg<'_>, &[u8]), DecodeError> {
    let f = Fields::new(buf, NLMSG_HDRLEN, "nlmsghdr")?;
    let len = f.u32(0);
    let l = len as usize;
    if l < NLMSG_HDRLEN || l > buf.len() {
        return Err(DecodeError::Length {
            field: "nlmsghdr.nlmsg_len",
            len: l,
        });
    }
    let msg = RawMsg {
        len,
        ty: f.u16(4),
        flags: f.u16(6),
        seq: f.u32(8),
        pid: f.u32(12),
        payload: &buf[NLMSG_HDRLEN..l],
    };
    let rest = buf.get(align4(l)..).unwrap_or(&[]);
    Ok((msg, rest))
}
