//! The uplink's traffic that no tenant holds, accounted like a tenant's so
//! that the site's own series (docs/transit.md) is every stored key added
//! up: the tenants' leaves plus this.
//!
//! Packets of no tenant carry mark 0 and land in the root tree's default
//! class (`1:ffff`) on each direction's IFB (docs/dataplane.md); it is a
//! leaf, so HTB counts each of its bytes there once and nowhere below.
//! The shards' own default classes are not read: a packet reaches one only
//! when it carries a shard's mark but no tenant's class, which the
//! classifier never writes (a tenant's class and its shard mark are set
//! together).
//!
//! The key is [`billing::UNCLASSIFIED`], a tenant id no policy tenant can
//! have (ids start at 1), realm 0 (the class is one per direction, not per
//! realm) and band `whole`.

use crate::feeds::Feeds;
use accounting::{Band, Direction, UsageKey};
use compiler::{Compiled, Role};
use net_types::RealmId;
use plan::ObjectId;

/// The root default classes of `compiled`, keyed for the accountant.
pub fn unclassified(compiled: &Compiled) -> Feeds {
    let mut out = Feeds::new();
    for (id, s) in &compiled.provenance.objects {
        let ObjectId::Class(key) = id else { continue };
        if s.role != Role::DefaultClass || s.shard.is_some() {
            continue;
        }
        let Some(direction) = s.direction else {
            continue;
        };
        out.insert(
            *key,
            UsageKey {
                tenant: billing::UNCLASSIFIED,
                realm: RealmId(0),
                direction: match direction {
                    policy::Direction::Down => Direction::Down,
                    policy::Direction::Up => Direction::Up,
                },
                band: Band::Whole,
                source: accounting::Source::Kernel,
            },
        );
    }
    out
}

/// The feeds the API and the metrics see: the tenants' only (the
/// unclassified key has no tenant to show).
pub fn tenants_only(feeds: &Feeds) -> Feeds {
    feeds
        .iter()
        .filter(|(_, k)| k.tenant != billing::UNCLASSIFIED)
        .map(|(c, k)| (*c, *k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }
shards = 2

[plans.basic]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "5mbit", ceil = "10mbit" }

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.0.0/24"]
"#;

    #[test]
    fn one_unclassified_leaf_per_direction_and_no_tenant_class() {
        let loaded = policy::load("p.toml", POLICY, &mut |_| Err("none".into()));
        let p = loaded.policy.expect("valid");
        let c = compiler::compile(&p, &compiler::HostFacts::default()).expect("compiles");
        let u = unclassified(&c);
        let mut dirs: Vec<(&str, u16, Direction)> = u
            .iter()
            .map(|(k, v)| (k.dev.as_str(), k.id.minor, v.direction))
            .collect();
        dirs.sort();
        assert_eq!(
            dirs,
            vec![
                ("tg-down", compiler::OUTER_DEFAULT_MINOR, Direction::Down),
                ("tg-up", compiler::OUTER_DEFAULT_MINOR, Direction::Up)
            ]
        );
        assert!(u.values().all(|k| k.tenant == billing::UNCLASSIFIED));
        // The leaf of nobody is no tenant's leaf, so nothing counts twice.
        let tenants = crate::feeds::feeds(&c);
        assert!(u.keys().all(|k| !tenants.contains_key(k)));
        let mut both = tenants.clone();
        both.extend(u);
        assert_eq!(tenants_only(&both), tenants);
    }

    /// Reads counters the way HTB keeps them (a leaf's bytes also count in
    /// the root) for ten minutes and checks that the samples of every key,
    /// tenants and no tenant's, add up to what the uplink's root class
    /// carried: the site's series is the whole uplink, from the same
    /// counters.
    #[test]
    fn the_site_is_the_tenants_plus_what_no_tenant_holds() {
        let text = POLICY.replace(
            "prefixes = [\"100.64.0.0/24\"]",
            "prefixes = [\"100.64.0.0/24\"]\n\n[[tenants]]\nid = 2\nplan = \"basic\"\nprefixes = [\"100.64.1.0/24\"]",
        );
        let p = policy::load("p.toml", &text, &mut |_| Err("none".into()))
            .policy
            .expect("valid");
        let c = compiler::compile(&p, &compiler::HostFacts::default()).expect("compiles");
        let mut feeds = crate::feeds::feeds(&c);
        let tenant_leaves: Vec<_> = feeds.keys().copied().collect();
        feeds.extend(unclassified(&c));
        let root = |dir: policy::Direction| plan::ClassKey {
            dev: compiler::ifb_name(dir),
            id: net_types::ClassId::new(compiler::OUTER_MAJOR, compiler::ROOT_MINOR),
        };
        let mut books = crate::books::Books::open(accounting::Config::default(), None).unwrap();
        let t0: jiff::Timestamp = "2026-11-02T00:00:00Z".parse().unwrap();
        let mut counters: std::collections::BTreeMap<plan::ClassKey, u64> = Default::default();
        for step in 0..=120 {
            let now = t0 + jiff::SignedDuration::from_secs(step * 10);
            if step > 0 {
                // Each tenant leaf a different rate; nobody's traffic too.
                for (i, leaf) in tenant_leaves.iter().enumerate() {
                    *counters.entry(*leaf).or_default() += 1000 * (i as u64 + 1);
                }
                for (leaf, _) in unclassified(&c) {
                    *counters.entry(leaf).or_default() += 777;
                }
            }
            let list: Vec<(plan::ClassKey, u64, u64)> =
                counters.iter().map(|(k, b)| (*k, *b, *b / 100)).collect();
            books.account_counters(now, &feeds, &list).unwrap();
        }
        let batch = books.batch();
        for dir in policy::Direction::BOTH {
            let d = match dir {
                policy::Direction::Down => Direction::Down,
                policy::Direction::Up => Direction::Up,
            };
            // What HTB's root counted: every leaf on that direction's IFB.
            let root_bytes: u64 = counters
                .iter()
                .filter(|(k, _)| k.dev == root(dir).dev && (feeds.contains_key(k)))
                .map(|(_, b)| *b)
                .sum();
            let of = |keep: &dyn Fn(&UsageKey) -> bool| -> u64 {
                batch
                    .samples
                    .iter()
                    .filter(|x| x.key.direction == d && keep(&x.key))
                    .map(|x| x.bytes)
                    .sum()
            };
            // The last read is at 00:20, so the four slots before it have
            // closed and hold every byte counted: the site's samples are the
            // root class's bytes, and the tenants' fall short of it by the
            // default class's (120 reads of 777).
            assert!(root_bytes > 0);
            assert_eq!(of(&|_| true), root_bytes, "{dir:?}");
            assert_eq!(
                of(&|k| k.tenant != billing::UNCLASSIFIED),
                root_bytes - 777 * 120
            );
            assert_eq!(of(&|k| k.tenant == billing::UNCLASSIFIED), 777 * 120);
        }
    }
}
