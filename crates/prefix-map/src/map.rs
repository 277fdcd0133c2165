//! The table type: its fields, bulk construction, the public update and
//! query methods, and accounting.
//!
//! See the crate documentation for the design. The trie layout lives in
//! `trie.rs` and `dir.rs`, the value codes in `values.rs`; this module ties
//! them to the ordered shadow map that holds the stored prefixes. Its
//! submodules hold the lookups (`lookup.rs`), the incremental trie
//! maintenance behind `insert` and `remove` (`update.rs`) and the
//! structural self-check (`validate.rs`).

mod lookup;
mod update;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::mem::size_of;

use crate::dir::DirLevel;
use crate::key::Key;
use crate::prefix::{check_len, Prefix, PrefixError};
use crate::trie::{Arena, Node, Reuse};
use crate::values::{Values, NONE};

/// Prefixes of at most this length are kept out of the trie, in a
/// 256-entry side table consulted only when the trie has no match. Without
/// it a change to a default route or a /8 would have to rebuild up to 2^18
/// direct slots; with it such a change touches at most 256 entries, and a
/// trie miss costs one extra load from a table that stays in L1.
const SMALL_BITS: u32 = 8;

/// A longest-prefix-match table for one address family: [`PrefixMap4`] for
/// IPv4 (`K = u32`) and [`PrefixMap6`] for IPv6 (`K = u128`).
///
/// Values are small `Copy` types such as realm ids (`u16`) or tenant ids
/// (`u32`). The trie stores a code per distinct value rather than the value
/// itself, so `V` also needs `Hash` (to find a value's code) and the size
/// of `V` does not change the size of the trie. See the crate documentation
/// for the data structure and its costs.
///
/// Every method that takes a prefix accepts either the integer key or the
/// standard address type (`Ipv4Addr`/`Ipv6Addr`), clears host bits after the
/// prefix length, and returns [`PrefixError`] for a length longer than the
/// address width. No method panics on any input.
#[derive(Clone)]
pub struct PrefixMap<K: Key, V> {
    /// The direct-pointing level: one bucket per value of the top
    /// `DIR_BITS` bits.
    dir: K::Dir,
    arena: Arena,
    values: Values<V>,
    /// Per direct slot: 0 when no prefix with a length in
    /// `SMALL_BITS + 1..=DIR_BITS` covers the slot, otherwise one more than
    /// the length of the longest one that does.
    dflt_len: Vec<u8>,
    /// Per direct slot: the code of that covering prefix. Allocated on the
    /// first such prefix, since most IPv6 tables have none.
    dflt_code: Vec<u32>,
    /// One bit per direct slot: set when some stored prefix longer than
    /// `DIR_BITS` lies inside the slot, so that default changes can rebuild
    /// slots without a subtree without asking the shadow map.
    has_long: Vec<u64>,
    /// Prefixes of length ≤ `SMALL_BITS`, expanded over the top
    /// `SMALL_BITS` bits: length + 1 (or 0) of the covering prefix.
    small_len: Vec<u8>,
    /// Codes of `small_len`'s covering prefixes.
    small_code: Vec<u32>,
    /// Every stored prefix with its value code, ordered by address and then
    /// length. It is the source of truth: the trie is derived from it,
    /// subtree by subtree.
    shadow: BTreeMap<K::Shadow, u32>,
    /// Reused buffer for the prefixes of a subtree being rebuilt.
    scratch: Vec<(K, u8, u32)>,
}

/// An IPv4 longest-prefix-match table.
pub type PrefixMap4<V> = PrefixMap<u32, V>;

/// An IPv6 longest-prefix-match table.
pub type PrefixMap6<V> = PrefixMap<u128, V>;

/// Counts of a table's parts, from [`PrefixMap::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Stored prefixes.
    pub prefixes: usize,
    /// Distinct values in use.
    pub values: usize,
    /// Live trie nodes below the direct level.
    pub nodes: usize,
    /// Live run codes outside the direct buckets.
    pub codes: usize,
    /// Node slots waiting on free lists for reuse.
    pub free_nodes: usize,
    /// Code slots waiting on free lists for reuse.
    pub free_codes: usize,
}

impl<K: Key, V: Copy + Eq + Hash> Default for PrefixMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key, V> fmt::Debug for PrefixMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixMap")
            .field("bits", &K::BITS)
            .field("len", &self.shadow.len())
            .field("nodes", &self.arena.nodes.len())
            .field("codes", &self.arena.codes.len())
            .finish()
    }
}

impl<K: Key, V: Copy + Eq + Hash> PrefixMap<K, V> {
    /// An empty table.
    ///
    /// The IPv4 direct level is allocated up front (16 MiB), since a full
    /// table uses nearly all of it; the IPv6 one starts as a 256 KiB index
    /// and gains a bucket per populated /16.
    pub fn new() -> Self {
        let dir = 1usize << K::DIR_BITS;
        PrefixMap {
            dir: K::Dir::new(dir),
            arena: Arena::new(),
            values: Values::new(),
            dflt_len: vec![0; dir],
            dflt_code: Vec::new(),
            has_long: vec![0; dir.div_ceil(64)],
            small_len: vec![0; 1 << SMALL_BITS],
            small_code: vec![NONE; 1 << SMALL_BITS],
            shadow: BTreeMap::new(),
            scratch: Vec::new(),
        }
    }

    /// Builds a table from `(prefix, length, value)` triples in one pass,
    /// much faster than inserting them one by one: the input is sorted once
    /// and every subtree is built exactly once.
    ///
    /// When a prefix appears more than once the last value wins, as with
    /// repeated [`insert`](Self::insert). Fails on the first length longer
    /// than the address width.
    pub fn build<I, A>(items: I) -> Result<Self, PrefixError>
    where
        I: IntoIterator<Item = (A, u8, V)>,
        A: Into<K>,
    {
        let it = items.into_iter();
        let mut v = Vec::with_capacity(it.size_hint().0);
        for (a, len, val) in it {
            let l = check_len::<K>(len)?;
            v.push((a.into().truncate(l), len, val));
        }
        Ok(Self::from_vec(v))
    }

    /// The bulk constructor behind [`build`](Self::build) and `collect`;
    /// `v` holds normalised prefixes in any order.
    fn from_vec(mut v: Vec<(K, u8, V)>) -> Self {
        // A stable sort keeps duplicates in input order, so keeping the last
        // of each run gives "last insert wins".
        v.sort_by_key(|&(a, l, _)| (a, l));
        v.dedup_by(|later, kept| {
            if (later.0, later.1) == (kept.0, kept.1) {
                kept.2 = later.2;
                true
            } else {
                false
            }
        });

        let mut m = Self::new();
        let v: Vec<(K, u8, u32)> = v
            .into_iter()
            .map(|(a, l, val)| (a, l, m.values.acquire(val)))
            .collect();
        m.shadow = v.iter().map(|&(a, l, c)| (a.enc(l), c)).collect();

        // Short prefixes only set side-table entries or direct-slot
        // defaults; applying them from the shortest up lets the more
        // specific ones overwrite.
        let mut short: Vec<(u8, K, u32)> = v
            .iter()
            .filter(|p| u32::from(p.1) <= K::DIR_BITS)
            .map(|&(a, l, c)| (l, a, c))
            .collect();
        short.sort_by_key(|p| p.0);
        for &(l, a, c) in &short {
            if u32::from(l) <= SMALL_BITS {
                let first = a.top(SMALL_BITS);
                let count = 1usize << (SMALL_BITS - u32::from(l));
                m.small_len[first..first + count].fill(l + 1);
                m.small_code[first..first + count].fill(c);
            } else {
                let first = a.dir_index();
                let count = 1usize << (K::DIR_BITS - u32::from(l));
                for slot in first..first + count {
                    m.set_default(slot, l + 1, c);
                }
            }
        }
        drop(short);

        let mut i = 0;
        while i < v.len() {
            if u32::from(v[i].1) <= K::DIR_BITS {
                i += 1;
                continue;
            }
            // Sorted order groups the longer prefixes of one direct slot.
            let slot = v[i].0.dir_index();
            let from = i;
            while i < v.len() && u32::from(v[i].1) > K::DIR_BITS && v[i].0.dir_index() == slot {
                i += 1;
            }
            let dv = m.default_of(slot);
            let b = m
                .arena
                .build_bucket(K::DIR_BITS, dv, &v[from..i], Reuse::NONE);
            m.dir.set(slot, &b);
            m.has_long[slot / 64] |= 1 << (slot % 64);
        }
        // Slots covered only by a short prefix still need their run code.
        for &(a, l, _) in &v {
            let l = u32::from(l);
            if l <= SMALL_BITS || l > K::DIR_BITS {
                continue;
            }
            let first = a.dir_index();
            for slot in first..first + (1usize << (K::DIR_BITS - l)) {
                if m.dir.at(slot) == [0; 8] {
                    let dv = m.default_of(slot);
                    let b = m.arena.build_bucket::<K>(K::DIR_BITS, dv, &[], Reuse::NONE);
                    m.dir.set(slot, &b);
                }
            }
        }
        m.arena.nodes.shrink_to_fit();
        m.arena.codes.shrink_to_fit();
        m
    }

    /// Number of stored prefixes.
    pub fn len(&self) -> usize {
        self.shadow.len()
    }

    /// Whether no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.shadow.is_empty()
    }

    /// Removes every prefix.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Stores `value` for `prefix/len`, returning the value it replaced.
    pub fn insert(
        &mut self,
        prefix: impl Into<K>,
        len: u8,
        value: V,
    ) -> Result<Option<V>, PrefixError> {
        let l = check_len::<K>(len)?;
        let p = prefix.into().truncate(l);
        let code = self.values.acquire(value);
        let old = self.shadow.insert(p.enc(len), code);
        let old_value = old.and_then(|c| self.values.get(c));
        if old == Some(code) {
            // Same value again: nothing changes but the extra reference.
            self.values.release(code);
            return Ok(old_value);
        }
        self.refresh(p, len, Some(code));
        if let Some(c) = old {
            self.values.release(c);
        }
        Ok(old_value)
    }

    /// Removes `prefix/len`, returning its value if it was stored.
    pub fn remove(&mut self, prefix: impl Into<K>, len: u8) -> Result<Option<V>, PrefixError> {
        let l = check_len::<K>(len)?;
        let p = prefix.into().truncate(l);
        let Some(code) = self.shadow.remove(&p.enc(len)) else {
            return Ok(None);
        };
        let value = self.values.get(code);
        self.refresh(p, len, None);
        self.values.release(code);
        Ok(value)
    }

    /// The value stored for exactly `prefix/len`, ignoring shorter covering
    /// prefixes.
    pub fn get_exact(&self, prefix: impl Into<K>, len: u8) -> Result<Option<V>, PrefixError> {
        let l = check_len::<K>(len)?;
        let p = prefix.into().truncate(l);
        Ok(self
            .shadow
            .get(&p.enc(len))
            .and_then(|&c| self.values.get(c)))
    }

    /// Every stored prefix with its value, in address order (a prefix comes
    /// before the more specific prefixes it contains).
    pub fn iter(&self) -> impl Iterator<Item = (Prefix<K>, V)> + '_ {
        self.shadow.iter().filter_map(|(s, &c)| {
            let (a, l) = K::dec(*s);
            Some((Prefix::from_parts(a, l), self.values.get(c)?))
        })
    }

    /// Heap bytes held by the table: the trie (including free blocks kept
    /// for reuse), the value table, the per-slot defaults, and an estimate
    /// for the shadow map.
    ///
    /// The shadow map is a `BTreeMap`, whose node layout is private; the
    /// estimate assumes nodes of 11 entries filled to 8 on average, plus one
    /// internal node (with its 12 child pointers) per 8 leaves. A map built
    /// in bulk has fuller nodes than that, so the figure errs high.
    pub fn memory_bytes(&self) -> usize {
        let a = &self.arena;
        let lists: usize = a
            .free_nodes
            .iter()
            .chain(a.free_codes.iter())
            .map(|l| size_of::<Vec<u32>>() + l.capacity() * size_of::<u32>())
            .sum();
        let entry = size_of::<K::Shadow>() + size_of::<u32>();
        let leaf_node = 16 + 11 * entry;
        let internal_node = leaf_node + 12 * size_of::<usize>();
        let leaf_nodes = self.shadow.len().div_ceil(8);
        let shadow = leaf_nodes * leaf_node + leaf_nodes.div_ceil(8) * internal_node;
        self.dir.bytes()
            + a.nodes.capacity() * size_of::<Node>()
            + a.codes.capacity() * size_of::<u32>()
            + lists
            + self.values.memory_bytes()
            + self.dflt_len.capacity()
            + self.dflt_code.capacity() * size_of::<u32>()
            + self.has_long.capacity() * size_of::<u64>()
            + self.small_len.capacity()
            + self.small_code.capacity() * size_of::<u32>()
            + self.scratch.capacity() * size_of::<(K, u8, u32)>()
            + shadow
    }

    /// Counts of the table's parts, for reports and tuning.
    pub fn stats(&self) -> Stats {
        let a = &self.arena;
        Stats {
            prefixes: self.shadow.len(),
            values: self.values.distinct(),
            nodes: a.nodes.len() - a.free_node_slots,
            codes: a.codes.len() - 1 - a.free_code_slots,
            free_nodes: a.free_node_slots,
            free_codes: a.free_code_slots,
        }
    }
}

impl<K: Key, V: Copy + Eq + Hash> FromIterator<(Prefix<K>, V)> for PrefixMap<K, V> {
    /// Builds the table with the bulk constructor; a prefix given twice keeps
    /// its last value.
    fn from_iter<I: IntoIterator<Item = (Prefix<K>, V)>>(iter: I) -> Self {
        Self::from_vec(
            iter.into_iter()
                .map(|(p, v)| (p.addr(), p.prefix_len(), v))
                .collect(),
        )
    }
}
