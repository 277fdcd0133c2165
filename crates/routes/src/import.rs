//! Reducing an MRT RIB dump to a [`Snapshot`]: the best route per prefix
//! across the dump's peers, classified into realms.
//!
//! A TABLE_DUMP_V2 record lists every peer's route for one prefix, so the
//! [`Importer`] collects the entries of consecutive equal prefixes, picks
//! the best with [`selection`](crate::selection), and keeps only that. A
//! full table with hundreds of peers thus needs memory for one route per
//! prefix, not one per peer and prefix. A peer that sent several paths
//! (an ADD-PATH dump) has one candidate per path; between paths that tie,
//! the lowest path identifier wins, so the choice never depends on the
//! order of the dump.
//!
//! [`Importer::read`] reads a whole dump and also counts the records the
//! reader had to skip, per reason; [`ImportReport::warnings`] and
//! [`ImportReport::outcome`] turn that into what the caller prints and
//! whether it may succeed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bgp::mrt::{MrtEntry, MrtError, MrtPeer, MrtReader, Skipped};
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
    /// Route entries read (one per peer, path and prefix).
    pub entries: usize,
    /// Distinct prefixes.
    pub prefixes: usize,
    /// Distinct peers that announced the chosen routes.
    pub peers: usize,
    /// Bad records or entries, all counted.
    pub errors: usize,
    /// The first [`KEPT_ERRORS`] of them, with their byte offsets.
    pub first_errors: Vec<MrtError>,
    /// Records the reader skipped, per reason (filled by
    /// [`Importer::read`]).
    pub skipped: BTreeMap<Skipped, usize>,
}

/// What an import amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every record was read and routes were imported.
    Complete,
    /// Routes were imported, but records were skipped or bad: the caller
    /// prints [`ImportReport::warnings`] and may still succeed.
    Partial,
    /// No route was imported: the caller must fail (and keep any table it
    /// already has).
    Nothing,
}

/// Something an import left out, for a warning line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportWarning {
    /// Records of a kind the reader does not read.
    Skipped {
        /// Why.
        reason: Skipped,
        /// How many records.
        records: usize,
    },
    /// Records or entries that could not be read
    /// ([`ImportReport::first_errors`] has the first ones, with offsets).
    Bad {
        /// How many.
        count: usize,
    },
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportWarning::Skipped { reason, records } => write!(f, "skipped {records} {reason}"),
            ImportWarning::Bad { count } => {
                write!(
                    f,
                    "left out {count} records or entries that could not be read"
                )
            }
        }
    }
}

impl ImportReport {
    /// Everything the import left out: skipped records per reason, then
    /// bad ones.
    pub fn warnings(&self) -> Vec<ImportWarning> {
        let mut w: Vec<ImportWarning> = self
            .skipped
            .iter()
            .map(|(&reason, &records)| ImportWarning::Skipped { reason, records })
            .collect();
        if self.errors > 0 {
            w.push(ImportWarning::Bad { count: self.errors });
        }
        w
    }

    /// Whether the import is complete, partial, or imported nothing.
    pub fn outcome(&self) -> ImportOutcome {
        if self.entries == 0 || self.prefixes == 0 {
            ImportOutcome::Nothing
        } else if self.errors > 0 || !self.skipped.is_empty() {
            ImportOutcome::Partial
        } else {
            ImportOutcome::Complete
        }
    }
}

/// One candidate route of the prefix being read.
type Path = (MrtPeer, Option<u32>, Arc<PathAttributes>);

/// Collects MRT entries and keeps the best route per prefix.
#[derive(Debug)]
pub struct Importer {
    rules: RealmRules,
    best: HashMap<Prefix, Path>,
    /// The entries of the prefix being read, not yet reduced.
    group: Vec<Path>,
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

    /// Reads a whole dump: its entries, its bad records, and the records
    /// the reader skipped. `progress` is called every 65,536 items with
    /// the bytes read so far and the items so far.
    pub fn read(&mut self, data: &[u8], mut progress: impl FnMut(usize, u64)) {
        let mut reader = MrtReader::new(data);
        let mut n = 0u64;
        while let Some(item) = reader.next() {
            self.add(item);
            n += 1;
            if n & 0xffff == 0 {
                progress(reader.offset(), n);
            }
        }
        for (reason, count) in reader.skipped_records() {
            *self.report.skipped.entry(*reason).or_default() += count;
        }
    }

    /// Reads one item of an [`bgp::mrt::MrtReader`]. (The records the
    /// reader skips are only counted by [`Importer::read`].)
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
        self.group
            .push((entry.peer, entry.path_id, entry.route.attrs));
    }

    /// Reduces the current group to its best route and merges it with any
    /// earlier route for the same prefix (a dump may repeat a prefix).
    fn flush(&mut self) {
        let Some(prefix) = self.group_prefix.take() else {
            return;
        };
        if let Some((peer, path_id, attrs)) = self.best.remove(&prefix) {
            self.group.push((peer, path_id, attrs));
        }
        // By peer, then path: `best` keeps the first of equals.
        self.group.sort_by_key(|(p, path_id, _)| (p.ip, *path_id));
        let cands: Vec<Candidate<'_>> = self
            .group
            .iter()
            .map(|(p, _, a)| Candidate {
                peer: p.ip,
                attrs: a,
            })
            .collect();
        if let Some(i) = selection::best(&cands) {
            let (peer, path_id, attrs) = self.group.swap_remove(i);
            let attrs = match self.interned.get(&attrs) {
                Some(shared) => Arc::clone(shared),
                None => {
                    self.interned.insert(Arc::clone(&attrs));
                    attrs
                }
            };
            self.best.insert(prefix, (peer, path_id, attrs));
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
        for (prefix, (peer, _, attrs)) in &self.best {
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
