//! ClickHouse's RowBinary format, both ways, for the few types the store
//! uses: little-endian integers, `Decimal128` (a little-endian `i128`),
//! `String` and `Array(T)` (a LEB128 length, then the bytes or elements).
//!
//! Chosen over `RowBinaryWithNamesAndTypes` (absent from 18.16) and the
//! text formats (TabSeparated must escape the state's bytes, JSON quotes
//! 64-bit integers): exact, compact and the same on every version.

/// Appends values to a RowBinary body.
#[derive(Default)]
pub struct Writer {
    /// The body so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// A LEB128 length.
    pub fn len(&mut self, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// A `UInt8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A `UInt16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `UInt32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `UInt64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// An `Int64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `String` (any bytes).
    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    /// An `Array(T)` of `items`, each written by `each`.
    pub fn array<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Writer, &T)) {
        self.len(items.len());
        for item in items {
            each(self, item);
        }
    }
}

/// Why an answer could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Truncated(pub &'static str);

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the answer ends inside a {}", self.0)
    }
}

impl std::error::Error for Truncated {}

/// Reads values from a RowBinary answer.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Whether everything was read.
    pub fn done(&self) -> bool {
        self.buf.is_empty()
    }

    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Truncated> {
        let (head, rest) = self.buf.split_first_chunk::<N>().ok_or(Truncated(what))?;
        self.buf = rest;
        Ok(*head)
    }

    /// A `UInt8`.
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.take::<1>("UInt8")?[0])
    }

    /// A `UInt16`.
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.take("UInt16")?))
    }

    /// A `UInt32`.
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.take("UInt32")?))
    }

    /// A `UInt64`.
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.take("UInt64")?))
    }

    /// An `Int64`.
    pub fn i64(&mut self) -> Result<i64, Truncated> {
        Ok(i64::from_le_bytes(self.take("Int64")?))
    }

    /// A `Decimal128` with scale 0, or an `Int128`.
    pub fn i128(&mut self) -> Result<i128, Truncated> {
        Ok(i128::from_le_bytes(self.take("Decimal128")?))
    }

    /// A LEB128 length (of a `String` or an `Array`).
    pub fn len(&mut self) -> Result<usize, Truncated> {
        let mut n: usize = 0;
        let mut shift = 0;
        loop {
            let b = self.u8()?;
            if shift > 63 {
                return Err(Truncated("String length"));
            }
            n |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
    }

    /// A `String`'s bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.len()?;
        if n > self.buf.len() {
            return Err(Truncated("String"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_short_input_is_an_error() {
        let mut w = Writer::default();
        w.u8(7);
        w.u16(65_000);
        w.u32(4_000_000_000);
        w.u64(u64::MAX);
        w.i64(-5);
        w.bytes(&[0u8; 300]);
        w.buf.extend_from_slice(&(-3i128).to_le_bytes());
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(65_000));
        assert_eq!(r.u32(), Ok(4_000_000_000));
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.bytes().map(<[u8]>::len), Ok(300));
        assert_eq!(r.i128(), Ok(-3));
        assert!(r.done());
        assert!(Reader::new(&[1, 2]).u32().is_err());
        assert!(Reader::new(&[5, 1]).bytes().is_err());
        // 300 is 0xAC 0x02 in LEB128.
        assert_eq!(&w.buf[1 + 2 + 4 + 8 + 8..][..2], &[0xAC, 0x02]);
    }
}
