//! The transit guard's own work at one check, at 10,000 tenants, without
//! the history read (which is `tollgate transit`'s: the site's series of
//! the period and the slots above the commit).
//!
//! `flock -o /work/locks/bench cargo bench -p engine --bench transit`
//!
//! - `check_move_heaviest`: [`TransitGuard::check`] taking step 2: the
//!   10,000 tenants' shares sorted, the heaviest three picked.
//! - `with_steps`: the policy the daemon compiles with steps 1 and 2 in
//!   force (a copy of the 10,000-tenant policy, the pool lowered, three
//!   tenants moved).

use billing::{BitRate, TransitStatus};
use divan::black_box;
use engine::transit_guard::{GuardConfig, Step, TransitGuard};
use engine::transit_run::{with_steps, TransitState, UpstreamGuard};
use jiff::{SignedDuration, Timestamp};
use net_types::{Rate, TenantId};

fn main() {
    divan::main();
}

const TENANTS: u32 = 10_000;

fn rate(mbit: u64) -> Rate {
    Rate::from_bps(mbit * 1_000_000).unwrap()
}

fn status() -> TransitStatus {
    TransitStatus {
        commit: rate(10_000),
        target: BitRate(9_000_000_000),
        elapsed: 5615,
        expected: 8640,
        rank: Some(8208),
        budget: 432,
        spent: 400,
        left: 32,
        projected_spent: 615,
        so_far: None,
        projected: None,
        floor: None,
        runs_out_at: Some(6071),
        exact_budget: true,
    }
}

fn config() -> GuardConfig {
    GuardConfig {
        target: rate(9_000),
        margin_percent: 10,
        pool_ceil: rate(100),
        heaviest: 3,
        realms: Vec::new(),
        hold: SignedDuration::from_hours(6),
        dry_run: false,
    }
}

#[divan::bench]
fn check_move_heaviest(b: divan::Bencher) {
    let now: Timestamp = "2026-11-20T12:00:02Z".parse().unwrap();
    // Bytes above the commit per tenant, in no order.
    let shares: Vec<(TenantId, u128)> = (1..=TENANTS)
        .map(|t| {
            (
                TenantId(t),
                u128::from(t.wrapping_mul(2_654_435_761) % 1_000_003),
            )
        })
        .collect();
    let mut one = TransitGuard::default();
    one.check(now, &status(), &shares, &config()).unwrap();
    b.bench(|| {
        let mut g = one.clone();
        black_box(g.check(black_box(now), &status(), black_box(&shares), &config()))
    });
}

#[divan::bench]
fn with_steps_10k(b: divan::Bencher) {
    let mut text = compiler::synthetic::policy_text(&compiler::synthetic::Shape::router(TENANTS));
    text.push_str("\n[transit]\nguard = \"on\"\npool_ceil = \"100mbit\"\n\n[[transit.upstreams]]\nname = \"carrier\"\ncommit = \"10gbit\"\n");
    let loaded = policy::load_str("bench.toml", &text);
    let rendered = loaded.render();
    let p = loaded.policy.unwrap_or_else(|| panic!("{rendered}"));
    let steps = serde_json::json!({ "steps": [
        Step::LowerPoolCeil { ceil: rate(100) },
        Step::MoveHeaviest { tenants: vec![TenantId(17), TenantId(4711), TenantId(9999)] },
    ], "changed": null });
    let state = TransitState {
        guards: [(
            "carrier".to_string(),
            UpstreamGuard {
                dry_run: false,
                guard: serde_json::from_value(steps).unwrap(),
            },
        )]
        .into(),
        ..Default::default()
    };
    b.bench(|| black_box(with_steps(black_box(&p), &state)));
}
