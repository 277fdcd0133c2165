//! Lookups: single addresses inlined into the caller, and batches that keep
//! many lookups' cache misses in flight at once.

use std::hash::Hash;

use crate::cpu::{prefetch, with_popcnt};
use crate::dir::DirLevel;
use crate::key::Key;
use crate::trie::{
    base0, base1, child_of, is_path, path_code, run_of, Bucket, BucketExt, Node, STRIDE,
};
use crate::values::NONE;

use super::{PrefixMap, SMALL_BITS};

/// How far ahead [`PrefixMap::lookup_batch`] prefetches direct buckets.
const AHEAD: usize = 16;

/// Lookups below the direct level that [`PrefixMap::lookup_batch`] keeps
/// in flight at once. On the shared IPv6 table 24 lanes were about 10%
/// faster than 16, and 32 no faster than 24.
const LANES: usize = 24;

/// Where one step of a lookup leads.
pub(super) enum Next {
    /// The lookup ends with this run code (0: no match in the trie).
    Code(u32),
    /// The lookup continues at this inner node.
    Child(usize),
}

impl<K: Key, V: Copy + Eq + Hash> PrefixMap<K, V> {
    /// The value of the longest stored prefix containing `addr`.
    #[inline(always)]
    pub fn lookup(&self, addr: impl Into<K>) -> Option<V> {
        let a = addr.into();
        if K::WALKS_DEEP {
            // The whole walk runs in the copy compiled for `popcnt`, below
            // the direct level included.
            if let Some(v) = with_popcnt(|| self.lookup_impl::<false>(a)) {
                return v;
            }
        }
        self.lookup_impl::<true>(a)
    }

    /// A lookup; `OUTLINE` keeps the walk below the direct level out of
    /// line.
    #[inline(always)]
    fn lookup_impl<const OUTLINE: bool>(&self, a: K) -> Option<V> {
        // The common case, a run of the direct bucket, is kept small enough
        // to inline into the caller's loop: the fewer instructions a lookup
        // takes, the more lookups the processor keeps in flight, and the more
        // of their cache misses overlap.
        let code = match self.dir.get(a.dir_index()) {
            Some(b) => match self.step_bucket(b, a) {
                Next::Code(c) => c,
                Next::Child(i) if OUTLINE => self.descend_outline(i, a),
                Next::Child(i) => self.descend(i, a),
            },
            None => NONE,
        };
        self.resolve(code, a)
    }

    /// [`descend`](Self::descend) as a call, so that it does not weigh on
    /// callers inlining lookups that usually end in the direct level.
    #[inline(never)]
    fn descend_outline(&self, i: usize, a: K) -> u32 {
        self.descend(i, a)
    }

    /// Finishes a lookup below the direct level, from inner node `i`.
    #[inline(always)]
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
        if is_path(n) {
            return Next::Code(path_code(n, a.window(d)));
        }
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
    /// ones) are parked in up to 24 lanes; whenever the lanes are full,
    /// every parked lookup moves one level down, having prefetched that
    /// node a round earlier, and finished ones leave their lane to the next
    /// address. Either way the processor has many independent misses
    /// outstanding instead of waiting for one lookup's chain of loads.
    ///
    /// On x86_64 processors with the `popcnt` instruction (all from the
    /// last fifteen years) the batch runs in a copy of the code compiled
    /// for it, chosen at run time, because counting bits is a large part of
    /// each trie step.
    pub fn lookup_batch<A: Copy + Into<K>>(&self, addrs: &[A], out: &mut [Option<V>]) -> usize {
        match with_popcnt(|| self.lookup_batch_impl(addrs, out)) {
            Some(n) => n,
            None => self.lookup_batch_impl(addrs, out),
        }
    }

    #[inline(always)]
    fn lookup_batch_impl<A: Copy + Into<K>>(&self, addrs: &[A], out: &mut [Option<V>]) -> usize {
        let n = addrs.len().min(out.len());
        let (addrs, out) = (&addrs[..n], &mut out[..n]);
        let mut deep = [(0usize, 0usize, K::default(), 0u32); LANES];
        let mut busy = 0;
        for i in 0..n {
            if let Some(&ahead) = addrs.get(i + AHEAD) {
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
                    while busy == LANES {
                        busy = self.advance_deep(&mut deep, busy, out);
                    }
                    deep[busy] = (i, c, a, K::DIR_BITS + STRIDE);
                    busy += 1;
                }
            }
        }
        while busy > 0 {
            busy = self.advance_deep(&mut deep, busy, out);
        }
        n
    }

    /// Moves each of the first `busy` parked lookups `(position, inner
    /// node, address, depth)` one level down, prefetching the node it needs
    /// next, and writes out the ones that end. Returns how many are still
    /// parked, packed at the front. A lookup is parked as soon as it leaves
    /// the direct level and every round advances them all, so up to
    /// [`LANES`] independent chains of loads are under way at once instead
    /// of one.
    #[inline(always)]
    fn advance_deep(
        &self,
        lanes: &mut [(usize, usize, K, u32); LANES],
        mut busy: usize,
        out: &mut [Option<V>],
    ) -> usize {
        let mut j = 0;
        while j < busy {
            let (pos, node, a, d) = lanes[j];
            // The depth bound never triggers on a well-formed trie; it keeps
            // every lane finite and its shifts in range no matter what.
            let step = match self.arena.nodes.get(node) {
                Some(nd) if d < u32::from(K::BITS) => self.step_node(nd, a, d),
                _ => Next::Code(NONE),
            };
            match step {
                Next::Child(c) => {
                    prefetch(self.arena.nodes.as_ptr().wrapping_add(c));
                    lanes[j] = (pos, c, a, d + STRIDE);
                    j += 1;
                }
                Next::Code(c) => {
                    if let Some(o) = out.get_mut(pos) {
                        *o = self.resolve(c, a);
                    }
                    busy -= 1;
                    lanes[j] = lanes[busy];
                }
            }
        }
        busy
    }
}
