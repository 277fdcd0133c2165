//! Choosing one route per prefix when several peers announce it.
//!
//! tollgate only needs the route that decides a destination's realm, not a
//! forwarding decision, so the selection is a documented subset of RFC 4271
//! §9.1.2.2, tried in this order until one route is better:
//!
//! 1. the highest LOCAL_PREF (a route without one counts as 100, the common
//!    default);
//! 2. the shortest AS path (an AS_SET counts as one AS, confederation
//!    segments as none);
//! 3. the lowest ORIGIN (IGP, then EGP, then INCOMPLETE; none counts as
//!    INCOMPLETE);
//! 4. the lowest MED, but only between routes from the same neighbouring AS
//!    (a route without MED counts as 0);
//! 5. the lowest peer address (IPv4 before IPv6).
//!
//! There is no IGP metric, eBGP-over-iBGP or router-id step: tollgate has
//! no IGP, and the peer address already makes the order total for routes
//! from different peers. Because step 4 only applies within one
//! neighbouring AS, "better than" is not transitive in rare three-way
//! cases; [`best`] therefore always walks candidates in peer-address order,
//! so the same set of routes always gives the same answer whatever order
//! they arrived in.

use std::cmp::Ordering;
use std::net::IpAddr;

use bgp::wire::Origin;
use bgp::PathAttributes;

/// LOCAL_PREF assumed for routes that carry none.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// One peer's route for a prefix.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The peer that announced it.
    pub peer: IpAddr,
    /// Its attributes.
    pub attrs: &'a PathAttributes,
}

fn origin_rank(o: Option<Origin>) -> u8 {
    match o {
        Some(Origin::Igp) => 0,
        Some(Origin::Egp) => 1,
        Some(Origin::Incomplete) | None => 2,
    }
}

/// Compares two routes for the same prefix: `Less` means `a` is better.
pub fn compare(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    let (x, y) = (a.attrs, b.attrs);
    let lp = |p: &PathAttributes| p.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
    lp(y)
        .cmp(&lp(x))
        .then_with(|| x.path_len().cmp(&y.path_len()))
        .then_with(|| origin_rank(x.origin).cmp(&origin_rank(y.origin)))
        .then_with(|| {
            if x.neighbor_as() == y.neighbor_as() {
                x.med.unwrap_or(0).cmp(&y.med.unwrap_or(0))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| a.peer.cmp(&b.peer))
}

/// The index of the best route among `candidates`, which must be sorted by
/// peer address (see the [module docs](self)); `None` if there are none.
pub fn best(candidates: &[Candidate<'_>]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        match best {
            Some(b) if compare(&candidates[b], c) != Ordering::Greater => {}
            _ => best = Some(i),
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::wire::{AsPathSegment, SegmentKind};

    fn route(path: &[u32], lp: Option<u32>, origin: Origin, med: Option<u32>) -> PathAttributes {
        PathAttributes {
            origin: Some(origin),
            as_path: vec![AsPathSegment {
                kind: SegmentKind::Sequence,
                asns: path.to_vec(),
            }],
            local_pref: lp,
            med,
            ..PathAttributes::default()
        }
    }

    fn pick(routes: &[(&str, PathAttributes)]) -> IpAddr {
        let cands: Vec<_> = routes
            .iter()
            .map(|(p, a)| Candidate {
                peer: p.parse().unwrap(),
                attrs: a,
            })
            .collect();
        cands[best(&cands).unwrap()].peer
    }

    #[test]
    fn each_step_decides_in_order() {
        use Origin::*;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Local preference beats a shorter path.
        let r = [
            ("192.0.2.1", route(&[1], None, Igp, None)),
            ("192.0.2.2", route(&[1, 2, 3], Some(200), Igp, None)),
        ];
        assert_eq!(pick(&r), ip("192.0.2.2"));
        // Path length beats origin.
        let r = [
            ("192.0.2.1", route(&[1, 2], None, Igp, None)),
            ("192.0.2.2", route(&[1], None, Incomplete, None)),
        ];
        assert_eq!(pick(&r), ip("192.0.2.2"));
        // Origin beats MED.
        let r = [
            ("192.0.2.1", route(&[1], None, Egp, Some(0))),
            ("192.0.2.2", route(&[1], None, Igp, Some(50))),
        ];
        assert_eq!(pick(&r), ip("192.0.2.2"));
        // MED counts within one neighbouring AS only.
        let r = [
            ("192.0.2.1", route(&[1], None, Igp, Some(50))),
            ("192.0.2.2", route(&[1], None, Igp, Some(10))),
        ];
        assert_eq!(pick(&r), ip("192.0.2.2"));
        let r = [
            ("192.0.2.1", route(&[1], None, Igp, Some(50))),
            ("192.0.2.2", route(&[2], None, Igp, Some(10))),
        ];
        assert_eq!(pick(&r), ip("192.0.2.1"), "lowest peer address");
        assert_eq!(best(&[]), None);
    }
}
