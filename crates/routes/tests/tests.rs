//! The routes crate at its boundary: the fuzzing entry points on damaged
//! snapshots and MRT dumps, which must report errors and never panic.

use bgp::fuzzing::Xorshift64;
use bgp::mrt::Skipped;
use net_types::{Prefix, RealmId};
use policy::RouteRules;
use routes::import::{ImportOutcome, ImportWarning, Importer};
use routes::{MatchedRule, RealmRules};

/// BIRD 2.0.12's dump of a table learned with ADD-PATH (see
/// `crates/bgp/tests/data/bird-addpath/make.sh`).
const BIRD_ADDPATH: &[u8] = include_bytes!("../../bgp/tests/data/bird-addpath/master4.mrt");
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

/// national: community 65000:100; everything else international.
fn rules() -> RealmRules {
    RealmRules::new(
        vec![(
            RealmId(1),
            "national".into(),
            RouteRules {
                communities: vec![65000 << 16 | 100],
                ..RouteRules::default()
            },
        )],
        (RealmId(2), "international".into()),
    )
}

/// Issue 12, item 29: in BIRD's own ADD-PATH dumps every BGP-learned
/// prefix was lost, including 198.51.100.0/25 whose best path's community
/// puts it in the national realm, and the import still looked complete.
#[test]
fn a_bird_add_path_dump_imports_every_prefix_with_its_realm() {
    let mut importer = Importer::new(rules());
    importer.read(BIRD_ADDPATH, |_, _| {});
    let (snap, report) = importer.finish("master4.mrt", 0);
    assert_eq!(report.outcome(), ImportOutcome::Complete, "{report:?}");
    assert_eq!((report.entries, report.prefixes), (4, 3));
    let realm = |s: &str| {
        let p = Prefix::parse(s).unwrap();
        let r = snap.routes.iter().find(|r| r.prefix == p).unwrap();
        (r.class.realm, r.class.rule)
    };
    // Two paths: 65000:100 with the shorter AS path wins over 65000:200.
    assert_eq!(
        realm("198.51.100.0/25"),
        (RealmId(1), MatchedRule::Community(65000 << 16 | 100))
    );
    assert_eq!(realm("203.0.113.0/24"), (RealmId(2), MatchedRule::Default));
    assert_eq!(realm("192.0.2.128/25"), (RealmId(2), MatchedRule::Default));
}

/// One MRT record.
fn record(kind: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![0, 0, 0, 0];
    r.extend_from_slice(&kind.to_be_bytes());
    r.extend_from_slice(&subtype.to_be_bytes());
    r.extend_from_slice(&(body.len() as u32).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// Records the reader skips are counted per reason and become warnings;
/// a dump of nothing but skipped records imports nothing, which the
/// caller must not report as success.
#[test]
fn skipped_records_are_warned_about_and_nothing_imported_is_no_success() {
    let mut dump = BIRD_ADDPATH.to_vec();
    dump.extend(record(16, 4, &[1, 2, 3]));
    dump.extend(record(13, 3, &[0; 4]));
    dump.extend(record(13, 3, &[0; 4]));
    let mut importer = Importer::new(rules());
    importer.read(&dump, |_, _| {});
    let (_, report) = importer.finish("dump", 0);
    assert_eq!(report.outcome(), ImportOutcome::Partial);
    assert_eq!(
        report.warnings(),
        vec![
            ImportWarning::Skipped {
                reason: Skipped::Multicast,
                records: 2
            },
            ImportWarning::Skipped {
                reason: Skipped::Updates,
                records: 1
            },
        ]
    );
    assert_eq!(
        report.warnings()[0].to_string(),
        "skipped 2 multicast RIB records (not used for realms)"
    );

    let only_updates = record(16, 4, &[1, 2, 3]);
    let mut importer = Importer::new(rules());
    importer.read(&only_updates, |_, _| {});
    let (snap, report) = importer.finish("updates", 0);
    assert!(snap.routes.is_empty());
    assert_eq!(report.outcome(), ImportOutcome::Nothing);
    assert_eq!(report.warnings().len(), 1);
}
