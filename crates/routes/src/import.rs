//! Reducing an MRT RIB dump to a [`Snapshot`]: the best route per prefix
//! across the dump's peers, classified into realms.
//!
//! A TABLE_DUMP_V2 record lists every peer's route for one prefix, so the
//! [`Importer`] collects the entries of consecutive equal prefixes, picks
//! the best with [`selection`](crate::selection), and keeps only that. A
//! full table with hundreds of peers thus needs memory for one route per
//! prefix, not one per peer and prefix.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use bgp::mrt::{MrtEntry, MrtError, MrtPeer};
use bgp::PathAttributes;
use net_types::Prefix;

use crate::realms::RealmRules;
use crate::selection::{self, Candidate};
use crate::snapshot::{Snapshot, SnapshotBuilder, SnapshotPeer};

/// How many bad records an import keeps for its report; the rest are only
/// counted.
pub const KEPT_ERRORS: usize = 20;

/// What an import read, besides the routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Route entries read (one per peer and prefix).
    pub entries: usize,
    /// Distinct prefixes.
    pub prefixes: usize,
    /// Distinct peers that announced the chosen routes.
    pub peers: usize,
    /// Bad records or entries, all counted.
    pub errors: usize,
    /// The first [`KEPT_ERRORS`] of them, with their byte offsets.
    pub first_errors: Vec<MrtError>,
}

/// Collects MRT entries and keeps the best route per prefix.
#[derive(Debug)]
pub struct Importer {
    rules: RealmRules,
    best: HashMap<Prefix, (MrtPeer, Arc<PathAttributes>)>,
    /// The entries of the prefix being read, not yet reduced.
    group: Vec<(MrtPeer, Arc<PathAttributes>)>,
    group_prefix: Option<Prefix>,
    /// One copy of each distinct attribute set among the chosen routes, so
    /// that a full table stores each set once however many prefixes use
    /// it.
    interned: HashSet<Arc<PathAttributes>>,
    report: ImportReport,
}

impl Importer {
    /// Starts an import that classifies routes by `rules`.
    pub fn new(rules: RealmRules) -> Self {
        Importer {
            rules,
            best: HashMap::new(),
            group: Vec::new(),
            group_prefix: None,
            interned: HashSet::new(),
            report: ImportReport::default(),
        }
    }

    /// Reads one item of an [`bgp::mrt::MrtReader`].
    pub fn add(&mut self, item: Result<MrtEntry, MrtError>) {
        match item {
            Ok(entry) => self.add_entry(entry),
            Err(e) => {
                self.report.errors += 1;
                if self.report.first_errors.len() < KEPT_ERRORS {
                    self.report.first_errors.push(e);
                }
            }
        }
    }

    fn add_entry(&mut self, entry: MrtEntry) {
        self.report.entries += 1;
        if self.group_prefix != Some(entry.route.prefix) {
            self.flush();
            self.group_prefix = Some(entry.route.prefix);
        }
        self.group.push((entry.peer, entry.route.attrs));
    }

    /// Reduces the current group to its best route and merges it with any
    /// earlier route for the same prefix (a dump may repeat a prefix).
    fn flush(&mut self) {
        let Some(prefix) = self.group_prefix.take() else {
            return;
        };
        if let Some(earlier) = self.best.remove(&prefix) {
            self.group.push(earlier);
        }
        self.group.sort_by_key(|(p, _)| p.ip);
        let cands: Vec<Candidate<'_>> = self
            .group
            .iter()
            .map(|(p, a)| Candidate {
                peer: p.ip,
                attrs: a,
            })
            .collect();
        if let Some(i) = selection::best(&cands) {
            let (peer, attrs) = self.group.swap_remove(i);
            let attrs = match self.interned.get(&attrs) {
                Some(shared) => Arc::clone(shared),
                None => {
                    self.interned.insert(Arc::clone(&attrs));
                    attrs
                }
            };
            self.best.insert(prefix, (peer, attrs));
        }
        self.group.clear();
    }

    /// Classifies the chosen routes and builds the snapshot.
    pub fn finish(mut self, source: &str, created_unix: u64) -> (Snapshot, ImportReport) {
        self.flush();
        let mut b = SnapshotBuilder::new(source, created_unix, &self.rules);
        // Routes sharing a peer and an attribute set share a
        // classification; a dump repeats both often.
        let mut memo: HashMap<(IpAddr, *const PathAttributes), crate::Classification> =
            HashMap::new();
        for (prefix, (peer, attrs)) in &self.best {
            let class = *memo
                .entry((peer.ip, Arc::as_ptr(attrs)))
                .or_insert_with(|| self.rules.classify(Some(peer.ip), attrs));
            let peer = SnapshotPeer {
                addr: peer.ip,
                asn: peer.asn,
                bgp_id: peer.bgp_id,
            };
            b.add(*prefix, peer, attrs, class);
        }
        let snapshot = b.finish();
        self.report.prefixes = snapshot.routes.len();
        self.report.peers = snapshot.peers.len();
        (snapshot, self.report)
    }
}
