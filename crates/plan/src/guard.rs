//! The guard's prepared sets in tollgate's nftables table (issue 15): the
//! `drop` rung's sets and the `throttle` rung's sets, declared empty by the
//! compiler and filled, element by element, by the guard while a rung
//! holds. Their names say what they hold, so a restarted tollgate (and the
//! reader) knows each set's kind from its name alone.
//!
//! - `guard_drop_{way}{4|6}`: addresses (prefixes) whose traffic is
//!   dropped (`drop` with `match = "victim"`);
//! - `guard_sig_{way}{4|6}`: address . protocol . source port, dropped
//!   (`drop` with `match = "signature"`; a range stands for "any"), and
//!   beside it `guard_sigaddr_{way}{4|6}`, the same elements' prefixes:
//!   the rule looks the packet's address up there first, so that the
//!   concatenated (pipapo) lookup, which saves the FPU state on this
//!   kernel's AVX2 path, is paid only by packets to a victim;
//! - `guard_thr_{bits per second}_{way}{4|6}`: addresses whose traffic
//!   goes to the throttle class of that rate.
//!
//! `way` is `in` (towards the address: looked up by destination on the
//! download hooks) or `out` (from it: by source on the upload hooks).

use crate::model::MapKind;
use net_types::{Prefix, Rate};
use std::fmt;

/// Which way the guarded traffic goes, as the guard names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Way {
    /// Towards the address (download).
    In,
    /// From the address (upload).
    Out,
}

impl Way {
    /// Both, in order.
    pub const BOTH: [Way; 2] = [Way::In, Way::Out];

    /// `in` or `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Way::In => "in",
            Way::Out => "out",
        }
    }

    /// The address field a packet is looked up by on this way's hooks.
    pub fn field(self) -> &'static str {
        match self {
            Way::In => "daddr",
            Way::Out => "saddr",
        }
    }
}

fn family(v6: bool) -> &'static str {
    if v6 {
        "6"
    } else {
        "4"
    }
}

/// The `drop` rung's set of addresses.
pub fn drop_set(way: Way, v6: bool) -> String {
    format!("guard_drop_{}{}", way.as_str(), family(v6))
}

/// The `drop` rung's set of signatures (address . protocol . source port).
pub fn signature_set(way: Way, v6: bool) -> String {
    format!("guard_sig_{}{}", way.as_str(), family(v6))
}

/// The prefixes of the signature set's elements (the cheap lookup in
/// front of the signature set's).
pub fn signature_addr_set(way: Way, v6: bool) -> String {
    format!("guard_sigaddr_{}{}", way.as_str(), family(v6))
}

/// For a signature set, its address set; for the address set, the
/// signature set it serves.
pub fn signature_pair(name: &str) -> Option<(String, String)> {
    let rest = name
        .strip_prefix("guard_sigaddr_")
        .or_else(|| name.strip_prefix("guard_sig_"))?;
    Some((format!("guard_sig_{rest}"), format!("guard_sigaddr_{rest}")))
}

/// The `throttle` rung's set of addresses for the class of `rate`.
pub fn throttle_set(rate: Rate, way: Way, v6: bool) -> String {
    format!("guard_thr_{}_{}{}", rate.bps(), way.as_str(), family(v6))
}

/// The kind of one of the guard's sets, from its name; `None` for any
/// other name.
pub fn set_kind(name: &str) -> Option<MapKind> {
    let rest = name.strip_prefix("guard_")?;
    let (what, tail) = rest.split_once('_')?;
    let tail = match what {
        "drop" | "sig" | "sigaddr" => tail,
        "thr" => {
            let (bits, tail) = tail.split_once('_')?;
            bits.parse::<u64>().ok().and_then(Rate::from_bps)?;
            tail
        }
        _ => return None,
    };
    let v6 = match tail {
        "in4" | "out4" => false,
        "in6" | "out6" => true,
        _ => return None,
    };
    Some(match (what, v6) {
        ("sig", false) => MapKind::GuardSig4,
        ("sig", true) => MapKind::GuardSig6,
        (_, false) => MapKind::GuardAddr4,
        (_, true) => MapKind::GuardAddr6,
    })
}

/// One element of a guard set, as nft writes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GuardElement {
    /// An address or prefix.
    Prefix(Prefix),
    /// An address or prefix, a protocol (`None`: any) and a source port
    /// (`None`: any).
    Signature {
        /// The victim.
        prefix: Prefix,
        /// The IP protocol number.
        protocol: Option<u8>,
        /// The attack's source port.
        source_port: Option<u16>,
    },
}

impl GuardElement {
    /// The element's prefix.
    pub fn prefix(&self) -> Prefix {
        match self {
            GuardElement::Prefix(p) | GuardElement::Signature { prefix: p, .. } => *p,
        }
    }
}

impl GuardElement {
    /// Whether every packet `other` matches, `self` matches too (an
    /// interval set refuses an element that overlaps another, and two
    /// prefixes overlap only when one holds the other).
    pub fn covers(&self, other: &GuardElement) -> bool {
        let (a, b) = (self.prefix(), other.prefix());
        if a.len() > b.len() || !a.overlaps(b) {
            return false;
        }
        match (self, other) {
            (GuardElement::Prefix(_), _) => true,
            (GuardElement::Signature { .. }, GuardElement::Prefix(_)) => false,
            (
                GuardElement::Signature {
                    protocol: pa,
                    source_port: sa,
                    ..
                },
                GuardElement::Signature {
                    protocol: pb,
                    source_port: sb,
                    ..
                },
            ) => (pa.is_none() || pa == pb) && (sa.is_none() || sa == sb),
        }
    }
}

/// The elements to put in one set so that it matches what all of
/// `elements` match: without repeats and without any element another one
/// covers (the first of two equal ones is kept).
pub fn minimal<'a>(elements: &[&'a GuardElement]) -> Vec<&'a GuardElement> {
    let mut out: Vec<&GuardElement> = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        let covered = elements
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.covers(e) && (!e.covers(o) || j < i));
        if !covered {
            out.push(e);
        }
    }
    out
}

impl fmt::Display for GuardElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardElement::Prefix(p) => write!(f, "{p}"),
            GuardElement::Signature {
                prefix,
                protocol,
                source_port,
            } => {
                write!(f, "{prefix} . ")?;
                match protocol {
                    Some(p) => write!(f, "{p}")?,
                    None => write!(f, "0-255")?,
                }
                match source_port {
                    Some(p) => write!(f, " . {p}"),
                    None => write!(f, " . 0-65535"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_back_their_kind() {
        let r = Rate::from_bps(10_000_000).unwrap();
        for (name, kind) in [
            (drop_set(Way::In, false), MapKind::GuardAddr4),
            (drop_set(Way::Out, true), MapKind::GuardAddr6),
            (signature_set(Way::In, false), MapKind::GuardSig4),
            (signature_set(Way::Out, true), MapKind::GuardSig6),
            (signature_addr_set(Way::In, false), MapKind::GuardAddr4),
            (throttle_set(r, Way::In, false), MapKind::GuardAddr4),
            (throttle_set(r, Way::Out, true), MapKind::GuardAddr6),
        ] {
            assert_eq!(set_kind(&name), Some(kind), "{name}");
        }
        assert_eq!(throttle_set(r, Way::In, false), "guard_thr_10000000_in4");
        let pair = ("guard_sig_in4".to_string(), "guard_sigaddr_in4".to_string());
        assert_eq!(signature_pair("guard_sig_in4"), Some(pair.clone()));
        assert_eq!(signature_pair("guard_sigaddr_in4"), Some(pair));
        assert_eq!(signature_pair("guard_drop_in4"), None);
        for other in [
            "guard_drop_in",
            "guard_thr_x_in4",
            "guard_thr_0_in4",
            "guard_drop_up4",
            "realm4",
            "guard_x_in4",
        ] {
            assert_eq!(set_kind(other), None, "{other}");
        }
    }

    #[test]
    fn covered_elements_are_left_out() {
        let p = |t: &str| Prefix::parse(t).unwrap();
        let host = GuardElement::Prefix(p("203.0.113.10/32"));
        let net = GuardElement::Prefix(p("203.0.113.0/24"));
        let other = GuardElement::Prefix(p("198.51.100.0/24"));
        assert!(net.covers(&host) && !host.covers(&net) && !net.covers(&other));
        assert_eq!(minimal(&[&host, &net, &other, &net]), [&net, &other]);
        let sig = |proto: Option<u8>, port: Option<u16>| GuardElement::Signature {
            prefix: p("203.0.113.10/32"),
            protocol: proto,
            source_port: port,
        };
        let (dns, udp, any) = (
            sig(Some(17), Some(53)),
            sig(Some(17), None),
            sig(None, None),
        );
        assert!(udp.covers(&dns) && any.covers(&udp) && !dns.covers(&udp));
        assert!(!sig(Some(6), None).covers(&dns));
        assert_eq!(minimal(&[&dns, &udp]), [&udp]);
        assert_eq!(minimal(&[&dns, &dns]), [&dns]);
    }

    #[test]
    fn elements_print_as_nft_reads_them() {
        let p = Prefix::parse("203.0.113.10/32").unwrap();
        assert_eq!(GuardElement::Prefix(p).to_string(), "203.0.113.10/32");
        let s = GuardElement::Signature {
            prefix: p,
            protocol: Some(17),
            source_port: Some(53),
        };
        assert_eq!(s.to_string(), "203.0.113.10/32 . 17 . 53");
        let any = GuardElement::Signature {
            prefix: p,
            protocol: None,
            source_port: None,
        };
        assert_eq!(any.to_string(), "203.0.113.10/32 . 0-255 . 0-65535");
    }
}
