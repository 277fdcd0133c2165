//! Scans: remote sources that touch many of our addresses in a short time.
//!
//! The capture reports, every scan window (10 s), each remote source with
//! the number of distinct local addresses it sent to (an estimate: a
//! 128-byte HyperLogLog per source, about 8 % standard error). A source at
//! or over `targets` in one window is a scan. [`ScanBook`] keeps the most
//! recent `keep` scanning sources with when they were first and last seen
//! and their largest window, so that a probe spike weeks before an attack
//! is on record (the seed's operator saw one two weeks before theirs).
//! Pure: the window's time is the caller's.

use crate::sample::Monotonic;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One source in one scan window, as the capture measured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSample {
    /// The remote source.
    pub source: IpAddr,
    /// Distinct local addresses it sent to in the window (estimated).
    pub targets: u64,
    /// Its packets to them.
    pub packets: u64,
}

/// A scanning source on record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The remote source.
    pub source: IpAddr,
    /// The end of the first window in which it scanned.
    pub first_seen: Monotonic,
    /// The end of the last.
    pub last_seen: Monotonic,
    /// Windows in which it scanned.
    pub windows: u32,
    /// The most local addresses it touched in one window.
    pub max_targets: u64,
    /// Its packets in those windows.
    pub packets: u64,
}

/// What makes a scan, and how many are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanConfig {
    /// Distinct local addresses in one window that make a source a scan;
    /// 0 turns scan reports off.
    pub targets: u64,
    /// The most sources on record; the one seen longest ago goes first.
    pub keep: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            targets: 64,
            keep: 100,
        }
    }
}

/// The scanning sources on record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanBook {
    config: ScanConfig,
    scans: Vec<Scan>,
    /// Scanning windows seen since start (a source scanning in three
    /// windows counts three).
    seen: u64,
}

impl ScanBook {
    /// An empty book.
    pub fn new(config: ScanConfig) -> ScanBook {
        ScanBook {
            config,
            scans: Vec::new(),
            seen: 0,
        }
    }

    /// New settings; the record is kept.
    pub fn reconfigure(&mut self, config: ScanConfig) {
        self.config = config;
        self.trim();
    }

    /// Takes one window's sources, `at` its end. Returns the sources that
    /// start scanning now (not on record, or on record but quiet for a
    /// window or more), for an event each.
    pub fn observe(&mut self, at: Monotonic, samples: &[ScanSample]) -> Vec<Scan> {
        let mut started = Vec::new();
        if self.config.targets == 0 {
            return started;
        }
        for s in samples.iter().filter(|s| s.targets >= self.config.targets) {
            self.seen += 1;
            match self.scans.iter_mut().find(|x| x.source == s.source) {
                Some(x) => {
                    // Quiet since its last window: a scan again.
                    let resumed = x.last_seen < at && x.windows > 0 && {
                        let last = x.last_seen;
                        at.0.saturating_sub(last.0) > std::time::Duration::from_secs(15)
                    };
                    x.last_seen = at;
                    x.windows += 1;
                    x.max_targets = x.max_targets.max(s.targets);
                    x.packets += s.packets;
                    if resumed {
                        started.push(*x);
                    }
                }
                None => {
                    let x = Scan {
                        source: s.source,
                        first_seen: at,
                        last_seen: at,
                        windows: 1,
                        max_targets: s.targets,
                        packets: s.packets,
                    };
                    self.scans.push(x);
                    started.push(x);
                }
            }
        }
        self.trim();
        started
    }

    fn trim(&mut self) {
        if self.scans.len() > self.config.keep {
            // The most recently seen first; ties by source, so the order is
            // the same for the same inputs.
            self.scans
                .sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.source.cmp(&b.source)));
            self.scans.truncate(self.config.keep);
        }
    }

    /// The sources on record, the most recently seen first.
    pub fn recent(&self) -> Vec<Scan> {
        let mut v = self.scans.clone();
        v.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.source.cmp(&b.source)));
        v
    }

    /// Scanning windows seen since start.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The settings.
    pub fn config(&self) -> ScanConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(last: u8, targets: u64) -> ScanSample {
        ScanSample {
            source: IpAddr::from([198, 51, 100, last]),
            targets,
            packets: targets * 2,
        }
    }

    fn at(s: u64) -> Monotonic {
        Monotonic::from_millis(s * 1000)
    }

    #[test]
    fn a_source_over_the_threshold_is_a_scan_once_until_it_pauses() {
        let mut b = ScanBook::new(ScanConfig::default());
        let first = b.observe(at(10), &[sample(7, 200), sample(8, 63)]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].source, IpAddr::from([198, 51, 100, 7]));
        // The next window: still the same scan.
        assert!(b.observe(at(20), &[sample(7, 250)]).is_empty());
        let r = b.recent();
        assert_eq!(
            (r[0].windows, r[0].max_targets, r[0].packets),
            (2, 250, 900)
        );
        assert_eq!(r[0].first_seen, at(10));
        // A minute of quiet, then again: a new start.
        assert_eq!(b.observe(at(80), &[sample(7, 100)]).len(), 1);
        assert_eq!(b.seen(), 3);
    }

    #[test]
    fn the_record_keeps_the_most_recent_sources() {
        let mut b = ScanBook::new(ScanConfig {
            targets: 10,
            keep: 3,
        });
        for i in 0..10u8 {
            b.observe(at(u64::from(i) * 10), &[sample(i, 20)]);
        }
        let kept: Vec<IpAddr> = b.recent().iter().map(|s| s.source).collect();
        assert_eq!(
            kept,
            vec![
                IpAddr::from([198, 51, 100, 9]),
                IpAddr::from([198, 51, 100, 8]),
                IpAddr::from([198, 51, 100, 7])
            ]
        );
    }
}
