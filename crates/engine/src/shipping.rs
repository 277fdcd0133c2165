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
//!   try again; [`Ledger`](crate::shipped::Ledger) what was shipped, so
//!   that samples added to a slot after it shipped go as their difference.
//!   The agent's local history is the spool: each closed slot the daemon
//!   committed becomes a batch, saved in the ledger before it is sent, and
//!   a batch sent again after a crash or a lost answer is refused by the
//!   central store as already committed and counts once.

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
    /// Strictly increasing per writer; an agent uses the slot's index ×
    /// [`SEQUENCES_PER_SLOT`](crate::shipped::SEQUENCES_PER_SLOT) for a
    /// slot's first batch, the next numbers for what is added to it later.
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

/// What the central knows of one writer (saved in `agents-status.json`,
/// restored at start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSeen {
    /// The writer's last committed sequence (0 before its first).
    pub sequence: u64,
    /// The last slot its batches carried (coverage or samples).
    pub last_slot: Option<Slot>,
    /// When its last batch arrived (committed, duplicate or refused).
    pub at: Timestamp,
    /// Batches committed.
    #[serde(default)]
    pub batches: u64,
    /// The bytes of their samples.
    #[serde(default)]
    pub bytes: u64,
    /// Batches that were already committed (sent again): counted once.
    #[serde(default)]
    pub duplicates: u64,
    /// Batches the history refused for their content (the agent parks
    /// them).
    #[serde(default)]
    pub refused: u64,
    /// Why the last one was refused.
    #[serde(default)]
    pub last_refusal: Option<String>,
}

/// Every writer that shipped here, by name.
pub type Agents = BTreeMap<String, AgentSeen>;

/// The last slot a batch carries.
pub fn last_slot(batch: &ShippedBatch) -> Option<Slot> {
    let a = batch.coverage.iter().map(|c| c.slot).max();
    let b = batch.samples.iter().map(|s| s.slot).max();
    a.max(b)
}

/// The bytes of a batch's samples.
pub fn bytes(batch: &ShippedBatch) -> u64 {
    batch
        .samples
        .iter()
        .map(|s| s.bytes)
        .fold(0, u64::saturating_add)
}

/// A batch the store answered for: who sent it, and what it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The writer.
    pub writer: String,
    /// The batch's sequence.
    pub sequence: u64,
    /// Its last slot.
    pub last_slot: Option<Slot>,
    /// The bytes of its samples.
    pub bytes: u64,
}

/// Records what the store answered for a writer's batch and says whether
/// it was a duplicate, with the writer's committed sequence (`None` when
/// nothing was committed).
pub fn seen(
    agents: &mut Agents,
    now: Timestamp,
    batch: &Received,
    outcome: &AddOutcome,
) -> Option<(u64, bool)> {
    let e = match outcome {
        AddOutcome::Failed { .. } => return None,
        _ => agents.entry(batch.writer.clone()).or_insert(AgentSeen {
            sequence: 0,
            last_slot: None,
            at: now,
            batches: 0,
            bytes: 0,
            duplicates: 0,
            refused: 0,
            last_refusal: None,
        }),
    };
    e.at = now;
    let (sequence, duplicate) = match outcome {
        AddOutcome::Committed { .. } => {
            e.batches += 1;
            e.bytes = e.bytes.saturating_add(batch.bytes);
            (batch.sequence, false)
        }
        AddOutcome::AlreadyAdded { last } => {
            e.duplicates += 1;
            (*last, true)
        }
        AddOutcome::Invalid { error } => {
            e.refused += 1;
            e.last_refusal = Some(error.clone());
            return None;
        }
        AddOutcome::Failed { .. } => return None,
    };
    e.sequence = e.sequence.max(sequence);
    e.last_slot = e.last_slot.max(batch.last_slot);
    Some((sequence, duplicate))
}

/// The store's answer to an agent's batch: remembered (and saved for
/// `tollgate status`), and the API's command answered (a duplicate is a
/// success: the batch counted once).
pub(crate) fn added(
    engine: &mut crate::Engine,
    now: Timestamp,
    id: u64,
    batch: Received,
    outcome: AddOutcome,
    out: &mut Vec<Effect>,
) {
    let result = seen(&mut engine.agents, now, &batch, &outcome);
    let Received {
        writer, sequence, ..
    } = batch;
    let answer = match (result, outcome) {
        (Some((sequence, duplicate)), _) => Answer::BatchAdded {
            writer,
            sequence,
            duplicate,
        },
        (None, AddOutcome::Invalid { error }) => Answer::Invalid {
            message: format!("the history refused {writer}'s batch {sequence}: {error}"),
            diagnostics: vec![],
        },
        (None, AddOutcome::Failed { error }) => Answer::Failed {
            message: format!("the history could not add {writer}'s batch {sequence}: {error}"),
        },
        // `seen` answered these.
        (None, AddOutcome::Committed { .. } | AddOutcome::AlreadyAdded { .. }) => return,
    };
    out.push(Effect::Reply { id, answer });
    out.push(Effect::SaveAgents {
        agents: engine.agents.clone(),
    });
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

/// How often the late window is read again when nothing says the local
/// history changed: a gap the accountant fills after the fact is found
/// within this.
pub const RECHECK_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// The least time between two reads of the late window, however often
/// the flow collector commits.
pub const RECHECK_AT_MOST: SignedDuration = SignedDuration::from_secs(5);

/// What the shipper should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ask the central where this writer stands (its committed sequence).
    Ask,
    /// Send the ledger's pending batch (again).
    Resend,
    /// Make the first batch of this closed local slot and send it.
    Send(Slot),
    /// Read the late window again and ship what was added since.
    Recheck,
    /// Nothing to do before this instant (a retry's backoff).
    WaitUntil(Timestamp),
    /// Everything closed locally is acknowledged.
    Idle,
}

/// The agent's shipping decisions. The shell reads the local history,
/// keeps the [`Ledger`](crate::shipped::Ledger) and talks HTTP; this
/// decides, from what it was told and the time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shipper {
    /// The central answered where this writer stands.
    asked: bool,
    /// Failures in a row.
    failures: u32,
    /// No attempt before this.
    retry_at: Option<Timestamp>,
    /// When the late window was last read.
    checked_at: Option<Timestamp>,
}

impl Shipper {
    /// A shipper that knows nothing yet: it asks the central first.
    pub fn new() -> Shipper {
        Shipper::default()
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The next step at `now`, given the ledger, the slots the local
    /// history holds as closed (committed coverage) after the ledger's
    /// newest shipped one, in any order, and whether the local history
    /// changed since the late window was last read.
    pub fn next(
        &self,
        now: Timestamp,
        ledger: &crate::shipped::Ledger,
        closed: &[Slot],
        changed: bool,
    ) -> Step {
        if let Some(at) = self.retry_at {
            if now < at {
                return Step::WaitUntil(at);
            }
        }
        if !self.asked {
            return Step::Ask;
        }
        // What was saved before it was sent goes first: exactly these
        // samples under exactly this sequence, so that a copy that did
        // land counts once.
        if ledger.pending().is_some() {
            return Step::Resend;
        }
        // In order: the oldest closed slot not shipped yet.
        let through = ledger.through();
        let oldest = closed
            .iter()
            .copied()
            .filter(|s| s.0 >= 0 && through.is_none_or(|t| *s > t))
            .min();
        let due = |every: SignedDuration| {
            self.checked_at
                .is_none_or(|c| c.saturating_add(every).is_ok_and(|at| now >= at))
        };
        let window = ledger.late_window().is_some();
        // A first batch moves the late window on: what was added to the
        // slots it leaves must be shipped before (after an outage, many
        // slots ship in a row).
        if window && changed && (oldest.is_some() || due(RECHECK_AT_MOST)) {
            return Step::Recheck;
        }
        if let Some(slot) = oldest {
            return Step::Send(slot);
        }
        if window && due(RECHECK_EVERY) {
            return Step::Recheck;
        }
        Step::Idle
    }

    /// The central answered where this writer stands.
    pub fn answered(&mut self) {
        self.asked = true;
        self.succeeded();
    }

    /// The central answered a batch (acknowledged or refused it).
    pub fn delivered(&mut self) {
        self.succeeded();
    }

    /// The late window was read at `now`.
    pub fn checked(&mut self, now: Timestamp) {
        self.checked_at = Some(now);
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
    use crate::shipped::{Ledger, SEQUENCES_PER_SLOT};
    use accounting::SlotStatus;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn cov(slot: i64) -> SlotCoverage {
        SlotCoverage {
            slot: Slot(slot),
            status: SlotStatus::Measured,
        }
    }

    /// Ships `slot` whole and acknowledges it.
    fn ship(ledger: &mut Ledger, slot: i64) {
        let seq = ledger
            .first("hv1", Slot(slot), &[], &[cov(slot)])
            .unwrap()
            .sequence;
        assert!(ledger.acknowledged(seq));
    }

    #[test]
    fn asks_first_then_sends_the_oldest_unshipped_slot_in_order() {
        let mut s = Shipper::new();
        let mut ledger = Ledger::new();
        let closed = [Slot(12), Slot(10), Slot(11)];
        assert_eq!(s.next(t(0), &ledger, &closed, false), Step::Ask);
        // The central has nothing from this writer: everything, oldest first.
        s.answered();
        assert_eq!(s.next(t(0), &ledger, &closed, false), Step::Send(Slot(10)));
        ledger.first("hv1", Slot(10), &[], &[cov(10)]);
        // Made but not acknowledged: it is sent again before anything else.
        assert_eq!(s.next(t(0), &ledger, &closed, false), Step::Resend);
        ledger.acknowledged(10 * SEQUENCES_PER_SLOT);
        s.delivered();
        assert_eq!(s.next(t(0), &ledger, &closed, false), Step::Send(Slot(11)));
        ship(&mut ledger, 11);
        ship(&mut ledger, 12);
        // Nothing closed after the newest shipped: the late window is read
        // once at first, then when the history changes.
        assert_eq!(s.next(t(0), &ledger, &closed, false), Step::Recheck);
        s.checked(t(0));
        assert_eq!(s.next(t(1), &ledger, &closed, false), Step::Idle);
        assert_eq!(s.next(t(1), &ledger, &closed, true), Step::Idle);
        assert_eq!(s.next(t(5), &ledger, &closed, true), Step::Recheck);
        assert_eq!(s.next(t(59), &ledger, &closed, false), Step::Idle);
        assert_eq!(s.next(t(60), &ledger, &closed, false), Step::Recheck);
    }

    #[test]
    fn a_gap_in_the_local_history_is_skipped() {
        let mut s = Shipper::new();
        let mut ledger = Ledger::new();
        s.answered();
        ship(&mut ledger, 12);
        s.checked(t(0));
        // The history changed: the late window is read before the next
        // slot moves it on, however recently it was read.
        assert_eq!(
            s.next(t(0), &ledger, &[Slot(12), Slot(15)], true),
            Step::Recheck
        );
        assert_eq!(
            s.next(t(0), &ledger, &[Slot(12), Slot(15)], false),
            Step::Send(Slot(15))
        );
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_and_a_success_resets() {
        assert_eq!(backoff(1), SignedDuration::from_secs(1));
        assert_eq!(backoff(2), SignedDuration::from_secs(2));
        assert_eq!(backoff(5), SignedDuration::from_secs(16));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        let ledger = Ledger::new();
        let mut s = Shipper::new();
        s.failed(t(0));
        assert_eq!(
            s.next(t(0), &ledger, &[Slot(1)], false),
            Step::WaitUntil(t(1))
        );
        // Due again: it asks (the first answer never came).
        assert_eq!(s.next(t(1), &ledger, &[Slot(1)], false), Step::Ask);
        s.failed(t(1));
        assert_eq!(
            s.next(t(2), &ledger, &[Slot(1)], false),
            Step::WaitUntil(t(3))
        );
        s.answered();
        assert_eq!(s.failures(), 0);
        assert_eq!(
            s.next(t(2), &ledger, &[Slot(1)], false),
            Step::Send(Slot(1))
        );
        s.failed(t(2));
        s.failed(t(3));
        assert_eq!(
            s.next(t(4), &ledger, &[Slot(1)], false),
            Step::WaitUntil(t(5))
        );
        assert_eq!(
            s.next(t(5), &ledger, &[Slot(1)], false),
            Step::Send(Slot(1))
        );
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
        let got = |sequence: u64| Received {
            writer: b.writer.clone(),
            sequence,
            last_slot: last_slot(&b),
            bytes: 1500,
        };
        let ok = AddOutcome::Committed { refused: vec![] };
        assert_eq!(seen(&mut agents, t(0), &got(7), &ok), Some((7, false)));
        let dup = AddOutcome::AlreadyAdded { last: 7 };
        assert_eq!(seen(&mut agents, t(5), &got(7), &dup), Some((7, true)));
        let a = &agents["hv1"];
        assert_eq!((a.sequence, a.last_slot, a.at), (7, Some(Slot(7)), t(5)));
        // Counted once: the duplicate's bytes are not accepted again.
        assert_eq!((a.batches, a.bytes, a.duplicates), (1, 1500, 1));
        let failed = AddOutcome::Failed {
            error: "busy".into(),
        };
        assert_eq!(seen(&mut agents, t(9), &got(8), &failed), None);
        assert_eq!(agents["hv1"].at, t(5));
        let invalid = AddOutcome::Invalid {
            error: "bad sample".into(),
        };
        assert_eq!(seen(&mut agents, t(9), &got(8), &invalid), None);
        let a = &agents["hv1"];
        assert_eq!((a.refused, a.sequence, a.at), (1, 7, t(9)));
        assert_eq!(a.last_refusal.as_deref(), Some("bad sample"));
    }
}
