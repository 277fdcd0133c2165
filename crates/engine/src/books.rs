//! The accountant and its batches, kept in step with the history.
//!
//! Every accounting step makes a batch of the samples it closed *and* the
//! accountant's new state, under the next sequence number, for the shell
//! to commit in one transaction. A crash before the commit loses both, so
//! the next read after a restart recomputes the same traffic from the
//! older state; a crash after it loses neither. If a commit fails (a full
//! disk), the closed samples stay here and go out with the next batch,
//! whose state already covers them.

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

    /// The batch `sequence` was committed.
    pub fn committed(&mut self, sequence: u64) -> usize {
        if sequence != self.sequence {
            return 0;
        }
        let n = self.pending.samples.len();
        self.pending = Closed::default();
        self.sequence += 1;
        n
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
