//! Keeping the trie in line with the shadow map after one prefix changed.
//!
//! A change rebuilds only the subtree that can see it, and the common
//! cases avoid asking the shadow map (a few cache misses per query): a path
//! node spells out its own prefixes, and a prefix landing in an empty slot
//! is alone there.

use std::hash::Hash;

use crate::dir::DirLevel;
use crate::key::Key;
use crate::trie::{
    base0, base1, branches, child_of, is_path, path_node, path_prefixes, run_of, BucketExt, Reuse,
    STRIDE,
};
use crate::values::NONE;

use super::{PrefixMap, SMALL_BITS};

/// Upper bound on the trie depth in nodes (IPv6: 16 direct bits, then
/// 19 six-bit levels).
const MAX_LEVELS: usize = 24;

impl<K: Key, V: Copy + Eq + Hash> PrefixMap<K, V> {
    /// The code of the longest prefix no longer than the direct level (and
    /// longer than the side table's) covering direct slot `slot`.
    pub(super) fn default_of(&self, slot: usize) -> u32 {
        if self.dflt_len[slot] == 0 {
            NONE
        } else {
            self.dflt_code.get(slot).copied().unwrap_or(NONE)
        }
    }

    /// Records that slot `slot` is now covered by a prefix of length
    /// `len_code - 1` (none for 0) with code `code`.
    pub(super) fn set_default(&mut self, slot: usize, len_code: u8, code: u32) {
        if self.dflt_code.is_empty() {
            self.dflt_code = vec![NONE; self.dflt_len.len()];
        }
        self.dflt_len[slot] = len_code;
        self.dflt_code[slot] = code;
    }

    /// Brings the trie in line with the shadow map after `p/len` changed
    /// there: inserted or re-valued with code `Some(c)`, or removed.
    pub(super) fn refresh(&mut self, p: K, len: u8, new_code: Option<u32>) {
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
                if (branches(n) >> s) & 1 == 0 {
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
        // (the trie keeps a child only where some prefix needs it). Every
        // query of the shadow map costs a few cache misses, so the common
        // cases work out the prefixes of the rebuilt subtree from the trie.
        let removed = new_code.is_none();
        let mut level = np;
        while level > 0 {
            level -= 1;
            let (idx, d, dv) = path[level];
            let node = (level > 0).then(|| self.arena.nodes[idx]);
            if let Some(n) = node.filter(is_path) {
                // A path node spells out every prefix of its subtree.
                let (old, count) = path_prefixes(&n, p.truncate(d), d);
                self.scratch.clear();
                self.scratch.extend_from_slice(&old[..count]);
                self.scratch.retain(|q| (q.0, q.1) != (p, len));
                if let Some(c) = new_code {
                    let at = self.scratch.partition_point(|q| (q.0, q.1) < (p, len));
                    self.scratch.insert(at, (p, len, c));
                }
                if self.scratch.is_empty() {
                    continue;
                }
                self.rebuild(idx, d, dv, 0);
                if removed {
                    self.collapse(p, path.get(1..level).unwrap_or_default());
                }
                break;
            }
            if l > d + STRIDE {
                // The prefix lies below one slot of this node, whose child
                // is missing (an insertion) or was just emptied (a removal).
                // The node's own answers do not change, so only that child
                // is replaced: an IPv6 route landing in an empty /28 must
                // not rebuild its whole /16.
                let s = p.chunk(d);
                self.scratch.clear();
                match new_code {
                    // Without a child no stored prefix lay inside the slot,
                    // so `p` is alone there now.
                    Some(c) => self.scratch.push((p, len, c)),
                    None => {
                        let only_child = node.is_some_and(|n| branches(&n) == 1 << s);
                        if only_child && self.holds_nothing(p.truncate(d), d) {
                            continue;
                        }
                    }
                }
                self.set_child(idx, d, s);
                if removed {
                    self.collapse(p, path.get(1..=level).unwrap_or_default());
                }
                break;
            }
            self.collect(p.truncate(d), d);
            if self.scratch.is_empty() && level > 0 {
                continue;
            }
            // Only the slots under `p` can change; children elsewhere keep
            // their subtrees.
            let first = p.chunk(d);
            let n = 1u32 << (d + STRIDE - l);
            let touched = u64::MAX.checked_shr(64 - n).unwrap_or(0) << first;
            self.rebuild(idx, d, dv, !touched);
            if removed {
                self.collapse(p, path.get(1..level).unwrap_or_default());
            }
            break;
        }
    }

    /// Replaces the child in slot `s` of `dir[idx]` (when `d` is `DIR_BITS`)
    /// or `nodes[idx]` with one built from `scratch` (the stored prefixes
    /// inside the slot), or removes it when `scratch` is empty. The node's
    /// runs stay as they are: they already hold the code the child
    /// inherits.
    fn set_child(&mut self, idx: usize, d: u32, s: usize) {
        let ps = std::mem::take(&mut self.scratch);
        let cd = d + STRIDE;
        if d == K::DIR_BITS {
            let mut b = self.dir.at(idx);
            let dv = b.run_code(run_of(b.leafvec(), s), &self.arena.codes);
            let child = (!ps.is_empty()).then(|| self.arena.build_node(cd, dv, &ps, Reuse::NONE));
            let (vector, b1) = self.arena.replace_child(b.vector(), b.base1(), s, child);
            b[1] = vector;
            b[2] = (b[2] & !0xffff_ffff) | b1 as u64;
            self.dir.set(idx, &b);
            // Without children the slot may still hold prefixes ending in
            // its bucket; only the shadow map can tell.
            let long = vector != 0 || !self.holds_nothing(K::from_dir_index(idx), K::DIR_BITS);
            let bit = 1u64 << (idx % 64);
            if long {
                self.has_long[idx / 64] |= bit;
            } else {
                self.has_long[idx / 64] &= !bit;
            }
        } else {
            let mut n = self.arena.nodes[idx];
            let dv = self.arena.codes[base0(&n) + run_of(n[1], s)];
            let child = (!ps.is_empty()).then(|| self.arena.build_node(cd, dv, &ps, Reuse::NONE));
            let (vector, b1) = self.arena.replace_child(n[0], base1(&n), s, child);
            n[0] = vector;
            n[2] = (n[2] & 0xffff_ffff) | (b1 as u64) << 32;
            self.arena.nodes[idx] = n;
        }
        self.scratch = ps;
    }

    /// After the removal of `p`, turns the nodes of `path` (inner nodes on
    /// `p`'s path, outermost first, above the rebuilt node) whose subtree
    /// now fits a path node into one, innermost first. Stopping at the
    /// first that does not fit is enough: its ancestors hold even more.
    fn collapse(&mut self, p: K, path: &[(usize, u32, u32)]) {
        for &(idx, d, dv) in path.iter().rev() {
            // Two children hold two prefixes that are not nested, and a
            // child that is not a path node holds three or more, so most
            // removals stop here without asking the shadow map.
            let n = self.arena.nodes[idx];
            let fits = match branches(&n).count_ones() {
                0 => true,
                1 => is_path(&self.arena.nodes[base1(&n)]),
                _ => false,
            };
            if !fits {
                break;
            }
            let lo = p.truncate(d);
            let from = lo.enc(d as u8 + 1);
            let to = lo.last_in(d).enc(K::BITS);
            if self.shadow.range(from..=to).nth(2).is_some() {
                break;
            }
            self.collect(lo, d);
            if path_node(d, dv, &self.scratch).is_none() {
                break;
            }
            self.rebuild(idx, d, dv, 0);
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

    /// Whether no stored prefix longer than `d` lies inside the depth-`d`
    /// range starting at `lo`.
    fn holds_nothing(&self, lo: K, d: u32) -> bool {
        let from = lo.enc(d as u8 + 1);
        let to = lo.last_in(d).enc(K::BITS);
        self.shadow.range(from..=to).next().is_none()
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
                vector: branches(&old),
                base1: base1(&old),
            };
            let n = self.arena.build_node(d, dv, &ps, reuse);
            self.arena.free_node_codes(&old);
            self.arena
                .free_children(branches(&old), base1(&old), keep & branches(&n));
            self.arena.nodes[idx] = n;
        }
        self.scratch = ps;
    }
}
