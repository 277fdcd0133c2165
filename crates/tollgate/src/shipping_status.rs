//! An agent's shipping status (`shipping-status.json` in the state
//! folder): written by the shipper thread when something changes, read by
//! `tollgate status` (docs/agents.md).

use engine::shipped::Parked;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Parked batches shown by name.
const PARKED_SHOWN: usize = 5;

/// Where an agent's shipping stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingStatus {
    /// The central's URL.
    pub central: String,
    /// This agent's writer name.
    pub writer: String,
    /// The newest slot shipped whole (its index).
    pub through: Option<i64>,
    /// When that slot ends.
    pub through_end: Option<Timestamp>,
    /// The last sequence given to a batch.
    pub last_sequence: Option<u64>,
    /// The batch saved and not acknowledged yet.
    pub pending: Option<u64>,
    /// Batches acknowledged since the daemon started.
    pub acknowledged: u64,
    /// When the last one was.
    pub acknowledged_at: Option<Timestamp>,
    /// Every batch the central refused for its content.
    pub parked_total: u64,
    /// The last few of them.
    pub parked: Vec<Parked>,
    /// What goes wrong now, if anything.
    pub error: Option<String>,
    /// Since when.
    pub error_since: Option<Timestamp>,
    /// Failures in a row.
    pub failures: u32,
}

impl ShippingStatus {
    /// Keeps the last parked batches of `all`.
    pub fn set_parked(&mut self, all: &[Parked], total: u64) {
        self.parked = all[all.len().saturating_sub(PARKED_SHOWN)..].to_vec();
        self.parked_total = total;
    }

    /// The status file, if this daemon is an agent (absent otherwise).
    pub fn load(path: &Path) -> Result<Option<ShippingStatus>, String> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// How far behind `now` the newest shipped slot is, in seconds.
    pub fn lag(&self, now: Timestamp) -> Option<i64> {
        self.through_end
            .map(|e| (now.as_second() - e.as_second()).max(0))
    }

    /// The lines `tollgate status` prints.
    pub fn render(&self, now: Timestamp) -> String {
        let mut out = format!("shipping to {} as {}\n", self.central, self.writer);
        match (self.through, self.lag(now)) {
            (Some(slot), Some(lag)) => out.push_str(&format!(
                "  shipped through slot {slot} ({lag} s behind now), last sequence {}\n",
                self.last_sequence.unwrap_or(0)
            )),
            _ => out.push_str("  nothing shipped yet\n"),
        }
        out.push_str(&format!(
            "  {} batches acknowledged since start{}\n",
            self.acknowledged,
            self.acknowledged_at
                .map(|t| format!(", the last at {t}"))
                .unwrap_or_default()
        ));
        if let Some(p) = self.pending {
            out.push_str(&format!("  batch {p} sent, waiting for the central\n"));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!(
                "  error since {}: {e} ({} failures in a row)\n",
                self.error_since.map(|t| t.to_string()).unwrap_or_default(),
                self.failures
            ));
        }
        if self.parked_total > 0 {
            out.push_str(&format!(
                "  {} batches parked (the central refused their content):\n",
                self.parked_total
            ));
            for p in &self.parked {
                out.push_str(&format!(
                    "    batch {} ({} samples, {} bytes) at {}: {}\n",
                    p.sequence, p.samples, p.bytes, p.at, p.error
                ));
            }
        }
        out
    }
}
