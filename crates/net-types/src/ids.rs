//! Small identifiers: realms, tenants and tc class handles.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A route realm: a 16-bit id that groups destinations (national, international…).
///
/// The kernel's own route realms are 16 bits wide in `tclassid`, and tollgate
/// keeps the same width so that a realm can be pushed to the kernel unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RealmId(pub u16);

impl fmt::Display for RealmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The operator's identifier of a tenant (a VM, a customer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TenantId(pub u32);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A tc handle, `major:minor`, as used for qdiscs (`major:`) and classes (`major:minor`).
///
/// It is printed the way `tc` prints it: both halves in hexadecimal without a
/// `0x` prefix, so `ClassId::new(1, 0x1a)` reads `1:1a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClassId {
    /// The qdisc half of the handle.
    pub major: u16,
    /// The class half of the handle; 0 names the qdisc itself.
    pub minor: u16,
}

impl ClassId {
    /// Builds a handle from its two halves.
    pub const fn new(major: u16, minor: u16) -> Self {
        ClassId { major, minor }
    }

    /// The handle as the kernel stores it in `skb->priority` and `tcm_handle`.
    pub const fn as_u32(self) -> u32 {
        ((self.major as u32) << 16) | self.minor as u32
    }

    /// The inverse of [`ClassId::as_u32`].
    pub const fn from_u32(raw: u32) -> Self {
        ClassId {
            major: (raw >> 16) as u16,
            minor: raw as u16,
        }
    }

    /// Parses `tc` notation: `1:1a`, `1:` (minor 0) or `none`.
    pub fn parse(text: &str) -> Option<Self> {
        let (maj, min) = text.split_once(':')?;
        let major = u16::from_str_radix(maj, 16).ok()?;
        let minor = if min.is_empty() {
            0
        } else {
            u16::from_str_radix(min, 16).ok()?
        };
        Some(ClassId { major, minor })
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_id_round_trips_through_tc_notation() {
        let id = ClassId::new(0x1, 0x1a);
        assert_eq!(id.to_string(), "1:1a");
        assert_eq!(ClassId::parse("1:1a"), Some(id));
        assert_eq!(ClassId::parse("7:"), Some(ClassId::new(7, 0)));
        assert_eq!(ClassId::from_u32(id.as_u32()), id);
        assert_eq!(ClassId::parse("x:1"), None);
        assert_eq!(ClassId::parse("11"), None);
    }
}
