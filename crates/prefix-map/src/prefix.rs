//! The validated prefix type and the error for invalid prefix lengths.

use std::fmt;

use crate::key::Key;

/// A prefix length longer than the address width was given.
///
/// This is the only way an operation on a [`crate::PrefixMap`] can fail:
/// host bits set after the prefix length are not an error, they are cleared,
/// the same way routers normalise `10.1.2.3/8` to `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixError {
    /// The length that was asked for.
    pub len: u8,
    /// The longest valid length for the family: 32 or 128.
    pub max: u8,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid prefix length /{}: the longest allowed is /{}",
            self.len, self.max
        )
    }
}

impl std::error::Error for PrefixError {}

/// Checks a prefix length against the family's width.
#[inline]
pub(crate) fn check_len<K: Key>(len: u8) -> Result<u32, PrefixError> {
    if len <= K::BITS {
        Ok(u32::from(len))
    } else {
        Err(PrefixError { len, max: K::BITS })
    }
}

/// A network prefix of one family: an address with its host bits cleared,
/// and a length no longer than the address width.
///
/// `Prefix<u32>` is an IPv4 prefix and `Prefix<u128>` an IPv6 prefix. It is
/// what [`crate::PrefixMap::iter`] yields, and collecting `(Prefix, value)`
/// pairs builds a map with the fast bulk constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix<K> {
    addr: K,
    len: u8,
}

impl<K: Key> Prefix<K> {
    /// Makes a prefix, clearing any host bits after `len`.
    ///
    /// Fails only when `len` is longer than the address width.
    pub fn new(addr: impl Into<K>, len: u8) -> Result<Self, PrefixError> {
        let l = check_len::<K>(len)?;
        Ok(Prefix {
            addr: addr.into().truncate(l),
            len,
        })
    }

    /// Builds a prefix from parts the caller already validated.
    pub(crate) fn from_parts(addr: K, len: u8) -> Self {
        Prefix { addr, len }
    }

    /// The first address of the prefix (host bits are always zero).
    pub fn addr(&self) -> K {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` lies inside the prefix.
    pub fn contains(&self, addr: impl Into<K>) -> bool {
        addr.into().truncate(u32::from(self.len)) == self.addr
    }
}

impl<K: Key> fmt::Display for Prefix<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.addr.fmt_addr(f)?;
        write!(f, "/{}", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn new_clears_host_bits_and_rejects_long_lengths() {
        let p = Prefix::<u32>::new(Ipv4Addr::new(10, 1, 2, 3), 8).unwrap();
        assert_eq!(p.addr(), u32::from(Ipv4Addr::new(10, 0, 0, 0)));
        assert_eq!(p.prefix_len(), 8);
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(Ipv4Addr::new(10, 255, 0, 1)));
        assert!(!p.contains(Ipv4Addr::new(11, 0, 0, 0)));
        assert_eq!(
            Prefix::<u32>::new(0u32, 33),
            Err(PrefixError { len: 33, max: 32 })
        );
        let p6 = Prefix::<u128>::new("2001:db8::1".parse::<Ipv6Addr>().unwrap(), 32).unwrap();
        assert_eq!(p6.to_string(), "2001:db8::/32");
        assert!(Prefix::<u128>::new(0u128, 129).is_err());
        assert!(Prefix::<u128>::new(u128::MAX, 128).is_ok());
        let e = PrefixError { len: 40, max: 32 };
        assert_eq!(
            e.to_string(),
            "invalid prefix length /40: the longest allowed is /32"
        );
    }
}
