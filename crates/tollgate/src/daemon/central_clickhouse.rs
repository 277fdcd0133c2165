//! An agent that ships straight into a ClickHouse history (`[central]
//! store = "clickhouse"`, docs/agents.md): no central tollgate in
//! between. The batch goes to the store's `add` under the agent's writer
//! and sequence, which is what the central tollgate itself would do with
//! it, so the exactly-once rule is the store's: a batch sent twice (its
//! answer lost to a timeout or a `kill -9`) counts once.
//!
//! The server is reached lazily: an agent whose ClickHouse is down at
//! start keeps shaping and recording, and ships once it answers, like an
//! agent whose central tollgate is down.

use super::central_client::{CentralLink, Delivery};
use engine::shipping::ShippedBatch;
use history::{AddBatch, Store, StoreError};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};

/// The ClickHouse history an agent writes to.
pub struct ClickHouseCentral {
    options: ClickHouseOptions,
    store: Option<ClickHouseStore>,
}

impl ClickHouseCentral {
    /// Does not connect yet: see the module's note.
    pub fn new(url: &str, database: &str) -> ClickHouseCentral {
        ClickHouseCentral {
            options: ClickHouseOptions {
                url: url.to_string(),
                database: database.to_string(),
                ..ClickHouseOptions::default()
            },
            store: None,
        }
    }

    /// The store, opened (and its schema brought up to date) on first use
    /// and again after a failure.
    fn store(&mut self) -> Result<&mut ClickHouseStore, String> {
        if self.store.is_none() {
            let store = ClickHouseStore::open(&self.options).map_err(|e| {
                format!(
                    "cannot reach the ClickHouse history at {} (database {}): {e}",
                    self.options.url, self.options.database
                )
            })?;
            self.store = Some(store);
        }
        Ok(self.store.as_mut().expect("opened above"))
    }

    /// Drops the connection after a failure of the server, so the next
    /// attempt starts afresh.
    fn failed(&mut self, e: StoreError) -> String {
        self.store = None;
        format!("the ClickHouse history at {} failed: {e}", self.options.url)
    }
}

impl CentralLink for ClickHouseCentral {
    fn standing(&mut self, writer: &str) -> Result<Option<u64>, String> {
        match self.store()?.writer_state(writer) {
            Ok(state) => Ok(state.map(|s| s.sequence)),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn post(&mut self, batch: &ShippedBatch) -> Result<Delivery, String> {
        let added = self.store()?.add(&AddBatch {
            writer: &batch.writer,
            sequence: batch.sequence,
            samples: &batch.samples,
            coverage: &batch.coverage,
            state: &[],
        });
        match added {
            Ok(report) => {
                if !report.refused.is_empty() {
                    tracing::warn!(
                        sequence = batch.sequence,
                        refused = report.refused.len(),
                        quarantined = report.quarantined,
                        "the ClickHouse history refused samples of a batch; they are in its quarantine (`tollgate history quarantine`)"
                    );
                }
                Ok(Delivery::Acknowledged(batch.sequence))
            }
            // Already held: the answer to an earlier send was lost.
            Err(StoreError::AlreadyAppended { last, .. }) => Ok(Delivery::Acknowledged(last)),
            Err(
                e @ (StoreError::Database { .. }
                | StoreError::Backend { .. }
                | StoreError::Unreachable { .. }),
            ) => Err(self.failed(e)),
            Err(e) => Ok(Delivery::Refused(e.to_string())),
        }
    }
}
