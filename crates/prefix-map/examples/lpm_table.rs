//! Loads a dumped routing table and measures `prefix-map` on it: build
//! time, memory, single and batched lookups per second over addresses drawn
//! from inside the table (and uniformly at random), and mixed route updates
//! per second. Every figure is checked against an independent oracle (one
//! hash map per prefix length, probed from the longest length down) on a
//! sample of addresses, before and after the updates.
//!
//! The table is the text dump of the shared `lpm` benchmark
//! (`cargo run --release -- --dump DIR` there writes `DIR/v4.txt` and
//! `DIR/v6.txt`, one `prefix/len value` per line):
//!
//! ```text
//! cargo run --release -p prefix-map --example lpm_table -- DIR [--lookups N] [--reps N] [--updates N]
//! ```
//!
//! The last lines are machine-readable `FIGURES v4 ...` / `FIGURES v6 ...`
//! records used by `bench/lpm_compare.sh`.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Instant;

use prefix_map::{Key, PrefixMap};

use prefix_map::fuzzing::SplitMix64 as Rng;

/// What the benchmark needs from an address family beyond [`Key`].
trait Family: Key {
    type Addr: FromStr;
    const NAME: &'static str;
    fn from_addr(a: Self::Addr) -> Self;
    fn from_wide(x: u128) -> Self;
    fn host_mask(len: u8) -> Self;
    fn or(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn net_mask(len: u8) -> Self;
}

impl Family for u32 {
    type Addr = Ipv4Addr;
    const NAME: &'static str = "v4";
    fn from_addr(a: Ipv4Addr) -> Self {
        a.into()
    }
    fn from_wide(x: u128) -> Self {
        x as u32
    }
    fn host_mask(len: u8) -> Self {
        u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    fn or(self, o: Self) -> Self {
        self | o
    }
    fn and(self, o: Self) -> Self {
        self & o
    }
    fn net_mask(len: u8) -> Self {
        !Self::host_mask(len)
    }
}

impl Family for u128 {
    type Addr = Ipv6Addr;
    const NAME: &'static str = "v6";
    fn from_addr(a: Ipv6Addr) -> Self {
        a.into()
    }
    fn from_wide(x: u128) -> Self {
        x
    }
    fn host_mask(len: u8) -> Self {
        u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    fn or(self, o: Self) -> Self {
        self | o
    }
    fn and(self, o: Self) -> Self {
        self & o
    }
    fn net_mask(len: u8) -> Self {
        !Self::host_mask(len)
    }
}

fn load<K: Family>(path: &str) -> Vec<(K, u8, u16)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (pfx, val) = line.split_once(' ').expect("line is `prefix/len value`");
            let (addr, len) = pfx.split_once('/').expect("prefix has a /len");
            let addr = K::Addr::from_str(addr)
                .ok()
                .unwrap_or_else(|| panic!("bad address in {line:?}"));
            (
                K::from_addr(addr),
                len.parse().expect("length is a number"),
                val.trim().parse().expect("value is a u16"),
            )
        })
        .collect()
}

/// The independent reference: one hash map per length, longest first.
struct Oracle<K> {
    by_len: Vec<(u8, HashMap<K, u16>)>,
}

impl<K: Family> Oracle<K> {
    fn new(p: &[(K, u8, u16)]) -> Self {
        let mut m: HashMap<u8, HashMap<K, u16>> = HashMap::new();
        for &(a, l, v) in p {
            m.entry(l).or_default().insert(a, v);
        }
        let mut by_len: Vec<_> = m.into_iter().collect();
        by_len.sort_by_key(|e| std::cmp::Reverse(e.0));
        Oracle { by_len }
    }
    fn get(&self, a: K) -> Option<u16> {
        self.by_len
            .iter()
            .find_map(|(l, h)| h.get(&a.and(K::net_mask(*l))).copied())
    }
}

/// Resident set size in bytes, from /proc (0 where unavailable).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[inline(never)]
fn run_single<K: Family>(m: &PrefixMap<K, u16>, addrs: &[K]) -> (f64, u64) {
    let t = Instant::now();
    let mut sum = 0u64;
    for &a in addrs {
        if let Some(v) = m.lookup(black_box(a)) {
            sum = sum.wrapping_add(u64::from(v) + 1);
        }
    }
    (
        addrs.len() as f64 / t.elapsed().as_secs_f64(),
        black_box(sum),
    )
}

#[inline(never)]
fn run_batch<K: Family>(m: &PrefixMap<K, u16>, addrs: &[K]) -> (f64, u64) {
    let mut out = vec![None; 256];
    let t = Instant::now();
    let mut sum = 0u64;
    for chunk in addrs.chunks(256) {
        let n = m.lookup_batch(black_box(chunk), &mut out);
        for v in out[..n].iter().flatten() {
            sum = sum.wrapping_add(u64::from(*v) + 1);
        }
    }
    (
        addrs.len() as f64 / t.elapsed().as_secs_f64(),
        black_box(sum),
    )
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.replace('_', "").parse().expect("bad number"))
}

fn bench_family<K: Family>(dir: &str, args: &[String], rng: &mut Rng) -> bool {
    let nl = arg(args, "--lookups", 10_000_000);
    let reps = arg(args, "--reps", 3).max(1);
    let nu = arg(args, "--updates", 200_000);
    let ns = arg(args, "--sample", 200_000);
    let fam = K::NAME;
    let pfx: Vec<(K, u8, u16)> = load(&format!("{dir}/{fam}.txt"));

    // Build (median of `reps`), memory as computed by the crate and as seen
    // by the kernel for the last build.
    let mut times = Vec::new();
    let mut table = None;
    let mut rss_delta = 0;
    for _ in 0..reps {
        drop(table.take());
        let before = rss();
        let t = Instant::now();
        let m = PrefixMap::<K, u16>::build(pfx.iter().copied()).expect("valid table");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        rss_delta = rss().saturating_sub(before);
        table = Some(m);
    }
    let mut m = table.expect("built at least once");
    let build_ms = median(&mut times);
    let mem = m.memory_bytes();
    let st = m.stats();

    // Address sets: inside the table (a random prefix, random host bits)
    // and uniformly random.
    let inside: Vec<K> = (0..nl)
        .map(|_| {
            let (a, l, _) = pfx[rng.below(pfx.len())];
            a.or(K::from_wide(rng.wide()).and(K::host_mask(l)))
        })
        .collect();
    let random: Vec<K> = (0..nl)
        .map(|_| {
            let w = rng.wide();
            // IPv6: global unicast 2000::/3, as the shared benchmark does.
            K::from_wide(if K::BITS == 128 {
                (w >> 3) | (1 << 125)
            } else {
                w
            })
        })
        .collect();

    let oracle = Oracle::new(&pfx);
    let sample: Vec<K> = inside
        .iter()
        .take(ns / 2)
        .chain(random.iter().take(ns / 2))
        .copied()
        .collect();
    let mut ok = sample.iter().all(|&a| m.lookup(a) == oracle.get(a));
    let mut batch_out = vec![None; sample.len()];
    m.lookup_batch(&sample, &mut batch_out);
    ok &= sample
        .iter()
        .zip(&batch_out)
        .all(|(&a, &got)| got == oracle.get(a));

    let (mut s_in, mut b_in, mut s_rnd) = (Vec::new(), Vec::new(), Vec::new());
    let mut sums = (0, 0);
    for _ in 0..reps {
        let (r, s1) = run_single(&m, &inside);
        s_in.push(r);
        let (r, s2) = run_batch(&m, &inside);
        b_in.push(r);
        sums = (s1, s2);
        s_rnd.push(run_single(&m, &random).0);
    }
    ok &= sums.0 == sums.1;

    // Mixed updates: withdraw a random stored prefix, and re-announce the
    // prefix withdrawn 1,000 operations earlier with a new value, so the
    // table keeps its size and every operation really changes it.
    let mut picks: Vec<usize> = (0..nu / 2).map(|_| rng.below(pfx.len())).collect();
    picks.sort_unstable();
    picks.dedup();
    let mut order: Vec<usize> = picks.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    const LAG: usize = 1000;
    let t = Instant::now();
    let mut ops = 0usize;
    for i in 0..order.len() + LAG {
        if let Some(&j) = order.get(i) {
            let (a, l, _) = pfx[j];
            ok &= m.remove(a, l) == Ok(Some(pfx[j].2));
            ops += 1;
        }
        if i >= LAG {
            let (a, l, v) = pfx[order[i - LAG]];
            ok &= m.insert(a, l, v ^ 0x5555) == Ok(None);
            ops += 1;
        }
    }
    let upd_rate = ops as f64 / t.elapsed().as_secs_f64();
    let mut after = pfx.clone();
    for &j in &picks {
        after[j].2 ^= 0x5555;
    }
    let oracle = Oracle::new(&after);
    ok &= sample.iter().all(|&a| m.lookup(a) == oracle.get(a));
    ok &= m.len() == pfx.len();

    let mib = |b: usize| b as f64 / 1048576.0;
    println!(
        "{fam}: {} prefixes, build {build_ms:.0} ms, memory {:.1} MiB (rss +{:.1} MiB; {} nodes, {} codes, {} values), \
         in-table {:.1} M/s single, {:.1} M/s batch, random {:.1} M/s, updates {:.0} k/s, oracle agrees: {}",
        pfx.len(),
        mib(mem),
        mib(rss_delta),
        st.nodes,
        st.codes,
        st.values,
        median(&mut s_in) / 1e6,
        median(&mut b_in) / 1e6,
        median(&mut s_rnd) / 1e6,
        upd_rate / 1e3,
        if ok { "yes" } else { "NO" },
    );
    println!(
        "FIGURES {fam} build_ms={build_ms:.1} mem_mib={:.2} rss_mib={:.2} single_mps={:.2} batch_mps={:.2} random_mps={:.2} updates_kps={:.1} ok={}",
        mib(mem),
        mib(rss_delta),
        median(&mut s_in) / 1e6,
        median(&mut b_in) / 1e6,
        median(&mut s_rnd) / 1e6,
        upd_rate / 1e3,
        if ok { "yes" } else { "NO" },
    );
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: lpm_table DIR [--lookups N] [--reps N] [--updates N] [--sample N]");
        std::process::exit(2);
    };
    let mut rng = Rng(arg(&args, "--seed", 7) as u64);
    let ok4 = bench_family::<u32>(dir, &args, &mut rng);
    let ok6 = bench_family::<u128>(dir, &args, &mut rng);
    if !(ok4 && ok6) {
        eprintln!("prefix-map disagrees with the oracle");
        std::process::exit(1);
    }
}
