//! Compile and diff at 10,000 and 100,000 tenants.
//!
//! Goals (issue 2): 10k compile ≤ 50 ms, 10k diff ≤ 10 ms, linear to 100k.
//! Run with `cargo bench -p compiler --bench compile`.

use compiler::synthetic::{policy_text, Shape};
use compiler::{compile, HostFacts, Live};
use divan::Bencher;

fn main() {
    divan::main();
}

fn policy(tenants: u32) -> policy::Policy {
    let loaded = policy::load_str("bench.toml", &policy_text(&Shape::router(tenants)));
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.policy.unwrap()
}

const SIZES: [u32; 3] = [1_000, 10_000, 100_000];

/// Parse and validate the policy text.
#[divan::bench(args = SIZES, sample_count = 10)]
fn load(b: Bencher, tenants: u32) {
    let text = policy_text(&Shape::router(tenants));
    b.bench(|| policy::load_str("bench.toml", divan::black_box(&text)));
}

/// Policy → Plan, from an empty host.
#[divan::bench(args = SIZES, sample_count = 10)]
fn compile_cold(b: Bencher, tenants: u32) {
    let p = policy(tenants);
    b.bench(|| compile(divan::black_box(&p), &HostFacts::default()).unwrap());
}

/// Policy → Plan against live placements (the daemon's steady state).
#[divan::bench(args = SIZES, sample_count = 10)]
fn compile_warm(b: Bencher, tenants: u32) {
    let p = policy(tenants);
    let live = Live::from_plan(&compile(&p, &HostFacts::default()).unwrap().plan);
    let facts = HostFacts {
        interfaces: None,
        live,
        route_realms: Vec::new(),
        bridges: None,
        offline: Default::default(),
        foreign_roots: Default::default(),
    };
    b.bench(|| compile(divan::black_box(&p), &facts).unwrap());
}

/// Diff two plans that differ by one tenant (the incremental case).
#[divan::bench(args = SIZES, sample_count = 10)]
fn diff_one_tenant(b: Bencher, tenants: u32) {
    let before = compile(&policy(tenants), &HostFacts::default())
        .unwrap()
        .plan;
    let mut after = before.clone();
    let key = *after.classes.keys().nth(after.classes.len() / 2).unwrap();
    after.classes.remove(&key);
    b.bench(|| plan::diff(divan::black_box(&before), divan::black_box(&after)));
}

/// Diff a full plan against an empty kernel (first apply).
#[divan::bench(args = SIZES, sample_count = 10)]
fn diff_from_empty(b: Bencher, tenants: u32) {
    let p = compile(&policy(tenants), &HostFacts::default())
        .unwrap()
        .plan;
    let empty = plan::Plan::default();
    b.bench(|| plan::diff(divan::black_box(&p), &empty));
}
