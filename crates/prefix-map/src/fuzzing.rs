//! Differential checking against a naive oracle, for fuzzers and tests.
//!
//! [`differential`] turns any byte string into a sequence of table
//! operations on both families, runs each on a [`crate::PrefixMap`] and on
//! an [`Oracle`] (a plain list scanned for the longest match), and panics on
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

use crate::key::Key;
use crate::prefix::{check_len, PrefixError};
use crate::{PrefixMap, PrefixMap4, PrefixMap6};

/// A deliberately naive prefix table: a list of prefixes scanned in full
/// for every query. It is the reference the real table is compared with.
#[derive(Debug, Clone, Default)]
pub struct Oracle<K, V> {
    entries: Vec<(K, u8, V)>,
}

impl<K: Key, V: Copy + Eq> Oracle<K, V> {
    /// An empty oracle.
    pub fn new() -> Self {
        Oracle {
            entries: Vec::new(),
        }
    }

    /// Same contract as [`PrefixMap::insert`].
    pub fn insert(&mut self, prefix: K, len: u8, value: V) -> Result<Option<V>, PrefixError> {
        let p = prefix.truncate(check_len::<K>(len)?);
        for e in &mut self.entries {
            if (e.0, e.1) == (p, len) {
                return Ok(Some(std::mem::replace(&mut e.2, value)));
            }
        }
        self.entries.push((p, len, value));
        Ok(None)
    }

    /// Same contract as [`PrefixMap::remove`].
    pub fn remove(&mut self, prefix: K, len: u8) -> Result<Option<V>, PrefixError> {
        let p = prefix.truncate(check_len::<K>(len)?);
        let at = self.entries.iter().position(|e| (e.0, e.1) == (p, len));
        Ok(at.map(|i| self.entries.swap_remove(i).2))
    }

    /// Same contract as [`PrefixMap::get_exact`].
    pub fn get_exact(&self, prefix: K, len: u8) -> Result<Option<V>, PrefixError> {
        let p = prefix.truncate(check_len::<K>(len)?);
        Ok(self
            .entries
            .iter()
            .find(|e| (e.0, e.1) == (p, len))
            .map(|e| e.2))
    }

    /// The value of the longest stored prefix containing `addr`.
    pub fn lookup(&self, addr: K) -> Option<V> {
        self.entries
            .iter()
            .filter(|e| addr.truncate(u32::from(e.1)) == e.0)
            .max_by_key(|e| e.1)
            .map(|e| e.2)
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
