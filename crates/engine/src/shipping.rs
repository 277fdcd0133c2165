//! Agents and a central tollgate (issue 16, item 3): both sides'
//! decisions, with no I/O and no clock.
//!
//! - **The central side.** An agent's batch reaches the engine as
//!   [`Command::AddBatch`](crate::io::Command::AddBatch) from the API; the
//!   engine asks the shell to add it to the history
//!   ([`Effect::AddBatch`](crate::io::Effect::AddBatch)), because the daemon
//!   is the history's only writer, and answers with the writer's committed
//!   sequence when the shell reports back
//!   ([`Input::BatchAdded`](crate::io::Input::BatchAdded)). A batch the
//!   store already holds (same writer, a sequence at or below its last) is a
//!   success marked `duplicate`: exactly once. The engine remembers each
//!   writer's last batch for `GET /api/v1/agents` ([`Agents`]).
//! - **The agent side.** [`Shipper`] decides what to send next and when to
//!   try again. The agent's local history is the spool: each closed slot
//!   the daemon committed becomes one batch whose sequence is the slot's
//!   index, so a batch sent again after a crash or a lost answer is
//!   refused by the central store as already committed and counts once.

use crate::io::{Answer, Effect};
use accounting::{Sample, Slot, SlotCoverage};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One batch from another writer (an agent), as the API decoded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedBatch {
    /// The writer (an agent's name). Not empty.
    pub writer: String,
    /// Strictly increasing per writer; an agent uses the slot's index.
    pub sequence: u64,
    /// The samples.
    pub samples: Vec<Sample>,
    /// The slots the writer observed.
    pub coverage: Vec<SlotCoverage>,
}

/// What the store did with a [`ShippedBatch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AddOutcome {
    /// Committed now.
    Committed {
        /// Samples the store refused on their own (kept in its quarantine).
        refused: Vec<String>,
    },
    /// The writer had already committed this sequence or a later one.
    AlreadyAdded {
        /// The writer's last committed sequence.
        last: u64,
    },
    /// The store refused the batch (its content).
    Invalid {
        /// Why.
        error: String,
    },
    /// The store is in trouble (busy, gone): nothing committed.
    Failed {
        /// Why.
        error: String,
    },
}

/// What the central knows of one writer since it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSeen {
    /// The writer's last committed sequence.
    pub sequence: u64,
    /// The last slot its batches carried (coverage or samples).
    pub last_slot: Option<Slot>,
    /// When its last batch arrived (committed or duplicate).
    pub at: Timestamp,
}

/// Every writer seen since the daemon started, by name.
pub type Agents = BTreeMap<String, AgentSeen>;

/// The last slot a batch carries.
pub fn last_slot(batch: &ShippedBatch) -> Option<Slot> {
    let a = batch.coverage.iter().map(|c| c.slot).max();
    let b = batch.samples.iter().map(|s| s.slot).max();
    a.max(b)
}

/// Records what the store answered for a writer's batch of `sequence`
/// (whose last slot is `slot`) and says whether it was a duplicate, with
/// the writer's committed sequence.
pub fn seen(
    agents: &mut Agents,
    now: Timestamp,
    writer: &str,
    sequence: u64,
    slot: Option<Slot>,
    outcome: &AddOutcome,
) -> Option<(u64, bool)> {
    let (sequence, duplicate) = match outcome {
        AddOutcome::Committed { .. } => (sequence, false),
        AddOutcome::AlreadyAdded { last } => (*last, true),
        AddOutcome::Invalid { .. } | AddOutcome::Failed { .. } => return None,
    };
    let e = agents.entry(writer.to_string()).or_insert(AgentSeen {
        sequence,
        last_slot: slot,
        at: now,
    });
    e.sequence = e.sequence.max(sequence);
    e.last_slot = e.last_slot.max(slot);
    e.at = now;
    Some((sequence, duplicate))
}

/// The store's answer to an agent's batch: remembered, and the API's
/// command answered (a duplicate is a success: the batch counted once).
#[allow(clippy::too_many_arguments)] // one input's fields, destructured by the caller
pub(crate) fn added(
    engine: &mut crate::Engine,
    now: Timestamp,
    id: u64,
    writer: String,
    sequence: u64,
    last_slot: Option<Slot>,
    outcome: AddOutcome,
    out: &mut Vec<Effect>,
) {
    let answer = match seen(
        &mut engine.agents,
        now,
        &writer,
        sequence,
        last_slot,
        &outcome,
    ) {
        Some((sequence, duplicate)) => Answer::BatchAdded {
            writer,
            sequence,
            duplicate,
        },
        None => match outcome {
            AddOutcome::Invalid { error } => Answer::Invalid {
                message: format!("the history refused {writer}'s batch {sequence}: {error}"),
                diagnostics: vec![],
            },
            AddOutcome::Failed { error } => Answer::Failed {
                message: format!("the history could not add {writer}'s batch {sequence}: {error}"),
            },
            // `seen` answered these.
            AddOutcome::Committed { .. } | AddOutcome::AlreadyAdded { .. } => return,
        },
    };
    out.push(Effect::Reply { id, answer });
}

/// The first delay before a retry, doubled after each failure up to
/// [`MAX_BACKOFF`]: a central that is down is not hammered, and one back
/// up is found within half a minute.
pub const FIRST_BACKOFF: SignedDuration = SignedDuration::from_secs(1);

/// The longest wait between two attempts.
pub const MAX_BACKOFF: SignedDuration = SignedDuration::from_secs(30);

/// The wait after `failures` failures in a row (at least one).
pub fn backoff(failures: u32) -> SignedDuration {
    let doublings = failures.saturating_sub(1).min(16);
    let secs = FIRST_BACKOFF.as_secs().saturating_mul(1i64 << doublings);
    SignedDuration::from_secs(secs.min(MAX_BACKOFF.as_secs()))
}

/// What the shipper should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ask the central where this writer stands (its committed sequence).
    Ask,
    /// Send the local slot with this index as the batch of that sequence.
    Send(Slot),
    /// Nothing to do before this instant (a retry's backoff).
    WaitUntil(Timestamp),
    /// Everything closed locally is acknowledged.
    Idle,
}

/// The agent's shipping decisions. The shell reads the local history
/// and talks HTTP; this decides, from what it was told and the time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shipper {
    /// The central's committed sequence for this writer, once asked:
    /// `Some(None)` when the central has nothing from it yet.
    acked: Option<Option<u64>>,
    /// Failures in a row.
    failures: u32,
    /// No attempt before this.
    retry_at: Option<Timestamp>,
}

impl Shipper {
    /// A shipper that knows nothing yet: it asks the central first.
    pub fn new() -> Shipper {
        Shipper::default()
    }

    /// The central's committed sequence, if known.
    pub fn acked(&self) -> Option<Option<u64>> {
        self.acked
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The next step at `now`, given the slots the local history holds as
    /// closed (committed coverage), in any order.
    pub fn next(&self, now: Timestamp, closed: &[Slot]) -> Step {
        if let Some(at) = self.retry_at {
            if now < at {
                return Step::WaitUntil(at);
            }
        }
        let Some(acked) = self.acked else {
            return Step::Ask;
        };
        // In order: the oldest closed slot the central has not committed.
        // A slot at or below the acknowledged sequence is never sent again
        // by choice; if it were (a lost answer), the central refuses it as
        // already committed.
        closed
            .iter()
            .copied()
            .filter(|s| s.0 >= 0 && acked.is_none_or(|a| s.0 as u64 > a))
            .min()
            .map_or(Step::Idle, Step::Send)
    }

    /// The central answered where this writer stands.
    pub fn answered(&mut self, sequence: Option<u64>) {
        self.acked = Some(sequence.max(self.acked.flatten()));
        self.succeeded();
    }

    /// The central committed (or already held) the batch of `slot`, and
    /// reports the writer's committed `sequence`.
    pub fn acknowledged(&mut self, slot: Slot, sequence: u64) {
        let s = u64::try_from(slot.0).unwrap_or(0).max(sequence);
        self.acked = Some(Some(s.max(self.acked.flatten().unwrap_or(0))));
        self.succeeded();
    }

    /// An attempt failed (the central unreachable, or it refused for a
    /// reason of its own): wait before the next.
    pub fn failed(&mut self, now: Timestamp) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now.saturating_add(backoff(self.failures)).unwrap_or(now));
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::SlotStatus;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn asks_first_then_sends_the_oldest_unacknowledged_slot_in_order() {
        let mut s = Shipper::new();
        let closed = [Slot(12), Slot(10), Slot(11)];
        assert_eq!(s.next(t(0), &closed), Step::Ask);
        // The central has nothing from this writer: everything, oldest first.
        s.answered(None);
        assert_eq!(s.next(t(0), &closed), Step::Send(Slot(10)));
        s.acknowledged(Slot(10), 10);
        assert_eq!(s.next(t(0), &closed), Step::Send(Slot(11)));
        s.acknowledged(Slot(11), 11);
        assert_eq!(s.next(t(0), &closed), Step::Send(Slot(12)));
        s.acknowledged(Slot(12), 12);
        assert_eq!(s.next(t(0), &closed), Step::Idle);
    }

    #[test]
    fn a_restart_resumes_after_what_the_central_holds() {
        let mut s = Shipper::new();
        s.answered(Some(11));
        assert_eq!(
            s.next(t(0), &[Slot(10), Slot(11), Slot(12)]),
            Step::Send(Slot(12))
        );
        // A gap in the local history (the agent was down) is skipped.
        s.acknowledged(Slot(12), 12);
        assert_eq!(s.next(t(0), &[Slot(12), Slot(15)]), Step::Send(Slot(15)));
    }

    #[test]
    fn a_duplicate_answer_moves_past_what_the_central_already_had() {
        let mut s = Shipper::new();
        s.answered(Some(3));
        // The central reports a later sequence than the slot sent (another
        // process shipped as this writer): never go back.
        s.acknowledged(Slot(4), 9);
        assert_eq!(
            s.next(t(0), &[Slot(5), Slot(9), Slot(10)]),
            Step::Send(Slot(10))
        );
        // An older answer never lowers what is acknowledged.
        s.answered(Some(2));
        assert_eq!(s.acked(), Some(Some(9)));
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_and_a_success_resets() {
        assert_eq!(backoff(1), SignedDuration::from_secs(1));
        assert_eq!(backoff(2), SignedDuration::from_secs(2));
        assert_eq!(backoff(5), SignedDuration::from_secs(16));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        let mut s = Shipper::new();
        s.failed(t(0));
        assert_eq!(s.next(t(0), &[Slot(1)]), Step::WaitUntil(t(1)));
        // Due again: it asks (the first answer never came).
        assert_eq!(s.next(t(1), &[Slot(1)]), Step::Ask);
        s.failed(t(1));
        assert_eq!(s.next(t(2), &[Slot(1)]), Step::WaitUntil(t(3)));
        s.answered(None);
        assert_eq!(s.failures(), 0);
        assert_eq!(s.next(t(2), &[Slot(1)]), Step::Send(Slot(1)));
        s.failed(t(2));
        s.failed(t(3));
        assert_eq!(s.next(t(4), &[Slot(1)]), Step::WaitUntil(t(5)));
        assert_eq!(s.next(t(5), &[Slot(1)]), Step::Send(Slot(1)));
    }

    #[test]
    fn the_central_remembers_each_writer_and_counts_a_duplicate_once() {
        let mut agents = Agents::new();
        let b = ShippedBatch {
            writer: "hv1".into(),
            sequence: 7,
            samples: vec![],
            coverage: vec![SlotCoverage {
                slot: Slot(7),
                status: SlotStatus::Measured,
            }],
        };
        let ok = AddOutcome::Committed { refused: vec![] };
        assert_eq!(
            seen(&mut agents, t(0), &b.writer, 7, last_slot(&b), &ok),
            Some((7, false))
        );
        let dup = AddOutcome::AlreadyAdded { last: 7 };
        assert_eq!(
            seen(&mut agents, t(5), &b.writer, 7, last_slot(&b), &dup),
            Some((7, true))
        );
        assert_eq!(agents["hv1"].sequence, 7);
        assert_eq!(agents["hv1"].last_slot, Some(Slot(7)));
        assert_eq!(agents["hv1"].at, t(5));
        let failed = AddOutcome::Failed {
            error: "busy".into(),
        };
        assert_eq!(
            seen(&mut agents, t(9), &b.writer, 8, last_slot(&b), &failed),
            None
        );
        assert_eq!(agents["hv1"].at, t(5));
    }
}
