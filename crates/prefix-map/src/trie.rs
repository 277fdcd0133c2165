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

/// An inner node, kept as three words. Twenty-four bytes keep the deep
/// IPv6 levels compact. There are two kinds, told apart by bit 0 of word 1,
/// which is always clear in a run bitmap:
///
/// - A **branch node** is a Poptrie node: `vector`, `leafvec` (as in
///   [`Bucket`]) and the bases, `base0` (first run code in the code arena)
///   in the low half of word 2 and `base1` (first child) in the high half.
///   The all-zero node has one run, at code slot 0, which always holds
///   code 0.
/// - A **path node** stands for a whole subtree that holds a single stored
///   prefix, or two where the longer lies inside the shorter. Most IPv6
///   routes are alone below their /32, and without path nodes each would
///   need a chain of one-child nodes, one dependent load per six bits. A
///   path node answers in one load instead: word 0 holds the 64 address
///   bits of the longer prefix starting at the node's depth, and the
///   answer depends only on how many leading bits of the looked-up address
///   agree with them. See [`path_node`] for the other two words.
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

/// Relative length stored for "no shorter prefix" in a path node: longer
/// than any match count, so it never matches.
const NO_LEN: u64 = 127;

/// Whether `n` is a path node rather than a branch node.
#[inline(always)]
pub(crate) fn is_path(n: &Node) -> bool {
    n[1] & 1 == 1
}

/// The slots of `n` that lead to a child node; a path node has none.
#[inline(always)]
pub(crate) fn branches(n: &Node) -> u64 {
    if is_path(n) {
        0
    } else {
        n[0]
    }
}

/// The path node for the prefixes `ps` (every one longer than `d`) below a
/// node of depth `d` whose addresses default to code `dv`, when they fit
/// one: a single prefix, or two where the second lies inside the first,
/// ending at most 64 bits below `d`.
///
/// Word 1 is the tag (bit 0), the length of the longer prefix counted from
/// `d` (bits 1 to 7), the same for the shorter one (bits 8 to 14, [`NO_LEN`]
/// when there is none) and the longer prefix's code (high half). Word 2 is
/// `dv` (low half) and the shorter prefix's code (high half).
pub(crate) fn path_node<K: Key>(d: u32, dv: u32, ps: &[(K, u8, u32)]) -> Option<Node> {
    let rel = |l: u8| u64::from(u32::from(l) - d);
    let (bits, long, short) = match *ps {
        [(a, l, c)] if rel(l) <= 64 => (a.window(d), (rel(l), c), (NO_LEN, 0)),
        [(a0, l0, c0), (a1, l1, c1)]
            if rel(l1) <= 64 && l0 < l1 && a1.truncate(u32::from(l0)) == a0 =>
        {
            (a1.window(d), (rel(l1), c1), (rel(l0), c0))
        }
        _ => return None,
    };
    Some([
        bits,
        1 | long.0 << 1 | short.0 << 8 | u64::from(long.1) << 32,
        u64::from(dv) | u64::from(short.1) << 32,
    ])
}

/// The answer of path node `n` for an address whose 64 bits starting at
/// the node's depth are `window`: the longer prefix's code if all of its
/// bits agree, else the shorter one's if its bits agree, else the inherited
/// code.
#[inline(always)]
pub(crate) fn path_code(n: &Node, window: u64) -> u32 {
    let agree = u64::from((window ^ n[0]).leading_zeros());
    if agree >= (n[1] >> 1) & 0x7f {
        (n[1] >> 32) as u32
    } else if agree >= (n[1] >> 8) & 0x7f {
        (n[2] >> 32) as u32
    } else {
        n[2] as u32
    }
}

/// The lengths of a path node's prefixes, counted from its depth: the
/// longer one, and the shorter one if there is one.
pub(crate) fn path_lens(n: &Node) -> (u32, Option<u32>) {
    let short = (n[1] >> 8) & 0x7f;
    (
        ((n[1] >> 1) & 0x7f) as u32,
        (short != NO_LEN).then_some(short as u32),
    )
}

/// The prefixes a path node of depth `d` over the range starting at `lo`
/// stands for, in address-then-length order: the first `count` entries of
/// the array.
pub(crate) fn path_prefixes<K: Key>(n: &Node, lo: K, d: u32) -> ([(K, u8, u32); 2], usize) {
    let (long, short) = path_lens(n);
    let addr = lo.put_window(d, n[0]);
    let long = (addr, (d + long) as u8, (n[1] >> 32) as u32);
    match short {
        Some(r) => {
            let l = d + r;
            ([(addr.truncate(l), l as u8, (n[2] >> 32) as u32), long], 2)
        }
        None => ([long, long], 1),
    }
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

/// Makes room for `n` more entries at the end of `v`, growing its
/// allocation by an eighth rather than the doubling of `Vec`: a table built
/// in bulk is sized exactly, and the first update past that size must not
/// add half the table's memory in spare capacity.
fn grow_gently<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() - v.len() < n {
        v.reserve_exact(n.max(v.len() / 8));
    }
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
            grow_gently(&mut self.nodes, n);
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
            grow_gently(&mut self.codes, n);
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

    /// Moves a children block (`vector`, `b1`) to a new block in which
    /// slot `s` holds `child`, or no child when `child` is `None`, and
    /// returns the new vector and block. The old child of slot `s`, if any,
    /// is freed with its subtree; every other child keeps its subtree.
    pub(crate) fn replace_child(
        &mut self,
        vector: u64,
        b1: usize,
        s: usize,
        child: Option<Node>,
    ) -> (u64, usize) {
        let bit = 1u64 << s;
        let new_vector = if child.is_some() {
            vector | bit
        } else {
            vector & !bit
        };
        let n = new_vector.count_ones() as usize;
        // The new block is filled before the old one is freed, since it
        // copies the other children out of it.
        let nb1 = if n == 0 { 0 } else { self.alloc_nodes(n) };
        let mut rest = new_vector;
        let mut k = 0;
        while rest != 0 {
            let t = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            self.nodes[nb1 + k] = match child {
                Some(c) if t == s => c,
                _ => self.nodes[child_of(vector, b1, t)],
            };
            k += 1;
        }
        self.free_children(vector, b1, !bit);
        (new_vector, nb1)
    }

    /// Frees an inner node's own run codes (not its children). A path
    /// node keeps its codes in itself.
    pub(crate) fn free_node_codes(&mut self, n: &Node) {
        let b0 = base0(n);
        if !is_path(n) && b0 != 0 {
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
        self.free_children(branches(&n), base1(&n), 0);
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
        // The prefixes of one slot that end below this node are contiguous
        // in sorted order (a prefix ending in this node starts on a slot
        // boundary, so it sorts before everything inside that slot), and
        // `deeper` finds where such a run, starting at `from`, ends.
        let deeper = |from: usize, s: usize| {
            let mut to = from;
            while to < ps.len() && u32::from(ps[to].1) > limit && ps[to].0.chunk(d) == s {
                to += 1;
            }
            to
        };
        let mut val = [dv; FANOUT];
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
                vector |= 1 << s;
                i = deeper(i, s);
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

        // Children in slot order, found by a second pass over the prefixes
        // rather than remembered from the first: most nodes have few
        // children, and per-slot arrays would cost more to clear.
        let nc = vector.count_ones() as usize;
        let b1 = if nc == 0 { 0 } else { self.alloc_nodes(nc) };
        let mut k = 0;
        let mut i = 0;
        while k < nc && i < ps.len() {
            let (a, l, _) = ps[i];
            if u32::from(l) <= limit {
                i += 1;
                continue;
            }
            let s = a.chunk(d);
            let to = deeper(i, s);
            let child = if (reuse.keep & reuse.vector) >> s & 1 == 1 {
                self.nodes[child_of(reuse.vector, reuse.base1, s)]
            } else {
                self.build_node(limit, val[s], &ps[i..to], Reuse::NONE)
            };
            self.nodes[b1 + k] = child;
            k += 1;
            i = to;
        }
        Built {
            vector,
            leafvec,
            runs,
            base1: b1 as u32,
        }
    }

    /// Builds an inner node (see [`Arena::build`]) and places its runs, or
    /// makes a path node when the prefixes allow one.
    pub(crate) fn build_node<K: Key>(
        &mut self,
        d: u32,
        dv: u32,
        ps: &[(K, u8, u32)],
        reuse: Reuse,
    ) -> Node {
        if let Some(n) = path_node(d, dv, ps) {
            return n;
        }
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
    use crate::key::sealed::Sealed;

    #[test]
    fn path_nodes_answer_by_matching_bits_and_spell_out_their_prefixes() {
        let long = (0x2a01_04f8_1234_u128 << 80, 48u8, 7u32);
        let short = (0x2a01_04f8_u128 << 96, 32u8, 9u32);
        let lo = short.0.truncate(28);
        // One prefix: its code inside it, the inherited code outside.
        let n = path_node(28, 3, &[long]).unwrap();
        assert!(is_path(&n) && branches(&n) == 0);
        assert_eq!(path_code(&n, long.0.window(28)), 7);
        assert_eq!(path_code(&n, (long.0 | 0xffff).window(28)), 7);
        assert_eq!(path_code(&n, (long.0 ^ (1 << 80)).window(28)), 3);
        assert_eq!(path_prefixes(&n, lo, 28), ([long, long], 1));
        // A nested pair: the longer wins inside it, the shorter around it.
        let n = path_node(28, 3, &[short, long]).unwrap();
        assert_eq!(path_lens(&n), (20, Some(4)));
        assert_eq!(path_code(&n, long.0.window(28)), 7);
        assert_eq!(path_code(&n, (long.0 ^ (1 << 80)).window(28)), 9);
        assert_eq!(path_code(&n, (short.0 ^ (1 << 96)).window(28)), 3);
        assert_eq!(path_prefixes(&n, lo, 28), ([short, long], 2));
        // Siblings, three prefixes, or a prefix ending more than 64 bits
        // below the node need a branch node.
        let sibling = (long.0 ^ (1 << 80), 48u8, 1u32);
        assert!(path_node(28, 0, &[long, sibling]).is_none());
        assert!(path_node(28, 0, &[short, long, (long.0, 64, 1)]).is_none());
        assert!(path_node(28, 0, &[(long.0, 93, 1)]).is_none());
        assert!(path_node(28, 0, &[(long.0, 92, 1)]).is_some());
        // IPv4: a host route below a /24 node.
        let n = path_node(24, 0, &[(0x0a00_0001_u32, 32, 5)]).unwrap();
        assert_eq!(path_code(&n, 0x0a00_0001_u32.window(24)), 5);
        assert_eq!(path_code(&n, 0x0a00_0002_u32.window(24)), 0);
    }

    #[test]
    fn replacing_a_child_keeps_the_others_and_frees_the_old_one() {
        let mut a = Arena::new();
        let ps: Vec<(u32, u8, u32)> = vec![(0x0a00_0100, 28, 1), (0x0a00_0300, 28, 2)];
        let b = a.build_bucket(18, 0, &ps, Reuse::NONE);
        assert_eq!(b.vector().count_ones(), 2);
        let kept = a.nodes[child_of(b.vector(), b.base1(), 3)];
        let new = path_node(24, 0, &[(0x0a00_0200_u32, 30, 4)]).unwrap();
        let (vector, b1) = a.replace_child(b.vector(), b.base1(), 2, Some(new));
        assert_eq!(vector, b.vector() | 1 << 2);
        assert_eq!(a.nodes[child_of(vector, b1, 2)], new);
        assert_eq!(a.nodes[child_of(vector, b1, 3)], kept);
        let (vector, b1) = a.replace_child(vector, b1, 1, None);
        assert_eq!(vector, 0b1100);
        assert_eq!(a.nodes[child_of(vector, b1, 3)], kept);
        // The two-child block freed by the first replacement was reused by
        // the second, which freed the three-child block.
        assert_eq!(a.free_node_slots, 3);
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
