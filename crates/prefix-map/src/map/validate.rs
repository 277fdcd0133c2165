//! The structural self-check behind [`PrefixMap::validate`], used by tests
//! and the differential fuzzer.

use std::hash::Hash;

use crate::dir::DirLevel;
use crate::key::Key;
use crate::trie::{base0, base1, is_path, path_lens, path_node, run_count, BucketExt, STRIDE};
use crate::values::NONE;

use super::{PrefixMap, SMALL_BITS};

impl<K: Key, V: Copy + Eq + Hash> PrefixMap<K, V> {
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
        self.dir.check()?;
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
            k += 1;
            // Up to three prefixes of the child's range tell whether it must
            // be a path node: the trie keeps every subtree that fits one in
            // that form, after updates as after a bulk build.
            let first: Vec<(K, u8, u32)> = self
                .shadow
                .range(from..=to)
                .take(3)
                .map(|(s, &c)| {
                    let (a, l) = K::dec(*s);
                    (a, l, c)
                })
                .collect();
            let fits = path_node(cd, 0, &first).is_some();
            if is_path(&n) {
                let (long, short) = path_lens(&n);
                let want = (
                    first.last().map(|p| u32::from(p.1) - cd),
                    (first.len() == 2).then(|| u32::from(first[0].1) - cd),
                );
                if !fits || want != (Some(long), short) {
                    return Err(format!(
                        "path node at depth {cd} disagrees with its prefixes"
                    ));
                }
                continue;
            }
            if fits {
                return Err(format!("branch node at depth {cd} should be a path node"));
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
