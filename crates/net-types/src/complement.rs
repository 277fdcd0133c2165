//! What is left of some prefixes once others are taken out: the guard's
//! unused addresses (the policy's networks minus every tenant's prefixes)
//! as a list of prefixes a trie or a routing table can hold.

use crate::Prefix;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The complement would take more prefixes than the caller allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyPrefixes {
    /// The bound that was exceeded.
    pub limit: usize,
}

impl std::fmt::Display for TooManyPrefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} prefixes", self.limit)
    }
}

impl std::error::Error for TooManyPrefixes {}

/// The two halves of a prefix one bit longer (`None` for a host).
fn halves(p: Prefix) -> Option<(Prefix, Prefix)> {
    match p {
        Prefix::V4(a, l) if l < 32 => {
            let hi = u32::from(a) | 1u32 << (31 - l);
            Some((Prefix::V4(a, l + 1), Prefix::V4(Ipv4Addr::from(hi), l + 1)))
        }
        Prefix::V6(a, l) if l < 128 => {
            let hi = u128::from(a) | 1u128 << (127 - l);
            Some((Prefix::V6(a, l + 1), Prefix::V6(Ipv6Addr::from(hi), l + 1)))
        }
        _ => None,
    }
}

/// The addresses of `from` that no prefix of `minus` covers, as the
/// fewest prefixes that split along `minus`'s edges (each network is
/// halved only where a taken prefix lies inside it), sorted and without
/// overlaps. Fails when that takes more than `limit` prefixes: a /24
/// minus one host is 8 prefixes, but an IPv6 /32 minus one /128 is 96.
pub fn subtract(
    from: &[Prefix],
    minus: &[Prefix],
    limit: usize,
) -> Result<Vec<Prefix>, TooManyPrefixes> {
    let mut out = Vec::new();
    // Networks inside another network of `from` are left to it.
    let mut roots: Vec<Prefix> = from.iter().map(|p| p.network()).collect();
    roots.sort_unstable();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|p| {
        !all.iter()
            .any(|o| o != p && o.len() < p.len() && o.overlaps(*p))
    });
    let mut stack: Vec<Prefix> = roots.into_iter().rev().collect();
    while let Some(p) = stack.pop() {
        let inside: Vec<&Prefix> = minus.iter().filter(|m| m.overlaps(p)).collect();
        if inside.is_empty() {
            if out.len() == limit {
                return Err(TooManyPrefixes { limit });
            }
            out.push(p);
        } else if inside.iter().any(|m| m.len() <= p.len()) {
            // Taken whole.
        } else if let Some((lo, hi)) = halves(p) {
            stack.push(hi);
            stack.push(lo);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    fn strings(v: &[Prefix]) -> Vec<String> {
        v.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_v4_network_minus_a_host_and_a_block() {
        let got = subtract(
            &[p("203.0.113.0/24")],
            &[p("203.0.113.0/25"), p("203.0.113.200")],
            100,
        )
        .unwrap();
        assert_eq!(
            strings(&got),
            [
                "203.0.113.128/26",
                "203.0.113.192/29",
                "203.0.113.201/32",
                "203.0.113.202/31",
                "203.0.113.204/30",
                "203.0.113.208/28",
                "203.0.113.224/27",
            ]
        );
        // Every address but the taken ones, once.
        let covered: u128 = got.iter().map(|q| q.end_bits() - q.start_bits() + 1).sum();
        assert_eq!(covered, 256 - 128 - 1);
    }

    #[test]
    fn a_v6_network_minus_a_prefix() {
        let got = subtract(&[p("2001:db8::/32")], &[p("2001:db8:1::/48")], 100).unwrap();
        assert_eq!(got.len(), 16);
        assert_eq!(got[0], p("2001:db8::/48"));
        assert!(got.iter().all(|q| !q.overlaps(p("2001:db8:1::/48"))));
        assert_eq!(got.last().copied(), Some(p("2001:db8:8000::/33")));
    }

    #[test]
    fn untouched_taken_whole_nested_and_families() {
        // Nothing taken: the network itself; a network inside another is
        // the outer one's; another family's prefix takes nothing.
        assert_eq!(
            subtract(
                &[p("198.51.100.0/24"), p("198.51.100.0/26")],
                &[p("2001:db8::/32")],
                10
            )
            .unwrap(),
            [p("198.51.100.0/24")]
        );
        // Taken by a wider prefix: nothing left.
        assert!(
            subtract(&[p("198.51.100.0/24")], &[p("198.51.100.0/23")], 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_limit_is_kept() {
        let e = subtract(&[p("2001:db8::/32")], &[p("2001:db8::1")], 64).unwrap_err();
        assert_eq!(e, TooManyPrefixes { limit: 64 });
        assert_eq!(
            subtract(&[p("2001:db8::/32")], &[p("2001:db8::1")], 96)
                .unwrap()
                .len(),
            96
        );
    }
}
