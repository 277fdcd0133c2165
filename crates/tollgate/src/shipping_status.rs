//! An agent's shipping status (`shipping-status.json` in the state
//! folder): written by the shipper thread when something changes, read by
//! `tollgate status` (docs/agents.md).

use engine::shipped::Parked;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `1 batch`, `2 batches`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

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
            "  {} acknowledged since start{}\n",
            count(self.acknowledged, "batch", "batches"),
            self.acknowledged_at
                .map(|t| format!(", the last at {t}"))
                .unwrap_or_default()
        ));
        if let Some(p) = self.pending {
            out.push_str(&format!("  batch {p} sent, waiting for the central\n"));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!(
                "  error since {}: {e} ({} in a row)\n",
                self.error_since.map(|t| t.to_string()).unwrap_or_default(),
                count(u64::from(self.failures), "failure", "failures")
            ));
        }
        if self.parked_total > 0 {
            out.push_str(&format!(
                "  {} parked (the central refused their content):\n",
                count(self.parked_total, "batch", "batches")
            ));
            for p in &self.parked {
                out.push_str(&format!(
                    "    batch {} ({}, {} bytes) at {}: {}\n",
                    p.sequence,
                    count(p.samples as u64, "sample", "samples"),
                    p.bytes,
                    p.at,
                    p.error
                ));
            }
        }
        out
    }
}

/// One agent as a central's `tollgate status` shows it (the same fields
/// as `GET /api/v1/agents`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentLine {
    /// The writer.
    pub writer: String,
    /// Its last committed sequence.
    pub sequence: u64,
    /// The newest slot its batches carried.
    pub last_slot: Option<i64>,
    /// When that slot ended.
    pub last_slot_end: Option<Timestamp>,
    /// Seconds from that end to now.
    pub lag_seconds: Option<i64>,
    /// When its last batch arrived (none for an agent known only from the
    /// shared store).
    pub received: Option<Timestamp>,
    /// `api` (its batches came to this central) or `store` (it writes
    /// straight into the ClickHouse history this central reads).
    pub via: &'static str,
    /// Batches committed (counted across the central's restarts).
    pub batches: u64,
    /// Their samples' bytes.
    pub bytes: u64,
    /// Batches sent again, counted once.
    pub duplicates: u64,
    /// Batches refused for their content.
    pub refused: u64,
    /// Why the last one was refused.
    pub last_refusal: Option<String>,
}

/// The agents a central saw, from its `agents-status.json` (none if the
/// file is absent: not a central, or no batch yet).
pub fn agents(path: &Path, now: Timestamp) -> Result<Vec<AgentLine>, String> {
    let seen: engine::shipping::Agents = match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Ok(seen
        .into_iter()
        .map(|(writer, a)| {
            let (end, lag) = engine::shipped::lag(a.last_slot, now);
            AgentLine {
                writer,
                sequence: a.sequence,
                last_slot: a.last_slot.map(|s| s.0),
                last_slot_end: end,
                lag_seconds: lag,
                received: Some(a.at),
                via: "api",
                batches: a.batches,
                bytes: a.bytes,
                duplicates: a.duplicates,
                refused: a.refused,
                last_refusal: a.last_refusal,
            }
        })
        .collect())
}

/// Adds the agents that write straight into the shared store (`stored`:
/// the store's writers) and did not ship here, with the newest slot their
/// sequence names and its lag at `now`; the flow collector is no agent.
pub fn add_stored(agents: &mut Vec<AgentLine>, stored: &[history::WriterSequence], now: Timestamp) {
    for w in stored {
        if w.writer == "flows" || agents.iter().any(|a| a.writer == w.writer) {
            continue;
        }
        let slot = engine::shipped::newest_slot(w.sequence);
        let (end, lag) = engine::shipped::lag(slot, now);
        agents.push(AgentLine {
            writer: w.writer.clone(),
            sequence: w.sequence,
            last_slot: slot.map(|s| s.0),
            last_slot_end: end,
            lag_seconds: lag,
            received: None,
            via: "store",
            batches: 0,
            bytes: 0,
            duplicates: 0,
            refused: 0,
            last_refusal: None,
        });
    }
    agents.sort_by(|a, b| a.writer.cmp(&b.writer));
}

/// The text lines for a central's agents.
pub fn render_agents(agents: &[AgentLine]) -> String {
    let mut out = format!("agents ({}):\n", agents.len());
    for a in agents {
        if a.received.is_none() {
            out.push_str(&format!(
                "  {}: writes into the shared store, newest slot {}{}, sequence {}\n",
                a.writer,
                a.last_slot.map_or("-".into(), |s| s.to_string()),
                a.lag_seconds
                    .map(|l| format!(" ({l} s behind now)"))
                    .unwrap_or_default(),
                a.sequence,
            ));
            continue;
        }
        out.push_str(&format!(
            "  {}: last batch {}, newest slot {}{}, {} ({} bytes) accepted, {} sent again, {} refused\n",
            a.writer,
            a.received.map_or("-".into(), |t| t.to_string()),
            a.last_slot.map_or("-".into(), |s| s.to_string()),
            a.lag_seconds
                .map(|l| format!(" ({l} s behind now)"))
                .unwrap_or_default(),
            count(a.batches, "batch", "batches"),
            a.bytes,
            a.duplicates,
            a.refused,
        ));
        if let Some(r) = &a.last_refusal {
            out.push_str(&format!("    last refused: {r}\n"));
        }
    }
    out
}

/// Adds the agents (on a central) and the shipping (on an agent) to
/// `tollgate status`'s output, text or JSON (`agents`, `shipping`), with
/// their lag at `now` (the daemon's clock); `stored` are the shared
/// store's writers (none with a SQLite history).
pub fn annotate_status(
    state: &crate::state_dir::StateDir,
    out: String,
    json: bool,
    now: Timestamp,
    stored: &[history::WriterSequence],
) -> String {
    let mut agents = agents(&state.agents_status(), now).unwrap_or_else(|e| {
        tracing::warn!("the agents' status: {e}");
        vec![]
    });
    add_stored(&mut agents, stored, now);
    let shipping = ShippingStatus::load(&state.shipping_status()).unwrap_or_else(|e| {
        tracing::warn!("the shipping status: {e}");
        None
    });
    if agents.is_empty() && shipping.is_none() {
        return out;
    }
    if json {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return out;
        };
        if !agents.is_empty() {
            v["agents"] = serde_json::to_value(&agents).unwrap_or_default();
        }
        if let Some(s) = &shipping {
            let mut s = serde_json::to_value(s).unwrap_or_default();
            s["lag_seconds"] = serde_json::json!(shipping.as_ref().and_then(|x| x.lag(now)));
            v["shipping"] = s;
        }
        return serde_json::to_string_pretty(&v).map_or(out, |t| t + "\n");
    }
    let mut out = out;
    if !agents.is_empty() {
        out = out + "\n" + &render_agents(&agents);
    }
    if let Some(s) = shipping {
        out = out + "\n" + &s.render(now);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::Slot;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn an_agents_status_says_how_far_behind_what_fails_and_what_is_parked() {
        let slot = Slot::containing(t(0));
        let mut s = ShippingStatus {
            central: "https://c:9188".into(),
            writer: "hv1".into(),
            through: Some(slot.0),
            through_end: Some(slot.next().start()),
            last_sequence: Some(7),
            pending: Some(8),
            error: Some("cannot reach the central".into()),
            error_since: Some(t(1)),
            failures: 3,
            ..ShippingStatus::default()
        };
        let parked: Vec<Parked> = (0..7)
            .map(|k| Parked {
                sequence: k,
                slots: vec![slot],
                samples: 1,
                bytes: 100,
                error: "refused".into(),
                at: t(2),
            })
            .collect();
        s.set_parked(&parked, 9);
        assert_eq!(s.parked.len(), PARKED_SHOWN);
        assert_eq!(s.parked[0].sequence, 2);
        let now = slot
            .next()
            .start()
            .checked_add(jiff::SignedDuration::from_secs(90))
            .unwrap();
        assert_eq!(s.lag(now), Some(90));
        let text = s.render(now);
        for line in [
            "shipping to https://c:9188 as hv1",
            "(90 s behind now), last sequence 7",
            "batch 8 sent, waiting for the central",
            "cannot reach the central (3 failures in a row)",
            "9 batches parked",
            "batch 6 (1 sample, 100 bytes)",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn a_centrals_agents_are_read_with_their_lag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents-status.json");
        assert_eq!(agents(&path, t(0)).unwrap(), vec![]);
        let slot = Slot::containing(t(0));
        let mut seen = engine::shipping::Agents::new();
        seen.insert(
            "hv1".into(),
            engine::shipping::AgentSeen {
                sequence: 5,
                last_slot: Some(slot),
                at: t(3),
                batches: 4,
                bytes: 1234,
                duplicates: 1,
                refused: 0,
                last_refusal: None,
            },
        );
        std::fs::write(&path, serde_json::to_vec(&seen).unwrap()).unwrap();
        let now = slot
            .next()
            .start()
            .checked_add(jiff::SignedDuration::from_secs(40))
            .unwrap();
        let a = agents(&path, now).unwrap();
        assert_eq!(a[0].lag_seconds, Some(40));
        assert_eq!((a[0].batches, a[0].bytes), (4, 1234));
        let text = render_agents(&a);
        assert!(text.contains("hv1: last batch"), "{text}");
        assert!(
            text.contains(
                "(40 s behind now), 4 batches (1234 bytes) accepted, 1 sent again, 0 refused"
            ),
            "{text}"
        );
        std::fs::write(&path, "{").unwrap();
        assert!(agents(&path, now)
            .unwrap_err()
            .contains("agents-status.json"));
    }

    #[test]
    fn agents_writing_into_the_shared_store_are_shown_with_their_lag() {
        let slot = Slot::containing(t(0));
        let now = slot
            .next()
            .start()
            .checked_add(jiff::SignedDuration::from_secs(70))
            .unwrap();
        let writer = |name: &str, sequence| history::WriterSequence {
            writer: name.into(),
            sequence,
        };
        let seq = slot.0 as u64 * engine::shipped::SEQUENCES_PER_SLOT + 2;
        let mut a = vec![];
        add_stored(
            &mut a,
            &[writer("hv9", seq), writer("flows", 3), writer("hv2", 1)],
            now,
        );
        // The flow collector is no agent; a sequence below a slot's names
        // no slot.
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].writer.as_str(), a[0].last_slot), ("hv2", None));
        assert_eq!(a[1].last_slot, Some(slot.0));
        assert_eq!((a[1].lag_seconds, a[1].via), (Some(70), "store"));
        let text = render_agents(&a);
        assert!(
            text.contains(&format!(
                "hv9: writes into the shared store, newest slot {} (70 s behind now), sequence {seq}",
                slot.0
            )),
            "{text}"
        );
        // One that shipped here is shown as such, once.
        let mut b = vec![a[1].clone()];
        b[0].via = "api";
        add_stored(&mut b, &[writer("hv9", seq)], now);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].via, "api");
    }
}
