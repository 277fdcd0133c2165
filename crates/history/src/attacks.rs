//! The guard's ended attacks, as every store keeps them (issue 15): one
//! row per attack, keyed by its start, target and direction, so that the
//! same attack recorded twice (a daemon killed between storing it and
//! saving the guard's state, then ending the restored incident again) is
//! kept once.

use crate::error::StoreError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One ended attack. The columns a query filters or shows; the whole
/// record (the report with the sources' packets and bytes, ports,
/// protocols, trigger…) is `record`, JSON, as the guard wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackRow {
    /// When it was detected (wall clock, millisecond precision). With
    /// `target` and `direction`, the key.
    pub started: Timestamp,
    /// When its last rung came down.
    pub ended: Timestamp,
    /// The address, or a group's name.
    pub target: String,
    /// `in` or `out`.
    pub direction: String,
    /// The attack type (`syn_flood`, `udp_flood`, …).
    pub kind: String,
    /// The highest one-tick rate, packets per second.
    pub peak_pps: u64,
    /// The highest one-tick rate, bits per second.
    pub peak_bps: u64,
    /// The rungs used, in the order first applied.
    pub rungs: Vec<String>,
    /// The busiest sources' addresses, busiest first.
    pub sources: Vec<String>,
    /// The whole record, JSON.
    pub record: String,
}

/// The most rows one [`crate::Store::attacks`] call returns.
pub const MAX_ATTACKS: usize = 10_000;

impl AttackRow {
    /// Refuses a row a store could not give back as it was: empty key
    /// parts, an end before the start, list items with the separator.
    pub fn check(&self) -> Result<(), StoreError> {
        let bad = |field: &str, problem: &str| Err(StoreError::invalid(field, problem));
        if self.target.is_empty() || self.target.len() > 256 {
            return bad("attack.target", "must be 1 to 256 bytes");
        }
        if !matches!(self.direction.as_str(), "in" | "out") {
            return bad("attack.direction", "must be `in` or `out`");
        }
        if self.ended < self.started {
            return bad("attack.ended", "is before the attack's start");
        }
        for (field, list) in [
            ("attack.rungs", &self.rungs),
            ("attack.sources", &self.sources),
        ] {
            if list.iter().any(|x| x.is_empty() || x.contains(',')) {
                return bad(field, "items must be non-empty and without commas");
            }
        }
        if serde_json::from_str::<serde_json::Value>(&self.record).is_err() {
            return bad("attack.record", "is not JSON");
        }
        Ok(())
    }
}

/// A list column's text (items joined by commas).
pub fn join(list: &[String]) -> String {
    list.join(",")
}

/// A list column back from its text.
pub fn split(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split(',').map(str::to_string).collect()
    }
}

/// The latest `limit` of `rows` (already ordered oldest first).
pub fn latest(mut rows: Vec<AttackRow>, limit: usize) -> Vec<AttackRow> {
    let cut = rows.len().saturating_sub(limit);
    rows.drain(..cut);
    rows
}
