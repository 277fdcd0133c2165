//! The direct level: one 64-byte bucket (see [`Bucket`]) per value of an
//! address's top `DIR_BITS` bits, in one of two layouts.
//!
//! A full IPv4 table has a route below almost every /18, so its direct
//! level is a plain array of buckets ([`DenseDir`]): a lookup computes the
//! bucket's address from the slot and reads one cache line. IPv6 routes
//! live in a few dozen /16s out of 65,536, so its direct level
//! ([`SparseDir`]) is an array of 32-bit bucket numbers, which stays in
//! cache because only the populated entries are ever read, in front of
//! buckets allocated only for the slots that need one. That keeps 4 MiB of
//! empty buckets out of an IPv6 table for the price of one cached load.

use crate::trie::Bucket;

/// The empty bucket: no children, one run with code 0 (no route).
const EMPTY: Bucket = [0; 8];

/// Operations the table needs from a direct level of `len` buckets.
/// Slots out of range read as empty and ignore writes.
pub trait DirLevel: Clone {
    /// A level of `len` empty buckets.
    fn new(len: usize) -> Self;
    /// Bucket `i`, if `i` is in range.
    fn get(&self, i: usize) -> Option<&Bucket>;
    /// Where bucket `i` is, for prefetching only: a prefetch of any
    /// address is harmless, so this may skip checks a reference would need.
    fn addr_of(&self, i: usize) -> *const u64;
    /// Replaces bucket `i`.
    fn set(&mut self, i: usize, b: &Bucket);
    /// Number of slots.
    fn len(&self) -> usize;
    /// Heap bytes.
    fn bytes(&self) -> usize;
    /// Checks the layout's own bookkeeping, for [`crate::PrefixMap::validate`].
    fn check(&self) -> Result<(), String>;

    /// Bucket `i`, or the empty bucket when out of range.
    #[inline(always)]
    fn at(&self, i: usize) -> Bucket {
        self.get(i).copied().unwrap_or(EMPTY)
    }
}

/// Every slot's bucket in one array, each starting on a 64-byte boundary.
///
/// The buckets live in a plain `Vec<u64>` with up to seven words of slack
/// in front, and `off` is the first word at a 64-byte address. A `Vec` of
/// integers is allocated as zeroed memory, which an over-aligned struct
/// type would not be, so creating a table does not have to write the 16
/// MiB of an empty IPv4 direct level. The vector never grows, so the
/// alignment found at creation holds for its lifetime.
pub struct DenseDir {
    words: Vec<u64>,
    off: usize,
}

impl DirLevel for DenseDir {
    fn new(len: usize) -> Self {
        let words = vec![0u64; len * 8 + 7];
        // Reading a pointer's address is safe; only dereferencing is not.
        let misalign = (words.as_ptr() as usize / 8) % 8;
        let off = (8 - misalign) % 8;
        DenseDir { words, off }
    }

    #[inline(always)]
    fn get(&self, i: usize) -> Option<&Bucket> {
        self.words.get(self.off + i * 8..)?.first_chunk::<8>()
    }

    #[inline(always)]
    fn addr_of(&self, i: usize) -> *const u64 {
        self.words.as_ptr().wrapping_add(self.off + i * 8)
    }

    fn set(&mut self, i: usize, b: &Bucket) {
        let s = self.off + i * 8;
        if let Some(w) = self.words.get_mut(s..s + 8) {
            w.copy_from_slice(b);
        }
    }

    fn len(&self) -> usize {
        (self.words.len() - 7) / 8
    }

    fn bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    fn check(&self) -> Result<(), String> {
        if self.off + self.len() * 8 > self.words.len() {
            return Err("dense direct level shorter than its slots".into());
        }
        Ok(())
    }
}

impl Clone for DenseDir {
    /// A copy must find its own alignment, so it is rebuilt bucket by bucket
    /// rather than cloned word for word.
    fn clone(&self) -> Self {
        let len = self.len();
        let mut d = DenseDir::new(len);
        let (src, dst) = (self.off, d.off);
        d.words[dst..dst + len * 8].copy_from_slice(&self.words[src..src + len * 8]);
        d
    }
}

/// One bucket on its own cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line(Bucket);

/// Bucket numbers per slot, with buckets only for non-empty slots.
///
/// Bucket 0 is the shared empty bucket, so an empty slot needs no
/// allocation and a lookup never branches on emptiness. Released buckets
/// are zeroed and reused before the array grows.
#[derive(Clone)]
pub struct SparseDir {
    index: Vec<u32>,
    lines: Vec<Line>,
    free: Vec<u32>,
}

impl DirLevel for SparseDir {
    fn new(len: usize) -> Self {
        SparseDir {
            index: vec![0; len],
            lines: vec![Line(EMPTY)],
            free: Vec::new(),
        }
    }

    #[inline(always)]
    fn get(&self, i: usize) -> Option<&Bucket> {
        let j = *self.index.get(i)?;
        self.lines.get(j as usize).map(|l| &l.0)
    }

    #[inline(always)]
    fn addr_of(&self, i: usize) -> *const u64 {
        let j = self.index.get(i).copied().unwrap_or(0);
        self.lines.as_ptr().wrapping_add(j as usize).cast()
    }

    fn set(&mut self, i: usize, b: &Bucket) {
        let Some(&j) = self.index.get(i) else {
            return;
        };
        if *b == EMPTY {
            if j != 0 {
                self.lines[j as usize] = Line(EMPTY);
                self.free.push(j);
                self.index[i] = 0;
            }
            return;
        }
        let j = if j != 0 {
            j
        } else if let Some(j) = self.free.pop() {
            j
        } else {
            self.lines.push(Line(EMPTY));
            (self.lines.len() - 1) as u32
        };
        self.lines[j as usize] = Line(*b);
        self.index[i] = j;
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn bytes(&self) -> usize {
        self.index.capacity() * 4 + self.lines.capacity() * 64 + self.free.capacity() * 4
    }

    fn check(&self) -> Result<(), String> {
        let mut owner = vec![false; self.lines.len()];
        owner[0] = true;
        if self.lines[0].0 != EMPTY {
            return Err("the shared empty bucket was written".into());
        }
        // The index is mostly zeros; skipping all-zero chunks with one
        // OR-reduction each (no per-slot branch) keeps a full check cheap
        // enough to run after every fuzzed operation sequence.
        for (what, &j) in self
            .index
            .chunks(64)
            .filter(|c| c.iter().fold(0, |acc, &j| acc | j) != 0)
            .flatten()
            .filter(|&&j| j != 0)
            .map(|j| ("slot", j))
            .chain(self.free.iter().map(|j| ("free", j)))
        {
            match owner.get_mut(j as usize) {
                Some(o) if !*o => *o = true,
                _ => return Err(format!("{what} bucket {j} is shared or out of range")),
            }
            if what == "slot" && self.lines[j as usize].0 == EMPTY {
                return Err(format!("bucket {j} is empty but not released"));
            }
        }
        if owner.iter().any(|&o| !o) {
            return Err("a bucket is neither used nor free".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_buckets_are_cache_line_aligned() {
        for len in [1, 3, 64] {
            let mut d = DenseDir::new(len);
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
            assert_eq!(c.at(len), EMPTY);
            c.check().unwrap();
        }
    }

    #[test]
    fn sparse_buckets_are_allocated_released_and_reused() {
        let mut d = SparseDir::new(16);
        let base = d.bytes();
        assert_eq!(d.len(), 16);
        d.set(3, &[1; 8]);
        d.set(9, &[2; 8]);
        d.set(3, &[3; 8]);
        assert_eq!(
            (d.at(3), d.at(9), d.at(4), d.at(16)),
            ([3; 8], [2; 8], EMPTY, EMPTY)
        );
        assert_eq!(d.get(9).unwrap().as_ptr() as usize % 64, 0);
        assert!(d.bytes() > base);
        d.check().unwrap();
        // Emptying a slot releases its bucket, and the next slot reuses it.
        d.set(3, &EMPTY);
        d.set(3, &EMPTY);
        assert_eq!(d.at(3), EMPTY);
        d.check().unwrap();
        d.set(5, &[4; 8]);
        assert_eq!(d.lines.len(), 3);
        assert_eq!((d.at(5), d.at(9)), ([4; 8], [2; 8]));
        d.set(99, &[5; 8]);
        d.clone().check().unwrap();
    }
}
