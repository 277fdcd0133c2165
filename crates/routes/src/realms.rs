//! The policy's realm rules, prepared for classifying many routes, and the
//! explanation of which rule put a route into its realm.

use std::fmt;
use std::net::IpAddr;

use bgp::PathAttributes;
use net_types::RealmId;
use policy::{RouteRules, RouteView};

/// The realm rules of a policy in the order they are tried.
///
/// Built once from [`policy::Realms`]; classifying a route then walks the
/// realms with route rules in policy order and stops at the first match,
/// exactly as [`policy::Realms::for_route`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmRules {
    /// Realms that have route rules, in policy order.
    ordered: Vec<(RealmId, RouteRules)>,
    /// Every realm's name, ordered by id.
    names: Vec<(RealmId, String)>,
    default: RealmId,
}

/// The attribute that decided a route's realm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchedRule {
    /// The route carries this standard community.
    Community(u32),
    /// The route carries this large community.
    LargeCommunity([u32; 3]),
    /// The route originates in this AS.
    OriginAs(u32),
    /// This AS is on the route's path.
    AsPathContains(u32),
    /// The route was learned from this peer.
    Peer(IpAddr),
    /// The route's next hop is this address.
    NextHop(IpAddr),
    /// No realm's rules matched, so the route is in the default realm.
    Default,
}

impl fmt::Display for MatchedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchedRule::Community(c) => {
                write!(f, "communities = [\"{}:{}\"]", c >> 16, c & 0xffff)
            }
            MatchedRule::LargeCommunity([a, b, c]) => {
                write!(f, "large_communities = [\"{a}:{b}:{c}\"]")
            }
            MatchedRule::OriginAs(a) => write!(f, "origin_as = [{a}]"),
            MatchedRule::AsPathContains(a) => write!(f, "as_path_contains = [{a}]"),
            MatchedRule::Peer(p) => write!(f, "peers = [\"{p}\"]"),
            MatchedRule::NextHop(n) => write!(f, "next_hops = [\"{n}\"]"),
            MatchedRule::Default => write!(f, "default realm (no rule matched)"),
        }
    }
}

/// A route's realm and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The realm.
    pub realm: RealmId,
    /// The rule that put it there.
    pub rule: MatchedRule,
}

impl RealmRules {
    /// Prepares a policy's realms.
    pub fn from_policy(realms: &policy::Realms) -> Self {
        let mut with_rules: Vec<_> = realms.list.iter().filter(|r| !r.rules.is_empty()).collect();
        with_rules.sort_by_key(|r| r.order);
        RealmRules {
            ordered: with_rules
                .into_iter()
                .map(|r| (r.id, r.rules.clone()))
                .collect(),
            names: realms.list.iter().map(|r| (r.id, r.name.clone())).collect(),
            default: realms.default,
        }
    }

    /// Rules built by hand, for tests and benchmarks: realms in the order
    /// they are tried, each with a name and its rules.
    pub fn new(ordered: Vec<(RealmId, String, RouteRules)>, default: (RealmId, String)) -> Self {
        let mut names: Vec<_> = ordered
            .iter()
            .map(|(id, name, _)| (*id, name.clone()))
            .chain([default.clone()])
            .collect();
        names.sort();
        names.dedup_by_key(|(id, _)| *id);
        RealmRules {
            ordered: ordered
                .into_iter()
                .filter(|(_, _, rules)| !rules.is_empty())
                .map(|(id, _, rules)| (id, rules))
                .collect(),
            names,
            default: default.0,
        }
    }

    /// The realm of routes no rule matches.
    pub fn default_realm(&self) -> RealmId {
        self.default
    }

    /// Every realm's id and name, ordered by id.
    pub fn names(&self) -> &[(RealmId, String)] {
        &self.names
    }

    /// The name of a realm.
    pub fn name(&self, id: RealmId) -> Option<&str> {
        self.names
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }

    /// The realm of a route learned from `peer` with these attributes.
    pub fn classify(&self, peer: Option<IpAddr>, attrs: &PathAttributes) -> Classification {
        let as_path = attrs.as_path_flat();
        let view = RouteView {
            peer,
            next_hop: attrs.next_hop,
            as_path: &as_path,
            communities: &attrs.communities,
            large_communities: &attrs.large_communities,
        };
        self.ordered
            .iter()
            .find_map(|(realm, rules)| {
                first_match(rules, &view).map(|rule| Classification {
                    realm: *realm,
                    rule,
                })
            })
            .unwrap_or(Classification {
                realm: self.default,
                rule: MatchedRule::Default,
            })
    }
}

/// The first attribute of the route that one of `rules` names, checked in
/// the same order as [`RouteRules::matches`], so that this returns `Some`
/// exactly when that returns `true`.
fn first_match(rules: &RouteRules, r: &RouteView<'_>) -> Option<MatchedRule> {
    if let Some(&c) = rules.communities.iter().find(|c| r.communities.contains(c)) {
        return Some(MatchedRule::Community(c));
    }
    if let Some(&c) = rules
        .large_communities
        .iter()
        .find(|c| r.large_communities.contains(c))
    {
        return Some(MatchedRule::LargeCommunity(c));
    }
    if let Some(o) = r.origin_as().filter(|o| rules.origin_as.contains(o)) {
        return Some(MatchedRule::OriginAs(o));
    }
    if let Some(&a) = rules
        .as_path_contains
        .iter()
        .find(|a| r.as_path.contains(a))
    {
        return Some(MatchedRule::AsPathContains(a));
    }
    if let Some(p) = r.peer.filter(|p| rules.peers.contains(p)) {
        return Some(MatchedRule::Peer(p));
    }
    r.next_hop
        .filter(|n| rules.next_hops.contains(n))
        .map(MatchedRule::NextHop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::wire::{AsPathSegment, SegmentKind};

    const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "10mbit", up = "10mbit" }

[realms]
default = "international"

[realms.national]
id = 1
communities = ["65001:100"]
origin_as = [64500]

[realms.ix]
id = 3
large_communities = ["65001:1:2"]
peers = ["192.0.2.9"]

[realms.international]
id = 2
"#;

    fn attrs(path: &[u32], communities: &[u32], large: &[[u32; 3]]) -> PathAttributes {
        PathAttributes {
            as_path: vec![AsPathSegment {
                kind: SegmentKind::Sequence,
                asns: path.to_vec(),
            }],
            communities: communities.to_vec(),
            large_communities: large.to_vec(),
            ..PathAttributes::default()
        }
    }

    #[test]
    fn classification_agrees_with_the_policy_and_names_the_rule() {
        let loaded = policy::load_str("t.toml", POLICY);
        let policy = loaded
            .policy
            .as_ref()
            .unwrap_or_else(|| panic!("{}", loaded.render()));
        let rules = RealmRules::from_policy(&policy.realms);
        let peer9: IpAddr = "192.0.2.9".parse().unwrap();
        let cases = [
            (
                None,
                attrs(&[1, 64500], &[], &[]),
                1,
                MatchedRule::OriginAs(64500),
            ),
            (
                None,
                attrs(&[1], &[65001 << 16 | 100], &[]),
                1,
                MatchedRule::Community(65001 << 16 | 100),
            ),
            (
                None,
                attrs(&[1], &[], &[[65001, 1, 2]]),
                3,
                MatchedRule::LargeCommunity([65001, 1, 2]),
            ),
            (
                Some(peer9),
                attrs(&[1], &[], &[]),
                3,
                MatchedRule::Peer(peer9),
            ),
            // National comes first in the file, so it wins over the IX peer.
            (
                Some(peer9),
                attrs(&[64500], &[], &[]),
                1,
                MatchedRule::OriginAs(64500),
            ),
            (None, attrs(&[64500, 1], &[], &[]), 2, MatchedRule::Default),
        ];
        for (peer, a, realm, rule) in cases {
            let c = rules.classify(peer, &a);
            assert_eq!(
                c,
                Classification {
                    realm: RealmId(realm),
                    rule
                },
                "{a:?}"
            );
            let flat = a.as_path_flat();
            let view = RouteView {
                peer,
                next_hop: None,
                as_path: &flat,
                communities: &a.communities,
                large_communities: &a.large_communities,
            };
            assert_eq!(policy.realms.for_route(&view), c.realm);
        }
        assert_eq!(rules.name(RealmId(3)), Some("ix"));
        assert_eq!(rules.default_realm(), RealmId(2));
    }
}
