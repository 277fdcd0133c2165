//! One overage check of 10,000 tenants (4 realms × 2 directions each), 30
//! days into a 31-day month, without the store reads.
//!
//! `cargo bench -p billing --bench overage`
//!
//! - `series_per_tenant`: the old check: for every tenant, its samples of
//!   the month so far → [`Series`] → [`project`] → [`decide`]. (The daemon
//!   also read those 69,120 samples per tenant from the store.)
//! - `tallies`: the new check: the 13 slots read at every check (one slot
//!   folded for good, twelve into a copy, as `daemon/overage_watch.rs`
//!   does) → [`slot_bytes`] → [`Watch::add`] → [`Watch::decide`].

use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use billing::{
    decide, project, slot_bytes, BillingCycle, RealmSelection, Series, Tally, Verdict, Watch,
};
use divan::black_box;
use net_types::{Rate, RealmId, TenantId};
use std::collections::HashMap;

fn main() {
    divan::main();
}

const TENANTS: u32 = 10_000;
/// Slots closed: 30 days.
const ELAPSED: i64 = 30 * 288;
/// Slots read at every check by the new path.
const RECHECK: i64 = 13;

fn period() -> billing::Period {
    BillingCycle::new(1, "UTC")
        .unwrap()
        .period(2026, 12)
        .unwrap()
}

/// One tenant's samples in one slot, all realms and directions: sizes vary
/// 1000× between tenants and with a hash of slot and key.
fn slot_samples(slot: Slot, tenant: u32, out: &mut Vec<Sample>) {
    for realm in 1..=4u16 {
        for direction in Direction::BOTH {
            let mut h = (slot.0 as u64) << 32 ^ u64::from(tenant) << 4 ^ u64::from(realm) << 1;
            h ^= direction as u64 ^ 0x9e37_79b9_7f4a_7c15;
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            let scale = 1 + u64::from(tenant * 7919 % 1000);
            let bytes = scale * (200_000 + h % 300_000);
            out.push(Sample {
                slot,
                key: UsageKey {
                    tenant: TenantId(tenant),
                    realm: RealmId(realm),
                    direction,
                    band: Band::Whole,
                    source: Source::Kernel,
                },
                bytes,
                packets: bytes / 900,
            });
        }
    }
}

fn commit(tenant: u32) -> Option<Rate> {
    // Around each tenant's typical rate, so that some move.
    Rate::from_bps((1 + u64::from(tenant * 7919 % 1000)) * 14_000)
}

fn watch() -> Watch {
    Watch {
        expected: period().expected_samples(),
        rule: Default::default(),
        counts: billing::VolumeCounts::Both,
        policy: Default::default(),
    }
}

/// The old path, per tenant. Sixteen tenants' months are kept in memory
/// (a month of 10,000 tenants is 700 million samples) and reused: the work
/// per tenant is the same.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn series_per_tenant(bencher: divan::Bencher) {
    let period = period();
    let first = period.first_slot();
    let months: Vec<Vec<Sample>> = (0..16)
        .map(|t| {
            let mut v = Vec::new();
            for s in 0..ELAPSED {
                slot_samples(Slot(first.0 + s), t, &mut v);
            }
            v
        })
        .collect();
    let coverage: Vec<SlotCoverage> = (0..ELAPSED)
        .map(|s| SlotCoverage {
            slot: Slot(first.0 + s),
            status: SlotStatus::Measured,
        })
        .collect();
    let w = watch();
    bencher.bench_local(|| {
        let mut moved = 0;
        for t in 0..TENANTS {
            let id = t % 16;
            let series = Series::build(
                &period,
                TenantId(id),
                &RealmSelection::All,
                &months[id as usize],
                &coverage,
            )
            .unwrap();
            let p = project(&series, ELAPSED as usize, &w.rule, w.counts);
            moved += usize::from(decide(&p, commit(id), None, &w.policy).moves());
        }
        black_box(moved)
    });
}

/// The new path: the samples the daemon reads at every check, folded into
/// every tenant's tally, then every tenant decided.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn tallies(bencher: divan::Bencher) {
    let period = period();
    let first = period.first_slot();
    let w = watch();
    let limits: HashMap<u32, billing::Limits> =
        (0..TENANTS).map(|t| (t, w.limits(commit(t)))).collect();
    // Tallies of the slots already folded (their counts do not change the
    // cost).
    let start = ELAPSED - RECHECK;
    let mut tallies: HashMap<u32, Tally> = HashMap::new();
    for t in 0..TENANTS {
        let mut tally = Tally::default();
        for _ in 0..start {
            w.add(&mut tally, &limits[&t], 1, 1, true);
        }
        tallies.insert(t, tally);
    }
    let mut samples = Vec::new();
    for s in start..ELAPSED {
        for t in 0..TENANTS {
            slot_samples(Slot(first.0 + s), t, &mut samples);
        }
    }
    bencher.bench_local(|| {
        let mut settled = tallies.clone();
        let rows = slot_bytes(black_box(&samples)).unwrap();
        let mut tail: Option<HashMap<u32, Tally>> = None;
        let mut i = 0;
        for s in start..ELAPSED {
            let slot = Slot(first.0 + s);
            let j = i + rows[i..].partition_point(|r| r.slot == slot);
            let slot_rows = &rows[i..j];
            i = j;
            let target = if s == start {
                &mut settled
            } else {
                tail.get_or_insert_with(|| settled.clone())
            };
            for (id, tally) in target.iter_mut() {
                let row = slot_rows
                    .binary_search_by_key(id, |r| r.tenant.0)
                    .ok()
                    .map(|k| &slot_rows[k]);
                let (d, u) = row.map_or((0, 0), |r| (r.down, r.up));
                w.add(tally, &limits[id], d, u, true);
            }
        }
        let current = tail.as_ref().unwrap_or(&settled);
        let mut moved = 0;
        for t in 0..TENANTS {
            moved += usize::from(!matches!(
                w.decide(&current[&t], commit(t), None),
                Verdict::Exact(_)
            ));
        }
        black_box(moved)
    });
}
