//! Realm rules for routes learned from BGP or read from MRT dumps.
//!
//! A realm may list BGP attributes; a route that has any of them belongs to
//! the realm. Realms are tried in the order the policy file lists them and
//! the first match wins; a route that matches none falls into the default
//! realm. The route is described by a [`RouteView`], so this crate needs no
//! BGP types: the BGP crate fills one in from what it decoded.

use crate::reader::{Cx, Fields};
use serde::Serialize;
use std::net::IpAddr;

/// What a realm rule may look at in a route.
#[derive(Clone, Copy, Debug)]
pub struct RouteView<'a> {
    /// The BGP peer the route was learned from (or the MRT peer).
    pub peer: Option<IpAddr>,
    /// The route's next hop.
    pub next_hop: Option<IpAddr>,
    /// The AS path, flattened, nearest AS first.
    pub as_path: &'a [u32],
    /// Standard communities, as `asn << 16 | value`.
    pub communities: &'a [u32],
    /// Large communities.
    pub large_communities: &'a [[u32; 3]],
}

impl RouteView<'_> {
    /// The AS that originated the route: the last one on the path.
    pub fn origin_as(&self) -> Option<u32> {
        self.as_path.last().copied()
    }
}

/// The BGP attributes that put a route into a realm. Any one suffices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RouteRules {
    /// Standard communities, as `asn << 16 | value`.
    pub communities: Vec<u32>,
    /// Large communities.
    pub large_communities: Vec<[u32; 3]>,
    /// Origin AS numbers.
    pub origin_as: Vec<u32>,
    /// AS numbers anywhere on the path.
    pub as_path_contains: Vec<u32>,
    /// BGP peers.
    pub peers: Vec<IpAddr>,
    /// Next hops.
    pub next_hops: Vec<IpAddr>,
}

impl RouteRules {
    /// Whether the realm has any rule at all.
    pub fn is_empty(&self) -> bool {
        *self == RouteRules::default()
    }

    /// Whether the route has any of the listed attributes.
    pub fn matches(&self, r: &RouteView<'_>) -> bool {
        self.communities.iter().any(|c| r.communities.contains(c))
            || self
                .large_communities
                .iter()
                .any(|c| r.large_communities.contains(c))
            || r.origin_as().is_some_and(|o| self.origin_as.contains(&o))
            || self.as_path_contains.iter().any(|a| r.as_path.contains(a))
            || r.peer.is_some_and(|p| self.peers.contains(&p))
            || r.next_hop.is_some_and(|n| self.next_hops.contains(&n))
    }
}

/// Parses `65000:100` (or the well-known names) into `asn << 16 | value`.
pub fn parse_community(text: &str) -> Result<u32, String> {
    match text {
        "no-export" => return Ok(0xFFFF_FF01),
        "no-advertise" => return Ok(0xFFFF_FF02),
        "no-export-subconfed" => return Ok(0xFFFF_FF03),
        "blackhole" => return Ok(0xFFFF_029A),
        _ => {}
    }
    let (a, v) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a community"))?;
    let a: u16 = a
        .parse()
        .map_err(|_| format!("`{a}` in `{text}` is not a 16-bit AS number"))?;
    let v: u16 = v
        .parse()
        .map_err(|_| format!("`{v}` in `{text}` is not a 16-bit value"))?;
    Ok(((a as u32) << 16) | v as u32)
}

/// Parses `65000:1:100` into its three 32-bit parts.
pub fn parse_large_community(text: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 3 {
        return Err(format!("`{text}` is not a large community"));
    }
    let mut out = [0u32; 3];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse()
            .map_err(|_| format!("`{p}` in `{text}` is not a 32-bit number"))?;
    }
    Ok(out)
}

/// Reads a realm's route rules from its table.
pub(crate) fn read(cx: &mut Cx, f: &mut Fields<'_>) -> RouteRules {
    let mut rules = RouteRules::default();
    if let Some(n) = f.get(cx, "communities") {
        for (s, span) in cx.strings(n) {
            match parse_community(&s) {
                Ok(c) => rules.communities.push(c),
                Err(e) => cx.error(span, e, "write a community as ASN:VALUE with both parts up to 65535, e.g. \"65000:100\", or no-export, no-advertise, blackhole"),
            }
        }
    }
    if let Some(n) = f.get(cx, "large_communities") {
        for (s, span) in cx.strings(n) {
            match parse_large_community(&s) {
                Ok(c) => rules.large_communities.push(c),
                Err(e) => cx.error(span, e, "write a large community as ASN:DATA1:DATA2, each up to 4294967295, e.g. \"65000:1:100\""),
            }
        }
    }
    for (key, out) in [
        ("origin_as", &mut rules.origin_as),
        ("as_path_contains", &mut rules.as_path_contains),
    ] {
        if let Some(n) = f.get(cx, key) {
            cx.array(n, |cx, v, span| match v.as_integer() {
                Some(a) if (1..=u32::MAX as i64).contains(&a) => out.push(a as u32),
                _ => cx.error(
                    span,
                    format!("`{}` is not an AS number", v.to_string().trim()),
                    "AS numbers are whole numbers from 1 to 4294967295, without quotes",
                ),
            });
        }
    }
    for (key, out) in [
        ("peers", &mut rules.peers),
        ("next_hops", &mut rules.next_hops),
    ] {
        if let Some(n) = f.get(cx, key) {
            for (s, span) in cx.strings(n) {
                match s.parse::<IpAddr>() {
                    Ok(ip) => out.push(ip),
                    Err(_) => cx.error(
                        span,
                        format!("`{s}` is not an IP address"),
                        "write an address such as \"192.0.2.1\" or \"2001:db8::1\"",
                    ),
                }
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_parse_and_refuse() {
        assert_eq!(parse_community("65000:100"), Ok(65000 << 16 | 100));
        assert_eq!(parse_community("no-export"), Ok(0xFFFF_FF01));
        assert!(parse_community("70000:1").is_err());
        assert!(parse_community("65000").is_err());
        assert_eq!(
            parse_large_community("4200000000:1:2"),
            Ok([4_200_000_000, 1, 2])
        );
        assert!(parse_large_community("1:2").is_err());
        assert!(parse_large_community("1:2:x").is_err());
    }

    #[test]
    fn any_listed_attribute_matches() {
        let rules = RouteRules {
            origin_as: vec![64500],
            large_communities: vec![[65000, 1, 2]],
            ..Default::default()
        };
        let path = [64496, 64500];
        let view = RouteView {
            peer: None,
            next_hop: None,
            as_path: &path,
            communities: &[],
            large_communities: &[],
        };
        assert!(rules.matches(&view));
        let path = [64500, 64496];
        let view = RouteView {
            as_path: &path,
            ..view
        };
        assert!(
            !rules.matches(&view),
            "64500 is on the path but not the origin"
        );
        let large = [[65000, 1, 2]];
        assert!(rules.matches(&RouteView {
            large_communities: &large,
            ..view
        }));
    }
}
