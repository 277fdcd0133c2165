//! The engine: `handle(now, input) -> effects`.
//!
//! It decides; the shell does. Each input is something that happened (a
//! timer, a signal, the answer to an earlier effect, a command), and the
//! effects are what the shell must do next, in order. The shell answers
//! an effect that asks a question (observe, read, store, write) with an
//! input before it gives the engine anything else, so the engine never
//! has two questions out at once and needs no locks or queues of its own.
//!
//! Time is an argument: the engine never reads a clock, so a recorded run
//! replays to the same effects, and a test can make a month pass in a
//! second.

use crate::books::Books;
use crate::feeds::{self, Feeds};
use crate::io::{
    Answer, Applied, Assessment, Command, Effect, Event, Input, Intervals, Level, Observation,
    PolicyText, Start, Stored,
};
use crate::overage::{self, Write, WriteKind};
use crate::records::Records;
use crate::snapshot::{Counts, Snapshot};
use compiler::{Compiled, HostFacts, Live};
use jiff::{SignedDuration, Timestamp};
use net_types::{IfName, Prefix, RealmId};
use plan::ClassKey;
use policy::{Loaded, Policy};
use settings::Settings;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// How many events the engine keeps for the dashboard.
const EVENTS_KEPT: usize = 200;

/// How often the history's retention and compaction run.
const MAINTAIN_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// The policy the kernel is reconciled with.
pub(crate) struct Running {
    pub text: PolicyText,
    pub loaded: Loaded,
    pub policy: Arc<Policy>,
}

impl Running {
    /// Loads `text`; an invalid policy comes back as loaded, with its
    /// diagnostics.
    pub(crate) fn load(text: PolicyText) -> Result<Running, Box<Loaded>> {
        let loaded = text.load();
        match loaded.policy.clone() {
            Some(p) => Ok(Running {
                text,
                loaded,
                policy: Arc::new(p),
            }),
            None => Err(Box::new(loaded)),
        }
    }
}

/// When each kind of periodic work is due next.
#[derive(Clone, Copy)]
struct Due {
    reconcile: Timestamp,
    read: Timestamp,
    overage: Timestamp,
    transit: Timestamp,
    maintain: Timestamp,
}

/// The daemon's decisions.
pub struct Engine {
    intervals: Intervals,
    file_settings: Settings,
    pub(crate) settings: Settings,
    pub(crate) running: Running,
    realms: Arc<Vec<(Prefix, RealmId)>>,
    routes_error: Option<String>,
    interfaces: Option<BTreeSet<IfName>>,
    offline: BTreeSet<IfName>,
    bridges: Option<std::collections::BTreeMap<IfName, Vec<IfName>>>,
    /// Interfaces whose root qdisc is someone else's, from the last
    /// observation (`shape_on = "interface"` refuses to take them).
    foreign_roots: std::collections::BTreeMap<IfName, String>,
    live: Live,
    compiled: Option<Arc<Compiled>>,
    pub(crate) feeds: Feeds,
    books: Books,
    /// The last two counter readings: when, and bytes per class.
    readings: VecDeque<crate::snapshot::Reading>,
    due: Due,
    pub(crate) records: Records,
    pub(crate) releases: BTreeSet<u32>,
    /// A policy write waiting for [`Input::PolicyWritten`].
    write: Option<Write>,
    /// Commands answered once the next reconcile round is done.
    pub(crate) after_apply: Vec<(u64, String)>,
    /// `Reload` commands answered when the policy has been read.
    after_reload: Vec<u64>,
    /// Whether the last policy change still has to reach the kernel (so
    /// the next round's changes are the policy's, not drift).
    pub(crate) policy_changed: bool,
    /// Counts the policy's changes; the round under way converges to the
    /// change numbered `converging`. A change that lands while a round
    /// is out (a transit step decided between its `Converge` and its
    /// `Applied`) stays "the policy's" for the next round.
    pub(crate) policy_changes: u64,
    converging: u64,
    flows: bool,
    stopping: bool,
    pub(crate) counts: Counts,
    events: VecDeque<Event>,
    /// Agents' batches seen since start (a central tollgate).
    pub(crate) agents: crate::shipping::Agents,
    last_apply: Option<Applied>,
    started: Timestamp,
    pub(crate) guard: crate::guard::Guard,
    /// The transit guard's steps (`crate::transit_run`).
    pub(crate) transit: crate::transit_run::TransitState,
    pub(crate) latency: crate::latency::Latency,
}

impl Engine {
    /// Starts from what the shell read at start-up. Returns the engine, or
    /// why it cannot start (an invalid policy, a damaged history), and the
    /// first effects.
    pub fn start(now: Timestamp, s: Start) -> Result<(Engine, Vec<Effect>), String> {
        let file_settings = match &s.settings {
            Some(t) => Settings::parse(&t.name, &t.text).map_err(|e| e.to_string())?,
            None => Settings::defaults(),
        };
        let running = Running::load(s.policy).map_err(|loaded| {
            format!(
                "the policy is invalid\n{}  hint: `tollgate check` lists the same problems",
                loaded.render()
            )
        })?;
        let settings = Settings::resolve(file_settings.clone(), Some(&running.loaded))
            .map_err(|e| e.to_string())?;
        let books = Books::open(settings.accountant, s.resume.as_ref())?;
        let mut e = Engine {
            intervals: s.intervals,
            file_settings,
            settings,
            running,
            realms: Arc::new(Vec::new()),
            routes_error: None,
            interfaces: None,
            offline: BTreeSet::new(),
            bridges: None,
            foreign_roots: Default::default(),
            live: Live::default(),
            compiled: None,
            feeds: Feeds::new(),
            books,
            readings: VecDeque::new(),
            due: Due {
                reconcile: now,
                read: now,
                overage: now,
                transit: now,
                maintain: now,
            },
            records: s.records,
            releases: BTreeSet::new(),
            write: None,
            after_apply: Vec::new(),
            after_reload: Vec::new(),
            policy_changed: true,
            policy_changes: 0,
            converging: 0,
            flows: s.flows,
            stopping: false,
            counts: Counts::default(),
            events: VecDeque::new(),
            agents: Default::default(),
            last_apply: None,
            started: now,
            guard: Default::default(),
            transit: s.transit,
            latency: Default::default(),
        };
        let mut out = Vec::new();
        // Finish or forget what a crash interrupted, by what the policy
        // says now (see `records`).
        let policy = e.running.policy.clone();
        if e.records.settle(|id| {
            policy
                .tenant(net_types::TenantId(id))
                .map(|t| t.plan.clone())
        }) {
            out.push(Effect::SaveRecords(e.records.clone()));
        }
        e.event(
            &mut out,
            now,
            Level::Info,
            "started",
            format!(
                "tollgate daemon starting: {} tenants; settings: {}",
                e.running.policy.tenants.len(),
                e.settings.source
            ),
            None,
        );
        e.guard_policy(now, &mut out);
        e.latency_policy(now, &mut out);
        out.extend(e.handle(now, Input::Tick));
        Ok((e, out))
    }

    /// When the engine next has work, for the shell's timer.
    pub fn next_due(&self) -> Timestamp {
        let d = self.due;
        let mut t = d.reconcile.min(d.read).min(d.maintain);
        if self.settings.overage.enabled {
            t = t.min(d.overage);
        }
        if crate::transit_run::mode(&self.running.policy) != policy::TransitGuardMode::Off {
            t = t.min(d.transit);
        }
        t
    }

    /// The running policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.running.policy
    }

    /// The running policy's text and prefix files.
    pub fn policy_text(&self) -> &PolicyText {
        &self.running.text
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The realms of the routes table in force.
    pub fn route_realms(&self) -> &Arc<Vec<(Prefix, RealmId)>> {
        &self.realms
    }

    /// What the API and the metrics show.
    pub fn snapshot(&self, now: Timestamp) -> Snapshot {
        let rates = match (self.readings.front(), self.readings.back()) {
            (Some(a), Some(b)) if self.readings.len() == 2 => Some((a.clone(), b.clone())),
            _ => None,
        };
        Snapshot {
            now,
            started: self.started,
            policy: self.running.policy.clone(),
            settings: Arc::new(self.settings.clone()),
            compiled: self.compiled.clone(),
            feeds: Arc::new(crate::transit::tenants_only(&self.feeds)),
            rates,
            counts: self.counts.clone(),
            counters_tracked: self.books.counters(),
            pending_samples: self.books.pending(),
            committed_sequence: self.books.committed_sequence(),
            last_apply: self.last_apply.clone(),
            routes_error: self.routes_error.clone(),
            records: self.records.clone(),
            events: self.events.iter().cloned().collect(),
            guard: self.guard_view().map(Arc::new),
            transit: Arc::new(crate::transit_run::TransitView::new(
                crate::transit_run::mode(&self.running.policy),
                self.transit.clone(),
            )),
            latency: self.latency_view(),
            agents: self.agents.clone(),
        }
    }

    pub(crate) fn event(
        &mut self,
        out: &mut Vec<Effect>,
        at: Timestamp,
        level: Level,
        kind: &str,
        message: String,
        tenant: Option<u32>,
    ) {
        let e = Event {
            at,
            level,
            kind: kind.to_string(),
            message,
            tenant,
        };
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(e.clone());
        out.push(Effect::Event(e));
    }

    /// Handles one input; returns what the shell must do, in order.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Start(_) => self.event(
                &mut out,
                now,
                Level::Warn,
                "ignored",
                "the engine is already started".into(),
                None,
            ),
            Input::Tick => self.poll(now, &mut out),
            Input::Observed(o) => self.observed(now, *o, &mut out),
            Input::CountersRead { counters } => {
                self.counts.reads += 1;
                self.account_counters(now, Arc::new(counters), &mut out);
                self.store(&mut out);
            }
            Input::ReadFailed { error } => {
                self.event(&mut out, now, Level::Error, "read_failed", error, None);
                if self.stopping {
                    out.push(Effect::Exit { code: 1 });
                }
            }
            Input::Applied(a) => self.applied(now, *a, &mut out),
            Input::Stored(s) => self.stored(now, s, &mut out),
            Input::BatchAdded {
                id,
                writer,
                sequence,
                last_slot,
                bytes,
                outcome,
            } => crate::shipping::added(
                self,
                now,
                id,
                crate::shipping::Received {
                    writer,
                    sequence,
                    last_slot,
                    bytes,
                },
                outcome,
                &mut out,
            ),
            Input::AgentsRestored { agents } => {
                // What arrived since start is newer than what was saved.
                for (writer, seen) in agents {
                    self.agents.entry(writer).or_insert(seen);
                }
            }
            Input::RoutesChanged { realms } => {
                self.realms = Arc::new(realms);
                self.routes_error = None;
                if self.flows {
                    out.push(Effect::RebuildFlowTables);
                }
                self.due.reconcile = now;
                self.poll(now, &mut out);
            }
            Input::RoutesUnreadable { error } => {
                if self.routes_error.as_deref() != Some(error.as_str()) {
                    self.event(
                        &mut out,
                        now,
                        Level::Error,
                        "routes_unreadable",
                        format!("{error}; the last good routes table is kept"),
                        None,
                    );
                }
                self.routes_error = Some(error);
            }
            Input::PolicyRead(text) => self.reload(now, *text, &mut out),
            Input::PolicyUnreadable { error } => {
                self.counts.reloads_refused += 1;
                self.event(
                    &mut out,
                    now,
                    Level::Error,
                    "reload_refused",
                    format!("reload refused, the running policy is kept: {error}"),
                    None,
                );
                for id in std::mem::take(&mut self.after_reload) {
                    out.push(Effect::Reply {
                        id,
                        answer: Answer::Failed {
                            message: error.clone(),
                        },
                    });
                }
            }
            Input::OverageAssessed(a) => self.assessed(now, *a, &mut out),
            Input::TransitAssessed(a) => {
                self.transit_assessed(now, *a, &mut out);
                self.poll(now, &mut out);
            }
            Input::ReleaseRequested { tenant } => {
                if self.records.moves.iter().any(|m| m.tenant == tenant)
                    && self.releases.insert(tenant)
                {
                    self.due.overage = now;
                    self.poll(now, &mut out);
                } else if !self.records.moves.iter().any(|m| m.tenant == tenant) {
                    // Nothing to release (already back): the request is done.
                    out.push(Effect::RemoveReleaseRequest { tenant });
                }
            }
            Input::PolicyWritten { error } => self.written(now, error, &mut out),
            Input::FlowsCommitted { samples, error } => {
                self.counts.flow_samples += samples;
                if let Some(e) = error {
                    self.event(&mut out, now, Level::Error, "flows_failed", e, None);
                }
            }
            // A ban must not wait for a policy write (it edits no file).
            Input::Command {
                id,
                command: Command::Guard { guard },
            } => self.guard_command(now, id, guard, &mut out),
            // Nor does a relax of the transit guard (its steps are not in
            // the file).
            Input::Command {
                id,
                command: Command::TransitRelax,
            } => {
                self.transit_relax(now, id, &mut out);
                self.poll(now, &mut out);
            }
            Input::Command { id, command } => self.command(now, id, command, &mut out),
            Input::Guard(g) => self.guard_input(now, g, &mut out),
            Input::Latency(l) => self.latency_input(now, l, &mut out),
            Input::Stop => {
                self.stopping = true;
                self.guard_stop(&mut out);
                self.latency_flush(&mut out);
                self.event(
                    &mut out,
                    now,
                    Level::Info,
                    "stopped",
                    "stopping: reading the counters one last time".into(),
                    None,
                );
                if self.flows {
                    out.push(Effect::CommitFlows);
                }
                out.push(Effect::ReadCounters);
            }
        }
        out
    }

    /// Starts whatever periodic work is due.
    fn poll(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        if self.stopping || self.write.is_some() {
            return;
        }
        let ms = |n: u64| SignedDuration::from_millis(n.min(i64::MAX as u64) as i64);
        if now >= self.due.reconcile {
            self.due.reconcile = now + ms(self.intervals.reconcile_ms);
            self.due.read = now + ms(self.intervals.read_ms);
            out.push(Effect::Observe);
        } else if now >= self.due.read {
            self.due.read = now + ms(self.intervals.read_ms);
            out.push(Effect::ReadCounters);
        } else {
            return self.poll_rest(now, out);
        }
        if self.flows {
            out.push(Effect::CommitFlows);
        }
        self.poll_rest(now, out);
    }

    fn poll_rest(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        if self.settings.overage.enabled && now >= self.due.overage {
            let every = SignedDuration::try_from(self.settings.overage.check_every)
                .unwrap_or(SignedDuration::from_hours(1));
            self.due.overage = now + every;
            match overage::question(self, now) {
                Ok(q) => out.push(Effect::AssessOverage(Box::new(q))),
                Err(e) => self.event(out, now, Level::Error, "overage_failed", e, None),
            }
        }
        if crate::transit_run::mode(&self.running.policy) != policy::TransitGuardMode::Off
            && now >= self.due.transit
        {
            self.due.transit = crate::transit_run::next_check(now);
            out.push(Effect::AssessTransit { at: now });
        }
        if now >= self.due.maintain {
            self.due.maintain = now + MAINTAIN_EVERY;
            out.push(Effect::Maintain);
        }
    }

    fn account_counters(
        &mut self,
        now: Timestamp,
        counters: Arc<Vec<(ClassKey, u64, u64)>>,
        out: &mut Vec<Effect>,
    ) {
        if let Err(e) = self.books.account_counters(now, &self.feeds, &counters) {
            self.event(out, now, Level::Warn, "read_refused", e, None);
        }
        if self.readings.len() == 2 {
            self.readings.pop_front();
        }
        self.readings.push_back((now, counters));
    }

    fn store(&mut self, out: &mut Vec<Effect>) {
        let batch = self.books.batch();
        self.books.tried(&batch);
        out.push(Effect::Store(batch));
    }

    /// A reconcile round's observation: account it, compile against it,
    /// and converge.
    fn observed(&mut self, now: Timestamp, o: Observation, out: &mut Vec<Effect>) {
        self.interfaces = Some(o.interfaces.clone());
        self.live = o.live;
        self.offline = o.offline;
        self.bridges = Some(o.bridges);
        self.foreign_roots = o.foreign_roots;
        let facts = HostFacts {
            interfaces: Some(o.interfaces),
            live: self.live.clone(),
            route_realms: self.realms.to_vec(),
            bridges: self.bridges.clone(),
            offline: self.offline.clone(),
            foreign_roots: self.foreign_roots.clone(),
        };
        // The policy with the transit guard's steps in force.
        let effective = crate::transit_run::effective(&self.running.policy, &self.transit);
        let compiled = compiler::compile(&effective, &facts);
        self.counts.reads += 1;
        match compiled {
            Ok(c) => {
                // A round that cannot compile must not stop the accounting:
                // it reads with the classes last known.
                self.feeds = feeds::feeds(&c);
                self.feeds.extend(crate::transit::unclassified(&c));
                self.account_counters(now, Arc::new(o.counters), out);
                self.store(out);
                let c = Arc::new(c);
                self.converging = self.policy_changes;
                out.push(Effect::Converge {
                    desired: Arc::new(c.plan.clone()),
                    watched: self.books.watched(),
                });
                self.compiled = Some(c);
            }
            Err(diags) => {
                self.account_counters(now, Arc::new(o.counters), out);
                self.store(out);
                let text: String = diags
                    .iter()
                    .map(|d| d.render(&self.running.loaded.sources))
                    .collect();
                self.event(
                    out,
                    now,
                    Level::Error,
                    "compile_failed",
                    format!("the running policy cannot be compiled for this host; the kernel was not changed\n{text}"),
                    None,
                );
                self.answer_after_apply(out, 0, 0);
            }
        }
    }

    fn answer_after_apply(&mut self, out: &mut Vec<Effect>, applied: usize, failed: usize) {
        for (id, message) in std::mem::take(&mut self.after_apply) {
            out.push(Effect::Reply {
                id,
                answer: Answer::Done {
                    message,
                    applied,
                    failed,
                },
            });
        }
    }

    fn applied(&mut self, now: Timestamp, a: Applied, out: &mut Vec<Effect>) {
        self.counts.reconciles += 1;
        self.counts.changes_applied += a.applied as u64;
        self.counts.changes_failed += a.failed.len() as u64;
        self.counts.round_ms = a.elapsed_ms;
        self.books.created(now, &a.created);
        for r in &a.readings {
            if let Err(e) = self.books.account(r.at, &r.readings) {
                self.event(out, now, Level::Warn, "read_refused", e, None);
            }
        }
        if !a.readings.is_empty() {
            self.store(out);
        }
        if let Some(e) = &a.error {
            self.event(out, now, Level::Error, "apply_failed", e.clone(), None);
        } else if a.changes > 0 {
            let kind = if self.policy_changed {
                "policy_applied"
            } else {
                "drift_repaired"
            };
            let what = if self.policy_changed {
                "applied the policy's changes"
            } else {
                "repaired the kernel (it had drifted from the policy)"
            };
            let level = if a.failed.is_empty() {
                Level::Info
            } else {
                Level::Warn
            };
            let mut message = format!(
                "{what}: {} changes, {} applied, {} failed in {:.1} ms",
                a.changes,
                a.applied,
                a.failed.len(),
                a.elapsed_ms
            );
            for (object, m) in &a.failed {
                message.push_str(&format!("\n  {object}: {m}; retried next round"));
            }
            self.event(out, now, level, kind, message, None);
        }
        if a.error.is_none() && a.failed.is_empty() && self.converging == self.policy_changes {
            self.policy_changed = false;
        }
        self.answer_after_apply(out, a.applied, a.failed.len());
        self.last_apply = Some(a);
    }

    fn stored(&mut self, now: Timestamp, s: Stored, out: &mut Vec<Effect>) {
        match s {
            Stored::Committed { sequence, refused } => {
                let n = self.books.committed(sequence);
                if !refused.is_empty() {
                    self.counts.samples_refused += refused.len() as u64;
                    let shown: Vec<&str> = refused.iter().take(5).map(String::as_str).collect();
                    self.event(
                        out,
                        now,
                        Level::Warn,
                        "samples_refused",
                        format!(
                            "the history refused {} samples of batch {sequence} (kept aside in its quarantine; the rest is committed): {}",
                            refused.len(),
                            shown.join("; ")
                        ),
                        None,
                    );
                }
                self.counts.samples_written += n as u64;
                self.counts.batches_written += 1;
                self.counts.last_commit = Some(now);
                if self.stopping {
                    self.event(
                        out,
                        now,
                        Level::Info,
                        "stopped",
                        "accounting flushed; exiting".into(),
                        None,
                    );
                    out.push(Effect::Exit { code: 0 });
                }
            }
            Stored::AlreadyAppended {
                last,
                state: Some(state),
            } if self.books.committed_sequence() + 1 == last => {
                let Some(n) = self.books.landed(last, &state) else {
                    return self.stored(now, Stored::AlreadyAppended { last, state: None }, out);
                };
                self.counts.samples_written += n as u64;
                self.counts.batches_written += 1;
                self.counts.last_commit = Some(now);
                self.event(
                    out,
                    now,
                    Level::Warn,
                    "store_landed",
                    format!(
                        "batch {last} was committed by an earlier try whose answer was lost; its {n} samples count once, the {} closed since go with the next batch",
                        self.books.pending()
                    ),
                    None,
                );
                if self.books.pending() > 0 {
                    self.store(out);
                } else if self.stopping {
                    out.push(Effect::Exit { code: 0 });
                }
            }
            Stored::AlreadyAppended { last, .. } => {
                self.books.skip_to(last);
                self.counts.batch_failures += 1;
                self.event(out, now, Level::Error, "store_failed", format!("the history already holds batch {last}; is another daemon writing to the same --state-dir?"), None);
                if self.stopping {
                    out.push(Effect::Exit { code: 1 });
                }
            }
            Stored::Failed { error } => {
                self.counts.batch_failures += 1;
                self.event(
                    out,
                    now,
                    Level::Error,
                    "store_failed",
                    format!(
                        "cannot commit the accounting batch ({} samples pending); it is kept and retried with the next one: {error}",
                        self.books.pending()
                    ),
                    None,
                );
                if self.stopping {
                    out.push(Effect::Exit { code: 1 });
                }
            }
        }
    }

    /// Compiles `policy` against the last observation, to refuse one that
    /// cannot work on this host before it replaces the running one.
    fn compiles_here(&self, policy: &Policy, loaded: &Loaded) -> Result<(), String> {
        let facts = HostFacts {
            interfaces: self.interfaces.clone(),
            live: self.live.clone(),
            route_realms: self.realms.to_vec(),
            bridges: self.bridges.clone(),
            offline: self.offline.clone(),
            foreign_roots: self.foreign_roots.clone(),
        };
        compiler::compile(policy, &facts).map(|_| ()).map_err(|d| {
            format!(
                "the policy cannot be compiled for this host\n{}",
                d.iter()
                    .map(|d| d.render(&loaded.sources))
                    .collect::<String>()
            )
        })
    }

    /// Takes `next` as the running policy (it is valid and compiles).
    pub(crate) fn take_policy(
        &mut self,
        now: Timestamp,
        next: Running,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let settings = Settings::resolve(self.file_settings.clone(), Some(&next.loaded))
            .map_err(|e| e.to_string())?;
        self.running = next;
        self.settings = settings;
        self.policy_changed = true;
        self.policy_changes += 1;
        self.guard_policy(now, out);
        self.transit_policy(now, out);
        self.latency_policy(now, out);
        if self.flows {
            out.push(Effect::RebuildFlowTables);
        }
        self.due.reconcile = now;
        Ok(())
    }

    /// The next round starts now.
    pub(crate) fn due_reconcile_now(&mut self, now: Timestamp) {
        self.due.reconcile = now;
    }

    /// A new policy: the transit guard checks again at once (its mode or
    /// upstreams may have changed); switched off, its steps go.
    fn transit_policy(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        self.due.transit = now;
        if crate::transit_run::mode(&self.running.policy) == policy::TransitGuardMode::Off {
            self.transit_off(now, out);
        }
    }

    fn reload(&mut self, now: Timestamp, text: PolicyText, out: &mut Vec<Effect>) {
        let result = match Running::load(text) {
            Err(loaded) => Err(format!("the policy is invalid\n{}", loaded.render())),
            Ok(next) => self
                .compiles_here(&next.policy, &next.loaded)
                .and_then(|()| self.take_policy(now, next, out)),
        };
        let replies = std::mem::take(&mut self.after_reload);
        match result {
            Ok(()) => {
                self.counts.reloads_ok += 1;
                self.event(
                    out,
                    now,
                    Level::Info,
                    "reload",
                    "policy reloaded".into(),
                    None,
                );
                self.after_apply.extend(
                    replies
                        .into_iter()
                        .map(|id| (id, "policy reloaded".to_string())),
                );
                self.poll(now, out);
            }
            Err(e) => {
                self.counts.reloads_refused += 1;
                self.event(
                    out,
                    now,
                    Level::Error,
                    "reload_refused",
                    format!("reload refused, the running policy is kept: {e}"),
                    None,
                );
                for id in replies {
                    out.push(Effect::Reply {
                        id,
                        answer: Answer::Invalid {
                            message: e.clone(),
                            diagnostics: Vec::new(),
                        },
                    });
                }
            }
        }
    }

    /// Begins a policy write: the records first when the write is the
    /// automation's (see `records`), then the file.
    pub(crate) fn begin_write(&mut self, w: Write, out: &mut Vec<Effect>) {
        if let WriteKind::Overage(o) = &w.kind {
            out.push(Effect::SaveRecords(o.intent.clone()));
        }
        out.push(Effect::WritePolicy {
            previous: self.running.text.text.clone(),
            text: w.next.text.text.clone(),
        });
        self.write = Some(w);
    }

    fn written(&mut self, now: Timestamp, error: Option<String>, out: &mut Vec<Effect>) {
        let Some(w) = self.write.take() else {
            return;
        };
        match error {
            Some(e) => {
                if let WriteKind::Overage(o) = &w.kind {
                    out.push(Effect::SaveRecords(o.before.clone()));
                }
                if let Some(id) = w.reply {
                    out.push(Effect::Reply {
                        id,
                        answer: Answer::Failed {
                            message: format!("the policy file was not changed: {e}"),
                        },
                    });
                }
                self.event(out, now, Level::Error, "policy_write_failed", e, None);
            }
            None => {
                let summary = w.summary.clone();
                let reply = w.reply;
                let kind = w.kind;
                if let Err(e) = self.take_policy(now, w.next, out) {
                    self.event(out, now, Level::Error, "reload_refused", e, None);
                }
                if let WriteKind::Overage(o) = kind {
                    let o = *o;
                    overage::finished(self, now, o.after, o.done, out);
                } else {
                    self.event(out, now, Level::Info, "api_write", summary.clone(), None);
                }
                if let Some(id) = reply {
                    self.after_apply.push((id, summary));
                }
                self.poll(now, out);
            }
        }
    }

    fn assessed(&mut self, now: Timestamp, a: Assessment, out: &mut Vec<Effect>) {
        if let Some(e) = a.error {
            self.event(
                out,
                now,
                Level::Error,
                "overage_failed",
                format!("overage automation: {e}"),
                None,
            );
            return;
        }
        overage::decide(self, now, a, None, out);
    }

    fn command(&mut self, now: Timestamp, id: u64, command: Command, out: &mut Vec<Effect>) {
        // An agent's batch touches neither the policy nor the kernel: it
        // never waits for a policy write.
        if let Command::AddBatch(batch) = command {
            return out.push(Effect::AddBatch { id, batch });
        }
        if self.write.is_some() || self.stopping {
            out.push(Effect::Reply {
                id,
                answer: Answer::Failed {
                    message:
                        "another change is being written, or the daemon is stopping; try again"
                            .into(),
                },
            });
            return;
        }
        let edit = match command {
            // Carried out above, before the policy-write check.
            Command::AddBatch(_) => return,
            Command::Reload => {
                self.after_reload.push(id);
                out.push(Effect::ReadPolicy);
                return;
            }
            Command::Guard { guard } => {
                self.guard_command(now, id, guard, out);
                return;
            }
            Command::TransitRelax => {
                self.transit_relax(now, id, out);
                return;
            }
            Command::Release { tenant } => {
                if !self.records.moves.iter().any(|m| m.tenant == tenant) {
                    out.push(Effect::Reply {
                        id,
                        answer: Answer::NotFound {
                            message: format!(
                                "tenant {tenant} was not moved into the overage plan by the daemon"
                            ),
                        },
                    });
                    return;
                }
                self.releases.insert(tenant);
                overage::release_now(self, now, id, out);
                return;
            }
            Command::Move {
                tenant,
                plan,
                parent,
            } => crate::edit::Edit::Move {
                tenant,
                plan,
                parent,
            },
            Command::Change {
                tenant,
                down,
                up,
                commit,
            } => crate::edit::Edit::Shape {
                tenant,
                down,
                up,
                commit,
            },
        };
        let who = match &edit {
            crate::edit::Edit::Move { tenant, .. } | crate::edit::Edit::Shape { tenant, .. } => {
                tenant.clone()
            }
        };
        if !self
            .running
            .policy
            .tenants
            .iter()
            .any(|t| t.name == who || who.parse() == Ok(t.id.0))
        {
            out.push(Effect::Reply {
                id,
                answer: Answer::NotFound {
                    message: format!("no tenant has the id or name `{who}`"),
                },
            });
            return;
        }
        let text =
            match crate::edit::apply(&self.running.text.text, Some(&self.running.policy), &edit) {
                Ok(t) => t,
                Err(e) => {
                    out.push(Effect::Reply {
                        id,
                        answer: Answer::Invalid {
                            message: e.to_string(),
                            diagnostics: Vec::new(),
                        },
                    });
                    return;
                }
            };
        let next = match Running::load(self.running.text.with_text(text)) {
            Ok(n) => n,
            Err(loaded) => {
                out.push(Effect::Reply {
                    id,
                    answer: Answer::Invalid {
                        message: "the change would make the policy invalid; nothing was changed"
                            .into(),
                        diagnostics: loaded
                            .diagnostics
                            .iter()
                            .filter(|d| d.is_error())
                            .map(|d| d.to_record(&loaded.sources))
                            .filter_map(|r| serde_json::to_value(r).ok())
                            .collect(),
                    },
                });
                return;
            }
        };
        if let Err(e) = self.compiles_here(&next.policy, &next.loaded) {
            out.push(Effect::Reply {
                id,
                answer: Answer::Invalid {
                    message: e,
                    diagnostics: Vec::new(),
                },
            });
            return;
        }
        let summary = match &edit {
            crate::edit::Edit::Move { tenant, plan, .. } => {
                format!("moved `{tenant}` to plan `{plan}`")
            }
            crate::edit::Edit::Shape { tenant, .. } => format!("changed `{tenant}`"),
        };
        self.begin_write(
            Write {
                next,
                kind: WriteKind::Api,
                reply: Some(id),
                summary,
            },
            out,
        );
    }
}
