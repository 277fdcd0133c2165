//! The agent's shipping ledger (issue 16; docs/agents.md): what the
//! central holds from this agent, kept on the agent's disk so that samples
//! added to a slot after it was shipped (flow records land up to an hour
//! after their slot closed) reach the central as their difference, once,
//! across restarts and crashes. Pure: the shell reads the local history,
//! saves the ledger crash-safe and speaks HTTP.
//!
//! **Write-ahead.** A batch is made, folded into the ledger and the ledger
//! saved with the batch as *pending* before it is sent; the pending batch
//! (the same samples, the same sequence) is sent again until the central
//! acknowledges it, or refuses its content and it is *parked*. So, for
//! every slot the ledger knows, what it says was shipped equals what the
//! central committed from this agent, plus the pending batch, plus the
//! parked ones: a difference computed against it never counts a byte twice
//! and never drops one, whatever was interrupted.
//!
//! **Sequences.** The central refuses a sequence at or below the writer's
//! last, so sequences only grow. A slot's first batch has the sequence
//! `slot × SEQUENCES_PER_SLOT` (the slot can be read back from the
//! sequence); the differences shipped after it take the next numbers,
//! `last + 1`, until the next slot's first batch. A central that holds a
//! sequence below 2³² (agents before the ledger used the slot's index)
//! reads as that slot.

use crate::shipping::ShippedBatch;
use accounting::{Sample, Slot, SlotCoverage, UsageKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Sequences per slot: a slot's first batch is `slot × this`, its
/// differences follow it. At one difference per check (every few
/// seconds at most) a 5-minute slot uses far fewer.
pub const SEQUENCES_PER_SLOT: u64 = 4096;

/// Slots read again for late samples, counting the newest shipped one: an
/// hour (a flow record is put at most an hour before it arrives,
/// `flows::CLOCK_SKEW_MILLIS`) and the slot being closed.
pub const LATE_SLOTS: i64 = 13;

/// Bytes and packets per slot and key.
pub type Totals = BTreeMap<(Slot, UsageKey), (u64, u64)>;

/// Sequences below this are slot indexes (agents before the ledger).
const LEGACY_BELOW: u64 = 1 << 32;

/// Parked batches kept by name; the older ones are only counted.
pub const PARKED_KEPT: usize = 100;

/// A batch the central refused for its content, set aside so that the
/// slots after it still ship. Its samples stay counted as shipped: they
/// are never sent again by themselves (someone has to look).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    /// The batch's sequence.
    pub sequence: u64,
    /// The slots it carried.
    pub slots: Vec<Slot>,
    /// Its samples and their bytes.
    pub samples: usize,
    /// The bytes of its samples.
    pub bytes: u64,
    /// The central's reason.
    pub error: String,
    /// When it was parked.
    pub at: Timestamp,
}

/// What the agent shipped (see the module's documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The newest slot whose first batch was made: the slots after it
    /// still ship whole, in order.
    through: Option<Slot>,
    /// The last sequence given to a batch.
    last_sequence: Option<u64>,
    /// The last sequence the central acknowledged.
    acknowledged: Option<u64>,
    /// Slots at or before this one were shipped before the ledger knew
    /// (taken over from the central's standing): their late samples
    /// cannot be told apart and are not shipped.
    unknown_through: Option<Slot>,
    /// What was shipped for the slots still open to late samples, summed
    /// per slot and key (in JSON a list of samples).
    #[serde(with = "sample_list")]
    shipped: Totals,
    /// Slots open to late samples whose coverage was shipped (a slot
    /// without samples is shipped too).
    covered: BTreeSet<Slot>,
    /// The batch saved before it was sent, until the central answers.
    pending: Option<ShippedBatch>,
    /// Batches the central refused for their content, newest last.
    parked: Vec<Parked>,
    /// Every batch parked, the dropped ones too.
    parked_total: u64,
}

/// What [`Ledger::resume`] found when the central said where this writer
/// stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The ledger and the central agree.
    Agreed,
    /// The central holds more than the ledger knew (the ledger is new or
    /// was lost): its standing is taken over, and the slots up to it are
    /// shipped.
    TookOver {
        /// The slot the standing means.
        through: Slot,
    },
    /// The central holds less than the ledger says was acknowledged (its
    /// history was restored from an older copy): nothing is shipped
    /// again, which would be a guess.
    CentralBehind {
        /// The central's sequence.
        central: Option<u64>,
        /// The ledger's last acknowledged sequence.
        ledger: u64,
    },
}

/// The newest slot a writer's standing (its last sequence) names, if it
/// names one: an agent's sequences are `slot × SEQUENCES_PER_SLOT` and
/// up; the flow collector's small ones name none.
pub fn newest_slot(sequence: u64) -> Option<Slot> {
    (sequence >= SEQUENCES_PER_SLOT).then(|| slot_of(sequence))
}

/// When `slot` ended and how many whole seconds before `now` (never
/// negative): a writer's lag, for the API and `tollgate status`.
pub fn lag(slot: Option<Slot>, now: Timestamp) -> (Option<Timestamp>, Option<i64>) {
    let end = slot.map(|s| s.next().start());
    (end, end.map(|e| (now.as_second() - e.as_second()).max(0)))
}

/// The slot a central's sequence means.
pub fn slot_of(sequence: u64) -> Slot {
    let index = if sequence < LEGACY_BELOW {
        sequence
    } else {
        sequence / SEQUENCES_PER_SLOT
    };
    Slot(i64::try_from(index).unwrap_or(i64::MAX))
}

/// Per slot and key, what `current` holds beyond `shipped` (never less
/// than nothing: a sample that shrank, as retention removes old rows, is
/// not taken back). In slot and key order.
pub fn difference(current: &[Sample], shipped: &Totals) -> Vec<Sample> {
    let mut now: Totals = Totals::new();
    for s in current {
        let e = now.entry((s.slot, s.key)).or_default();
        e.0 = e.0.saturating_add(s.bytes);
        e.1 = e.1.saturating_add(s.packets);
    }
    now.into_iter()
        .filter_map(|((slot, key), (bytes, packets))| {
            let (b, p) = shipped.get(&(slot, key)).copied().unwrap_or_default();
            let sample = Sample {
                slot,
                key,
                bytes: bytes.saturating_sub(b),
                packets: packets.saturating_sub(p),
            };
            (sample.bytes > 0 || sample.packets > 0).then_some(sample)
        })
        .collect()
}

impl Ledger {
    /// An empty ledger: nothing shipped.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// The newest slot whose first batch was made.
    pub fn through(&self) -> Option<Slot> {
        self.through
    }

    /// The last sequence given to a batch.
    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// The batch to send (again) before anything else.
    pub fn pending(&self) -> Option<&ShippedBatch> {
        self.pending.as_ref()
    }

    /// The batches parked, newest last (at most [`PARKED_KEPT`]).
    pub fn parked(&self) -> &[Parked] {
        &self.parked
    }

    /// Every batch parked since the ledger began.
    pub fn parked_total(&self) -> u64 {
        self.parked_total
    }

    /// The slots `[from, to)` to read again for late samples, if any slot
    /// was shipped: the last [`LATE_SLOTS`] up to the newest shipped.
    pub fn late_window(&self) -> Option<(Slot, Slot)> {
        let through = self.through?;
        let mut from = Slot(through.0 - LATE_SLOTS + 1);
        if let Some(u) = self.unknown_through {
            from = from.max(u.next());
        }
        (from <= through).then(|| (from, through.next()))
    }

    /// Makes the first batch of `slot` (the next closed slot after
    /// [`Ledger::through`]) from what the local history holds for it, and
    /// keeps it as pending. `None` while a batch is pending.
    pub fn first(
        &mut self,
        writer: &str,
        slot: Slot,
        samples: &[Sample],
        coverage: &[SlotCoverage],
    ) -> Option<&ShippedBatch> {
        if self.pending.is_some() || self.through.is_some_and(|t| slot <= t) {
            return None;
        }
        let base = u64::try_from(slot.0)
            .unwrap_or(0)
            .saturating_mul(SEQUENCES_PER_SLOT);
        let sequence = self.last_sequence.map_or(base, |l| base.max(l + 1));
        let samples: Vec<Sample> = samples.iter().filter(|s| s.slot == slot).copied().collect();
        let coverage: Vec<SlotCoverage> = coverage
            .iter()
            .filter(|c| c.slot == slot)
            .copied()
            .collect();
        self.through = Some(slot);
        self.prune();
        self.fold(&samples, &coverage);
        self.issue(writer, sequence, samples, coverage)
    }

    /// Makes a batch of what the local history holds beyond what was
    /// shipped, for the slots of [`Ledger::late_window`]; `current` is
    /// what the history holds for them now (samples of other slots are
    /// ignored), `coverage` their coverage. `None` when nothing was added,
    /// while a batch is pending, or when this slot's sequences are used
    /// up (the next slot's first batch comes first).
    pub fn difference(
        &mut self,
        writer: &str,
        current: &[Sample],
        coverage: &[SlotCoverage],
    ) -> Option<&ShippedBatch> {
        let (from, to) = self.late_window()?;
        if self.pending.is_some() {
            return None;
        }
        let inside = |slot: Slot| slot >= from && slot < to;
        let current: Vec<Sample> = current.iter().filter(|s| inside(s.slot)).copied().collect();
        let samples = difference(&current, &self.shipped);
        // A slot newly covered (a gap the accountant filled after the
        // fact) ships too, with or without samples.
        let coverage: Vec<SlotCoverage> = coverage
            .iter()
            .filter(|c| {
                inside(c.slot)
                    && (!self.covered.contains(&c.slot) || samples.iter().any(|s| s.slot == c.slot))
            })
            .copied()
            .collect();
        if samples.is_empty() && coverage.is_empty() {
            return None;
        }
        let sequence = self.last_sequence.map_or(0, |l| l + 1);
        let through = self.through?;
        let room = u64::try_from(through.0 + 1)
            .unwrap_or(0)
            .saturating_mul(SEQUENCES_PER_SLOT);
        if sequence >= room {
            return None;
        }
        self.fold(&samples, &coverage);
        self.issue(writer, sequence, samples, coverage)
    }

    /// The central committed (or already held) sequences up to
    /// `sequence`: the pending batch is done if it is among them. Says
    /// whether it was.
    pub fn acknowledged(&mut self, sequence: u64) -> bool {
        self.acknowledged = self.acknowledged.max(Some(sequence));
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.sequence <= sequence)
        {
            self.pending = None;
            true
        } else {
            false
        }
    }

    /// The central refused the pending batch for its content: it is set
    /// aside (its samples stay counted as shipped), and the next batches
    /// go on.
    pub fn park(&mut self, error: &str, at: Timestamp) -> Option<&Parked> {
        let p = self.pending.take()?;
        let slots: BTreeSet<Slot> = p
            .samples
            .iter()
            .map(|s| s.slot)
            .chain(p.coverage.iter().map(|c| c.slot))
            .collect();
        self.parked.push(Parked {
            sequence: p.sequence,
            slots: slots.into_iter().collect(),
            samples: p.samples.len(),
            bytes: p
                .samples
                .iter()
                .map(|s| s.bytes)
                .fold(0, u64::saturating_add),
            error: error.to_string(),
            at,
        });
        self.parked_total += 1;
        if self.parked.len() > PARKED_KEPT {
            self.parked.remove(0);
        }
        self.parked.last()
    }

    /// The central said where this writer stands (its last committed
    /// sequence, `None` if nothing yet).
    pub fn resume(&mut self, standing: Option<u64>) -> Resume {
        if let (Some(p), Some(s)) = (self.pending.as_ref().map(|p| p.sequence), standing) {
            if p <= s {
                // It landed; its answer was lost.
                self.pending = None;
                self.acknowledged = self.acknowledged.max(Some(p));
            }
        }
        match (standing, self.acknowledged) {
            (Some(s), a) if a.is_none_or(|a| s > a) => {
                // Only with nothing pending: a pending batch above the
                // standing has not landed and is sent as it is.
                let through = slot_of(s);
                if self.pending.is_none() {
                    self.last_sequence = Some(s);
                    self.acknowledged = Some(s);
                    if self.through.is_none_or(|t| t < through) {
                        self.through = Some(through);
                        self.unknown_through = Some(through);
                        self.prune();
                    }
                }
                Resume::TookOver { through }
            }
            (s, Some(a)) if s.is_none_or(|s| s < a) => Resume::CentralBehind {
                central: s,
                ledger: a,
            },
            _ => Resume::Agreed,
        }
    }

    fn issue(
        &mut self,
        writer: &str,
        sequence: u64,
        samples: Vec<Sample>,
        coverage: Vec<SlotCoverage>,
    ) -> Option<&ShippedBatch> {
        self.last_sequence = Some(sequence);
        self.pending = Some(ShippedBatch {
            writer: writer.to_string(),
            sequence,
            samples,
            coverage,
        });
        self.pending.as_ref()
    }

    fn fold(&mut self, samples: &[Sample], coverage: &[SlotCoverage]) {
        for s in samples {
            let e = self.shipped.entry((s.slot, s.key)).or_default();
            e.0 = e.0.saturating_add(s.bytes);
            e.1 = e.1.saturating_add(s.packets);
        }
        self.covered.extend(coverage.iter().map(|c| c.slot));
    }

    /// Forgets the slots no longer open to late samples.
    fn prune(&mut self) {
        let Some((from, _)) = self.late_window() else {
            return;
        };
        self.shipped.retain(|(slot, _), _| *slot >= from);
        self.covered.retain(|slot| *slot >= from);
    }
}

/// The shipped totals as a list of samples in JSON.
mod sample_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Totals, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Sample> = m
            .iter()
            .map(|(&(slot, key), &(bytes, packets))| Sample {
                slot,
                key,
                bytes,
                packets,
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Totals, D::Error> {
        let v = Vec::<Sample>::deserialize(d)?;
        let mut m = Totals::new();
        for s in v {
            let e = m.entry((s.slot, s.key)).or_default();
            e.0 = e.0.saturating_add(s.bytes);
            e.1 = e.1.saturating_add(s.packets);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests;
