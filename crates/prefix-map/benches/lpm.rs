//! Micro-benchmarks of `prefix-map` on a synthetic full table generated in
//! process: single and batched lookups, bulk build, and route updates.
//!
//! Run with `cargo bench -p prefix-map --bench lpm`. The table has the
//! length mix of a full BGP table (1M IPv4, 200k IPv6 prefixes, half of
//! them nested inside a shorter one); lookups use addresses drawn from
//! inside random prefixes, so every one walks to a real answer.

use std::sync::LazyLock;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use prefix_map::{PrefixMap4, PrefixMap6};

fn main() {
    divan::main();
}

use prefix_map::fuzzing::SplitMix64 as Gen;

/// Prefix lengths with their share of a full IPv4 table, in prefixes per
/// million: /24 dominates, then /22, /23, /21, /20, /19 and /16.
const V4_MIX: &[(u8, u32)] = &[
    (8, 16),
    (10, 40),
    (12, 300),
    (14, 1_200),
    (15, 2_100),
    (16, 13_500),
    (17, 8_500),
    (18, 14_500),
    (19, 25_000),
    (20, 44_000),
    (21, 50_000),
    (22, 130_000),
    (23, 110_000),
    (24, 600_844),
];

/// The same for IPv6: /48 dominates, then /32, /44, /40, /36 and /29.
const V6_MIX: &[(u8, u32)] = &[
    (24, 2_000),
    (28, 2_000),
    (29, 50_000),
    (30, 5_000),
    (32, 130_000),
    (33, 12_000),
    (34, 10_000),
    (36, 45_000),
    (38, 8_000),
    (40, 70_000),
    (42, 12_000),
    (44, 100_000),
    (46, 15_000),
    (47, 10_000),
    (48, 529_000),
];

/// Generates `n` distinct prefixes of a `bits`-wide family, shortest
/// first so that half of them can be nested inside an earlier, shorter one
/// (as about half of a real table is). `fresh` draws a new top-level
/// address. Values are 16-bit, like realm ids.
fn table(
    g: &mut Gen,
    n: usize,
    bits: u32,
    mix: &[(u8, u32)],
    fresh: impl Fn(&mut Gen) -> u128,
) -> Vec<(u128, u8, u16)> {
    let total: u32 = mix.iter().map(|m| m.1).sum();
    let mask = |len: u8| -> u128 {
        let full = u128::MAX >> (128 - bits);
        full & !(full >> len)
    };
    let mut out: Vec<(u128, u8, u16)> = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::with_capacity(n);
    for &(len, weight) in mix {
        let want = (n as u64 * u64::from(weight) / u64::from(total)) as usize;
        let shorter = out.len();
        let mut made = 0;
        let mut tries = 0;
        // A length with fewer distinct prefixes than asked for stops after
        // a bounded number of tries instead of looping forever.
        while made < want && tries < want * 20 + 1000 {
            tries += 1;
            let addr = if shorter > 0 && g.next_u64() & 1 == 0 {
                let (pa, pl, _) = out[g.below(shorter)];
                (pa | (g.wide() & !mask(pl))) & mask(len)
            } else {
                fresh(g) & mask(len)
            };
            if seen.insert((addr, len)) {
                out.push((addr, len, g.next_u64() as u16));
                made += 1;
            }
        }
    }
    out
}

struct Fixture4 {
    prefixes: Vec<(u32, u8, u16)>,
    map: PrefixMap4<u16>,
    addrs: Vec<u32>,
}

struct Fixture6 {
    prefixes: Vec<(u128, u8, u16)>,
    map: PrefixMap6<u16>,
    addrs: Vec<u128>,
}

/// Addresses per lookup benchmark iteration.
const BATCH: usize = 4096;

static V4: LazyLock<Fixture4> = LazyLock::new(|| {
    let mut g = Gen(4);
    // Public unicast-looking space: skip 0/8, 10/8, 127/8 and 224/3.
    let raw = table(&mut g, 1_000_000, 32, V4_MIX, |g| loop {
        let a = g.next_u64() as u32;
        let top = a >> 24;
        if top != 0 && top != 10 && top != 127 && top < 224 {
            return u128::from(a);
        }
    });
    let prefixes: Vec<(u32, u8, u16)> = raw.iter().map(|&(a, l, v)| (a as u32, l, v)).collect();
    let map = PrefixMap4::build(prefixes.iter().copied()).expect("valid table");
    let addrs = (0..BATCH * 64)
        .map(|_| {
            let (a, l, _) = prefixes[g.below(prefixes.len())];
            a | (g.next_u64() as u32 & u32::MAX.checked_shr(u32::from(l)).unwrap_or(0))
        })
        .collect();
    Fixture4 {
        prefixes,
        map,
        addrs,
    }
});

static V6: LazyLock<Fixture6> = LazyLock::new(|| {
    let mut g = Gen(6);
    // Registry blocks: 2a00::/12, 2400::/12, 2600::/12, 2800::/12, 2c00::/12.
    let prefixes = table(&mut g, 200_000, 128, V6_MIX, |g| {
        const BLOCKS: [u128; 5] = [0x2a0, 0x240, 0x260, 0x280, 0x2c0];
        (BLOCKS[g.below(BLOCKS.len())] << 116) | (g.wide() >> 12)
    });
    let map = PrefixMap6::build(prefixes.iter().copied()).expect("valid table");
    let addrs = (0..BATCH * 64)
        .map(|_| {
            let (a, l, _) = prefixes[g.below(prefixes.len())];
            a | (g.wide() & u128::MAX.checked_shr(u32::from(l)).unwrap_or(0))
        })
        .collect();
    Fixture6 {
        prefixes,
        map,
        addrs,
    }
});

/// Picks the `i`-th slice of `BATCH` addresses, cycling.
fn slice<T>(all: &[T], i: usize) -> &[T] {
    let k = i % (all.len() / BATCH);
    &all[k * BATCH..(k + 1) * BATCH]
}

#[divan::bench]
fn lookup_v4(b: Bencher) {
    let f = &*V4;
    let mut i = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        i += 1;
        let mut hits = 0u32;
        for &a in slice(&f.addrs, i) {
            hits += u32::from(f.map.lookup(black_box(a)).is_some());
        }
        hits
    });
}

#[divan::bench]
fn lookup_v4_batch(b: Bencher) {
    let f = &*V4;
    let mut out = vec![None; BATCH];
    let mut i = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        i += 1;
        f.map.lookup_batch(black_box(slice(&f.addrs, i)), &mut out);
        out[BATCH - 1]
    });
}

#[divan::bench]
fn lookup_v6(b: Bencher) {
    let f = &*V6;
    let mut i = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        i += 1;
        let mut hits = 0u32;
        for &a in slice(&f.addrs, i) {
            hits += u32::from(f.map.lookup(black_box(a)).is_some());
        }
        hits
    });
}

#[divan::bench]
fn lookup_v6_batch(b: Bencher) {
    let f = &*V6;
    let mut out = vec![None; BATCH];
    let mut i = 0;
    b.counter(ItemsCount::new(BATCH)).bench_local(|| {
        i += 1;
        f.map.lookup_batch(black_box(slice(&f.addrs, i)), &mut out);
        out[BATCH - 1]
    });
}

#[divan::bench(sample_count = 10)]
fn build_v4(b: Bencher) {
    let f = &*V4;
    b.counter(ItemsCount::new(f.prefixes.len()))
        .bench(|| PrefixMap4::build(black_box(&f.prefixes).iter().copied()));
}

#[divan::bench(sample_count = 10)]
fn build_v6(b: Bencher) {
    let f = &*V6;
    b.counter(ItemsCount::new(f.prefixes.len()))
        .bench(|| PrefixMap6::build(black_box(&f.prefixes).iter().copied()));
}

/// Withdraws a prefix and announces it again with another value: two
/// route updates per iteration, on a full table.
#[divan::bench]
fn update_v4(b: Bencher) {
    let f = &*V4;
    let mut map = f.map.clone();
    let mut g = Gen(44);
    b.counter(ItemsCount::new(2usize)).bench_local(|| {
        let (a, l, v) = f.prefixes[g.below(f.prefixes.len())];
        let _ = map.remove(a, l);
        map.insert(a, l, v ^ 1)
    });
}

#[divan::bench]
fn update_v6(b: Bencher) {
    let f = &*V6;
    let mut map = f.map.clone();
    let mut g = Gen(66);
    b.counter(ItemsCount::new(2usize)).bench_local(|| {
        let (a, l, v) = f.prefixes[g.below(f.prefixes.len())];
        let _ = map.remove(a, l);
        map.insert(a, l, v ^ 1)
    });
}
