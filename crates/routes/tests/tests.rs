//! The routes crate at its boundary: the fuzzing entry points on damaged
//! snapshots and MRT dumps, which must report errors and never panic.

use bgp::fuzzing::Xorshift64;

/// A dump written by BIRD 2.0.12's `mrt dump table`, as in the fuzz seeds.
const BIRD_DUMP: &[u8] = include_bytes!("../../../fuzz/seeds/routes_import/bird-2.0.12-dump.mrt");
/// A snapshot `tollgate routes import` made of that dump.
const SNAPSHOT: &[u8] = include_bytes!("../../../fuzz/seeds/routes_snapshot/bird-import.tgr");

fn damaged(rng: &mut Xorshift64, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    match rng.below(3) {
        0 => v.truncate(rng.below(input.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        _ => {
            let i = rng.below(v.len());
            v.insert(i, rng.next_u64() as u8);
        }
    }
    v
}

#[test]
fn the_seeds_are_what_they_claim() {
    let s = routes::snapshot::Snapshot::decode(SNAPSHOT).unwrap();
    assert!(!s.routes.is_empty());
    routes::fuzzing::import(BIRD_DUMP);
}

#[test]
fn damaged_snapshots_and_dumps_never_panic() {
    let mut rng = Xorshift64(0x5eed_cafe_f00d_d00d);
    for _ in 0..3000 {
        routes::fuzzing::snapshot(&damaged(&mut rng, SNAPSHOT));
        routes::fuzzing::import(&damaged(&mut rng, BIRD_DUMP));
    }
}
