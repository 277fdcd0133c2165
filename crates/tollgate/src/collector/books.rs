//! The flow collector's side of the history: harvests committed (what the
//! store refuses set aside, never blocking the rest), the decoders'
//! templates saved when they change, quarantined records, and the status
//! file.

use super::commit::{self, WRITER};
use super::quarantine::{self, QuarantineFile};
use super::saved::{self, Pending};
use super::status::{QuarantineStatus, Status, STATUS_FILE};
use accounting::{Sample, Slot, SlotCoverage, Usage, UsageKey};
use flow_collector::{Collector, Config};
use flows::{Attribution, SlotClock};
use history::Store;
use jiff::Timestamp;
use policy::Policy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A running collector and what it has not committed yet.
pub struct FlowBooks {
    collector: Collector,
    store: Box<dyn Store + Send>,
    sequence: u64,
    clock: SlotClock,
    generation: u32,
    started: Timestamp,
    state_dir: PathBuf,
    status_path: PathBuf,
    /// Usage harvested but not yet committed (a commit failed), summed per
    /// slot and key so that it cannot grow past the slots and keys seen:
    /// kept and retried, never dropped.
    pending: BTreeMap<(Slot, UsageKey), Usage>,
    pending_coverage: Vec<SlotCoverage>,
    /// A previous stop's `flows-pending.json` is in `pending`: removed
    /// once committed.
    spilled: bool,
    listen: Vec<std::net::SocketAddr>,
    last_status: Status,
    /// When the last harvest was taken, for the rates in the status.
    last_harvest: Timestamp,
    /// Each worker's latest decoder state, as saved in the templates file.
    states: Vec<Vec<u8>>,
    quarantine: QuarantineFile,
    /// Samples the history refused since start (quarantined).
    refused_samples: u64,
    /// The attribution tables the workers use.
    tables: Arc<Attribution>,
    /// The writer of the records kept (`[history.flows]`), if any.
    keeper: Option<super::kept::Keeper>,
}

/// What one commit wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct Committed {
    /// Samples added to the store.
    pub samples: usize,
    /// Bytes in them.
    pub bytes: u64,
    /// Samples the store refused, quarantined.
    pub refused: usize,
    /// Samples a stop could not commit, saved for the next start.
    pub spilled: usize,
}

/// The collector's configuration from the policy: where to listen, and each
/// worker's share of the memory limit for templates.
fn config(flows: &policy::Flows) -> Result<Config, String> {
    let workers = flows.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let sockets = flows.listen.len() * workers;
    let l = &flows.limits;
    let Some(template_bytes) = l.worker_template_bytes(sockets) else {
        return Err(format!(
            "[flows] memory_limit = {} is too small for {sockets} sockets ({} listen addresses × {workers} workers{})\n  hint: raise memory_limit to at least {}, or set workers lower",
            l.memory,
            flows.listen.len(),
            if flows.workers.is_none() { ", one per core" } else { "" },
            net_types::Size::from_bytes(policy::FlowLimits::memory_needed(sockets))
        ));
    };
    Ok(Config {
        listen: flows.listen.iter().map(|(a, _)| *a).collect(),
        workers,
        receive_buffer: usize::try_from(flows.receive_buffer.bytes()).unwrap_or(usize::MAX),
        exporters: flows.exporters.iter().map(|e| e.address).collect(),
        limits: flow_collector::Limits {
            templates_per_exporter: l.templates_per_exporter as usize,
            templates_per_domain: l.templates_per_domain as usize,
            fields_per_template: l.template_fields as usize,
            template_bytes: usize::try_from(template_bytes).unwrap_or(usize::MAX),
        },
    })
}

impl FlowBooks {
    /// Opens the store, builds the attribution tables and starts listening.
    pub fn start(
        policy: &Policy,
        flows: &policy::Flows,
        state_dir: &Path,
        route_realms: &[(net_types::Prefix, net_types::RealmId)],
    ) -> Result<FlowBooks, String> {
        let cfg = config(flows)?;
        let store = crate::ledger::open_for_daemon(state_dir, policy.history.as_ref())?;
        let (sequence, blob) = match store
            .writer_state(WRITER)
            .map_err(|e| format!("cannot read the flow collector's saved state: {e}"))?
        {
            Some(s) => (s.sequence, s.blob),
            None => (0, Vec::new()),
        };
        // Templates live in their own file since they are saved only when
        // they change; older versions kept them in the writer's state.
        let states = saved::read_templates(state_dir, flows.limits.memory.bytes())?
            .unwrap_or_else(|| saved::decode_states(&blob));
        let tables =
            Arc::new(Attribution::new(policy, route_realms, 1).map_err(|e| e.to_string())?);
        // The writer of the records kept (`[history.flows]`) starts first,
        // so that its tap is on the workers from their first datagram.
        let keeper = super::kept::start(policy)?;
        let collector = Collector::start_with_history_tap(
            &cfg,
            Arc::clone(&tables),
            &states,
            keeper.as_ref().map(super::kept::Keeper::tap),
        )
        .map_err(|e| {
            format!("{e}\n  hint: another collector may hold the port; check `ss -ulpn`")
        })?;
        if keeper.is_some() {
            tracing::info!("flow records kept in ClickHouse ([history.flows])");
        }
        let started = Timestamp::now();
        tracing::info!(
            listen = %collector
                .local_addrs()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            workers = cfg.workers,
            exporters = cfg.exporters.len(),
            template_bytes_per_worker = cfg.limits.template_bytes,
            templates_restored = states.len(),
            "flow collector listening"
        );
        let mut books = FlowBooks {
            collector,
            store,
            sequence,
            clock: SlotClock::new(started.as_millisecond()),
            generation: 1,
            started,
            state_dir: state_dir.to_path_buf(),
            status_path: state_dir.join(STATUS_FILE),
            pending: BTreeMap::new(),
            pending_coverage: Vec::new(),
            spilled: false,
            listen: cfg.listen,
            last_status: Status::default(),
            last_harvest: started,
            states,
            quarantine: QuarantineFile::new(state_dir),
            refused_samples: 0,
            tables,
            keeper,
        };
        let pending = saved::read_pending(state_dir)?;
        if let Some(committed) = pending
            .as_ref()
            .and_then(|p| p.after_sequence)
            .filter(|s| books.sequence > *s)
        {
            tracing::warn!(
                saved_after = committed,
                history_at = books.sequence,
                "{} was committed already; removing it, not adding it twice",
                saved::pending_path(state_dir).display()
            );
            crate::state_dir::remove_durably(&saved::pending_path(state_dir))
                .map_err(|e| e.to_string())?;
        } else if let Some(p) = pending {
            tracing::info!(
                samples = p.samples.len(),
                "committing the flow samples the last stop could not"
            );
            books.absorb(p.samples);
            books.pending_coverage.extend(p.coverage);
            books.spilled = true;
        }
        Ok(books)
    }

    /// A reloaded policy or routes table: new tables, allowlist and
    /// template limits. New listen addresses (and worker counts) need a
    /// restart, which is logged.
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
        let mut cfg = config(flows)?;
        // Tables are rebuilt only when what they are built from changed:
        // each build takes tens of megabytes for a moment, and callers
        // reload whenever the routes table was read again.
        if !self.tables.same_inputs(policy, route_realms) {
            self.generation = self.generation.wrapping_add(1);
            let tables = Attribution::new(policy, route_realms, self.generation)
                .map_err(|e| e.to_string())?;
            self.tables = Arc::new(tables);
            self.collector.set_tables(Arc::clone(&self.tables));
        }
        if cfg.listen != self.listen
            || cfg.workers * cfg.listen.len() != self.collector.worker_count()
        {
            tracing::warn!(
                "[flows] listen or workers changed; they take effect at the next restart"
            );
            // The running sockets' share of the new memory limit.
            if let Some(b) = flows
                .limits
                .worker_template_bytes(self.collector.worker_count())
            {
                cfg.limits.template_bytes = usize::try_from(b).unwrap_or(usize::MAX);
            }
        }
        self.collector.set_exporters(cfg.exporters);
        self.collector.set_limits(cfg.limits);
        Ok(())
    }

    /// Sets (or removes) the guard's tap on the decoded records.
    pub fn set_tap(&self, tap: Option<Arc<flow_collector::Tap>>) {
        self.collector.set_tap(tap);
    }

    /// Commits what the workers tallied, with the slots that closed, saves
    /// the templates if they changed, and writes the status file.
    pub fn commit(&mut self) -> Result<Committed, String> {
        let h = self.collector.harvest();
        let now = Timestamp::now();
        let seconds = now.duration_since(self.last_harvest).as_secs_f64();
        self.last_harvest = now;
        let rates = super::status::rates(&h.samples, seconds);
        self.absorb(h.samples);
        self.set_aside(now, &h.quarantine);
        self.pending_coverage
            .extend(self.clock.closed(now.as_millisecond()));
        let result = self.write(now);
        self.save_templates();
        self.last_status = Status::new(
            self.started,
            now,
            &self.collector,
            h.totals,
            h.sockets,
            h.exporters,
        );
        self.last_status.quarantine = self.quarantine_status();
        self.last_status.rates = rates;
        self.last_status.rate_seconds = seconds;
        self.last_status.kept = self.keeper.as_ref().map(super::kept::Keeper::status);
        if let Err(e) = self.last_status.save(&self.status_path) {
            tracing::warn!("{e}");
        }
        result
    }

    /// Stops listening, then commits everything received. If the history
    /// cannot take it, it is saved to `flows-pending.json` and committed at
    /// the next start: a stop loses nothing that was received.
    pub fn stop(mut self) -> Result<Committed, String> {
        let h = self.collector.stop();
        let now = Timestamp::now();
        self.absorb(h.samples);
        self.set_aside(now, &h.quarantine);
        self.pending_coverage
            .extend(self.clock.closed(now.as_millisecond()));
        let result = self.write(now);
        self.save_templates();
        let mut status = Status::stopped(self.started, now, h.totals, h.sockets, h.exporters);
        status.quarantine = self.quarantine_status();
        // The workers have stopped: the writer takes what is queued.
        status.kept = self.keeper.take().map(super::kept::Keeper::stop);
        if let Err(e) = status.save(&self.status_path) {
            tracing::warn!("{e}");
        }
        match result {
            Ok(c) => Ok(c),
            Err(e) => {
                let p = Pending {
                    samples: self.pending_samples(),
                    coverage: std::mem::take(&mut self.pending_coverage),
                    after_sequence: Some(self.sequence),
                };
                match saved::write_pending(&self.state_dir, &p) {
                    Ok(()) => {
                        tracing::warn!(
                            "{e}; {} samples saved to {} for the next start",
                            p.samples.len(),
                            saved::pending_path(&self.state_dir).display()
                        );
                        Ok(Committed {
                            spilled: p.samples.len(),
                            ..Committed::default()
                        })
                    }
                    Err(w) => Err(format!(
                        "{e}; saving them to {} failed too: {w}",
                        saved::pending_path(&self.state_dir).display()
                    )),
                }
            }
        }
    }

    fn absorb(&mut self, samples: Vec<Sample>) {
        for s in samples {
            let u = self.pending.entry((s.slot, s.key)).or_default();
            // A sum past 2^64 is past what the store takes: it refuses it
            // and the sample is quarantined like any other it refuses.
            u.bytes = u.bytes.saturating_add(s.bytes);
            u.packets = u.packets.saturating_add(s.packets);
        }
    }

    fn pending_samples(&self) -> Vec<Sample> {
        self.pending
            .iter()
            .map(|(&(slot, key), u)| Sample {
                slot,
                key,
                bytes: u.bytes,
                packets: u.packets,
            })
            .collect()
    }

    /// Writes quarantined records to the quarantine file.
    fn set_aside(&mut self, now: Timestamp, records: &[flows::Quarantined]) {
        if records.is_empty() {
            return;
        }
        if let Some(first) = records.first() {
            tracing::warn!(
                count = records.len(),
                "flow records beyond any link's capacity quarantined, e.g. {first}"
            );
        }
        let entries: Vec<_> = records
            .iter()
            .map(|q| quarantine::record_entry(now, q))
            .collect();
        if let Err(e) = self.quarantine.append(&entries) {
            tracing::error!(
                "cannot write {}: {e}; {} quarantined records are only counted",
                self.quarantine.path().display(),
                records.len()
            );
        }
    }

    fn quarantine_status(&self) -> QuarantineStatus {
        QuarantineStatus {
            samples_refused: self.refused_samples,
            written: self.quarantine.written,
            dropped: self.quarantine.dropped,
            file: self.quarantine.path().display().to_string(),
        }
    }

    /// Saves the workers' templates when any changed.
    fn save_templates(&mut self) {
        let fresh = self.collector.take_decoder_states();
        if fresh.is_empty() {
            return;
        }
        let workers = self.collector.worker_count();
        if self.states.len() != workers {
            // A restart with other workers: the old states were merged
            // into every worker at start, so each will publish its own.
            self.states = vec![Vec::new(); workers];
        }
        for (i, s) in fresh {
            if let Some(slot) = self.states.get_mut(i) {
                *slot = s;
            }
        }
        let path = self.state_dir.join(saved::TEMPLATES_FILE);
        let kept: Vec<Vec<u8>> = self
            .states
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if let Err(e) = crate::state_dir::replace_atomically(&path, &saved::encode_states(&kept)) {
            tracing::warn!("cannot save the flow templates: {e}");
        }
    }

    fn write(&mut self, now: Timestamp) -> Result<Committed, String> {
        if self.pending.is_empty() && self.pending_coverage.is_empty() {
            return Ok(Committed::default());
        }
        let samples = self.pending_samples();
        match commit::add_isolating(
            &mut self.store,
            &mut self.sequence,
            &samples,
            &self.pending_coverage,
        ) {
            Ok(done) => {
                self.pending.clear();
                self.pending_coverage.clear();
                if self.spilled {
                    self.spilled = false;
                    if let Err(e) =
                        crate::state_dir::remove_durably(&saved::pending_path(&self.state_dir))
                    {
                        tracing::warn!("{e}");
                    }
                }
                if !done.refused.is_empty() {
                    tracing::error!(
                        count = done.refused.len(),
                        "the history refused flow samples; they are quarantined in {} and the rest committed: {}",
                        self.quarantine.path().display(),
                        done.refused[0].1
                    );
                    self.refused_samples += done.refused.len() as u64;
                    let entries: Vec<_> = done
                        .refused
                        .iter()
                        .map(|(s, why)| quarantine::sample_entry(now, s, why))
                        .collect();
                    if let Err(e) = self.quarantine.append(&entries) {
                        tracing::error!("cannot write {}: {e}", self.quarantine.path().display());
                    }
                }
                Ok(Committed {
                    samples: done.committed,
                    bytes: done.bytes,
                    refused: done.refused.len(),
                    spilled: 0,
                })
            }
            Err(e) => Err(format!(
                "cannot commit {} flow samples (kept, retried next round): {e}",
                samples.len()
            )),
        }
    }
}
