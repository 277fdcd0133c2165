//! Routes as the rest of tollgate sees them: a prefix and its attributes.

use std::sync::Arc;

use net_types::Prefix;

use crate::wire::PathAttributes;

/// One route: a prefix and the path attributes it was announced with.
///
/// The attributes sit behind an [`Arc`] because one UPDATE (and one MRT
/// attribute set) commonly covers many prefixes; sharing them keeps a full
/// table from storing the same AS path a hundred thousand times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The destination.
    pub prefix: Prefix,
    /// The attributes; `next_hop` is the effective next hop for this
    /// prefix's family.
    pub attrs: Arc<PathAttributes>,
}

/// The address families this crate negotiates and decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    Ipv4Unicast,
    /// IPv6 unicast (AFI 2, SAFI 1).
    Ipv6Unicast,
}

impl Family {
    /// The AFI and SAFI numbers of the family.
    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (1, 1),
            Family::Ipv6Unicast => (2, 1),
        }
    }

    /// The family with these AFI and SAFI numbers, if this crate knows it.
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    /// Whether prefixes of this family are IPv6.
    pub(crate) fn is_v6(self) -> bool {
        self == Family::Ipv6Unicast
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afi_safi_round_trips() {
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let (afi, safi) = f.afi_safi();
            assert_eq!(Family::from_afi_safi(afi, safi), Some(f));
        }
        assert_eq!(Family::from_afi_safi(1, 2), None);
    }
}
