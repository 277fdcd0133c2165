//! Sources that touch many of our addresses: a probe or a scan before an
//! attack (the seed's operator saw one two weeks before theirs).
//!
//! For each remote source sending to a local address, a 128-byte
//! HyperLogLog of the distinct local addresses it reached, over a window of
//! ticks (10 s by default). At the window's end, sources that reached at
//! least `report_min` addresses are reported with their sketch, so that
//! capture threads that each saw part of a scan merge into one figure
//! (sketches merge by union). The table is bounded: a source that finds it
//! full is counted in `untracked` and not followed until the next window
//! (a flood from random sources fills it with one-address sources; the
//! table empties every window, so a scan that outlasts the flood is seen
//! again).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::sketch::FlowSketch;

/// The scan table's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanConfig {
    /// The most sources followed in a window.
    pub max_sources: usize,
    /// Ticks in a window.
    pub window_ticks: u32,
    /// The fewest distinct local addresses for a source to be reported at
    /// the window's end (per capture thread: set it below the detector's
    /// threshold, which applies to the merged figure).
    pub report_min: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            // 4,096 × ~150 bytes: about 600 KiB a capture thread.
            max_sources: 4_096,
            window_ticks: 100,
            report_min: 4,
        }
    }
}

/// One source's window, as reported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanSketch {
    /// The remote source.
    pub source: IpAddr,
    /// The distinct local addresses it sent to.
    pub targets: FlowSketch,
    /// Its packets to them in the window (scaled by sampling).
    pub packets: u64,
}

impl ScanSketch {
    /// Folds in another thread's sketch of the same source.
    pub fn merge(&mut self, o: &ScanSketch) {
        self.targets.merge(&o.targets);
        self.packets += o.packets;
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    targets: FlowSketch,
    packets: u64,
}

/// The sources of one capture thread's window.
#[derive(Debug)]
pub(crate) struct ScanTable {
    config: ScanConfig,
    /// The quality variant: the sketch takes its register from the top
    /// bits, which the fast variant leaves poorly mixed for addresses
    /// that differ in their last byte only (200 addresses read as 118).
    hasher: foldhash::quality::FixedState,
    sources: HashMap<IpAddr, Entry, foldhash::fast::FixedState>,
    ticks: u32,
    untracked: u64,
}

impl ScanTable {
    pub(crate) fn new(config: ScanConfig, seed: u64) -> ScanTable {
        ScanTable {
            config,
            hasher: foldhash::quality::FixedState::with_seed(seed ^ 0x7363_616e),
            sources: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(seed)),
            ticks: 0,
            untracked: 0,
        }
    }

    /// `source` (remote) sent `weight` packets to `target` (local).
    #[inline]
    pub(crate) fn add(&mut self, source: IpAddr, target: IpAddr, weight: u64) {
        let full = self.sources.len() >= self.config.max_sources;
        let e = match self.sources.get_mut(&source) {
            Some(e) => e,
            None if !full => self.sources.entry(source).or_insert(Entry {
                targets: FlowSketch::new(),
                packets: 0,
            }),
            None => {
                self.untracked += weight;
                return;
            }
        };
        e.targets.add_hash(self.hasher.hash_one(target));
        e.packets += weight;
    }

    /// Ends a tick: at a window's end, the sources worth reporting and the
    /// packets of sources that were not followed; else nothing.
    pub(crate) fn tick(&mut self) -> Option<(Vec<ScanSketch>, u64)> {
        self.ticks += 1;
        if self.ticks < self.config.window_ticks.max(1) {
            return None;
        }
        self.ticks = 0;
        let min = self.config.report_min;
        let out = self
            .sources
            .drain()
            .filter(|(_, e)| e.targets.estimate() >= min)
            .map(|(source, e)| ScanSketch {
                source,
                targets: e.targets,
                packets: e.packets,
            })
            .collect();
        Some((out, std::mem::take(&mut self.untracked)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn table(max_sources: usize) -> ScanTable {
        ScanTable::new(
            ScanConfig {
                max_sources,
                window_ticks: 3,
                report_min: 4,
            },
            1,
        )
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn a_source_touching_many_addresses_is_reported_at_the_windows_end() {
        let mut t = table(100);
        let scanner = v4(198, 51, 100, 7);
        let talker = v4(198, 51, 100, 8);
        for d in 0..200u8 {
            t.add(scanner, v4(203, 0, 113, d), 1);
            // One address many times is not a scan.
            t.add(talker, v4(203, 0, 113, 1), 5);
        }
        assert!(t.tick().is_none());
        assert!(t.tick().is_none());
        let (found, untracked) = t.tick().expect("the window ends");
        assert_eq!(untracked, 0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].source, scanner);
        assert_eq!(found[0].packets, 200);
        // 128 registers: about 8% standard error; ±20% is 2.5 of them.
        let n = found[0].targets.estimate();
        assert!((160..=240).contains(&n), "{n}");
        // The next window starts empty.
        for _ in 0..2 {
            assert!(t.tick().is_none());
        }
        assert_eq!(t.tick().unwrap().0.len(), 0);
    }

    #[test]
    fn two_threads_halves_of_a_scan_merge_into_the_whole() {
        let (mut a, mut b) = (table(100), table(100));
        let scanner = v4(198, 51, 100, 7);
        for d in 0..100u8 {
            let t = if d % 2 == 0 { &mut a } else { &mut b };
            t.add(scanner, v4(203, 0, 113, d), 1);
        }
        let take = |t: &mut ScanTable| {
            t.tick();
            t.tick();
            t.tick().unwrap().0
        };
        let (mut x, y) = (take(&mut a)[0], take(&mut b)[0]);
        x.merge(&y);
        let n = x.targets.estimate();
        assert!((80..=120).contains(&n), "{n}");
        assert_eq!(x.packets, 100);
    }

    #[test]
    fn a_full_table_counts_what_it_cannot_follow() {
        let mut t = table(2);
        for s in 0..10u8 {
            t.add(v4(198, 51, 100, s), v4(203, 0, 113, 1), 1);
        }
        t.tick();
        t.tick();
        let (found, untracked) = t.tick().unwrap();
        assert!(found.is_empty());
        assert_eq!(untracked, 8);
    }
}
