//! The percentile maths: one tenant's 31-day month, and a whole bill run of
//! 10,000 tenants.
//!
//! `cargo bench -p billing --bench percentile`

use accounting::{Slot, SlotStatus};
use billing::{percentile, Method, PercentileRule, Series};
use divan::black_box;

fn main() {
    divan::main();
}

const MONTH: usize = 8928;

/// A pseudo-random month: a daily curve with noise, deterministic.
fn month(seed: u64) -> Series {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut down = Vec::with_capacity(MONTH);
    let mut up = Vec::with_capacity(MONTH);
    for i in 0..MONTH {
        let hour = (i / 12) % 24;
        let base = 1_000_000 + (hour as u64 * 400_000);
        down.push(base + next() % 5_000_000);
        up.push(base / 4 + next() % 1_000_000);
    }
    Series::new(Slot(0), down, up, vec![Some(SlotStatus::Measured); MONTH]).unwrap()
}

#[divan::bench(args = [Method::MaxOfDirections, Method::SumOfDirections, Method::PerSampleMax])]
fn one_tenant_month(bencher: divan::Bencher, method: Method) {
    let s = month(7);
    let rule = PercentileRule {
        method,
        ..PercentileRule::default()
    };
    bencher.bench(|| percentile(black_box(&s), &rule));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn ten_thousand_tenants_month(bencher: divan::Bencher) {
    let tenants: Vec<Series> = (0..10_000).map(month).collect();
    let rule = PercentileRule::default();
    bencher.bench(|| {
        tenants
            .iter()
            .map(|s| percentile(s, &rule).rate().bps())
            .sum::<u64>()
    });
}
