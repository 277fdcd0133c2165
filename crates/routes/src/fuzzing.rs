//! Entry points for cargo-fuzz and the tests. Each panics only if an
//! invariant breaks:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| routes::fuzzing::snapshot(data));
//! ```

use bgp::mrt::MrtReader;
use net_types::RealmId;
use policy::RouteRules;

use crate::import::{ImportOutcome, Importer};
use crate::snapshot::Snapshot;
use crate::RealmRules;

/// Decodes `data` as a snapshot; whatever decodes must encode back to the
/// same bytes.
pub fn snapshot(data: &[u8]) {
    if let Ok(s) = Snapshot::decode(data) {
        let again = s.encode();
        let s2 = Snapshot::decode(&again).expect("a re-encoded snapshot must decode");
        assert_eq!(s, s2, "snapshot changed in a round trip");
    }
}

/// Imports `data` as an MRT dump; the snapshot it makes must survive its
/// own encoding, and every route must be findable by its own address.
pub fn import(data: &[u8]) {
    let rules = RealmRules::new(
        vec![(
            RealmId(1),
            "national".into(),
            RouteRules {
                communities: vec![65001 << 16 | 100],
                origin_as: vec![64500],
                ..RouteRules::default()
            },
        )],
        (RealmId(2), "international".into()),
    );
    let mut importer = Importer::new(rules);
    importer.read(data, |_, _| {});
    let (snap, report) = importer.finish("fuzz", 0);
    assert_eq!(report.prefixes, snap.routes.len());
    let mut reader = MrtReader::new(data);
    reader.by_ref().for_each(drop);
    assert_eq!(&report.skipped, reader.skipped_records());
    let warned = !report.warnings().is_empty();
    match report.outcome() {
        ImportOutcome::Nothing => assert!(snap.routes.is_empty()),
        ImportOutcome::Partial => assert!(warned && !snap.routes.is_empty()),
        ImportOutcome::Complete => assert!(!warned && !snap.routes.is_empty()),
    }
    let decoded = Snapshot::decode(&snap.encode()).expect("an imported snapshot must decode");
    assert_eq!(decoded.routes, snap.routes);
}
