//! Which kernel class counts which tenant's traffic, and which reading the
//! accountant gets for each [`UsageKey`] in a round.
//!
//! Pure: the daemon hands in the compiled plan, the counters it read and
//! the identities the accountant tracks, and gets readings back.
//!
//! # Which classes are read
//!
//! Packets are counted where they are queued: in a *leaf* class. Every leaf
//! that serves a tenant is read: a band leaf (tenant × realm × direction ×
//! band), or, without bands, the tenant × realm class (band `whole`), or,
//! without realms, the tenant's own class (realm 0). HTB also adds a leaf's
//! bytes to every class above it, so reading only leaves counts each byte
//! once.
//!
//! # Object identity
//!
//! A class is named by its device and handle, and [`identity`] packs both
//! into the accountant's [`ObjectIdentity`]. The name, not the ifindex, is
//! used so that a class the daemon is about to create has an identity
//! already (see [`readings`]). A class deleted and recreated with the same
//! handle keeps its identity; the daemon records such a reset itself, with
//! a zero reading, whenever it sees or causes the deletion.

use accounting::{Band, Direction, ObjectIdentity, Reading, UsageKey};
use compiler::{Compiled, Role};
use net_types::RealmId;
use plan::{ClassKey, ObjectId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The accounted classes of a compiled plan: leaf class → whose traffic.
pub type Feeds = BTreeMap<ClassKey, UsageKey>;

/// The leaf classes of `compiled` that serve a tenant, and the key each one
/// counts for.
pub fn feeds(compiled: &Compiled) -> Feeds {
    let inner: BTreeSet<ClassKey> = compiled
        .plan
        .classes
        .iter()
        .map(|(k, c)| ClassKey {
            dev: k.dev,
            id: c.parent,
        })
        .collect();
    let mut out = Feeds::new();
    for (id, s) in &compiled.provenance.objects {
        let ObjectId::Class(key) = id else { continue };
        let counted = matches!(
            s.role,
            Role::TenantClass | Role::RealmClass | Role::CappedRealmClass | Role::BandClass
        );
        if !counted || inner.contains(key) {
            continue;
        }
        let (Some(tenant), Some(direction)) = (s.tenant, s.direction) else {
            continue;
        };
        out.insert(
            *key,
            UsageKey {
                tenant,
                realm: s.realm.unwrap_or(RealmId(0)),
                direction: match direction {
                    policy::Direction::Down => Direction::Down,
                    policy::Direction::Up => Direction::Up,
                },
                band: match s.band {
                    None => Band::Whole,
                    Some(policy::Band::Interactive) => Band::Interactive,
                    Some(policy::Band::Normal) => Band::Normal,
                    Some(policy::Band::Bulk) => Band::Bulk,
                },
                source: accounting::Source::Kernel,
            },
        );
    }
    out
}

/// A class's identity: a 32-bit FNV-1a hash of the device name, then the
/// handle. Stable across restarts and builds, because it is persisted in
/// the accountant's state.
pub fn identity(key: &ClassKey) -> ObjectIdentity {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.dev.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let handle = (u32::from(key.id.major) << 16) | u32::from(key.id.minor);
    ObjectIdentity((u64::from(h) << 32) | u64::from(handle))
}

/// One class's counters as read from the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Bytes.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
}

/// The reading of every key for one accounting step.
///
/// - `feeds`: what the running policy says counts each key now.
/// - `tracked`: the identity of the class the accountant last read for
///   each key (its persisted state).
/// - `kernel`: the counters of every class present now, by identity.
///
/// The rules, per key, so that a byte is neither lost nor counted twice:
/// 1. The tracked class still exists: read it. (During a move, traffic
///    already flows into the new class; its whole counter is counted once
///    the old one is gone, because its identity differs.)
/// 2. The tracked class is gone and the desired class is a different,
///    existing object: read that one; the accountant counts its whole
///    value as a new object.
/// 3. The tracked class is gone otherwise: read zero for it, which records
///    a counter reset. If it is recreated with the same handle, it counts
///    from zero again.
/// 4. A key the accountant does not track: read its class if it exists
///    (a first sight is a baseline), or zero for the class about to be
///    created, so that the traffic from its creation on is counted.
///
/// Keys no longer in the policy whose class is gone are left out; the
/// accountant forgets them after a while.
pub fn readings(
    feeds: &Feeds,
    tracked: &HashMap<UsageKey, ObjectIdentity>,
    kernel: &HashMap<ObjectIdentity, Counter>,
) -> Vec<(UsageKey, Reading)> {
    let mut desired: BTreeMap<UsageKey, ObjectIdentity> = BTreeMap::new();
    for (class, key) in feeds {
        desired.entry(*key).or_insert_with(|| identity(class));
    }
    let mut keys: BTreeSet<UsageKey> = desired.keys().copied().collect();
    keys.extend(tracked.keys().copied());
    let read = |object: ObjectIdentity| {
        let c = kernel.get(&object).copied().unwrap_or_default();
        Reading {
            object,
            bytes: c.bytes,
            packets: c.packets,
        }
    };
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let t = tracked.get(&key).copied();
        let d = desired.get(&key).copied();
        let object = match (t, d) {
            (Some(t), _) if kernel.contains_key(&t) => t,
            (Some(t), Some(d)) if d != t && kernel.contains_key(&d) => d,
            (Some(t), Some(_)) => t,
            (Some(_), None) => continue,
            (None, Some(d)) => d,
            (None, None) => continue,
        };
        out.push((key, read(object)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use net_types::{ClassId, IfName, TenantId};

    fn class(dev: &str, major: u16, minor: u16) -> ClassKey {
        ClassKey {
            dev: IfName::new(dev).unwrap(),
            id: ClassId::new(major, minor),
        }
    }

    fn key(t: u32) -> UsageKey {
        UsageKey {
            tenant: TenantId(t),
            realm: RealmId(1),
            direction: Direction::Down,
            band: Band::Whole,
            source: accounting::Source::Kernel,
        }
    }

    fn kernel(list: &[(ClassKey, u64)]) -> HashMap<ObjectIdentity, Counter> {
        list.iter()
            .map(|(c, b)| {
                (
                    identity(c),
                    Counter {
                        bytes: *b,
                        packets: *b / 100,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn identity_separates_devices_and_handles() {
        let a = identity(&class("tg-down", 2, 5));
        assert_ne!(a, identity(&class("tg-up", 2, 5)));
        assert_ne!(a, identity(&class("tg-down", 2, 6)));
        assert_eq!(a.0 & 0xffff_ffff, 0x0002_0005);
        // Persisted in the state: it must never change between builds.
        assert_eq!(a, identity(&class("tg-down", 2, 5)));
    }

    #[test]
    fn a_tracked_class_that_exists_is_read() {
        let old = class("tg-down", 2, 5);
        let feeds = Feeds::from([(old, key(1))]);
        let tracked = HashMap::from([(key(1), identity(&old))]);
        let r = readings(&feeds, &tracked, &kernel(&[(old, 700)]));
        assert_eq!(
            r,
            vec![(
                key(1),
                Reading {
                    object: identity(&old),
                    bytes: 700,
                    packets: 7
                }
            )]
        );
    }

    #[test]
    fn during_a_move_the_old_class_is_read_until_it_is_gone() {
        let old = class("tg-down", 2, 5);
        let new = class("tg-down", 2, 9);
        let feeds = Feeds::from([(new, key(1))]);
        let tracked = HashMap::from([(key(1), identity(&old))]);
        let both = kernel(&[(old, 700), (new, 50)]);
        assert_eq!(
            readings(&feeds, &tracked, &both)[0].1.object,
            identity(&old)
        );
        // Once the old class is deleted, the new one is read: a new object
        // whose whole counter the accountant counts.
        let r = readings(&feeds, &tracked, &kernel(&[(new, 80)]));
        assert_eq!(
            r[0].1,
            Reading {
                object: identity(&new),
                bytes: 80,
                packets: 0
            }
        );
    }

    #[test]
    fn a_vanished_class_reads_zero_so_its_recreation_counts_from_zero() {
        let c = class("tg-down", 2, 5);
        let feeds = Feeds::from([(c, key(1))]);
        let tracked = HashMap::from([(key(1), identity(&c))]);
        let r = readings(&feeds, &tracked, &HashMap::new());
        assert_eq!(
            r,
            vec![(
                key(1),
                Reading {
                    object: identity(&c),
                    bytes: 0,
                    packets: 0
                }
            )]
        );
    }

    #[test]
    fn a_new_key_reads_zero_before_its_class_exists() {
        let c = class("tg-up", 3, 8);
        let feeds = Feeds::from([(c, key(2))]);
        let r = readings(&feeds, &HashMap::new(), &HashMap::new());
        assert_eq!(
            r,
            vec![(
                key(2),
                Reading {
                    object: identity(&c),
                    bytes: 0,
                    packets: 0
                }
            )]
        );
    }

    #[test]
    fn a_removed_tenant_with_no_class_is_left_out() {
        let c = class("tg-up", 3, 8);
        let tracked = HashMap::from([(key(3), identity(&c))]);
        assert!(readings(&Feeds::new(), &tracked, &HashMap::new()).is_empty());
        // While its class still exists, its last traffic is still read.
        assert_eq!(
            readings(&Feeds::new(), &tracked, &kernel(&[(c, 10)])).len(),
            1
        );
    }
}
