//! The flow collector's side of the history: harvests committed with the
//! decoder state, and the status file.

use super::status::{Status, STATUS_FILE};
use accounting::{Sample, SlotCoverage};
use flow_collector::{Collector, Config};
use flows::{Attribution, SlotClock};
use history::{AddBatch, SqliteStore, Store};
use jiff::Timestamp;
use policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The writer name the collector's batches carry in the store.
pub const WRITER: &str = "flows";

/// A running collector and what it has not committed yet.
pub struct FlowBooks {
    collector: Collector,
    store: SqliteStore,
    sequence: u64,
    clock: SlotClock,
    generation: u32,
    started: Timestamp,
    status_path: PathBuf,
    /// Samples and coverage harvested but not yet committed (a commit
    /// failed): kept and retried, never dropped.
    pending: Vec<Sample>,
    pending_coverage: Vec<SlotCoverage>,
    listen: Vec<std::net::SocketAddr>,
    last_status: Status,
    /// When the last harvest was taken, for the rates in the status.
    last_harvest: Timestamp,
}

/// What one commit wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct Committed {
    /// Samples added to the store.
    pub samples: usize,
    /// Bytes in them.
    pub bytes: u128,
}

fn config(flows: &policy::Flows) -> Config {
    let workers = flows.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    Config {
        listen: flows.listen.iter().map(|(a, _)| *a).collect(),
        workers,
        receive_buffer: usize::try_from(flows.receive_buffer.bytes()).unwrap_or(usize::MAX),
        exporters: flows.exporters.iter().map(|e| e.address).collect(),
    }
}

/// Splits the decoder states saved with the last batch: a count, then each
/// state as a length and its bytes (all u32, big-endian).
fn decode_states(blob: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = blob.get(4..).unwrap_or(&[]);
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some(state) = tail.get(..len) else { break };
        out.push(state.to_vec());
        rest = &tail[len..];
    }
    out
}

fn encode_states(states: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(states.len() as u32).to_be_bytes());
    for s in states {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }
    out
}

impl FlowBooks {
    /// Opens the store, builds the attribution tables and starts listening.
    pub fn start(
        policy: &Policy,
        flows: &policy::Flows,
        state_dir: &Path,
        route_realms: &[(net_types::Prefix, net_types::RealmId)],
    ) -> Result<FlowBooks, String> {
        let store = crate::ledger::open_for_daemon(state_dir)?;
        let (sequence, states) = match store
            .writer_state(WRITER)
            .map_err(|e| format!("cannot read the flow collector's saved state: {e}"))?
        {
            Some(s) => (s.sequence, decode_states(&s.blob)),
            None => (0, Vec::new()),
        };
        let tables = Attribution::new(policy, route_realms, 1).map_err(|e| e.to_string())?;
        let cfg = config(flows);
        let collector = Collector::start(&cfg, Arc::new(tables), &states).map_err(|e| {
            format!("{e}\n  hint: another collector may hold the port; check `ss -ulpn`")
        })?;
        let started = Timestamp::now();
        tracing::info!(
            listen = ?collector.local_addrs(),
            workers = cfg.workers,
            exporters = cfg.exporters.len(),
            templates_restored = states.len(),
            "flow collector listening"
        );
        Ok(FlowBooks {
            collector,
            store,
            sequence,
            clock: SlotClock::new(started.as_millisecond()),
            generation: 1,
            started,
            status_path: state_dir.join(STATUS_FILE),
            pending: Vec::new(),
            pending_coverage: Vec::new(),
            listen: cfg.listen,
            last_status: Status::default(),
            last_harvest: started,
        })
    }

    /// A reloaded policy or routes table: new tables and allowlist. New
    /// listen addresses need a restart, which is logged.
    pub fn reload(
        &mut self,
        policy: &Policy,
        route_realms: &[(net_types::Prefix, net_types::RealmId)],
    ) -> Result<(), String> {
        let Some(flows) = &policy.flows else {
            return Err(
                "the new policy has no [flows]; the collector keeps running until restart".into(),
            );
        };
        self.generation = self.generation.wrapping_add(1);
        let tables =
            Attribution::new(policy, route_realms, self.generation).map_err(|e| e.to_string())?;
        self.collector.set_tables(Arc::new(tables));
        let cfg = config(flows);
        self.collector.set_exporters(cfg.exporters);
        if cfg.listen != self.listen {
            tracing::warn!(
                "[flows] listen changed; the new addresses take effect at the next restart"
            );
        }
        Ok(())
    }

    /// Commits what the workers tallied, with the slots that closed, and
    /// writes the status file.
    pub fn commit(&mut self) -> Result<Committed, String> {
        let h = self.collector.harvest();
        let now = Timestamp::now();
        let seconds = now.duration_since(self.last_harvest).as_secs_f64();
        self.last_harvest = now;
        let rates = super::status::rates(&h.samples, seconds);
        self.pending.extend(h.samples);
        self.pending_coverage
            .extend(self.clock.closed(now.as_millisecond()));
        let result = self.write();
        self.last_status = Status::new(
            self.started,
            now,
            &self.collector,
            h.totals,
            h.sockets,
            h.exporters,
        );
        self.last_status.rates = rates;
        self.last_status.rate_seconds = seconds;
        if let Err(e) = self.last_status.save(&self.status_path) {
            tracing::warn!("cannot write {}: {e}", self.status_path.display());
        }
        result
    }

    /// Stops listening, then commits everything received.
    pub fn stop(mut self) -> Result<Committed, String> {
        let states = self.collector.decoder_states();
        let h = self.collector.stop();
        self.pending.extend(h.samples);
        let now = Timestamp::now();
        self.pending_coverage
            .extend(self.clock.closed(now.as_millisecond()));
        let result = self.write_with(&states);
        let status = Status::stopped(self.started, now, h.totals, h.sockets, h.exporters);
        if let Err(e) = status.save(&self.status_path) {
            tracing::warn!("cannot write {}: {e}", self.status_path.display());
        }
        result
    }

    fn write(&mut self) -> Result<Committed, String> {
        let states = self.collector.decoder_states();
        self.write_with(&states)
    }

    fn write_with(&mut self, states: &[Vec<u8>]) -> Result<Committed, String> {
        if self.pending.is_empty() && self.pending_coverage.is_empty() {
            return Ok(Committed::default());
        }
        // Harvests retried after a failed commit can repeat a slot and
        // key; `Store::add` sums those, as it sums what is already stored.
        let blob = encode_states(states);
        let batch = AddBatch {
            writer: WRITER,
            sequence: self.sequence + 1,
            samples: &self.pending,
            coverage: &self.pending_coverage,
            state: &blob,
        };
        match self.store.add(&batch) {
            Ok(report) => {
                self.sequence += 1;
                for r in report.refused.iter().take(5) {
                    tracing::warn!("flow collector: {r} (kept aside in the history's quarantine)");
                }
                let c = Committed {
                    samples: report.stored,
                    bytes: self.pending.iter().map(|s| u128::from(s.bytes)).sum(),
                };
                self.pending.clear();
                self.pending_coverage.clear();
                Ok(c)
            }
            Err(e) => Err(format!(
                "cannot commit {} flow samples (kept, retried next round): {e}",
                self.pending.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_states_round_trip() {
        let states = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        assert_eq!(decode_states(&encode_states(&states)), states);
        assert!(decode_states(&[]).is_empty());
        assert_eq!(
            decode_states(&[0, 0, 0, 1, 0, 0, 0, 9, 1]),
            Vec::<Vec<u8>>::new()
        );
    }
}
