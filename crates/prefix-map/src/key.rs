//! Address keys: the two address families as plain unsigned integers.
//!
//! The table works on `u32` (IPv4) and `u128` (IPv6) rather than on
//! `Ipv4Addr`/`Ipv6Addr` because every step of a lookup is a shift and a
//! mask, and both standard address types convert to and from these integers
//! for free. The operations the table needs are kept in a sealed trait so
//! that the public surface stays small and no outside type can pretend to be
//! an address family.

use std::fmt;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

pub(crate) mod sealed {
    use std::fmt;

    /// Operations the table needs from an address family. It lives in a
    /// private module so that only `u32` and `u128` can ever implement
    /// [`super::Key`].
    pub trait Sealed: Copy {
        /// Bits resolved by the direct-pointing first level of the trie.
        const DIR_BITS: u32;
        /// Layout of the direct level (see `dir.rs`).
        type Dir: crate::dir::DirLevel;
        /// Whether most lookups walk below the direct level, so that a
        /// single lookup is worth a call into a copy compiled for `popcnt`
        /// (see `cpu.rs`) rather than being inlined into the caller.
        const WALKS_DEEP: bool;
        /// Key of the ordered shadow map: sorts by address first and prefix
        /// length second, so that every prefix inside an address range is
        /// one contiguous run of keys.
        type Shadow: Ord + Copy;

        /// Clears every bit after the first `len` bits (`len` ≤ width).
        fn truncate(self, len: u32) -> Self;
        /// Sets every bit after the first `len` bits (`len` ≤ width): the
        /// last address of the prefix.
        fn last_in(self, len: u32) -> Self;
        /// The top `n` bits as an index (1 ≤ `n` ≤ 32).
        fn top(self, n: u32) -> usize;
        /// Index of the address in the direct-pointing level.
        #[inline(always)]
        fn dir_index(self) -> usize {
            self.top(Self::DIR_BITS)
        }
        /// First address covered by direct-pointing slot `i`.
        fn from_dir_index(i: usize) -> Self;
        /// The six bits that start `d` bits from the top, padded with zero
        /// bits past the end of the address; `d` must be below the width.
        fn chunk(self, d: u32) -> usize;
        /// The 64 bits that start `d` bits from the top, padded with zero
        /// bits past the end of the address; `d` must be below the width.
        fn window(self, d: u32) -> u64;
        /// Sets the bits from `d` bits below the top to the end of the
        /// address from `w`, the inverse of `window`: the bits of `self`
        /// there must be clear, and bits of `w` past the end are dropped.
        fn put_window(self, d: u32, w: u64) -> Self;
        /// Sets the six bits that start `d` bits from the top to `s`; the
        /// chunk must lie inside the address (`d + 6` ≤ width).
        fn with_chunk(self, d: u32, s: usize) -> Self;
        /// The first `len` bits of `self` followed by the remaining bits of
        /// `host`.
        fn splice(self, len: u32, host: Self) -> Self;
        /// Packs a prefix into its shadow-map key.
        fn enc(self, len: u8) -> Self::Shadow;
        /// Unpacks a shadow-map key.
        fn dec(s: Self::Shadow) -> (Self, u8);
        /// Writes the address in the family's usual text form.
        fn fmt_addr(self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
        /// Adds one with wrap-around, used by tests to probe both sides of a
        /// prefix boundary.
        fn wrapping_inc(self) -> Self;
        /// Subtracts one with wrap-around.
        fn wrapping_dec(self) -> Self;
    }
}

/// An address family usable as the key of a [`crate::PrefixMap`]: `u32` for
/// IPv4 and `u128` for IPv6.
///
/// The trait is sealed; `Ipv4Addr` and `Ipv6Addr` are accepted everywhere
/// through their `Into<u32>` and `Into<u128>` conversions.
pub trait Key:
    sealed::Sealed + Copy + Ord + Eq + Hash + fmt::Debug + Default + Send + Sync + 'static
{
    /// Width of an address in bits: 32 or 128.
    const BITS: u8;
}

impl Key for u32 {
    const BITS: u8 = 32;
}

impl Key for u128 {
    const BITS: u8 = 128;
}

impl sealed::Sealed for u32 {
    // Eighteen bits put the most common IPv4 lengths (/19 to /24) inside the
    // bucket's six-bit node, so a /24 is answered by one cache line. A full
    // table populates most of the 2^18 buckets, 16 MiB in all, so they form
    // one dense array.
    const DIR_BITS: u32 = 18;
    type Dir = crate::dir::DenseDir;
    // A full IPv4 table ends nearly every lookup in the direct bucket,
    // where inlining into the caller's loop beats a call (measured).
    const WALKS_DEEP: bool = false;
    type Shadow = u64;

    #[inline(always)]
    fn truncate(self, len: u32) -> Self {
        self & u32::MAX.checked_shl(32 - len).unwrap_or(0)
    }
    #[inline(always)]
    fn last_in(self, len: u32) -> Self {
        self | u32::MAX.checked_shr(len).unwrap_or(0)
    }
    #[inline(always)]
    fn top(self, n: u32) -> usize {
        (self >> (32 - n)) as usize
    }
    #[inline(always)]
    fn from_dir_index(i: usize) -> Self {
        (i as u32) << (32 - Self::DIR_BITS)
    }
    #[inline(always)]
    fn chunk(self, d: u32) -> usize {
        ((self << d) >> 26) as usize
    }
    #[inline(always)]
    fn window(self, d: u32) -> u64 {
        (u64::from(self) << 32) << d
    }
    fn put_window(self, d: u32, w: u64) -> Self {
        self | ((w >> 32) >> d) as u32
    }
    fn with_chunk(self, d: u32, s: usize) -> Self {
        self | ((s as u32) << (26 - d))
    }
    fn splice(self, len: u32, host: Self) -> Self {
        self.truncate(len) | (host & !u32::MAX.checked_shl(32 - len).unwrap_or(0))
    }
    #[inline(always)]
    fn enc(self, len: u8) -> u64 {
        (u64::from(self) << 8) | u64::from(len)
    }
    #[inline(always)]
    fn dec(s: u64) -> (Self, u8) {
        ((s >> 8) as u32, s as u8)
    }
    fn fmt_addr(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Ipv4Addr::from(self), f)
    }
    fn wrapping_inc(self) -> Self {
        self.wrapping_add(1)
    }
    fn wrapping_dec(self) -> Self {
        self.wrapping_sub(1)
    }
}

impl sealed::Sealed for u128 {
    // Almost no IPv6 route is shorter than /16 and the populated space is a
    // handful of /12 registry blocks, so even this level is mostly empty: a
    // full table populates about 80 of the 2^16 slots, which is why it is
    // sparse (a 256 KiB index and a bucket per populated slot).
    const DIR_BITS: u32 = 16;
    type Dir = crate::dir::SparseDir;
    // IPv6 lookups walk three to five nodes below the direct level.
    const WALKS_DEEP: bool = true;
    type Shadow = (u128, u8);

    #[inline(always)]
    fn truncate(self, len: u32) -> Self {
        self & u128::MAX.checked_shl(128 - len).unwrap_or(0)
    }
    #[inline(always)]
    fn last_in(self, len: u32) -> Self {
        self | u128::MAX.checked_shr(len).unwrap_or(0)
    }
    #[inline(always)]
    fn top(self, n: u32) -> usize {
        (self >> (128 - n)) as usize
    }
    #[inline(always)]
    fn from_dir_index(i: usize) -> Self {
        (i as u128) << (128 - Self::DIR_BITS)
    }
    #[inline(always)]
    fn chunk(self, d: u32) -> usize {
        ((self << d) >> 122) as usize
    }
    #[inline(always)]
    fn window(self, d: u32) -> u64 {
        ((self << d) >> 64) as u64
    }
    fn put_window(self, d: u32, w: u64) -> Self {
        self | ((u128::from(w) << 64) >> d)
    }
    fn with_chunk(self, d: u32, s: usize) -> Self {
        self | ((s as u128) << (122 - d))
    }
    fn splice(self, len: u32, host: Self) -> Self {
        self.truncate(len) | (host & !u128::MAX.checked_shl(128 - len).unwrap_or(0))
    }
    #[inline(always)]
    fn enc(self, len: u8) -> (u128, u8) {
        (self, len)
    }
    #[inline(always)]
    fn dec(s: (u128, u8)) -> (Self, u8) {
        s
    }
    fn fmt_addr(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Ipv6Addr::from(self), f)
    }
    fn wrapping_inc(self) -> Self {
        self.wrapping_add(1)
    }
    fn wrapping_dec(self) -> Self {
        self.wrapping_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;

    #[test]
    fn truncate_and_last_cover_the_edges() {
        assert_eq!(0xdead_beef_u32.truncate(0), 0);
        assert_eq!(0xdead_beef_u32.truncate(32), 0xdead_beef);
        assert_eq!(0xdead_beef_u32.truncate(8), 0xde00_0000);
        assert_eq!(0xde00_0000_u32.last_in(8), 0xdeff_ffff);
        assert_eq!(0_u32.last_in(0), u32::MAX);
        assert_eq!(7_u32.last_in(32), 7);
        assert_eq!(u128::MAX.truncate(0), 0);
        assert_eq!(u128::MAX.truncate(128), u128::MAX);
        assert_eq!(0_u128.last_in(0), u128::MAX);
        assert_eq!(0_u128.last_in(127), 1);
    }

    #[test]
    fn chunks_pad_with_zeros_past_the_end() {
        // Bits 30 and 31 of an IPv4 address are the top of a six-bit chunk
        // whose four missing bits read as zero.
        assert_eq!(0b11_u32.chunk(30), 0b11_0000);
        assert_eq!(0xffff_ffff_u32.chunk(18), 0b11_1111);
        assert_eq!(0xf_u128.chunk(124), 0b11_1100);
        assert_eq!((1_u128 << 127).chunk(0), 0b10_0000);
    }

    #[test]
    fn windows_pad_with_zeros_past_the_end() {
        assert_eq!(0xdead_beef_u32.window(0), 0xdead_beef_0000_0000);
        assert_eq!(0xdead_beef_u32.window(16), 0xbeef_0000_0000_0000);
        assert_eq!(0xdead_beef_u32.window(31), 1 << 63);
        let a = (0x0123_4567_89ab_cdef_u128 << 64) | 0xfedc_ba98_7654_3210;
        assert_eq!(a.window(0), 0x0123_4567_89ab_cdef);
        assert_eq!(a.window(64), 0xfedc_ba98_7654_3210);
        assert_eq!(a.window(120), 0x1000_0000_0000_0000);
        for d in [0, 1, 31] {
            let x = 0xdead_beef_u32;
            assert_eq!(x.truncate(d).put_window(d, x.window(d)), x);
        }
        for d in [0, 17, 64, 100, 127] {
            assert_eq!(
                a.truncate(d).put_window(d, a.window(d)),
                a.truncate((d + 64).min(128))
            );
        }
    }

    #[test]
    fn shadow_keys_sort_by_address_then_length() {
        let a = 10_u32 << 24;
        assert!(a.enc(8) < a.enc(9));
        assert!(a.enc(32) < (a + 1).enc(0));
        assert_eq!(u32::dec(a.enc(17)), (a, 17));
    }
}
