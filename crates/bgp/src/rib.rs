//! Adj-RIB-In: the routes each peer currently announces.
//!
//! One [`AdjRibIn`] holds one peer's routes keyed by prefix; [`Ribs`] holds
//! one per peer. Both apply session [`Event`]s and report which prefixes
//! changed, so that whatever derives realms from routes only recomputes
//! those.

use std::collections::BTreeMap;
use std::sync::Arc;

use net_types::Prefix;

use crate::route::Route;
use crate::session::Event;
use crate::wire::PathAttributes;

/// The routes one peer announces, keyed by prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdjRibIn {
    routes: BTreeMap<Prefix, Arc<PathAttributes>>,
}

impl AdjRibIn {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of prefixes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The attributes announced for exactly this prefix.
    pub fn get(&self, prefix: &Prefix) -> Option<&Arc<PathAttributes>> {
        self.routes.get(prefix)
    }

    /// All routes, in prefix order.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.routes.iter().map(|(&prefix, attrs)| Route {
            prefix,
            attrs: Arc::clone(attrs),
        })
    }

    /// Adds or replaces a route; returns whether anything changed.
    pub fn announce(&mut self, route: Route) -> bool {
        match self.routes.insert(route.prefix, Arc::clone(&route.attrs)) {
            Some(old) => !(Arc::ptr_eq(&old, &route.attrs) || *old == *route.attrs),
            None => true,
        }
    }

    /// Removes a route; returns whether it was present.
    pub fn withdraw(&mut self, prefix: &Prefix) -> bool {
        self.routes.remove(prefix).is_some()
    }

    /// Removes every route and returns their prefixes.
    pub fn clear(&mut self) -> Vec<Prefix> {
        std::mem::take(&mut self.routes).into_keys().collect()
    }

    /// Applies a session event and returns the prefixes whose route
    /// changed. RFC 4271 §9 processes withdrawals before announcements, so
    /// a prefix in both lists ends up announced; `Down` withdraws all.
    pub fn apply(&mut self, event: &Event) -> Vec<Prefix> {
        match event {
            Event::Update {
                announced,
                withdrawn,
            } => {
                let mut changed: Vec<Prefix> = withdrawn
                    .iter()
                    .filter(|p| self.withdraw(p))
                    .copied()
                    .collect();
                for route in announced {
                    if self.announce(route.clone()) {
                        changed.push(route.prefix);
                    }
                }
                changed.sort();
                changed.dedup();
                changed
            }
            Event::Down { .. } => self.clear(),
            Event::Established { .. } | Event::RefreshRequested { .. } => Vec::new(),
        }
    }
}

/// One [`AdjRibIn`] per peer, keyed by whatever identifies a peer to the
/// caller (an address, a configuration name).
#[derive(Clone, Debug)]
pub struct Ribs<K> {
    peers: BTreeMap<K, AdjRibIn>,
}

impl<K: Ord + Clone> Default for Ribs<K> {
    fn default() -> Self {
        Ribs {
            peers: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> Ribs<K> {
    /// No peers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table of one peer, if it has announced anything.
    pub fn peer(&self, peer: &K) -> Option<&AdjRibIn> {
        self.peers.get(peer)
    }

    /// Every peer's announcement of exactly this prefix.
    pub fn lookup(&self, prefix: &Prefix) -> Vec<(K, Arc<PathAttributes>)> {
        self.peers
            .iter()
            .filter_map(|(k, rib)| Some((k.clone(), Arc::clone(rib.get(prefix)?))))
            .collect()
    }

    /// Applies one peer's session event; see [`AdjRibIn::apply`]. A peer
    /// whose table becomes empty is forgotten.
    pub fn apply(&mut self, peer: &K, event: &Event) -> Vec<Prefix> {
        let rib = self.peers.entry(peer.clone()).or_default();
        let changed = rib.apply(event);
        if rib.is_empty() {
            self.peers.remove(peer);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::DownReason;

    fn route(p: &str, med: u32) -> Route {
        Route {
            prefix: Prefix::parse(p).unwrap(),
            attrs: Arc::new(PathAttributes {
                med: Some(med),
                ..PathAttributes::default()
            }),
        }
    }

    #[test]
    fn updates_replace_withdraw_and_down_clears() {
        let mut ribs = Ribs::new();
        let up = Event::Update {
            announced: vec![route("10.0.0.0/8", 1), route("2001:db8::/32", 1)],
            withdrawn: vec![],
        };
        assert_eq!(ribs.apply(&"a", &up).len(), 2);
        assert!(
            ribs.apply(&"a", &up).is_empty(),
            "same attributes change nothing"
        );
        let replace = Event::Update {
            announced: vec![route("10.0.0.0/8", 2)],
            withdrawn: vec![Prefix::parse("192.0.2.0/24").unwrap()],
        };
        assert_eq!(
            ribs.apply(&"a", &replace),
            vec![Prefix::parse("10.0.0.0/8").unwrap()]
        );
        assert_eq!(
            ribs.lookup(&Prefix::parse("10.0.0.0/8").unwrap())[0].1.med,
            Some(2)
        );
        let down = Event::Down {
            reason: DownReason::ConnectionClosed,
        };
        assert_eq!(ribs.apply(&"a", &down).len(), 2);
        assert!(ribs.peer(&"a").is_none());
    }
}
