//! Trie storage: the 64-byte direct-level buckets, the compact inner nodes,
//! their allocator, and the subtree builder shared by bulk construction and
//! updates. Everything here works on value codes (see `values.rs`), never
//! on values.

use crate::key::Key;

/// Bits consumed by one trie level below the direct level. Six bits make
/// both bitmaps of a node fit in one `u64` each, so a child or leaf
/// position is a single popcount.
pub(crate) const STRIDE: u32 = 6;

/// Slots per node.
pub(crate) const FANOUT: usize = 1 << STRIDE;

/// Run codes stored inside a direct-level bucket.
pub(crate) const INLINE: usize = 20;

/// Inline code meaning "read this run's code from the overflow block".
/// Buckets that need a code too large for 16 bits store every run there.
pub(crate) const ESC: u16 = u16::MAX;

/// A direct-level entry: one trie node resolving the six bits below the
/// direct index, with up to [`INLINE`] of its run codes inside the same
/// 64-byte cache line. For the common IPv4 lengths a lookup therefore
/// touches one line of the table (plus the small value table).
///
/// The eight words are:
/// - 0, `leafvec`: bit `s` is set when slot `s` starts a new run of equal
///   codes. Bit 0 is always clear (slot 0 starts the first run), so an
///   all-zero bucket is "every slot has run 0, whose code is 0": no route.
/// - 1, `vector`: bit `s` is set when slot `s` leads to a child node.
/// - 2: `base1`, the first child in the node arena, in the low half; `ovf`
///   in the high half, the overflow codes, biased so that run `i` not stored
///   inline is at `codes[ovf + i]` (wrapping).
/// - 3 to 7: twenty 16-bit run codes, four per word, lowest first.
///
/// Runs are computed over all 64 slots, including slots that hold a child;
/// such a slot's code is the one its child inherits (the longest stored
/// prefix ending at or above the child's depth), which lets an update read
/// any node's default while walking down.
pub(crate) type Bucket = [u64; 8];

/// Field access for [`Bucket`] words.
pub(crate) trait BucketExt {
    /// Where runs start.
    fn leafvec(&self) -> u64;
    /// Which slots have children.
    fn vector(&self) -> u64;
    /// First child in the node arena.
    fn base1(&self) -> usize;
    /// Biased overflow base.
    fn ovf(&self) -> u32;
    /// Inline code `i` (`i` < [`INLINE`]).
    fn inline_code(&self, i: usize) -> u16;
    /// Runs stored inline: all of them up to [`INLINE`], or none when the
    /// bucket escaped to its overflow block.
    fn inline_runs(&self) -> usize;
    /// The code of run `i`.
    fn run_code(&self, i: usize, codes: &[u32]) -> u32;
}

impl BucketExt for Bucket {
    #[inline(always)]
    fn leafvec(&self) -> u64 {
        self[0]
    }
    #[inline(always)]
    fn vector(&self) -> u64 {
        self[1]
    }
    #[inline(always)]
    fn base1(&self) -> usize {
        (self[2] & 0xffff_ffff) as usize
    }
    #[inline(always)]
    fn ovf(&self) -> u32 {
        (self[2] >> 32) as u32
    }
    #[inline(always)]
    fn inline_code(&self, i: usize) -> u16 {
        (self[3 + i / 4] >> ((i % 4) * 16)) as u16
    }
    #[inline(always)]
    fn inline_runs(&self) -> usize {
        if self.inline_code(0) == ESC {
            0
        } else {
            run_count(self.leafvec()).min(INLINE)
        }
    }
    #[inline(always)]
    fn run_code(&self, i: usize, codes: &[u32]) -> u32 {
        if i < INLINE {
            let c = self.inline_code(i);
            if c != ESC {
                return u32::from(c);
            }
        }
        codes
            .get(self.ovf().wrapping_add(i as u32) as usize)
            .copied()
            .unwrap_or(0)
    }
}

/// The direct level: `len` buckets, each starting on a 64-byte boundary.
///
/// The buckets live in a plain `Vec<u64>` with up to seven words of slack
/// in front, and `off` is the first word at a 64-byte address. A `Vec` of
/// integers is allocated as zeroed memory, which an over-aligned struct
/// type would not be, so creating a table does not have to write the 16
/// MiB of an empty IPv4 direct level. The vector never grows, so the
/// alignment found at creation holds for its lifetime.
pub(crate) struct Dir {
    words: Vec<u64>,
    off: usize,
}

impl Dir {
    pub(crate) fn new(len: usize) -> Self {
        let words = vec![0u64; len * 8 + 7];
        // Reading a pointer's address is safe; only dereferencing is not.
        let misalign = (words.as_ptr() as usize / 8) % 8;
        let off = (8 - misalign) % 8;
        Dir { words, off }
    }

    /// Bucket `i`, if `i` is in range.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&Bucket> {
        self.words.get(self.off + i * 8..)?.first_chunk::<8>()
    }

    /// Where bucket `i` would be, for prefetching only: computing an
    /// address is safe, and a prefetch of any address is harmless, so the
    /// hot loop skips the bounds checks that a reference would need.
    #[inline(always)]
    pub(crate) fn addr_of(&self, i: usize) -> *const u64 {
        self.words.as_ptr().wrapping_add(self.off + i * 8)
    }

    /// Bucket `i`, or the empty bucket when out of range.
    #[inline(always)]
    pub(crate) fn at(&self, i: usize) -> Bucket {
        self.get(i).copied().unwrap_or([0; 8])
    }

    pub(crate) fn set(&mut self, i: usize, b: &Bucket) {
        let s = self.off + i * 8;
        if let Some(w) = self.words.get_mut(s..s + 8) {
            w.copy_from_slice(b);
        }
    }

    /// Number of buckets.
    pub(crate) fn len(&self) -> usize {
        (self.words.len() - 7) / 8
    }

    /// Heap bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

impl Clone for Dir {
    /// A copy must find its own alignment, so it is rebuilt bucket by bucket
    /// rather than cloned word for word.
    fn clone(&self) -> Self {
        let len = self.len();
        let mut d = Dir::new(len);
        let (src, dst) = (self.off, d.off);
        d.words[dst..dst + len * 8].copy_from_slice(&self.words[src..src + len * 8]);
        d
    }
}

/// An inner node, kept as three words: `vector`, `leafvec` (as in
/// [`Bucket`]) and the bases, `base0` (first run code in the code arena) in
/// the low half and `base1` (first child) in the high half. Twenty-four
/// bytes keep the deep IPv6 levels compact. The all-zero node has one run,
/// at code slot 0, which always holds code 0.
pub(crate) type Node = [u64; 3];

pub(crate) const EMPTY_NODE: Node = [0; 3];

/// Mask of bits `0..=v`.
#[inline(always)]
pub(crate) fn upto(v: usize) -> u64 {
    u64::MAX >> (63 - v)
}

/// Mask of bits `0..v`.
#[inline(always)]
pub(crate) fn below(v: usize) -> u64 {
    (1u64 << v) - 1
}

/// Number of runs described by a run bitmap.
#[inline(always)]
pub(crate) fn run_count(leafvec: u64) -> usize {
    1 + leafvec.count_ones() as usize
}

/// Run index of slot `v`.
#[inline(always)]
pub(crate) fn run_of(leafvec: u64, v: usize) -> usize {
    (leafvec & upto(v)).count_ones() as usize
}

/// Child index of slot `v` (whose bit in `vector` is set).
#[inline(always)]
pub(crate) fn child_of(vector: u64, base1: usize, v: usize) -> usize {
    base1 + (vector & below(v)).count_ones() as usize
}

#[inline(always)]
pub(crate) fn base0(n: &Node) -> usize {
    (n[2] & 0xffff_ffff) as usize
}

#[inline(always)]
pub(crate) fn base1(n: &Node) -> usize {
    (n[2] >> 32) as usize
}

/// A node's contents before it is placed: which slots have children, where
/// runs start, and the run codes.
pub(crate) struct Built {
    pub(crate) vector: u64,
    pub(crate) leafvec: u64,
    pub(crate) runs: [u32; FANOUT],
    pub(crate) base1: u32,
}

impl Built {
    fn nruns(&self) -> usize {
        run_count(self.leafvec)
    }
}

/// Children of an old version of a node that a rebuild may keep: the slots
/// in `keep` had their child subtree unchanged by the update, so the new
/// node copies those child nodes (and so their whole subtrees) instead of
/// rebuilding them.
#[derive(Clone, Copy)]
pub(crate) struct Reuse {
    pub(crate) keep: u64,
    pub(crate) vector: u64,
    pub(crate) base1: usize,
}

impl Reuse {
    /// Rebuild everything.
    pub(crate) const NONE: Reuse = Reuse {
        keep: 0,
        vector: 0,
        base1: 0,
    };
}

/// Node and code storage with exact-size free lists.
///
/// The trie needs the children of a node (and its run codes) to be
/// contiguous, so storage is handed out in blocks of 1 to 64 entries. An
/// update rebuilds one subtree, returning its old blocks and taking new
/// ones; since block sizes are bounded by 64, keeping one free list per
/// size lets later updates reuse every freed block without any compaction
/// pass.
#[derive(Clone)]
pub(crate) struct Arena {
    pub(crate) nodes: Vec<Node>,
    /// Run codes of inner nodes and bucket overflow; entry 0 is the shared
    /// "no value" code, never freed.
    pub(crate) codes: Vec<u32>,
    pub(crate) free_nodes: Vec<Vec<u32>>,
    pub(crate) free_codes: Vec<Vec<u32>>,
    pub(crate) free_node_slots: usize,
    pub(crate) free_code_slots: usize,
}

impl Arena {
    pub(crate) fn new() -> Self {
        Arena {
            nodes: Vec::new(),
            codes: vec![0],
            free_nodes: vec![Vec::new(); FANOUT + 1],
            free_codes: vec![Vec::new(); FANOUT + 1],
            free_node_slots: 0,
            free_code_slots: 0,
        }
    }

    fn alloc_nodes(&mut self, n: usize) -> usize {
        if let Some(at) = self.free_nodes[n].pop() {
            self.free_node_slots -= n;
            at as usize
        } else {
            let at = self.nodes.len();
            self.nodes.resize(at + n, EMPTY_NODE);
            at
        }
    }

    fn alloc_codes(&mut self, vals: &[u32]) -> usize {
        let n = vals.len();
        let at = if let Some(at) = self.free_codes[n].pop() {
            self.free_code_slots -= n;
            at as usize
        } else {
            let at = self.codes.len();
            self.codes.resize(at + n, 0);
            at
        };
        self.codes[at..at + n].copy_from_slice(vals);
        at
    }

    fn free_code_block(&mut self, at: usize, n: usize) {
        self.free_codes[n].push(at as u32);
        self.free_code_slots += n;
    }

    /// Frees a children block and the subtrees of its children, except
    /// the children in slots `keep`, which a rebuilt node took over.
    pub(crate) fn free_children(&mut self, vector: u64, b1: usize, keep: u64) {
        let nc = vector.count_ones() as usize;
        if nc > 0 {
            let mut rest = vector;
            let mut k = 0;
            while rest != 0 {
                let s = rest.trailing_zeros();
                rest &= rest - 1;
                if (keep >> s) & 1 == 0 {
                    let c = self.nodes[b1 + k];
                    self.free_node(c);
                }
                k += 1;
            }
            self.free_nodes[nc].push(b1 as u32);
            self.free_node_slots += nc;
        }
    }

    /// Frees an inner node's own run codes (not its children).
    pub(crate) fn free_node_codes(&mut self, n: &Node) {
        let b0 = base0(n);
        if b0 != 0 {
            self.free_code_block(b0, run_count(n[1]));
        }
    }

    /// Frees a bucket's overflow codes (not its children).
    pub(crate) fn free_bucket_codes(&mut self, b: &Bucket) {
        let inline = b.inline_runs();
        let total = run_count(b.leafvec());
        if total > inline {
            self.free_code_block(b.ovf().wrapping_add(inline as u32) as usize, total - inline);
        }
    }

    /// Returns every block of node `n`'s subtree to the free lists. The
    /// node's own slot is its parent's business.
    pub(crate) fn free_node(&mut self, n: Node) {
        self.free_node_codes(&n);
        self.free_children(n[0], base1(&n), 0);
    }

    /// Returns every block of a bucket's subtree to the free lists.
    #[cfg(test)]
    pub(crate) fn free_bucket(&mut self, b: &Bucket) {
        self.free_bucket_codes(b);
        self.free_children(b.vector(), b.base1(), 0);
    }

    /// Builds the node at depth `d` (it resolves address bits `d..d + 6`)
    /// whose addresses default to code `dv`, from `ps`: every stored prefix
    /// inside the node's range with a length above `d`, sorted by address
    /// and then length. Children are built and placed here; the node's own
    /// runs are returned for the caller to place. Children in `reuse.keep`
    /// are copied from the old node instead of rebuilt.
    pub(crate) fn build<K: Key>(
        &mut self,
        d: u32,
        dv: u32,
        ps: &[(K, u8, u32)],
        reuse: Reuse,
    ) -> Built {
        let limit = d + STRIDE;
        let mut val = [dv; FANOUT];
        let mut child_from = [0usize; FANOUT];
        let mut child_to = [0usize; FANOUT];
        let mut vector = 0u64;
        let mut i = 0;
        while i < ps.len() {
            let (a, l, v) = ps[i];
            let s = a.chunk(d);
            if u32::from(l) <= limit {
                // The prefix ends inside this node: it covers an aligned run
                // of 2^(limit - l) slots. Sorted order puts every prefix
                // before the more specific ones it contains, so filling in
                // order leaves each slot with its longest match.
                let n = 1usize << (limit - u32::from(l));
                val[s..s + n].fill(v);
                i += 1;
            } else {
                // Longer prefixes of one slot are contiguous in sorted order:
                // a prefix ending in this node starts on a slot boundary, so
                // it sorts before everything inside that slot.
                let from = i;
                while i < ps.len() && u32::from(ps[i].1) > limit && ps[i].0.chunk(d) == s {
                    i += 1;
                }
                vector |= 1 << s;
                child_from[s] = from;
                child_to[s] = i;
            }
        }

        let mut runs = [0u32; FANOUT];
        runs[0] = val[0];
        let mut nruns = 1;
        let mut leafvec = 0u64;
        for s in 1..FANOUT {
            if val[s] != val[s - 1] {
                leafvec |= 1 << s;
                runs[nruns] = val[s];
                nruns += 1;
            }
        }

        let nc = vector.count_ones() as usize;
        let b1 = if nc == 0 { 0 } else { self.alloc_nodes(nc) };
        let mut k = 0;
        let mut rest = vector;
        while rest != 0 {
            let s = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let child = if (reuse.keep & reuse.vector) >> s & 1 == 1 {
                self.nodes[child_of(reuse.vector, reuse.base1, s)]
            } else {
                self.build_node(limit, val[s], &ps[child_from[s]..child_to[s]], Reuse::NONE)
            };
            self.nodes[b1 + k] = child;
            k += 1;
        }
        Built {
            vector,
            leafvec,
            runs,
            base1: b1 as u32,
        }
    }

    /// Builds an inner node (see [`Arena::build`]) and places its runs.
    pub(crate) fn build_node<K: Key>(
        &mut self,
        d: u32,
        dv: u32,
        ps: &[(K, u8, u32)],
        reuse: Reuse,
    ) -> Node {
        let b = self.build(d, dv, ps, reuse);
        let n = b.nruns();
        // A node whose only run is "no value" shares code slot 0.
        let b0 = if n == 1 && b.runs[0] == 0 {
            0
        } else {
            self.alloc_codes(&b.runs[..n])
        };
        [b.vector, b.leafvec, b0 as u64 | (u64::from(b.base1) << 32)]
    }

    /// Builds a direct-level bucket (see [`Arena::build`]) and places its
    /// runs: inline while they fit and every code fits in 16 bits, the rest
    /// in an overflow block.
    pub(crate) fn build_bucket<K: Key>(
        &mut self,
        d: u32,
        dv: u32,
        ps: &[(K, u8, u32)],
        reuse: Reuse,
    ) -> Bucket {
        let b = self.build(d, dv, ps, reuse);
        let n = b.nruns();
        let escape = b.runs[..n].iter().any(|&c| c >= u32::from(ESC));
        let inline = if escape { 0 } else { n.min(INLINE) };
        let mut out: Bucket = [b.leafvec, b.vector, u64::from(b.base1), 0, 0, 0, 0, 0];
        for i in 0..INLINE {
            let c = if escape {
                ESC
            } else if i < inline {
                b.runs[i] as u16
            } else {
                0
            };
            out[3 + i / 4] |= u64::from(c) << ((i % 4) * 16);
        }
        if n > inline {
            let at = self.alloc_codes(&b.runs[inline..n]);
            let ovf = (at as u32).wrapping_sub(inline as u32);
            out[2] |= u64::from(ovf) << 32;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_buckets_are_cache_line_aligned() {
        for len in [1, 3, 64] {
            let mut d = Dir::new(len);
            assert_eq!(d.len(), len);
            for i in 0..len {
                let b = d.get(i).unwrap();
                assert_eq!(b.as_ptr() as usize % 64, 0);
            }
            assert!(d.get(len).is_none());
            d.set(len - 1, &[1, 2, 3, 4, 5, 6, 7, 8]);
            let c = d.clone();
            assert_eq!(c.at(len - 1), [1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!(c.get(0).unwrap().as_ptr() as usize % 64, 0);
            assert_eq!(c.at(len), [0; 8]);
        }
    }

    #[test]
    fn buckets_escape_large_codes_and_overflow_long_runs() {
        let mut a = Arena::new();
        // 40 /24s with alternating codes inside one /18 slot: 80 runs would
        // not fit, but runs merge per six-bit slot, so at most 64 remain.
        let ps: Vec<(u32, u8, u32)> = (0..40u32).map(|i| (i << 8, 24, 1 + i % 2)).collect();
        let b = a.build_bucket(18, 0, &ps, Reuse::NONE);
        let n = run_count(b.leafvec());
        assert!(n > INLINE);
        assert_eq!(b.inline_runs(), INLINE);
        for i in 0..n {
            let want = if i < 40 { 1 + i as u32 % 2 } else { 0 };
            assert_eq!(b.run_code(i, &a.codes), want, "run {i}");
        }
        a.free_bucket(&b);
        assert_eq!(a.free_code_slots, n - INLINE);

        let big = [(0u32, 20u8, 70_000u32)];
        let b = a.build_bucket(18, 5, &big, Reuse::NONE);
        assert_eq!(b.inline_runs(), 0);
        assert_eq!(b.run_code(0, &a.codes), 70_000);
        assert_eq!(b.run_code(1, &a.codes), 5);
        a.free_bucket(&b);
    }
}
