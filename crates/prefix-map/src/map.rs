//! The table type: lookups, updates, bulk construction and checks.
//!
//! See the crate documentation for the design. The trie layout lives in
//! `trie.rs` and the value codes in `values.rs`; this file ties them to the
//! ordered shadow map that holds the stored prefixes.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::mem::size_of;

use crate::key::Key;
use crate::prefix::{check_len, Prefix, PrefixError};
use crate::trie::{
    base0, base1, child_of, run_count, run_of, Arena, Bucket, BucketExt, Dir, Node, Reuse, STRIDE,
};
use crate::values::{Values, NONE};

/// Prefixes of at most this length are kept out of the trie, in a
/// 256-entry side table consulted only when the trie has no match. Without
/// it a change to a default route or a /8 would have to rebuild up to 2^18
/// direct slots; with it such a change touches at most 256 entries, and a
/// trie miss costs one extra load from a table that stays in L1.
const SMALL_BITS: u32 = 8;

/// Prefetch distance and lock-step width of [`PrefixMap::lookup_batch`].
const LANES: usize = 16;

/// Upper bound on the trie depth in nodes (IPv6: 16 direct bits, then
/// 19 six-bit levels).
const MAX_LEVELS: usize = 24;

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
    dir: Dir,
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

/// Hints the processor to start loading the cache line at `r`.
///
/// This and the `popcnt` dispatch of [`PrefixMap::lookup_batch`] are the
/// crate's only `unsafe` code. Both exist for batch lookups: issuing the
/// loads of many lookups before using any of them is what lets their cache
/// misses overlap.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch<T>(r: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is only a hint: it never dereferences its
    // argument in a way the program can observe and never faults, even on
    // an invalid or dangling address. It requires
    // SSE, which every x86_64 processor has (it is part of the baseline
    // target), so the instruction is always available.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(r.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Where one step of a lookup leads.
enum Next {
    /// The lookup ends with this run code (0: no match in the trie).
    Code(u32),
    /// The lookup continues at this inner node.
    Child(usize),
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
    /// The direct level is allocated up front (16 MiB for IPv4, 4 MiB for
    /// IPv6), since a full table uses nearly all of it.
    pub fn new() -> Self {
        let dir = 1usize << K::DIR_BITS;
        PrefixMap {
            dir: Dir::new(dir),
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
        self.refresh(p, len);
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
        self.refresh(p, len);
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

    /// The value of the longest stored prefix containing `addr`.
    #[inline(always)]
    pub fn lookup(&self, addr: impl Into<K>) -> Option<V> {
        let a = addr.into();
        // The common case, a run of the direct bucket, is kept small enough
        // to inline into the caller's loop: the fewer instructions a lookup
        // takes, the more lookups the processor keeps in flight, and the more
        // of their cache misses overlap.
        let code = match self.dir.get(a.dir_index()) {
            Some(b) => match self.step_bucket(b, a) {
                Next::Code(c) => c,
                Next::Child(i) => self.descend(i, a),
            },
            None => NONE,
        };
        self.resolve(code, a)
    }

    /// Finishes a lookup below the direct level, from inner node `i`.
    #[inline(never)]
    fn descend(&self, mut i: usize, a: K) -> u32 {
        let mut d = K::DIR_BITS + STRIDE;
        // The bound on `d` never triggers on a well-formed trie; it keeps the
        // loop finite and the shifts in range no matter what.
        while d < u32::from(K::BITS) {
            match self.arena.nodes.get(i) {
                Some(n) => match self.step_node(n, a, d) {
                    Next::Code(c) => return c,
                    Next::Child(c) => i = c,
                },
                None => return NONE,
            }
            d += STRIDE;
        }
        NONE
    }

    /// One lookup step at a direct bucket.
    #[inline(always)]
    fn step_bucket(&self, b: &Bucket, a: K) -> Next {
        let v = a.chunk(K::DIR_BITS);
        if (b.vector() >> v) & 1 == 0 {
            Next::Code(b.run_code(run_of(b.leafvec(), v), &self.arena.codes))
        } else {
            Next::Child(child_of(b.vector(), b.base1(), v))
        }
    }

    /// One lookup step at an inner node of depth `d`.
    #[inline(always)]
    fn step_node(&self, n: &Node, a: K, d: u32) -> Next {
        let v = a.chunk(d);
        if (n[0] >> v) & 1 == 0 {
            let i = base0(n) + run_of(n[1], v);
            Next::Code(self.arena.codes.get(i).copied().unwrap_or(NONE))
        } else {
            Next::Child(child_of(n[0], base1(n), v))
        }
    }

    /// Turns a trie code into the answer, falling back to the side table of
    /// short prefixes when the trie had no match.
    #[inline(always)]
    fn resolve(&self, code: u32, a: K) -> Option<V> {
        let code = if code != NONE {
            code
        } else {
            self.small_code
                .get(a.top(SMALL_BITS))
                .copied()
                .unwrap_or(NONE)
        };
        self.values.get(code)
    }

    /// Looks up many addresses at once: `out[i]` receives the answer for
    /// `addrs[i]`. Only the first `min(addrs.len(), out.len())` entries are
    /// processed, and that count is returned.
    ///
    /// The direct-level bucket of each address is prefetched sixteen
    /// addresses ahead, so its cache miss is already under way when the
    /// lookup runs. Lookups that continue below the direct level (most IPv6
    /// ones) are parked and then finished sixteen at a time in lock-step,
    /// one level per round, prefetching every lane's next node before
    /// reading any. Either way the processor has many independent misses
    /// outstanding instead of waiting for one lookup's chain of loads.
    ///
    /// On x86_64 processors with the `popcnt` instruction (all from the
    /// last fifteen years) the batch runs in a copy of the code compiled
    /// for it, chosen at run time, because counting bits is a large part of
    /// each trie step. Single [`lookup`](Self::lookup)s use whatever the
    /// build targets: `-C target-cpu=x86-64-v2` or newer enables it there.
    pub fn lookup_batch<A: Copy + Into<K>>(&self, addrs: &[A], out: &mut [Option<V>]) -> usize {
        #[cfg(target_arch = "x86_64")]
        if !cfg!(target_feature = "popcnt") && std::is_x86_feature_detected!("popcnt") {
            return self.lookup_batch_popcnt(addrs, out);
        }
        self.lookup_batch_impl(addrs, out)
    }

    /// [`lookup_batch`](Self::lookup_batch) compiled with `popcnt`.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn lookup_batch_popcnt<A: Copy + Into<K>>(&self, addrs: &[A], out: &mut [Option<V>]) -> usize {
        #[target_feature(enable = "popcnt")]
        fn with_popcnt<K: Key, V: Copy + Eq + Hash, A: Copy + Into<K>>(
            m: &PrefixMap<K, V>,
            addrs: &[A],
            out: &mut [Option<V>],
        ) -> usize {
            m.lookup_batch_impl(addrs, out)
        }
        // SAFETY: the only requirement of a `target_feature` function is
        // that the processor has the feature, and the caller checked that
        // with `is_x86_feature_detected!("popcnt")` just before.
        unsafe { with_popcnt(self, addrs, out) }
    }

    #[inline(always)]
    fn lookup_batch_impl<A: Copy + Into<K>>(&self, addrs: &[A], out: &mut [Option<V>]) -> usize {
        let n = addrs.len().min(out.len());
        let (addrs, out) = (&addrs[..n], &mut out[..n]);
        let mut deep = [(0usize, 0usize, K::default()); LANES];
        let mut parked = 0;
        for i in 0..n {
            if let Some(&ahead) = addrs.get(i + LANES) {
                prefetch(self.dir.addr_of(ahead.into().dir_index()));
            }
            let a: K = addrs[i].into();
            let step = match self.dir.get(a.dir_index()) {
                Some(b) => self.step_bucket(b, a),
                None => Next::Code(NONE),
            };
            match step {
                Next::Code(c) => out[i] = self.resolve(c, a),
                Next::Child(c) => {
                    prefetch(self.arena.nodes.as_ptr().wrapping_add(c));
                    deep[parked] = (i, c, a);
                    parked += 1;
                    if parked == LANES {
                        self.finish_deep(&mut deep, out);
                        parked = 0;
                    }
                }
            }
        }
        self.finish_deep(&mut deep[..parked], out);
        n
    }

    /// Finishes parked lookups `(position, inner node)` in lock-step.
    #[inline(always)]
    fn finish_deep(&self, lanes: &mut [(usize, usize, K)], out: &mut [Option<V>]) {
        let mut busy = lanes.len();
        let mut d = K::DIR_BITS + STRIDE;
        while busy > 0 && d < u32::from(K::BITS) {
            for lane in lanes.iter_mut() {
                let (pos, node, a) = *lane;
                if pos == usize::MAX {
                    continue;
                }
                let step = match self.arena.nodes.get(node) {
                    Some(nd) => self.step_node(nd, a, d),
                    None => Next::Code(NONE),
                };
                match step {
                    Next::Child(c) => {
                        prefetch(self.arena.nodes.as_ptr().wrapping_add(c));
                        lane.1 = c;
                    }
                    Next::Code(c) => {
                        if let Some(o) = out.get_mut(pos) {
                            *o = self.resolve(c, a);
                        }
                        lane.0 = usize::MAX;
                        busy -= 1;
                    }
                }
            }
            d += STRIDE;
        }
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

    fn default_of(&self, slot: usize) -> u32 {
        if self.dflt_len[slot] == 0 {
            NONE
        } else {
            self.dflt_code.get(slot).copied().unwrap_or(NONE)
        }
    }

    fn set_default(&mut self, slot: usize, len_code: u8, code: u32) {
        if self.dflt_code.is_empty() {
            self.dflt_code = vec![NONE; self.dflt_len.len()];
        }
        self.dflt_len[slot] = len_code;
        self.dflt_code[slot] = code;
    }

    /// Brings the trie in line with the shadow map after `p/len` changed
    /// there (inserted, re-valued or removed).
    fn refresh(&mut self, p: K, len: u8) {
        let l = u32::from(len);
        if l <= SMALL_BITS {
            self.refresh_small(p, len);
            return;
        }
        if l <= K::DIR_BITS {
            self.refresh_short(p, len);
            return;
        }
        // Walk down to the node the prefix ends in, or to the deepest node
        // on its path when the path stops early. That node's subtree is the
        // only part of the trie whose answers can change. The walk records
        // each node's inherited code, which is the rebuild's default.
        let mut path = [(0usize, 0u32, NONE); MAX_LEVELS];
        let slot = p.dir_index();
        path[0] = (slot, K::DIR_BITS, self.default_of(slot));
        let mut np = 1;
        let mut d = K::DIR_BITS;
        while l > d + STRIDE && np < MAX_LEVELS {
            let s = p.chunk(d);
            let idx = path[np - 1].0;
            let (dv, child) = if np == 1 {
                let b = self.dir.at(idx);
                if (b.vector() >> s) & 1 == 0 {
                    break;
                }
                let dv = b.run_code(run_of(b.leafvec(), s), &self.arena.codes);
                (dv, child_of(b.vector(), b.base1(), s))
            } else {
                let n = &self.arena.nodes[idx];
                if (n[0] >> s) & 1 == 0 {
                    break;
                }
                let dv = self.arena.codes[base0(n) + run_of(n[1], s)];
                (dv, child_of(n[0], base1(n), s))
            };
            d += STRIDE;
            path[np] = (child, d, dv);
            np += 1;
        }
        // Rebuild that node; if a removal left it without any prefix longer
        // than its depth it must disappear, so its parent is rebuilt instead
        // (the trie keeps a child only where some prefix needs it).
        let mut level = np;
        while level > 0 {
            level -= 1;
            let (idx, d, dv) = path[level];
            self.collect(p.truncate(d), d);
            if self.scratch.is_empty() && level > 0 {
                continue;
            }
            // Only the slots under `p` can change; children elsewhere keep
            // their subtrees.
            let first = p.chunk(d);
            let touched = if l <= d + STRIDE {
                let n = 1u32 << (d + STRIDE - l);
                u64::MAX.checked_shr(64 - n).unwrap_or(0) << first
            } else {
                1u64 << first
            };
            self.rebuild(idx, d, dv, !touched);
            break;
        }
    }

    /// Updates the direct-slot defaults after a change of a prefix no longer
    /// than the direct level, and rebuilds each slot whose default changed.
    fn refresh_short(&mut self, p: K, len: u8) {
        let len_code = len + 1;
        // The new cover of the slots that `p/len` covers: itself if still
        // stored, otherwise the longest shorter prefix containing it.
        let (new_len, new_code) = match self.shadow.get(&p.enc(len)) {
            Some(&c) => (len_code, c),
            None => self.best_shorter(p, len, SMALL_BITS as u8 + 1),
        };
        let first = p.dir_index();
        let count = 1usize << (K::DIR_BITS - u32::from(len));
        for slot in first..first + count {
            // Slots under a longer short prefix keep their default: the
            // change of `p/len` is hidden from them.
            if self.dflt_len[slot] <= len_code
                && (self.dflt_len[slot], self.default_of(slot)) != (new_len, new_code)
            {
                self.set_default(slot, new_len, new_code);
                if self.has_long[slot / 64] >> (slot % 64) & 1 == 1 {
                    self.collect(K::from_dir_index(slot), K::DIR_BITS);
                } else {
                    self.scratch.clear();
                }
                self.rebuild(slot, K::DIR_BITS, new_code, 0);
            }
        }
    }

    /// Updates the side table after a change of a prefix of length at most
    /// `SMALL_BITS`, the same way `refresh_short` updates slot defaults.
    fn refresh_small(&mut self, p: K, len: u8) {
        let len_code = len + 1;
        let (new_len, new_code) = match self.shadow.get(&p.enc(len)) {
            Some(&c) => (len_code, c),
            None => self.best_shorter(p, len, 0),
        };
        let first = p.top(SMALL_BITS);
        let count = 1usize << (SMALL_BITS - u32::from(len));
        for slot in first..first + count {
            if self.small_len[slot] <= len_code {
                self.small_len[slot] = new_len;
                self.small_code[slot] = new_code;
            }
        }
    }

    /// The longest stored prefix containing `p` with a length in
    /// `floor..len`, as (length + 1, code), or (0, NONE).
    fn best_shorter(&self, p: K, len: u8, floor: u8) -> (u8, u32) {
        for l in (floor..len).rev() {
            if let Some(&c) = self.shadow.get(&p.truncate(u32::from(l)).enc(l)) {
                return (l + 1, c);
            }
        }
        (0, NONE)
    }

    /// Fills `scratch` with the stored prefixes longer than `d` inside the
    /// depth-`d` range starting at `lo`, in address-then-length order.
    fn collect(&mut self, lo: K, d: u32) {
        self.scratch.clear();
        let from = lo.enc(d as u8 + 1);
        let to = lo.last_in(d).enc(K::BITS);
        self.scratch
            .extend(self.shadow.range(from..=to).map(|(s, &c)| {
                let (a, l) = K::dec(*s);
                (a, l, c)
            }));
    }

    /// Replaces the subtree at `dir[idx]` (when `d` is `DIR_BITS`) or
    /// `nodes[idx]` (depth `d`, inherited code `dv`) with one built from
    /// `scratch`, keeping the old child subtrees of the slots in `keep`.
    fn rebuild(&mut self, idx: usize, d: u32, dv: u32, keep: u64) {
        let ps = std::mem::take(&mut self.scratch);
        // The new node is built before the old one is freed, because it
        // copies the kept children out of the old children block.
        if d == K::DIR_BITS {
            let old = self.dir.at(idx);
            let reuse = Reuse {
                keep,
                vector: old.vector(),
                base1: old.base1(),
            };
            let b = self.arena.build_bucket(d, dv, &ps, reuse);
            self.arena.free_bucket_codes(&old);
            self.arena
                .free_children(old.vector(), old.base1(), keep & b.vector());
            self.dir.set(idx, &b);
            let bit = 1u64 << (idx % 64);
            if ps.is_empty() {
                self.has_long[idx / 64] &= !bit;
            } else {
                self.has_long[idx / 64] |= bit;
            }
        } else {
            let old = self.arena.nodes[idx];
            let reuse = Reuse {
                keep,
                vector: old[0],
                base1: base1(&old),
            };
            let n = self.arena.build_node(d, dv, &ps, reuse);
            self.arena.free_node_codes(&old);
            self.arena.free_children(old[0], base1(&old), keep & n[0]);
            self.arena.nodes[idx] = n;
        }
        self.scratch = ps;
    }

    /// Checks the trie's structural invariants: blocks in bounds and owned
    /// once, free lists disjoint from live blocks and together covering the
    /// storage, every child needed by some stored prefix, and bit 0 of every
    /// run bitmap clear. Meant for tests and fuzzing; it costs a full walk.
    pub fn validate(&self) -> Result<(), String> {
        let a = &self.arena;
        let dir = 1usize << K::DIR_BITS;
        if self.dir.len() != dir || a.codes.first() != Some(&NONE) {
            return Err("direct level or empty code missing".into());
        }
        // Only slots holding a long prefix or covered by a slot default can
        // be non-empty; a non-empty slot elsewhere would own blocks that the
        // accounting below finds neither live nor free.
        let mut slots: Vec<usize> = Vec::new();
        for (w, &word) in self.has_long.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                slots.push(w * 64 + rest.trailing_zeros() as usize);
                rest &= rest - 1;
            }
        }
        for (s, _) in self.shadow.iter() {
            let (p, l) = K::dec(*s);
            let l = u32::from(l);
            if l > SMALL_BITS && l <= K::DIR_BITS {
                let first = p.dir_index();
                slots.extend(first..first + (1usize << (K::DIR_BITS - l)));
            }
        }
        slots.sort_unstable();
        slots.dedup();
        let mut node_used = vec![false; a.nodes.len()];
        let mut code_used = vec![false; a.codes.len()];
        code_used[0] = true;
        for &slot in &slots {
            let b = self.dir.at(slot);
            let lo = K::from_dir_index(slot);
            let from = lo.enc(K::DIR_BITS as u8 + 1);
            let to = lo.last_in(K::DIR_BITS).enc(K::BITS);
            let flagged = self.has_long[slot / 64] >> (slot % 64) & 1 == 1;
            if flagged != self.shadow.range(from..=to).next().is_some() {
                return Err(format!("slot {slot}: has_long is {flagged} but disagrees"));
            }
            if b.leafvec() & 1 != 0 {
                return Err(format!("slot {slot}: bit 0 of leafvec set"));
            }
            let total = run_count(b.leafvec());
            let inline = b.inline_runs();
            if total > inline {
                let at = b.ovf().wrapping_add(inline as u32) as usize;
                claim(&mut code_used, at, total - inline, "overflow code")?;
            }
            self.validate_children(
                b.vector(),
                b.base1(),
                K::DIR_BITS,
                lo,
                &mut node_used,
                &mut code_used,
            )?;
        }
        for (size, list) in a.free_nodes.iter().enumerate() {
            for &at in list {
                claim(&mut node_used, at as usize, size, "free node")?;
            }
        }
        for (size, list) in a.free_codes.iter().enumerate() {
            for &at in list {
                claim(&mut code_used, at as usize, size, "free code")?;
            }
        }
        if let Some(i) = node_used.iter().position(|&u| !u) {
            return Err(format!("node {i} is neither live nor free"));
        }
        if let Some(i) = code_used.iter().position(|&u| !u) {
            return Err(format!("code slot {i} is neither live nor free"));
        }
        Ok(())
    }

    fn validate_children(
        &self,
        vector: u64,
        b1: usize,
        d: u32,
        lo: K,
        node_used: &mut [bool],
        code_used: &mut [bool],
    ) -> Result<(), String> {
        let nc = vector.count_ones() as usize;
        if nc == 0 {
            return Ok(());
        }
        if d + STRIDE >= u32::from(K::BITS) {
            return Err(format!("node at depth {d} has children past the address"));
        }
        claim(node_used, b1, nc, "child")?;
        let mut rest = vector;
        let mut k = 0;
        let cd = d + STRIDE;
        while rest != 0 {
            let s = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let clo = lo.with_chunk(d, s);
            let from = clo.enc(cd as u8 + 1);
            let to = clo.last_in(cd).enc(K::BITS);
            if self.shadow.range(from..=to).next().is_none() {
                return Err(format!("child {s} at depth {cd} holds no prefix"));
            }
            let n = self.arena.nodes[b1 + k];
            if n[1] & 1 != 0 {
                return Err(format!("node at depth {cd} has bit 0 of leafvec set"));
            }
            let b0 = base0(&n);
            let nl = run_count(n[1]);
            if b0 == 0 {
                if nl != 1 {
                    return Err("several runs share the empty code slot".into());
                }
            } else {
                claim(code_used, b0, nl, "node codes")?;
            }
            self.validate_children(n[0], base1(&n), cd, clo, node_used, code_used)?;
            k += 1;
        }
        Ok(())
    }
}

/// Marks `used[at..at + size]`, failing on overlap or out-of-bounds blocks.
fn claim(used: &mut [bool], at: usize, size: usize, what: &str) -> Result<(), String> {
    if at + size > used.len() || used[at..at + size].iter().any(|&u| u) {
        return Err(format!(
            "{what} block {at}+{size} overlaps or is out of bounds"
        ));
    }
    used[at..at + size].fill(true);
    Ok(())
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
