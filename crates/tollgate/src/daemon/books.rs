//! The accountant and the history store, kept in step.
//!
//! Every accounting step commits the samples it closed *and* the
//! accountant's new state in one store transaction, under the next
//! sequence number. A crash before the commit loses both, so the next
//! read after a restart recomputes the same traffic from the older state;
//! a crash after it loses neither. If an append fails (a full disk), the
//! closed samples are kept in memory and go out with the next successful
//! append, whose state already covers them.

use super::metrics::Metrics;
use accounting::{Accountant, Closed, ObjectIdentity, Reading, UsageKey};
use history::{Batch, SqliteStore, Store};
use jiff::Timestamp;
use std::collections::HashMap;
use std::path::Path;

/// The accountant, its store, and what it tracks.
pub struct Books {
    accountant: Accountant,
    store: SqliteStore,
    sequence: u64,
    tracked: HashMap<UsageKey, ObjectIdentity>,
    pending: Closed,
}

impl Books {
    /// Opens the history under `dir` and resumes from its last state.
    pub fn open(dir: &Path, config: accounting::Config) -> Result<Books, String> {
        let store = crate::ledger::open_for_daemon(dir)?;
        let (accountant, sequence, tracked) =
            match query::open::last_state(&store).map_err(|e| e.to_string())? {
                Some((seq, state)) => {
                    let tracked = state
                        .counters
                        .iter()
                        .map(|c| (c.key, c.reading.object))
                        .collect();
                    tracing::info!(
                        batch = seq,
                        counters = state.counters.len(),
                        "resuming from the last committed accounting state"
                    );
                    (Accountant::resume(config, &state), seq + 1, tracked)
                }
                None => {
                    tracing::info!("no accounting state yet: starting a new history");
                    (Accountant::new(config), 1, HashMap::new())
                }
            };
        Ok(Books {
            accountant,
            store,
            sequence,
            tracked,
            pending: Closed::default(),
        })
    }

    /// The identity of the class last read for each key.
    pub fn tracked(&self) -> &HashMap<UsageKey, ObjectIdentity> {
        &self.tracked
    }

    /// The inverse of [`Books::tracked`].
    pub fn watched(&self) -> HashMap<ObjectIdentity, UsageKey> {
        self.tracked.iter().map(|(k, o)| (*o, *k)).collect()
    }

    /// The store, for reading.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// The store, for retention.
    pub fn store_mut(&mut self) -> &mut SqliteStore {
        &mut self.store
    }

    /// Accounts one batch of readings taken at `now` and commits the
    /// result; returns whether the commit succeeded.
    pub fn account(
        &mut self,
        now: Timestamp,
        readings: &[(UsageKey, Reading)],
        m: &Metrics,
    ) -> bool {
        let closed = match self.accountant.observe(now, readings) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "counter readings refused");
                return false;
            }
        };
        for (key, event) in &closed.events {
            tracing::debug!(%key, ?event, "counter event");
        }
        for (key, r) in readings {
            self.tracked.insert(*key, r.object);
        }
        self.pending.samples.extend(closed.samples);
        self.pending.slots.extend(closed.slots);
        let state = self.accountant.state().encode();
        let batch = Batch {
            sequence: self.sequence,
            samples: &self.pending.samples,
            coverage: &self.pending.slots,
            state: &state,
        };
        match self.store.append(&batch) {
            Ok(()) => {
                m.add(&m.samples_written, self.pending.samples.len() as u64);
                m.add(&m.batches_written, 1);
                m.set(&m.last_read_ms, now.as_millisecond().max(0) as u64);
                m.set(&m.counters_tracked, self.accountant.counters() as u64);
                self.sequence += 1;
                self.pending = Closed::default();
                true
            }
            Err(history::StoreError::AlreadyAppended { last, .. }) => {
                // Someone else wrote to this history: never overwrite a
                // committed batch; continue after it.
                tracing::error!(last, "the history already holds this batch; is another daemon writing to the same --state-dir?");
                self.sequence = last + 1;
                m.add(&m.batch_failures, 1);
                false
            }
            Err(e) => {
                tracing::error!(error = %e, pending = self.pending.samples.len(), "cannot commit the accounting batch; it is kept and retried with the next one");
                m.add(&m.batch_failures, 1);
                false
            }
        }
    }
}
