//! What goes into the engine and what comes out: every type here is
//! serialisable, so a run can be recorded (one input per JSON line, with
//! its time) and replayed to the same effects.

use crate::edit::ShapeEdit;
use crate::records::Records;
use accounting::{ObjectIdentity, Reading, Sample, SlotCoverage, UsageKey};
use billing::{Decision, OveragePolicy, PercentileRule, Period, VolumeCounts};
use compiler::Live;
use jiff::Timestamp;
use net_types::{IfName, Prefix, Rate, RealmId, Size, TenantId};
use plan::{ClassKey, Plan};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A policy file as read: its name, its text, and the prefix files it
/// named (each as read, or why it could not be).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyText {
    /// The file's path, for messages.
    pub name: String,
    /// Its text.
    pub text: String,
    /// Every prefix file the policy named, by the name written in it.
    pub files: BTreeMap<String, Result<String, String>>,
}

impl PolicyText {
    /// Loads (parses and validates) the policy, with its prefix files as
    /// they were read.
    pub fn load(&self) -> policy::Loaded {
        let mut read = |name: &str| match self.files.get(name) {
            Some(Ok(text)) => Ok(text.clone().into_bytes()),
            Some(Err(e)) => Err(policy::ReadError::Io(e.clone())),
            None => Err(policy::ReadError::Io(format!("{name}: was not read"))),
        };
        policy::load_bytes(&self.name, self.text.as_bytes(), &mut read)
    }

    /// The same file with other text (an edit), and the same prefix files.
    #[must_use]
    pub fn with_text(&self, text: String) -> PolicyText {
        PolicyText {
            name: self.name.clone(),
            text,
            files: self.files.clone(),
        }
    }
}

/// The daemon's own settings file (`--accounting`), as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsText {
    /// The file's path, for messages.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// How often the engine does its periodic work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    /// Counter reads, in milliseconds.
    pub read_ms: u64,
    /// Reconcile rounds, in milliseconds.
    pub reconcile_ms: u64,
}

/// Where the history left off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The last committed batch's sequence number.
    pub sequence: u64,
    /// The accountant's state committed with it.
    pub state: Vec<u8>,
}

/// Everything the engine starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// The policy.
    pub policy: PolicyText,
    /// The settings file, or `None` for the built-in defaults.
    pub settings: Option<SettingsText>,
    /// The history's last state, if any.
    pub resume: Option<Resume>,
    /// The overage automation's records.
    pub records: Records,
    /// The intervals.
    pub intervals: Intervals,
    /// Whether the policy's flow collector is running.
    pub flows: bool,
    /// The transit guard's saved steps (`transit-guard.json`).
    #[serde(default)]
    pub transit: crate::transit_run::TransitState,
}

/// The kernel as observed: what the compiler needs and every class's
/// counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Interfaces present (those taken offline left out).
    pub interfaces: BTreeSet<IfName>,
    /// Interfaces taken offline on purpose (`hook vif offline`).
    #[serde(default)]
    pub offline: BTreeSet<IfName>,
    /// The host's bridges and their ports.
    #[serde(default)]
    pub bridges: BTreeMap<IfName, Vec<IfName>>,
    /// Interfaces whose root qdisc someone else configured, with what it
    /// is (see `compiler::HostFacts::foreign_roots`).
    #[serde(default)]
    pub foreign_roots: BTreeMap<IfName, String>,
    /// Where tollgate's owners' classes are now.
    pub live: Live,
    /// Every class on tollgate's devices: bytes and packets.
    pub counters: Vec<(ClassKey, u64, u64)>,
}

/// Readings the shell took while applying, right before classes were
/// deleted and right after (see the shell's read-before-delete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedReadings {
    /// When they were read.
    pub at: Timestamp,
    /// What.
    pub readings: Vec<(UsageKey, Reading)>,
}

/// What a [`Effect::Converge`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// Changes the diff held.
    pub changes: usize,
    /// Changes the kernel accepted.
    pub applied: usize,
    /// Changes it refused: object and message.
    pub failed: Vec<(String, String)>,
    /// Readings taken around deletions.
    pub readings: Vec<TimedReadings>,
    /// The classes the round created: their counters' first sight counts
    /// their whole value (everything in them passed since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<ClassKey>,
    /// How long the round took, in milliseconds.
    pub elapsed_ms: f64,
    /// Why the round could not run at all (the kernel could not be read).
    pub error: Option<String>,
}

/// What became of a [`Effect::Store`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    /// Committed.
    Committed {
        /// The batch's sequence number.
        sequence: u64,
        /// Samples the store refused (implausible, or already stored),
        /// each kept in its quarantine or counted there: why, for people.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refused: Vec<String>,
    },
    /// The store already holds this sequence: another writer committed
    /// it, or an earlier try of this batch landed though its answer was
    /// lost (a ClickHouse insert that timed out, or whose server died
    /// before answering).
    AlreadyAppended {
        /// The store's last sequence number.
        last: u64,
        /// The accountant's state stored with `last`, when the shell could
        /// read it: the engine finds which of its tries landed by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Vec<u8>>,
    },
    /// The store refused; the samples are kept and retried.
    Failed {
        /// Why.
        error: String,
    },
}

/// The overage check's question: each tenant's decision for the period so
/// far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assess {
    /// The period.
    pub period: Period,
    /// The slot containing `now`.
    pub now_slot: i64,
    /// The percentile rule.
    pub rule: PercentileRule,
    /// Which directions count toward volume.
    pub counts: VolumeCounts,
    /// Margin and minimum observation.
    pub policy: OveragePolicy,
    /// The quota every tenant has.
    pub quota: Option<Size>,
    /// The tenants to decide, with their commits.
    pub tenants: Vec<(TenantId, Option<Rate>)>,
}

/// The overage check's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// The period label it is for.
    pub period: String,
    /// Each tenant's decision.
    pub decisions: Vec<(u32, Decision)>,
    /// Why the check could not be made, if it could not.
    pub error: Option<String>,
}

/// A command from the API (or any client of the engine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    /// Move a tenant to a plan (and parent).
    Move {
        /// The tenant's id or name.
        tenant: String,
        /// The plan.
        plan: String,
        /// The parent.
        parent: Option<String>,
    },
    /// Change a tenant's rate, ceil or commit.
    Change {
        /// The tenant's id or name.
        tenant: String,
        /// Toward the tenant.
        down: ShapeEdit,
        /// From the tenant.
        up: ShapeEdit,
        /// The commit: `Some(None)` removes it.
        commit: Option<Option<String>>,
    },
    /// Return a tenant the automation moved to its plan now.
    Release {
        /// The tenant's id.
        tenant: u32,
    },
    /// Read the policy file again.
    Reload,
    /// A guard ban or unban (`crate::guard`).
    Guard {
        /// What.
        guard: crate::guard::GuardCommand,
    },
    /// Add another writer's (an agent's) batch to the history.
    AddBatch(Box<crate::shipping::ShippedBatch>),
    /// Undo the transit guard's steps in force and hold off tightening
    /// for its hold time.
    TransitRelax,
}

/// One input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "input")]
pub enum Input {
    /// The daemon starts.
    Start(Box<Start>),
    /// A timer fired (or anything else happened that may make work due).
    Tick,
    /// The policy file was read again (SIGHUP, or [`Effect::ReadPolicy`]).
    PolicyRead(Box<PolicyText>),
    /// The policy file could not be read.
    PolicyUnreadable {
        /// Why.
        error: String,
    },
    /// The answer to [`Effect::Observe`].
    Observed(Box<Observation>),
    /// The answer to [`Effect::ReadCounters`]: every class's bytes and
    /// packets.
    CountersRead {
        /// Device, handle, bytes, packets.
        counters: Vec<(ClassKey, u64, u64)>,
    },
    /// The kernel could not be read.
    ReadFailed {
        /// Why.
        error: String,
    },
    /// The answer to [`Effect::Converge`].
    Applied(Box<Applied>),
    /// The answer to [`Effect::Store`].
    Stored(Stored),
    /// What the store did with an agent's batch ([`Effect::AddBatch`]).
    BatchAdded {
        /// The command's id.
        id: u64,
        /// The writer.
        writer: String,
        /// The batch's sequence.
        sequence: u64,
        /// The last slot the batch carried.
        last_slot: Option<accounting::Slot>,
        /// The bytes of its samples.
        #[serde(default)]
        bytes: u64,
        /// What the store did.
        outcome: crate::shipping::AddOutcome,
    },
    /// The agents a central had seen before it restarted
    /// (`agents-status.json`), so that their counts go on.
    AgentsRestored {
        /// Every writer seen, as last saved.
        agents: crate::shipping::Agents,
    },
    /// The routes table changed: every route's realm.
    RoutesChanged {
        /// Prefix and realm.
        realms: Vec<(Prefix, RealmId)>,
    },
    /// The routes table cannot be read; the last good one stays.
    RoutesUnreadable {
        /// Why.
        error: String,
    },
    /// The answer to [`Effect::AssessOverage`].
    OverageAssessed(Box<Assessment>),
    /// The answer to [`Effect::AssessTransit`].
    TransitAssessed(Box<crate::transit_run::TransitAssessment>),
    /// Someone asked for a tenant's release (a request file).
    ReleaseRequested {
        /// The tenant.
        tenant: u32,
    },
    /// The answer to [`Effect::WritePolicy`].
    PolicyWritten {
        /// Why it failed, if it did.
        error: Option<String>,
    },
    /// The answer to [`Effect::CommitFlows`].
    FlowsCommitted {
        /// Samples added.
        samples: u64,
        /// Why the commit failed, if it did.
        error: Option<String>,
    },
    /// A command, to be answered with [`Effect::Reply`] and the same id.
    Command {
        /// Chosen by the caller.
        id: u64,
        /// What.
        command: Command,
    },
    /// SIGTERM: read once more, commit, exit.
    Stop,
    /// The guard's capture, or its saved state (`crate::guard`).
    Guard(crate::guard::GuardInput),
    /// A latency reading or probe reply (`crate::latency`).
    Latency(crate::latency::LatencyInput),
}

/// How serious an [`Event`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Something went wrong and is being retried or worked around.
    Warn,
    /// Something failed.
    Error,
}

/// Something that happened, for the log, the metrics and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub at: Timestamp,
    /// How serious.
    pub level: Level,
    /// What kind: `started`, `policy_applied`, `drift_repaired`,
    /// `reload`, `reload_refused`, `overage_move`, `overage_return`,
    /// `store_failed`, `store_landed`, `routes_unreadable`, `compile_failed`,
    /// `apply_failed`, `api_write`, `flows_failed`, `latency_alarm`,
    /// `latency_clear`, `latency_failed`, `latency_refused`,
    /// `latency_store_failed`, `stopped`, `transit_tighten`,
    /// `transit_relax`, `transit_dry_run`, `transit_held`, `transit_failed`.
    pub kind: String,
    /// For people.
    pub message: String,
    /// The tenant it is about, if one.
    pub tenant: Option<u32>,
}

/// The engine's answer to a [`Command`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Answer {
    /// Done: the policy file is edited and the kernel reconciled.
    Done {
        /// What was done.
        message: String,
        /// Kernel changes applied for it.
        applied: usize,
        /// Kernel changes refused (retried next round).
        failed: usize,
    },
    /// The command would make the policy invalid, or names something that
    /// does not exist; nothing was changed.
    Invalid {
        /// What is wrong.
        message: String,
        /// The policy's diagnostics, as `tollgate check --json` gives them.
        diagnostics: Vec<serde_json::Value>,
    },
    /// The tenant (or what was asked for) does not exist.
    NotFound {
        /// What.
        message: String,
    },
    /// The policy file changed on disk since it was loaded, or could not
    /// be written; nothing was changed.
    Failed {
        /// Why.
        message: String,
    },
    /// An agent's batch is in the history (now, or it already was).
    BatchAdded {
        /// The writer.
        writer: String,
        /// The writer's committed sequence.
        sequence: u64,
        /// The batch was already committed: it counted once.
        duplicate: bool,
    },
}

/// A batch for the history: closed samples and the accountant's state in
/// one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Batch {
    /// Strictly increasing.
    pub sequence: u64,
    /// The closed samples.
    pub samples: Vec<Sample>,
    /// The closed slots.
    pub coverage: Vec<SlotCoverage>,
    /// The accountant's state after producing them.
    pub state: Vec<u8>,
}

/// One thing for the shell to do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Observe the kernel; answer with [`Input::Observed`] (or
    /// [`Input::ReadFailed`]).
    Observe,
    /// Read every class's counters; answer with [`Input::CountersRead`]
    /// (or [`Input::ReadFailed`]).
    ReadCounters,
    /// Make the kernel match `desired`: diff against the last
    /// observation, apply, reading each class in `watched` right before it
    /// is deleted; answer with [`Input::Applied`].
    Converge {
        /// What should exist.
        desired: Arc<Plan>,
        /// Accounted classes (by identity), with whose traffic each
        /// counts.
        watched: Vec<(ObjectIdentity, UsageKey)>,
    },
    /// Commit a batch; answer with [`Input::Stored`].
    Store(Batch),
    /// Decide the overage automation's question; answer with
    /// [`Input::OverageAssessed`].
    AssessOverage(Box<Assess>),
    /// Save the overage records.
    SaveRecords(Records),
    /// Read every upstream's figures at `at` (as `tollgate transit` does)
    /// and each tenant's bytes above the commit; answer with
    /// [`Input::TransitAssessed`].
    AssessTransit {
        /// The engine's now.
        at: Timestamp,
    },
    /// Save the transit guard's state (`transit-guard.json`, atomically).
    SaveTransit(Box<crate::transit_run::TransitState>),
    /// Replace the policy file's text; answer with
    /// [`Input::PolicyWritten`]. Refused by the shell if the file on disk
    /// is no longer `previous`.
    WritePolicy {
        /// The text the engine last loaded.
        previous: String,
        /// The new text.
        text: String,
    },
    /// Read the policy file again; answer with [`Input::PolicyRead`] or
    /// [`Input::PolicyUnreadable`].
    ReadPolicy,
    /// A release request was carried out: remove its file.
    RemoveReleaseRequest {
        /// The tenant.
        tenant: u32,
    },
    /// Commit what the flow collector received; answer with
    /// [`Input::FlowsCommitted`].
    CommitFlows,
    /// Rebuild the flow collector's tables (the policy or the routes
    /// changed).
    RebuildFlowTables,
    /// Apply the history's retention and compact it.
    Maintain,
    /// Store closed latency minutes in the history; answer with
    /// [`crate::latency::LatencyInput::Stored`].
    StoreLatency(Box<latency::Minutes>),
    /// Answer a command.
    Reply {
        /// The command's id.
        id: u64,
        /// The answer.
        answer: Answer,
    },
    /// Something happened.
    Event(Event),
    /// The guard's capture, ladder or state (`crate::guard`).
    Guard(crate::guard::GuardEffect),
    /// Latency's sampler and notify script (`crate::latency`).
    Latency(crate::latency::LatencyEffect),
    /// Add an agent's batch to the history; answer with
    /// [`Input::BatchAdded`].
    AddBatch {
        /// The command's id.
        id: u64,
        /// The batch.
        batch: Box<crate::shipping::ShippedBatch>,
    },
    /// Where the agents stand changed: write it for `tollgate status`
    /// (best effort; the engine keeps the figures).
    SaveAgents {
        /// Every writer that shipped here.
        agents: crate::shipping::Agents,
    },
    /// Stop the process with this exit code.
    Exit {
        /// 0 when everything was committed.
        code: u8,
    },
}
