//! Differential checking against a naive oracle, for fuzzers and tests.
//!
//! [`differential`] turns any byte string into a sequence of table
//! operations on both families, runs each on a [`crate::PrefixMap`] and on
//! an [`Oracle`] (a list of prefixes, each length tried from the longest), and panics on
//! the first disagreement. A cargo-fuzz target only needs to call it:
//!
//! ```text
//! fuzz_target!(|data: &[u8]| prefix_map::fuzzing::differential(data));
//! ```
//!
//! The decoder is built so that short inputs already reach the interesting
//! cases: addresses are often taken inside prefixes already stored (nested
//! and overlapping prefixes, removals of present prefixes), lengths range
//! over the whole family including `/0` and host routes, one length past the
//! width checks the error path, and values come from a small set so that
//! neighbouring leaves often compare equal and merge.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::key::Key;
use crate::prefix::{check_len, PrefixError};
use crate::{PrefixMap, PrefixMap4, PrefixMap6};

/// A deliberately naive prefix table: the stored prefixes in a list, and
/// a lookup that tries every length from the longest down, asking an exact
/// index whether the address cut to that length is stored. It is the
/// reference the real table is compared with, so it shares none of its
/// structure (no trie, no expansion).
///
/// The index matters for the fuzzer's speed, not its meaning: the first
/// version scanned the whole list for every query, and with the fuzzer's
/// comparison tracing on every compare that scan was 80% of a run (about
/// 350 runs a second a core on a corpus of large tables).
#[derive(Debug, Clone)]
pub struct Oracle<K, V> {
    entries: Vec<(K, u8, V)>,
    /// Where each stored (prefix, length) is in `entries`.
    at: HashMap<(K, u8), usize, BuildHasherDefault<MixHasher>>,
    /// How many stored prefixes have each length.
    per_len: Vec<u32>,
    /// The lengths with at least one stored prefix, longest first, so a
    /// lookup tries only those.
    lens: Vec<u8>,
}

impl<K: Key, V: Copy + Eq> Oracle<K, V> {
    /// An empty oracle.
    pub fn new() -> Self {
        Oracle {
            entries: Vec::new(),
            at: HashMap::default(),
            per_len: vec![0; usize::from(K::BITS) + 1],
            lens: Vec::new(),
        }
    }

    /// Same contract as [`PrefixMap::insert`].
    pub fn insert(&mut self, prefix: K, len: u8, value: V) -> Result<Option<V>, PrefixError> {
        let p = prefix.truncate(check_len::<K>(len)?);
        if let Some(&i) = self.at.get(&(p, len)) {
            return Ok(Some(std::mem::replace(&mut self.entries[i].2, value)));
        }
        self.at.insert((p, len), self.entries.len());
        self.entries.push((p, len, value));
        self.per_len[usize::from(len)] += 1;
        if self.per_len[usize::from(len)] == 1 {
            let at = self.lens.partition_point(|&l| l > len);
            self.lens.insert(at, len);
        }
        Ok(None)
    }

    /// Same contract as [`PrefixMap::remove`].
    pub fn remove(&mut self, prefix: K, len: u8) -> Result<Option<V>, PrefixError> {
        let p = prefix.truncate(check_len::<K>(len)?);
        let Some(i) = self.at.remove(&(p, len)) else {
            return Ok(None);
        };
        let gone = self.entries.swap_remove(i);
        if let Some(moved) = self.entries.get(i) {
            self.at.insert((moved.0, moved.1), i);
        }
        self.per_len[usize::from(len)] -= 1;
        if self.per_len[usize::from(len)] == 0 {
            self.lens.retain(|&l| l != len);
        }
        Ok(Some(gone.2))
    }

    /// Same contract as [`PrefixMap::get_exact`].
    pub fn get_exact(&self, prefix: K, len: u8) -> Result<Option<V>, PrefixError> {
        let p = prefix.truncate(check_len::<K>(len)?);
        Ok(self.at.get(&(p, len)).map(|&i| self.entries[i].2))
    }

    /// The value of the longest stored prefix containing `addr`.
    pub fn lookup(&self, addr: K) -> Option<V> {
        self.lens
            .iter()
            .find_map(|&l| self.at.get(&(addr.truncate(u32::from(l)), l)))
            .map(|&i| self.entries[i].2)
    }

    /// Number of stored prefixes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stored prefixes sorted by address, then length.
    pub fn sorted(&self) -> Vec<(K, u8, V)> {
        let mut v = self.entries.clone();
        v.sort_by_key(|e| (e.0, e.1));
        v
    }
}

impl<K: Key, V: Copy + Eq> Default for Oracle<K, V> {
    fn default() -> Self {
        Oracle::new()
    }
}

/// A multiply-and-rotate hasher for the oracle's index. The standard
/// SipHash was most of a fuzz run once the scan was gone; keys here are
/// prefixes chosen by the fuzzer, and a collision costs time, not
/// correctness.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        // hashbrown takes its control byte from the top bits and the
        // bucket from the low ones: fold the well-mixed top into both.
        self.0 ^ (self.0 >> 32)
    }
}

/// Reads the fuzz input; running out of bytes ends the run.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// 128 well-mixed bits seeded from two input bytes, so that a short
    /// input still yields full-width addresses.
    fn wide(&mut self) -> Option<u128> {
        let seed = u64::from(self.byte()?) << 8 | u64::from(self.byte()?);
        let a = splitmix(seed);
        let b = splitmix(a);
        Some(u128::from(a) << 64 | u128::from(b))
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64: a small deterministic generator, so that benchmarks, the
/// example and tests draw the same tables and addresses on every run.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 well-mixed bits.
    pub fn next_u64(&mut self) -> u64 {
        let out = splitmix(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        out
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// 128 random bits.
    pub fn wide(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
}

/// One family's table and oracle, driven by the shared decoder.
struct Pair<K: Key> {
    map: PrefixMap<K, u16>,
    oracle: Oracle<K, u16>,
    check_build: bool,
}

impl<K: Key + FromWide> Pair<K> {
    fn new() -> Self {
        Pair {
            map: PrefixMap::new(),
            oracle: Oracle::new(),
            check_build: false,
        }
    }

    /// Decodes an address: inside a stored prefix, fully random, or an edge
    /// value.
    fn addr(&self, inp: &mut Input<'_>) -> Option<K> {
        let mode = inp.byte()?;
        let stored = self.oracle.entries.len();
        Some(match mode % 8 {
            0..=3 if stored > 0 => {
                let (a, l, _) = self.oracle.entries[usize::from(inp.byte()?) % stored];
                let host = K::from_wide(inp.wide()?);
                // Keep the stored prefix's bits and randomise the rest.
                a.splice(u32::from(l), host)
            }
            4 => K::from_wide(0),
            5 => K::from_wide(u128::MAX),
            _ => K::from_wide(inp.wide()?),
        })
    }

    /// Decodes a prefix length, including one invalid length.
    fn len(inp: &mut Input<'_>) -> Option<u8> {
        let b = inp.byte()?;
        let bits = K::BITS;
        Some(
            match b % 4 {
                // Bias towards lengths around and below the direct level and the
                // node boundaries below it, where the expansion logic lives.
                0 => (K::DIR_BITS as u8).saturating_sub(b % 8) + (b >> 5) % 8,
                _ => b % (bits + 2),
            }
            .min(bits + 1),
        )
    }

    fn check_addr(&self, a: K) {
        let want = self.oracle.lookup(a);
        assert_eq!(
            self.map.lookup(a),
            want,
            "lookup({a:?}) disagrees; table has {} prefixes",
            self.oracle.len()
        );
    }

    /// The bulk constructor must agree with the incremental table.
    fn check_build(&self) {
        let built = PrefixMap::<K, u16>::build(self.oracle.entries.iter().copied())
            .expect("oracle holds only valid prefixes");
        assert_eq!(built.len(), self.map.len(), "build len");
        let sorted = self.oracle.sorted();
        let step = sorted.len() / 64 + 1;
        for &(a, l, _) in sorted.iter().step_by(step) {
            for probe in [a, a.last_in(u32::from(l)), a.wrapping_dec()] {
                assert_eq!(
                    built.lookup(probe),
                    self.map.lookup(probe),
                    "build vs insert"
                );
            }
        }
        if let Err(e) = built.validate() {
            panic!("bulk-built table is malformed: {e}");
        }
    }

    /// Compares every observable: size, contents in order, and lookups on
    /// both sides of every prefix boundary (sampled for large tables).
    fn check_all(&self) {
        assert_eq!(self.map.len(), self.oracle.len(), "len disagrees");
        let want = self.oracle.sorted();
        let got: Vec<(K, u8, u16)> = self
            .map
            .iter()
            .map(|(p, v)| (p.addr(), p.prefix_len(), v))
            .collect();
        assert_eq!(got, want, "iter disagrees");
        let step = want.len() / 128 + 1;
        for &(a, l, _) in want.iter().step_by(step) {
            let last = a.last_in(u32::from(l));
            for probe in [a, last, a.wrapping_dec(), last.wrapping_inc()] {
                self.check_addr(probe);
            }
        }
        self.check_addr(K::from_wide(0));
        self.check_addr(K::from_wide(u128::MAX));
    }

    fn run(&mut self, op: u8, inp: &mut Input<'_>) -> Option<()> {
        match op % 8 {
            0 | 1 => {
                let a = self.addr(inp)?;
                let l = Self::len(inp)?;
                let v = u16::from(inp.byte()? % 8);
                let want = self.oracle.insert(a, l, v);
                assert_eq!(self.map.insert(a, l, v), want, "insert {a:?}/{l}");
            }
            2 => {
                // Remove a stored prefix most of the time, else anything.
                let b = inp.byte()?;
                let (a, l) = match self.oracle.entries.get(usize::from(b) % 8 * 37 % 256) {
                    Some(&(a, l, _)) if b % 4 != 0 => (a, l),
                    _ => (self.addr(inp)?, Self::len(inp)?),
                };
                let want = self.oracle.remove(a, l);
                assert_eq!(self.map.remove(a, l), want, "remove {a:?}/{l}");
            }
            3 => {
                let a = self.addr(inp)?;
                self.check_addr(a);
                let l = Self::len(inp)?;
                assert_eq!(
                    self.map.get_exact(a, l),
                    self.oracle.get_exact(a, l),
                    "get_exact {a:?}/{l}"
                );
            }
            4 => {
                let n = usize::from(inp.byte()? % 24);
                let mut addrs = Vec::with_capacity(n);
                for _ in 0..n {
                    addrs.push(self.addr(inp)?);
                }
                let mut out = vec![Some(u16::MAX); n + 1];
                assert_eq!(self.map.lookup_batch(&addrs, &mut out), n);
                for (i, &a) in addrs.iter().enumerate() {
                    assert_eq!(out[i], self.oracle.lookup(a), "lookup_batch lane {i}");
                }
                assert_eq!(out[n], Some(u16::MAX), "lookup_batch wrote past its input");
            }
            // Building a table allocates its whole direct level, so the bulk
            // constructor is compared once, at the end of the run.
            5 => self.check_build = true,
            6 => self.check_all(),
            _ => {
                // Re-insert a stored prefix with a new value.
                let stored = self.oracle.entries.len();
                if stored > 0 {
                    let (a, l, _) = self.oracle.entries[usize::from(inp.byte()?) % stored];
                    let v = u16::from(inp.byte()? % 8);
                    let want = self.oracle.insert(a, l, v);
                    assert_eq!(self.map.insert(a, l, v), want, "re-insert {a:?}/{l}");
                }
            }
        }
        Some(())
    }
}

/// Builds a key from the top bits of a 128-bit value, so one generator
/// serves both families.
trait FromWide {
    fn from_wide(x: u128) -> Self;
}

impl FromWide for u32 {
    fn from_wide(x: u128) -> Self {
        (x >> 96) as u32
    }
}

impl FromWide for u128 {
    fn from_wide(x: u128) -> Self {
        x
    }
}

/// Decodes `data` into operations on an IPv4 and an IPv6 table and their
/// oracles, and panics on any disagreement, including a structurally
/// invalid table (see [`PrefixMap::validate`]). Any byte string is a valid
/// input.
pub fn differential(data: &[u8]) {
    let mut inp = Input { data, pos: 0 };
    let mut v4 = Pair::<u32>::new();
    let mut v6 = Pair::<u128>::new();
    while let Some(b) = inp.byte() {
        let done = if b & 1 == 0 {
            v4.run(b >> 1, &mut inp)
        } else {
            v6.run(b >> 1, &mut inp)
        };
        if done.is_none() {
            break;
        }
    }
    v4.check_all();
    v6.check_all();
    if v4.check_build {
        v4.check_build();
    }
    if v6.check_build {
        v6.check_build();
    }
    for (name, res) in [("IPv4", v4.map.validate()), ("IPv6", v6.map.validate())] {
        if let Err(e) = res {
            panic!("{name} table is malformed: {e}");
        }
    }
    // The type aliases are what users name; make sure they stay the same
    // types as the generic ones exercised above.
    let _: &PrefixMap4<u16> = &v4.map;
    let _: &PrefixMap6<u16> = &v6.map;
}
