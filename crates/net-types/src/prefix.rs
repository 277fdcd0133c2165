//! IPv4 and IPv6 prefixes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 network prefix with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Prefix {
    /// An IPv4 prefix.
    V4(Ipv4Addr, u8),
    /// An IPv6 prefix.
    V6(Ipv6Addr, u8),
}

/// Why a prefix was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (hint: {})", self.message, self.hint)
    }
}

impl std::error::Error for PrefixError {}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

impl Prefix {
    /// Parses `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a host prefix).
    pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| PrefixError {
            message: format!("`{addr}` is not an IP address"),
            hint: "write a prefix such as `192.0.2.0/24` or `2001:db8::/48`".into(),
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(v) if v <= max => v,
                _ => {
                    return Err(PrefixError {
                        message: format!("`/{l}` is not a prefix length for this address"),
                        hint: format!("the length must be a number from 0 to {max}"),
                    })
                }
            },
        };
        let prefix = match addr {
            IpAddr::V4(a) => Prefix::V4(a, len),
            IpAddr::V6(a) => Prefix::V6(a, len),
        };
        let network = prefix.network();
        if network != prefix {
            return Err(PrefixError {
                message: format!("`{text}` has host bits set"),
                hint: format!("did you mean `{network}`?"),
            });
        }
        Ok(prefix)
    }

    /// The same prefix with every host bit cleared.
    pub fn network(self) -> Prefix {
        match self {
            Prefix::V4(a, l) => Prefix::V4(Ipv4Addr::from(u32::from(a) & mask4(l)), l),
            Prefix::V6(a, l) => Prefix::V6(Ipv6Addr::from(u128::from(a) & mask6(l)), l),
        }
    }

    /// The prefix length.
    pub fn len(self) -> u8 {
        match self {
            Prefix::V4(_, l) | Prefix::V6(_, l) => l,
        }
    }

    /// Whether this is the default route (`/0`).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(self) -> bool {
        matches!(self, Prefix::V4(..))
    }

    /// Whether `addr` falls inside this prefix.
    pub fn contains(self, addr: IpAddr) -> bool {
        match (self, addr) {
            (Prefix::V4(n, l), IpAddr::V4(a)) => u32::from(a) & mask4(l) == u32::from(n),
            (Prefix::V6(n, l), IpAddr::V6(a)) => u128::from(a) & mask6(l) == u128::from(n),
            _ => false,
        }
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(self, other: Prefix) -> bool {
        match (self, other) {
            (Prefix::V4(a, la), Prefix::V4(b, lb)) => {
                let m = mask4(la.min(lb));
                u32::from(a) & m == u32::from(b) & m
            }
            (Prefix::V6(a, la), Prefix::V6(b, lb)) => {
                let m = mask6(la.min(lb));
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }

    /// The first address of the prefix, widened to 128 bits, for sorting and range checks.
    pub fn start_bits(self) -> u128 {
        match self {
            Prefix::V4(a, _) => u32::from(a) as u128,
            Prefix::V6(a, _) => u128::from(a),
        }
    }

    /// The last address of the prefix, widened to 128 bits.
    pub fn end_bits(self) -> u128 {
        match self {
            Prefix::V4(a, l) => (u32::from(a) | !mask4(l)) as u128,
            Prefix::V6(a, l) => u128::from(a) | !mask6(l),
        }
    }
}

impl TryFrom<String> for Prefix {
    type Error = PrefixError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Prefix::parse(&value)
    }
}

impl From<Prefix> for String {
    fn from(value: Prefix) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::V4(a, l) => write!(f, "{a}/{l}"),
            Prefix::V6(a, l) => write!(f, "{a}/{l}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "192.0.2.0/24",
            "2001:db8::/32",
            "0.0.0.0/0",
            "::/0",
            "203.0.113.7/32",
        ] {
            assert_eq!(Prefix::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Prefix::parse("198.51.100.9").unwrap().to_string(),
            "198.51.100.9/32"
        );
    }

    #[test]
    fn host_bits_are_refused_with_the_network_as_hint() {
        let e = Prefix::parse("192.0.2.1/24").unwrap_err();
        assert!(e.hint.contains("192.0.2.0/24"), "{e}");
        assert!(Prefix::parse("192.0.2.0/33").is_err());
        assert!(Prefix::parse("2001:db8::/129").is_err());
        assert!(Prefix::parse("banana/3").is_err());
    }

    #[test]
    fn overlap_and_containment() {
        let a = Prefix::parse("100.64.0.0/16").unwrap();
        let b = Prefix::parse("100.64.3.0/24").unwrap();
        let c = Prefix::parse("100.65.0.0/16").unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c));
        assert!(a.contains("100.64.200.1".parse().unwrap()));
        assert!(!a.contains("2001:db8::1".parse().unwrap()));
        assert!(!a.overlaps(Prefix::parse("::/0").unwrap()));
        assert_eq!(
            b.start_bits(),
            u32::from(Ipv4Addr::new(100, 64, 3, 0)) as u128
        );
        assert_eq!(
            b.end_bits(),
            u32::from(Ipv4Addr::new(100, 64, 3, 255)) as u128
        );
    }
}
