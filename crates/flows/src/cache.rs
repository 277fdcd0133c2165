//! A small per-worker cache of IPv4 address → owner and realm.
//!
//! Two longest-prefix lookups per address (tenant and realm) cost 40–80 ns;
//! a flow has two addresses, and the collector's budget at ten million
//! flows a second on two cores is about 100 ns per flow for everything.
//! Exported traffic is dominated by a working set of a few thousand busy
//! hosts, so a direct-mapped cache in front of the tables answers most
//! addresses in one cache line. IPv6 goes to the tables directly.

use crate::attribution::{Attribution, Owner};
use net_types::RealmId;

/// 2^14 entries of 20 bytes: 320 KiB, inside a core's L2.
const BITS: u32 = 14;

#[derive(Clone, Copy)]
struct Entry {
    addr: u32,
    /// The [`Attribution::generation`] it was filled from, plus one, so that
    /// zero marks an empty entry.
    generation: u32,
    owner: Option<Owner>,
}

/// Direct-mapped by a multiplicative hash of the address.
pub(crate) struct AddressCache {
    entries: Vec<(Entry, RealmId)>,
    /// `32 - bits`: the hash's top `bits` bits index `entries`.
    shift: u32,
}

impl AddressCache {
    pub(crate) fn new() -> AddressCache {
        AddressCache::with_bits(BITS)
    }

    /// A cache of 2^`bits` entries (`bits` is kept within 1..=16). The
    /// fuzzing entry uses a tiny one: collisions and refills become the
    /// common case, and creating it per input costs nothing.
    pub(crate) fn with_bits(bits: u32) -> AddressCache {
        let bits = bits.clamp(1, 16);
        let empty = Entry {
            addr: 0,
            generation: 0,
            owner: None,
        };
        AddressCache {
            entries: vec![(empty, RealmId(0)); 1 << bits],
            shift: 32 - bits,
        }
    }

    /// The owner and realm of `addr` under `tables`.
    #[inline]
    pub(crate) fn resolve(&mut self, tables: &Attribution, addr: u32) -> (Option<Owner>, RealmId) {
        let slot = (addr.wrapping_mul(0x9E37_79B1) >> self.shift) as usize;
        let generation = tables.generation().wrapping_add(1).max(1);
        if let Some((e, realm)) = self.entries.get(slot) {
            if e.generation == generation && e.addr == addr {
                return (e.owner, *realm);
            }
        }
        let (owner, realm) = tables.resolve4(addr);
        if let Some(cell) = self.entries.get_mut(slot) {
            *cell = (
                Entry {
                    addr,
                    generation,
                    owner,
                },
                realm,
            );
        }
        (owner, realm)
    }
}
