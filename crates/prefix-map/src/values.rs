//! The value table: every distinct stored value gets a small integer code.
//!
//! The trie stores codes, not values. Codes make the trie independent of
//! `V`'s size, let the direct level pack twenty answers into one cache line
//! as 16-bit numbers, and make "same answer" a cheap integer comparison
//! when runs of equal leaves are merged. The table of distinct values is
//! small (it has one entry per distinct value, not per prefix), so the
//! extra load that turns a code back into a value almost always hits the
//! first- or second-level cache.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::mem::size_of;

/// The hash behind the value-to-code index: one multiply per word, in the
/// style of rustc's FxHash. Every insert and removal looks a value up, and
/// this is several times fewer instructions than SipHash, the standard
/// map's default. SipHash's protection against chosen collisions is not
/// needed here: values come from the operator's configuration, not from
/// traffic, and there is one entry per distinct value.
#[derive(Default, Clone, Copy)]
pub(crate) struct ValueHasher(u64);

impl Hasher for ValueHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Code 0 means "no value"; real codes start at 1.
pub(crate) const NONE: u32 = 0;

#[derive(Clone)]
pub(crate) struct Values<V> {
    /// `values[code]`; `None` at code 0 and at free codes.
    values: Vec<Option<V>>,
    /// Number of stored prefixes using each code.
    refs: Vec<u32>,
    index: HashMap<V, u32, BuildHasherDefault<ValueHasher>>,
    /// Released codes, smallest first: reusing small codes keeps them below
    /// the 16-bit limit of the inline codes for as long as possible.
    free: BinaryHeap<Reverse<u32>>,
}

impl<V: Copy + Eq + Hash> Values<V> {
    pub(crate) fn new() -> Self {
        Values {
            values: vec![None],
            refs: vec![0],
            index: HashMap::default(),
            free: BinaryHeap::new(),
        }
    }

    /// The value of `code`; `None` for code 0.
    #[inline(always)]
    pub(crate) fn get(&self, code: u32) -> Option<V> {
        self.values.get(code as usize).copied().flatten()
    }

    /// Takes one reference to `v`'s code, creating the code if needed.
    pub(crate) fn acquire(&mut self, v: V) -> u32 {
        if let Some(&c) = self.index.get(&v) {
            self.refs[c as usize] += 1;
            return c;
        }
        let c = match self.free.pop() {
            Some(Reverse(c)) => c,
            None => {
                self.values.push(None);
                self.refs.push(0);
                (self.values.len() - 1) as u32
            }
        };
        self.values[c as usize] = Some(v);
        self.refs[c as usize] = 1;
        self.index.insert(v, c);
        c
    }

    /// Drops one reference to `code`, freeing it with the last one.
    pub(crate) fn release(&mut self, code: u32) {
        let c = code as usize;
        if c == 0 || c >= self.refs.len() || self.refs[c] == 0 {
            return;
        }
        self.refs[c] -= 1;
        if self.refs[c] == 0 {
            if let Some(v) = self.values[c].take() {
                self.index.remove(&v);
            }
            self.free.push(Reverse(code));
        }
    }

    /// Number of distinct values in use.
    pub(crate) fn distinct(&self) -> usize {
        self.index.len()
    }

    /// Heap bytes, with the hash map estimated from its capacity (one key,
    /// one code and one control byte per bucket).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.values.capacity() * size_of::<Option<V>>()
            + self.refs.capacity() * size_of::<u32>()
            + self.index.capacity() * (size_of::<V>() + size_of::<u32>() + 1)
            + self.free.capacity() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_shared_counted_and_reused_smallest_first() {
        let mut t = Values::new();
        let a = t.acquire('a');
        let b = t.acquire('b');
        assert_eq!((a, b), (1, 2));
        assert_eq!(t.acquire('a'), 1);
        assert_eq!(t.distinct(), 2);
        t.release(a);
        assert_eq!(t.get(a), Some('a'));
        t.release(a);
        assert_eq!(t.get(a), None);
        assert_eq!(t.distinct(), 1);
        // Releasing a free or unknown code is harmless.
        t.release(a);
        t.release(99);
        t.release(NONE);
        assert_eq!(t.acquire('c'), 1);
        assert_eq!(t.get(NONE), None);
        assert!(t.memory_bytes() > 0);
    }

    #[test]
    fn the_value_hash_spreads_small_integers_and_byte_strings() {
        let hash = |v: &dyn Fn(&mut ValueHasher)| {
            let mut h = ValueHasher::default();
            v(&mut h);
            h.finish()
        };
        let mut seen: Vec<u64> = (0..1000u16)
            .map(|i| hash(&|h: &mut ValueHasher| i.hash(h)))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
        let a = hash(&|h: &mut ValueHasher| h.write(b"realm-a"));
        let b = hash(&|h: &mut ValueHasher| h.write(b"realm-b"));
        assert_ne!(a, b);
    }
}
