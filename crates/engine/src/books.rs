//! The accountant and its batches, kept in step with the history.
//!
//! Every accounting step makes a batch of the samples it closed *and* the
//! accountant's new state, under the next sequence number, for the shell
//! to commit in one transaction. A crash before the commit loses both, so
//! the next read after a restart recomputes the same traffic from the
//! older state; a crash after it loses neither. If a commit fails (a full
//! disk), the closed samples stay here and go out with the next batch,
//! whose state already covers them.
//!
//! A failed commit may have landed all the same (a ClickHouse insert whose
//! answer was lost): the next try is then refused as already appended.
//! Each try of the current sequence is remembered by its state's hash and
//! how many samples and slots it held, so that the state the store holds
//! names the try that landed: its samples are committed, and only the
//! ones closed since go out again, under the next sequence.

use crate::feeds::{self, identity, Counter, Feeds};
use crate::io::{Batch, Resume};
use accounting::{Accountant, AccountantState, Closed, ObjectIdentity, Reading, UsageKey};
use jiff::Timestamp;
use plan::ClassKey;
use std::collections::HashMap;

/// The accountant, what it tracks, and what is not committed yet.
pub struct Books {
    accountant: Accountant,
    sequence: u64,
    tracked: HashMap<UsageKey, ObjectIdentity>,
    pending: Closed,
    /// The tries of `sequence` not known to have failed: (the state's
    /// hash, samples, slots), oldest first, at most [`TRIES`].
    tries: Vec<(u64, usize, usize)>,
}

/// The tries of one sequence remembered (a day of reads every second).
const TRIES: usize = 100_000;

/// A state's hash: SipHash with fixed keys, the same in every run.
fn state_hash(state: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    state.hash(&mut h);
    h.finish()
}

impl Books {
    /// A new accountant, or one resumed from the history's last state.
    pub fn open(config: accounting::Config, resume: Option<&Resume>) -> Result<Books, String> {
        let Some(r) = resume else {
            return Ok(Books {
                accountant: Accountant::new(config),
                sequence: 1,
                tracked: HashMap::new(),
                pending: Closed::default(),
                tries: Vec::new(),
            });
        };
        let state = AccountantState::decode(&r.state).map_err(|e| {
            format!("{e} (this history was written by another tollgate version, or is damaged; move it aside to start a new one)")
        })?;
        Ok(Books {
            tracked: state
                .counters
                .iter()
                .map(|c| (c.key, c.reading.object))
                .collect(),
            accountant: Accountant::resume(config, &state),
            sequence: r.sequence + 1,
            pending: Closed::default(),
            tries: Vec::new(),
        })
    }

    /// Accounts the counters read at `now`, as `feeds` says whose each
    /// class is. Returns whether the readings were taken.
    pub fn account_counters(
        &mut self,
        now: Timestamp,
        feeds: &Feeds,
        counters: &[(ClassKey, u64, u64)],
    ) -> Result<(), String> {
        let kernel: HashMap<ObjectIdentity, Counter> = counters
            .iter()
            .map(|(k, bytes, packets)| {
                (
                    identity(k),
                    Counter {
                        bytes: *bytes,
                        packets: *packets,
                    },
                )
            })
            .collect();
        let readings = feeds::readings(feeds, &self.tracked, &kernel);
        self.account(now, &readings)
    }

    /// The apply created these classes at `now`: the first read of each
    /// counts its whole value.
    pub fn created(&mut self, now: Timestamp, classes: &[plan::ClassKey]) {
        self.accountant
            .created(classes.iter().map(crate::feeds::identity), now);
    }

    /// Accounts readings taken at `now`.
    pub fn account(
        &mut self,
        now: Timestamp,
        readings: &[(UsageKey, Reading)],
    ) -> Result<(), String> {
        let closed = self
            .accountant
            .observe(now, readings)
            .map_err(|e| format!("counter readings refused: {e}"))?;
        for (key, r) in readings {
            self.tracked.insert(*key, r.object);
        }
        self.pending.samples.extend(closed.samples);
        self.pending.slots.extend(closed.slots);
        Ok(())
    }

    /// The batch to commit now: everything pending, with the current state.
    pub fn batch(&self) -> Batch {
        Batch {
            sequence: self.sequence,
            samples: self.pending.samples.clone(),
            coverage: self.pending.slots.clone(),
            state: self.accountant.state().encode(),
        }
    }

    /// `batch` (from [`Books::batch`]) is being tried.
    pub fn tried(&mut self, batch: &Batch) {
        let t = (
            state_hash(&batch.state),
            batch.samples.len(),
            batch.coverage.len(),
        );
        if self.tries.last() != Some(&t) {
            if self.tries.len() == TRIES {
                self.tries.remove(0);
            }
            self.tries.push(t);
        }
    }

    /// The batch `sequence` was committed.
    pub fn committed(&mut self, sequence: u64) -> usize {
        if sequence != self.sequence {
            return 0;
        }
        let n = self.pending.samples.len();
        self.pending = Closed::default();
        self.sequence += 1;
        self.tries.clear();
        n
    }

    /// The store holds `last` with `state`: if that is one of this
    /// sequence's tries, it landed; its samples and slots are committed
    /// (how many samples returned) and the rest wait for the next
    /// sequence. `None`: not ours (another writer's).
    pub fn landed(&mut self, last: u64, state: &[u8]) -> Option<usize> {
        if last != self.sequence {
            return None;
        }
        let h = state_hash(state);
        let &(_, samples, slots) = self.tries.iter().rev().find(|t| t.0 == h)?;
        self.pending
            .samples
            .drain(..samples.min(self.pending.samples.len()));
        self.pending
            .slots
            .drain(..slots.min(self.pending.slots.len()));
        self.sequence += 1;
        self.tries.clear();
        Some(samples)
    }

    /// Another writer already holds `last`: never overwrite a committed
    /// batch; continue after it.
    pub fn skip_to(&mut self, last: u64) {
        self.sequence = last + 1;
    }

    /// The classes the accountant reads (by identity), with whose
    /// traffic each counts: the classes to read right before deleting.
    pub fn watched(&self) -> Vec<(ObjectIdentity, UsageKey)> {
        let mut w: Vec<(ObjectIdentity, UsageKey)> =
            self.tracked.iter().map(|(k, o)| (*o, *k)).collect();
        w.sort_by_key(|(o, k)| (o.0, *k));
        w
    }

    /// The last batch committed (0 before the first).
    pub fn committed_sequence(&self) -> u64 {
        self.sequence - 1
    }

    /// How many counters the accountant tracks.
    pub fn counters(&self) -> usize {
        self.accountant.counters()
    }

    /// Samples closed and not committed yet.
    pub fn pending(&self) -> usize {
        self.pending.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Band, Direction, Sample, Slot, Source};
    use net_types::{RealmId, TenantId};

    fn sample(slot: i64, bytes: u64) -> Sample {
        Sample {
            slot: Slot(slot),
            key: UsageKey {
                tenant: TenantId(1),
                realm: RealmId(1),
                direction: Direction::Down,
                band: Band::Whole,
                source: Source::Kernel,
            },
            bytes,
            packets: 1,
        }
    }

    /// A try of the current batch, as the engine makes it, with `state`
    /// standing for the accountant's.
    fn try_with(b: &mut Books, state: &[u8]) -> Batch {
        let mut batch = b.batch();
        batch.state = state.to_vec();
        b.tried(&batch);
        batch
    }

    #[test]
    fn a_try_that_landed_unanswered_is_committed_once_and_the_rest_goes_next() {
        let mut b = Books::open(accounting::Config::default(), None).unwrap();
        b.pending.samples.push(sample(10, 100));
        // Try 1 (failed: the server down before the insert), try 2
        // (landed, its answer lost), then more traffic and try 3, which
        // the store refuses as already appended with try 2's state.
        try_with(&mut b, b"state-1");
        b.pending.samples.push(sample(11, 200));
        let landed = try_with(&mut b, b"state-2");
        b.pending.samples.push(sample(12, 300));
        try_with(&mut b, b"state-3");
        assert_eq!(b.landed(1, b"state-2"), Some(2));
        assert_eq!(landed.samples.len(), 2);
        // Only the sample closed after try 2 is left, under sequence 2.
        let next = b.batch();
        assert_eq!(next.sequence, 2);
        assert_eq!(next.samples, vec![sample(12, 300)]);
        assert_eq!(b.committed_sequence(), 1);
    }

    #[test]
    fn another_writers_batch_is_not_taken_for_ours() {
        let mut b = Books::open(accounting::Config::default(), None).unwrap();
        b.pending.samples.push(sample(10, 100));
        try_with(&mut b, b"ours");
        // A state none of our tries had, or a sequence not ours.
        assert_eq!(b.landed(1, b"theirs"), None);
        assert_eq!(b.landed(7, b"ours"), None);
        assert_eq!(b.pending(), 1);
        assert_eq!(b.committed_sequence(), 0);
        // A commit forgets the tries.
        assert_eq!(b.committed(1), 1);
        assert_eq!(b.landed(1, b"ours"), None);
    }
}
