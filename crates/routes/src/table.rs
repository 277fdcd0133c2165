//! The live realm table: per-peer Adj-RIB-In, the best route per prefix,
//! its realm, and the longest-prefix-match tables, kept consistent as
//! session events arrive.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bgp::rib::Ribs;
use bgp::session::Event;
use bgp::PathAttributes;
use net_types::{Prefix, RealmId};
use prefix_map::{PrefixMap4, PrefixMap6};

use crate::realms::{Classification, RealmRules};
use crate::selection::{self, Candidate};

/// The route chosen for a prefix, and its realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestRoute {
    /// The peer it was learned from.
    pub peer: IpAddr,
    /// Its attributes.
    pub attrs: Arc<PathAttributes>,
    /// Its realm and the rule that decided it.
    pub class: Classification,
}

/// A prefix whose realm changed. `None` means the prefix has no route (and
/// so, as far as routes go, no realm): a new prefix has `old: None`, a
/// withdrawn one `new: None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RealmChange {
    /// The prefix.
    pub prefix: Prefix,
    /// Its realm before.
    pub old: Option<RealmId>,
    /// Its realm now.
    pub new: Option<RealmId>,
}

/// How many prefixes of each family a realm has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// IPv4 prefixes.
    pub ipv4: usize,
    /// IPv6 prefixes.
    pub ipv6: usize,
}

/// What a peer said about itself when its session came up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its AS.
    pub asn: u32,
    /// Its BGP identifier.
    pub bgp_id: Ipv4Addr,
}

/// Routes from any number of peers, reduced to one realm per prefix.
///
/// Peers are identified by their address. [`RouteTable::apply`] takes one
/// peer's session event and returns the realm changes it caused; a prefix
/// whose best route changed but whose realm did not is not reported.
pub struct RouteTable {
    rules: RealmRules,
    ribs: Ribs<IpAddr>,
    peers: BTreeMap<IpAddr, PeerInfo>,
    best: HashMap<Prefix, BestRoute>,
    v4: PrefixMap4<u16>,
    v6: PrefixMap6<u16>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("prefixes", &self.best.len())
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// The last classification made, reused while consecutive prefixes share
/// one peer and one attribute set, as all prefixes of one UPDATE do.
type Memo = Option<(IpAddr, *const PathAttributes, Classification)>;

impl RouteTable {
    /// An empty table classifying routes by `rules`.
    pub fn new(rules: RealmRules) -> Self {
        RouteTable {
            rules,
            ribs: Ribs::new(),
            peers: BTreeMap::new(),
            best: HashMap::new(),
            v4: PrefixMap4::new(),
            v6: PrefixMap6::new(),
        }
    }

    /// The rules in use.
    pub fn rules(&self) -> &RealmRules {
        &self.rules
    }

    /// The number of prefixes with a route.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    /// Whether no prefix has a route.
    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    /// The peers whose sessions came up at least once, with what they said
    /// about themselves.
    pub fn peers(&self) -> &BTreeMap<IpAddr, PeerInfo> {
        &self.peers
    }

    /// How many prefixes one peer currently announces.
    pub fn peer_prefixes(&self, peer: &IpAddr) -> usize {
        self.ribs.peer(peer).map_or(0, |r| r.len())
    }

    /// Applies one peer's session event and returns the realm changes, in
    /// prefix order.
    pub fn apply(&mut self, peer: IpAddr, event: &Event) -> Vec<RealmChange> {
        if let Event::Established {
            peer_as, peer_id, ..
        } = event
        {
            let info = PeerInfo {
                asn: *peer_as,
                bgp_id: *peer_id,
            };
            self.peers.insert(peer, info);
        }
        let changed = self.ribs.apply(&peer, event);
        let mut out = Vec::new();
        let mut memo = None;
        for prefix in changed {
            self.reselect(prefix, &mut memo, &mut out);
        }
        out
    }

    /// Replaces the rules and reclassifies every prefix, as after a policy
    /// reload.
    pub fn set_rules(&mut self, rules: RealmRules) -> Vec<RealmChange> {
        self.rules = rules;
        let mut prefixes: Vec<Prefix> = self.best.keys().copied().collect();
        prefixes.sort();
        let mut out = Vec::new();
        for prefix in prefixes {
            let Some(b) = self.best.get_mut(&prefix) else {
                continue;
            };
            let old = b.class.realm;
            b.class = self.rules.classify(Some(b.peer), &b.attrs);
            let new = b.class.realm;
            if old != new {
                set_realm(&mut self.v4, &mut self.v6, prefix, Some(new));
                out.push(RealmChange {
                    prefix,
                    old: Some(old),
                    new: Some(new),
                });
            }
        }
        out
    }

    /// Chooses the best route for one prefix again after its candidates
    /// changed.
    fn reselect(&mut self, prefix: Prefix, memo: &mut Memo, out: &mut Vec<RealmChange>) {
        let candidates = self.ribs.lookup(&prefix);
        let views: Vec<Candidate<'_>> = candidates
            .iter()
            .map(|(peer, attrs)| Candidate { peer: *peer, attrs })
            .collect();
        let old = self.best.get(&prefix).map(|b| b.class.realm);
        let Some(i) = selection::best(&views) else {
            if self.best.remove(&prefix).is_some() {
                set_realm(&mut self.v4, &mut self.v6, prefix, None);
                out.push(RealmChange {
                    prefix,
                    old,
                    new: None,
                });
            }
            return;
        };
        let (peer, attrs) = &candidates[i];
        let ptr = Arc::as_ptr(attrs);
        let class = match *memo {
            Some((p, a, c)) if p == *peer && a == ptr => c,
            _ => {
                let c = self.rules.classify(Some(*peer), attrs);
                *memo = Some((*peer, ptr, c));
                c
            }
        };
        self.best.insert(
            prefix,
            BestRoute {
                peer: *peer,
                attrs: Arc::clone(attrs),
                class,
            },
        );
        if old != Some(class.realm) {
            set_realm(&mut self.v4, &mut self.v6, prefix, Some(class.realm));
            out.push(RealmChange {
                prefix,
                old,
                new: Some(class.realm),
            });
        }
    }

    /// The realm of an address: the realm of the longest prefix with a
    /// route that contains it.
    pub fn realm_of(&self, addr: IpAddr) -> Option<RealmId> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(a),
            IpAddr::V6(a) => self.v6.lookup(a),
        }
        .map(RealmId)
    }

    /// The route for exactly this prefix.
    pub fn get(&self, prefix: &Prefix) -> Option<&BestRoute> {
        self.best.get(prefix)
    }

    /// The longest prefix with a route that contains `addr`, and the route.
    pub fn route_for(&self, addr: IpAddr) -> Option<(Prefix, &BestRoute)> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let p = network(addr, len);
            self.best.get(&p).map(|b| (p, b))
        })
    }

    /// Every prefix and its route, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (&Prefix, &BestRoute)> {
        self.best.iter()
    }

    /// Prefixes per realm and family.
    pub fn counts(&self) -> BTreeMap<RealmId, FamilyCounts> {
        let mut out: BTreeMap<RealmId, FamilyCounts> = BTreeMap::new();
        for (p, b) in &self.best {
            let c = out.entry(b.class.realm).or_default();
            if p.is_ipv4() {
                c.ipv4 += 1;
            } else {
                c.ipv6 += 1;
            }
        }
        out
    }
}

/// Stores (or, with `None`, removes) a prefix's realm in the lookup tables.
/// Prefixes from the wire are already valid, so the length errors the
/// tables can report cannot happen here.
fn set_realm(
    v4: &mut PrefixMap4<u16>,
    v6: &mut PrefixMap6<u16>,
    prefix: Prefix,
    realm: Option<RealmId>,
) {
    let _ = match (prefix, realm) {
        (Prefix::V4(a, l), Some(r)) => v4.insert(a, l, r.0),
        (Prefix::V4(a, l), None) => v4.remove(a, l),
        (Prefix::V6(a, l), Some(r)) => v6.insert(a, l, r.0),
        (Prefix::V6(a, l), None) => v6.remove(a, l),
    };
}

/// The prefix of length `len` that contains `addr`.
pub(crate) fn network(addr: IpAddr, len: u8) -> Prefix {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            Prefix::V4(Ipv4Addr::from(u32::from(a) & mask), len.min(32))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            Prefix::V6(Ipv6Addr::from(u128::from(a) & mask), len.min(128))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::session::DownReason;
    use bgp::wire::{AsPathSegment, SegmentKind};
    use bgp::Route;
    use policy::RouteRules;

    fn rules() -> RealmRules {
        RealmRules::new(
            vec![(
                RealmId(1),
                "national".into(),
                RouteRules {
                    communities: vec![65001 << 16 | 100],
                    ..RouteRules::default()
                },
            )],
            (RealmId(2), "international".into()),
        )
    }

    fn update(prefixes: &[&str], path: &[u32], communities: &[u32]) -> Event {
        let attrs = Arc::new(PathAttributes {
            as_path: vec![AsPathSegment {
                kind: SegmentKind::Sequence,
                asns: path.to_vec(),
            }],
            communities: communities.to_vec(),
            ..PathAttributes::default()
        });
        Event::Update {
            announced: prefixes
                .iter()
                .map(|p| Route {
                    prefix: Prefix::parse(p).unwrap(),
                    attrs: Arc::clone(&attrs),
                })
                .collect(),
            withdrawn: vec![],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn changes_follow_the_best_route_and_only_report_realm_moves() {
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let mut t = RouteTable::new(rules());
        let national = 65001 << 16 | 100;
        let ch = t.apply(
            a,
            &update(&["198.51.100.0/24", "2001:db8::/32"], &[1, 2], &[]),
        );
        assert_eq!(ch.len(), 2);
        assert!(ch
            .iter()
            .all(|c| c.old.is_none() && c.new == Some(RealmId(2))));
        assert_eq!(t.realm_of(ip("198.51.100.7")), Some(RealmId(2)));
        assert_eq!(t.realm_of(ip("2001:db8::1")), Some(RealmId(2)));
        // A shorter path from b with the national community wins.
        let ch = t.apply(b, &update(&["198.51.100.0/24"], &[3], &[national]));
        assert_eq!(
            ch,
            vec![RealmChange {
                prefix: Prefix::parse("198.51.100.0/24").unwrap(),
                old: Some(RealmId(2)),
                new: Some(RealmId(1)),
            }]
        );
        assert_eq!(t.realm_of(ip("198.51.100.7")), Some(RealmId(1)));
        let (p, best) = t.route_for(ip("198.51.100.7")).unwrap();
        assert_eq!((p.to_string(), best.peer), ("198.51.100.0/24".into(), b));
        // A longer path from b, same realm as before: the best route moves
        // back to a, and the realm change is reported.
        let ch = t.apply(b, &update(&["198.51.100.0/24"], &[3, 4, 5], &[national]));
        assert_eq!(ch[0].new, Some(RealmId(2)));
        // b goes down: nothing it announced is best any more, so no change.
        let down = Event::Down {
            reason: DownReason::HoldTimerExpired,
        };
        assert!(t.apply(b, &down).is_empty());
        // a goes down: everything is withdrawn.
        let ch = t.apply(a, &down);
        assert_eq!(ch.len(), 2);
        assert!(ch.iter().all(|c| c.new.is_none()));
        assert!(t.is_empty());
        assert_eq!(t.realm_of(ip("198.51.100.7")), None);
    }

    #[test]
    fn new_rules_reclassify_everything() {
        let a = ip("192.0.2.1");
        let mut t = RouteTable::new(rules());
        t.apply(a, &update(&["203.0.113.0/24"], &[64500], &[]));
        assert_eq!(t.counts()[&RealmId(2)].ipv4, 1);
        let by_origin = RealmRules::new(
            vec![(
                RealmId(1),
                "national".into(),
                RouteRules {
                    origin_as: vec![64500],
                    ..RouteRules::default()
                },
            )],
            (RealmId(2), "international".into()),
        );
        let ch = t.set_rules(by_origin);
        assert_eq!(ch.len(), 1);
        assert_eq!(t.realm_of(ip("203.0.113.1")), Some(RealmId(1)));
    }

    #[test]
    fn network_masks_host_bits() {
        assert_eq!(network(ip("192.0.2.77"), 24).to_string(), "192.0.2.0/24");
        assert_eq!(network(ip("192.0.2.77"), 0).to_string(), "0.0.0.0/0");
        assert_eq!(network(ip("2001:db8::1"), 32).to_string(), "2001:db8::/32");
    }
}
