//! Carrying out the engine's effects: the kernel, the history, the files
//! in the state directory, the policy file, the flow collector, and the
//! answers to commands.

use super::clock::Clock;
use super::overage_watch::{self, OverageWatch};
use crate::collector::FlowBooks;
use crate::error::Result;
use crate::offline_vifs::OfflineVifs;
use crate::saved_routes::{Refresh, SavedRoutes};
use crate::state_dir::StateDir;
use engine::io::{
    Answer, Applied, Command, Effect, Input, Level, Observation, Stored, TimedReadings,
};
use engine::Engine;
use history::Store;
use linux_dataplane::{Dataplane, Observed};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::oneshot;

/// The shell's side of the daemon.
pub struct Shell {
    config: PathBuf,
    state: StateDir,
    dp: Dataplane,
    store: Box<dyn Store + Send>,
    /// Where the copy of the last committed batch goes (a ClickHouse
    /// history only: [`crate::accounting_copy`]).
    pub accounting_copy: Option<PathBuf>,
    /// The last observation, for the next `Converge`.
    observed: Option<Observed>,
    offline: OfflineVifs,
    routes: SavedRoutes,
    flows: Option<FlowBooks>,
    overage_watch: Option<OverageWatch>,
    replies: HashMap<u64, oneshot::Sender<Answer>>,
    /// Answers decided but not yet sent: they go out once the snapshot
    /// that shows their change is published ([`Shell::send_answers`]), so
    /// a client that reads right after its write sees it.
    answers: Vec<(oneshot::Sender<Answer>, Answer)>,
    next_id: u64,
    /// Release requests already handed to the engine.
    requests_seen: std::collections::BTreeSet<u32>,
    /// The guard's capture, rungs and files (set once the loop's channel
    /// exists).
    pub guard: Option<super::guard::GuardShell>,
    /// Latency's sampler, probes and status file (set with the guard's).
    pub latency: Option<super::latency::LatencyShell>,
    /// Set by `Exit`.
    pub exit: Option<u8>,
    /// The one clock.
    pub clock: Clock,
}

impl Shell {
    /// Opens the kernel and starts the flow collector if the policy has
    /// one.
    pub fn open(
        config: &Path,
        state: &StateDir,
        store: Box<dyn Store + Send>,
        clock: Clock,
        engine: &Engine,
        flows: bool,
    ) -> Result<Shell> {
        let mut routes = SavedRoutes::new(state.routes_table());
        if let Refresh::Failed(e) = routes.refresh(engine.policy()) {
            return Err(crate::error::Error::runtime(e).hint(
                "run `tollgate routes import FILE` again to rebuild it, or remove the file to run without route realms",
            ));
        }
        let flows = match (&engine.policy().flows, flows) {
            (Some(f), true) => Some(
                FlowBooks::start(engine.policy(), f, state.root(), routes.current())
                    .map_err(crate::error::Error::runtime)?,
            ),
            _ => None,
        };
        Ok(Shell {
            config: config.to_path_buf(),
            state: state.clone(),
            dp: Dataplane::open()?,
            store,
            accounting_copy: None,
            observed: None,
            offline: OfflineVifs::load(state)?,
            routes,
            flows,
            overage_watch: None,
            replies: HashMap::new(),
            answers: Vec::new(),
            next_id: 1,
            requests_seen: Default::default(),
            guard: None,
            latency: None,
            exit: None,
            clock,
        })
    }

    /// Before an append: marks this host's copy of the last committed
    /// batch unsure until the outcome is known ([`crate::accounting_copy`]).
    /// Whether this attempt made the marker (none was left before).
    fn begin_copy(&self, sequence: u64) -> bool {
        let Some(path) = &self.accounting_copy else {
            return false;
        };
        match crate::accounting_copy::begin(path, sequence) {
            Ok(fresh) => fresh,
            Err(e) => {
                // Without its marker the copy could be taken for certain
                // after a batch landed unseen: no copy rather than that.
                tracing::error!("{e}");
                if let Err(e) = crate::state_dir::remove_durably(path) {
                    tracing::error!("{e}");
                }
                false
            }
        }
    }

    /// After an append: the batch committed is the new copy; a failure
    /// that reached no server leaves the copy as it was (and the marker,
    /// unless this attempt made it); any other leaves it unsure.
    fn keep_copy(
        &self,
        r: &Result<history::WriteReport, history::StoreError>,
        fresh_marker: bool,
        sequence: u64,
        state: &[u8],
    ) {
        let Some(path) = &self.accounting_copy else {
            return;
        };
        let kept = match r {
            Ok(_) => crate::accounting_copy::committed(path, sequence, state),
            Err(history::StoreError::Unreachable { .. }) if fresh_marker => {
                crate::accounting_copy::unreached(path)
            }
            Err(_) => Ok(()),
        };
        // A copy or marker not written leaves the marker (unsure) at
        // worst: never a stale copy taken for certain.
        if let Err(e) = kept {
            tracing::error!("{e}");
        }
    }

    /// Keeps an ended attack in the history store (besides
    /// `guard-history.jsonl`, written already). Its own transaction,
    /// before the guard's state is saved: a daemon killed in between
    /// ends the restored incident again, and the store keeps the first
    /// record (same start, target and direction). A failure is logged:
    /// the file has the record, and the defence goes on.
    fn record_attack(&mut self, record: &api::guard::AttackRecord) {
        let row = match record.to_row() {
            Ok(r) => r,
            Err(e) => return tracing::error!("cannot encode the attack record: {e}"),
        };
        match self.store.record_attack(&row) {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                "the attack on {} that started at {} is already in the history",
                row.target,
                row.started
            ),
            Err(e) => tracing::error!(
                "cannot keep the attack on {} in the history: {e}",
                row.target
            ),
        }
    }

    /// Sends the answers decided since the last call. Called after the
    /// snapshot is published: a write's answer never reaches the client
    /// before the state it changed can be read back.
    pub fn send_answers(&mut self) {
        for (tx, answer) in self.answers.drain(..) {
            let _ = tx.send(answer);
        }
    }

    /// A command from the API: its id, and where its answer goes.
    pub fn command(&mut self, command: Command, reply: oneshot::Sender<Answer>) -> Input {
        let id = self.next_id;
        self.next_id += 1;
        self.replies.insert(id, reply);
        Input::Command { id, command }
    }

    /// Carries out `effects` in order; returns the inputs that answer them.
    pub fn execute_all(&mut self, engine: &Engine, effects: Vec<Effect>) -> VecDeque<Input> {
        effects
            .into_iter()
            .filter_map(|e| self.execute(engine, e))
            .collect()
    }

    /// What the shell notices on its own: a changed (or unreadable)
    /// routes table, and release requests left by `overage release`.
    pub fn watch(&mut self, engine: &Engine) -> Vec<Input> {
        let mut out = Vec::new();
        match self.routes.refresh(engine.policy()) {
            Refresh::Changed => out.push(Input::RoutesChanged {
                realms: self.routes.current().to_vec(),
            }),
            Refresh::Unchanged => {}
            Refresh::Failed(error) => out.push(Input::RoutesUnreadable { error }),
        }
        // Each request once: the engine carries it out (or finds nothing
        // to release) and asks for its file to be removed.
        let requests: std::collections::BTreeSet<u32> =
            crate::overage_files::pending_releases(&self.state)
                .into_iter()
                .map(|(t, _)| t)
                .collect();
        for &tenant in requests.difference(&self.requests_seen) {
            out.push(Input::ReleaseRequested { tenant });
        }
        self.requests_seen = requests;
        if crate::transit_files::take_relax(&self.state) {
            // `transit relax` reads the outcome from the state file and
            // the log; nobody waits on this answer.
            let (reply, _answer) = oneshot::channel();
            out.push(self.command(Command::TransitRelax, reply));
        }
        if let Some(mut g) = self.guard.take() {
            out.extend(g.requests(&mut |c, reply| self.command(c, reply)));
            self.guard = Some(g);
        }
        out
    }

    /// Hands the guard's tap (or none) to the flow collector, after the
    /// guard's input changed.
    fn connect_flow_tap(&mut self) {
        let tap = self.guard.as_ref().and_then(|g| g.flow_tap());
        match &self.flows {
            Some(books) => books.set_tap(tap),
            None if tap.is_some() => tracing::error!(
                "guard: `flows = true` but the flow collector is not running (started without flows, or [flows] added since the start): the guard sees no traffic"
            ),
            None => {}
        }
    }

    /// Stops the flow collector: drains its sockets and commits.
    pub fn stop_flows(&mut self) {
        if let Some(books) = self.flows.take() {
            match books.stop() {
                Ok(c) => tracing::info!(samples = c.samples, "flows drained and committed"),
                Err(e) => tracing::error!("flow collector: {e}"),
            }
        }
    }

    /// Before the process exits.
    pub fn finish(&mut self) {
        self.send_answers();
        self.stop_flows();
        if let Some(g) = &mut self.guard {
            g.finish();
        }
        if let Some(l) = &mut self.latency {
            l.finish();
        }
    }

    /// Carries out one effect.
    pub fn execute(&mut self, engine: &Engine, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Observe => Some(self.observe()),
            Effect::ReadCounters => Some(match crate::class_counters::read(&mut self.dp) {
                Ok(c) => Input::CountersRead {
                    counters: c
                        .into_iter()
                        .map(|(k, c)| (k, c.bytes, c.packets))
                        .collect(),
                },
                Err(e) => Input::ReadFailed {
                    error: e.to_string(),
                },
            }),
            Effect::Converge { desired, watched } => {
                let applied = self.converge(&desired, &watched);
                // The XDP drop list beside the plan; a fresh one is empty
                // of the guard's entries until the rungs put them back.
                if !crate::xdp_list::converge(engine.policy())
                    .attached
                    .is_empty()
                {
                    if let Some(g) = &self.guard {
                        g.reassert();
                    }
                }
                Some(applied)
            }
            Effect::Store(b) => {
                crate::crash_point::reached("store-commit");
                let fresh_marker = self.begin_copy(b.sequence);
                let r = self.store.append(&history::Batch {
                    sequence: b.sequence,
                    samples: &b.samples,
                    coverage: &b.coverage,
                    state: &b.state,
                });
                crate::crash_point::reached("store-committed");
                self.keep_copy(&r, fresh_marker, b.sequence, &b.state);
                Some(Input::Stored(match r {
                    Ok(report) => Stored::Committed {
                        sequence: b.sequence,
                        refused: report.refused.iter().map(ToString::to_string).collect(),
                    },
                    // The state stored with `last` tells the engine
                    // whether an earlier try of this batch landed.
                    Err(history::StoreError::AlreadyAppended { last, .. }) => {
                        let state = match self.store.last_state() {
                            Ok(Some(s)) if s.sequence == last => Some(s.blob),
                            _ => None,
                        };
                        Stored::AlreadyAppended { last, state }
                    }
                    Err(e) => Stored::Failed {
                        error: e.to_string(),
                    },
                }))
            }
            Effect::AssessOverage(q) => Some(Input::OverageAssessed(Box::new(
                overage_watch::assess(&mut self.overage_watch, &self.store, &q),
            ))),
            Effect::AssessTransit { at } => Some(Input::TransitAssessed(Box::new(
                super::transit::assess(engine.policy(), &*self.store, at),
            ))),
            Effect::SaveTransit(s) => {
                if let Err(e) = crate::transit_files::save(&self.state, &s) {
                    tracing::error!("{e}");
                }
                None
            }
            Effect::SaveRecords(r) => {
                if let Err(e) = crate::overage_files::save(&self.state, &r) {
                    tracing::error!("{e}");
                }
                None
            }
            Effect::WritePolicy { previous, text } => Some(Input::PolicyWritten {
                error: self
                    .write_policy(&previous, &text)
                    .err()
                    .map(|e| e.to_string()),
            }),
            Effect::ReadPolicy => Some(match crate::policy_file::read_policy_text(&self.config) {
                Ok(t) => Input::PolicyRead(Box::new(t)),
                Err(e) => Input::PolicyUnreadable {
                    error: e.to_string(),
                },
            }),
            Effect::RemoveReleaseRequest { tenant } => {
                let path = self.state.overage_requests().join(tenant.to_string());
                if path.exists() {
                    crate::overage_files::remove_request(&path);
                }
                None
            }
            Effect::CommitFlows => Some(match &mut self.flows {
                Some(books) => match books.commit() {
                    Ok(c) => Input::FlowsCommitted {
                        samples: c.samples as u64,
                        error: None,
                    },
                    Err(e) => Input::FlowsCommitted {
                        samples: 0,
                        error: Some(e),
                    },
                },
                None => Input::FlowsCommitted {
                    samples: 0,
                    error: None,
                },
            }),
            Effect::RebuildFlowTables => {
                if let Some(books) = &mut self.flows {
                    if let Err(e) = books.reload(engine.policy(), engine.route_realms()) {
                        tracing::error!("flow collector: {e}");
                    }
                } else if engine.policy().flows.is_some() {
                    tracing::warn!(
                        "[flows] was added to the policy; the collector starts at the next restart"
                    );
                }
                None
            }
            Effect::Maintain => {
                self.maintain(engine);
                None
            }
            Effect::StoreLatency(minutes) => {
                let r = self.store.append_latency(&minutes);
                Some(Input::Latency(match r {
                    Ok(report) => engine::latency::LatencyInput::Stored {
                        stored: report.stored,
                        refused: report.refused.iter().map(ToString::to_string).collect(),
                        error: None,
                    },
                    Err(e) => engine::latency::LatencyInput::Stored {
                        stored: 0,
                        refused: Vec::new(),
                        error: Some(e.to_string()),
                    },
                }))
            }
            Effect::Reply { id, answer } => {
                if let Some(tx) = self.replies.remove(&id) {
                    self.answers.push((tx, answer));
                }
                None
            }
            Effect::Event(e) => {
                match e.level {
                    Level::Info => {
                        tracing::info!(kind = %e.kind, tenant = %e.tenant.map_or(String::new(), |t| t.to_string()), "{}", e.message)
                    }
                    Level::Warn => {
                        tracing::warn!(kind = %e.kind, tenant = %e.tenant.map_or(String::new(), |t| t.to_string()), "{}", e.message)
                    }
                    Level::Error => {
                        tracing::error!(kind = %e.kind, tenant = %e.tenant.map_or(String::new(), |t| t.to_string()), "{}", e.message)
                    }
                }
                None
            }
            Effect::Guard(g) => {
                let capture = matches!(g, engine::guard::GuardEffect::Capture { .. });
                match &mut self.guard {
                    Some(shell) => {
                        shell.execute(g);
                        for record in shell.take_ended() {
                            self.record_attack(&record);
                        }
                    }
                    None => tracing::error!("a guard effect before the guard's shell exists"),
                }
                if capture {
                    self.connect_flow_tap();
                }
                None
            }
            Effect::Latency(l) => {
                match &mut self.latency {
                    Some(shell) => shell.execute(l),
                    None => tracing::error!("a latency effect before latency's shell exists"),
                }
                None
            }
            Effect::AddBatch { id, batch } => {
                Some(super::shipper::add(&mut *self.store, id, &batch))
            }
            Effect::SaveAgents { agents } => {
                super::shipper::save_agents(&self.state, &agents);
                None
            }
            Effect::Exit { code } => {
                self.exit = Some(code);
                None
            }
        }
    }

    fn observe(&mut self) -> Input {
        let observed = match self.dp.observe(&plan::Plan::default()) {
            Ok(o) => o,
            Err(e) => {
                self.observed = None;
                return Input::ReadFailed {
                    error: format!("cannot observe the kernel: {e}"),
                };
            }
        };
        if self.offline.prune(&observed.ifindex) {
            if let Err(e) = self.offline.save(&self.state) {
                tracing::error!("{e}");
            }
        }
        let offline = self.offline.names();
        let o = Observation {
            interfaces: observed
                .ifindex
                .keys()
                .filter(|i| !offline.contains(i))
                .copied()
                .collect(),
            bridges: crate::reconciler::bridges(&observed),
            foreign_roots: crate::reconciler::foreign_roots(&observed),
            offline,
            live: compiler::Live::from_plan(&observed.plan),
            counters: observed
                .stats
                .iter()
                .map(|(k, s)| (*k, s.bytes, s.packets))
                .collect(),
        };
        self.observed = Some(observed);
        Input::Observed(Box::new(o))
    }

    fn converge(
        &mut self,
        desired: &plan::Plan,
        watched: &[(accounting::ObjectIdentity, accounting::UsageKey)],
    ) -> Input {
        let started = Instant::now();
        let Some(observed) = self.observed.take() else {
            return Input::Applied(Box::new(Applied {
                changes: 0,
                applied: 0,
                failed: Vec::new(),
                readings: Vec::new(),
                created: Vec::new(),
                elapsed_ms: 0.0,
                error: Some("no observation to converge from".into()),
            }));
        };
        let observed_plan = observed.plan_for(desired);
        let changes = plan::diff(desired, &observed_plan);
        let mut applied = Applied {
            changes: changes.len(),
            applied: 0,
            failed: Vec::new(),
            readings: Vec::<TimedReadings>::new(),
            created: Vec::new(),
            elapsed_ms: 0.0,
            error: None,
        };
        if !changes.is_empty() {
            let watched: HashMap<_, _> = watched.iter().copied().collect();
            let clock = self.clock;
            match super::kernel::apply_keeping_counts(
                &mut self.dp,
                &changes,
                &observed_plan,
                &watched,
                &|| clock.now(),
            ) {
                Ok((report, readings)) => {
                    // A guard set this round created is empty: the rungs
                    // in place put their elements (back) in it.
                    // So is a fresh eBPF classifier's victims map (its
                    // `tg_config` is new with it).
                    let new_guard_set = changes.changes.iter().any(|c| {
                        matches!(c, plan::Change::AddMap { kind, .. }
                            if kind.is_guard_set() || *kind == plan::MapKind::BpfConfig)
                    });
                    if new_guard_set {
                        if let Some(g) = &self.guard {
                            g.reassert();
                        }
                    }
                    applied.applied = report.applied;
                    applied.failed = report
                        .failed
                        .iter()
                        .map(|f| (f.object.to_string(), f.message.clone()))
                        .collect();
                    applied.readings = readings;
                    // Only the classes the kernel made: one refused (it
                    // was there already, say) holds traffic from before.
                    applied.created = changes
                        .changes
                        .iter()
                        .filter_map(|c| match c {
                            plan::Change::AddClass { key, .. }
                                if !report
                                    .failed
                                    .iter()
                                    .any(|f| f.object == c.object().to_string()) =>
                            {
                                Some(*key)
                            }
                            _ => None,
                        })
                        .collect();
                }
                Err(e) => applied.error = Some(e.to_string()),
            }
        }
        applied.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        Input::Applied(Box::new(applied))
    }

    /// Replaces the policy file, unless it changed on disk since the
    /// engine loaded it (an operator's edit that was not reloaded yet must
    /// not be overwritten).
    fn write_policy(&self, previous: &str, text: &str) -> Result<()> {
        let now = crate::policy_file::read_text(&self.config)?;
        if now != previous {
            return Err(crate::error::Error::invalid(format!(
                "{} changed on disk since the daemon loaded it",
                self.config.display()
            ))
            .hint("reload the daemon (SIGHUP or POST /api/v1/reload), then try again"));
        }
        crate::crash_point::reached("policy-edit");
        crate::state_dir::replace_atomically(&self.config, text.as_bytes())?;
        crate::crash_point::reached("policy-edited");
        Ok(())
    }

    /// The history's retention, then folding complete days into one row
    /// per tenant, so that reading a tenant's month is 31 reads instead of
    /// 744 (bounded per call; the next hour continues where this stopped).
    fn maintain(&mut self, engine: &Engine) {
        let r = engine.settings().retention;
        let r = history::Retention {
            raw: r.raw,
            hourly: r.hourly,
            daily: r.daily,
        };
        let now = self.clock.now();
        match self.store.apply_retention(now, &r) {
            Ok(rep) if rep.samples_deleted + rep.hourly_deleted + rep.daily_deleted > 0 => {
                tracing::info!(
                    samples = rep.samples_deleted,
                    hourly = rep.hourly_deleted,
                    daily = rep.daily_deleted,
                    "retention applied"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot apply the retention"),
        }
        match self.store.compact(now, 20_000) {
            Ok(rep) if rep.tenant_days + rep.hour_days > 0 => {
                tracing::info!(
                    tenant_days = rep.tenant_days,
                    hour_days = rep.hour_days,
                    "history compacted"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot compact the history"),
        }
    }
}
