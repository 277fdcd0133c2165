//! What the engine shows: its counters (for Prometheus), the running
//! policy and plan, the last readings (for rates), the overage records
//! and recent events. The shell publishes a snapshot after each input;
//! the API answers from it without asking the engine anything.

use crate::feeds::Feeds;
use crate::io::{Applied, Event};
use crate::records::Records;
use compiler::Compiled;
use jiff::Timestamp;
use plan::ClassKey;
use policy::Policy;
use serde::Serialize;
use std::sync::Arc;

/// Counters since the daemon started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Counter reads accounted.
    pub reads: u64,
    /// Reconcile rounds.
    pub reconciles: u64,
    /// Kernel changes applied.
    pub changes_applied: u64,
    /// Kernel changes refused.
    pub changes_failed: u64,
    /// Closed samples committed.
    pub samples_written: u64,
    /// Batches committed.
    pub batches_written: u64,
    /// Batches the store refused.
    pub batch_failures: u64,
    /// Samples the store refused (quarantined).
    pub samples_refused: u64,
    /// Policy reloads that took effect.
    pub reloads_ok: u64,
    /// Policy reloads refused.
    pub reloads_refused: u64,
    /// Tenants moved into or out of the overage plan.
    pub overage_moves: u64,
    /// Flow samples committed.
    pub flow_samples: u64,
    /// Latency minutes' rows stored in the history.
    pub latency_rows_written: u64,
    /// Latency minutes' rows the history refused as absurd.
    pub latency_rows_refused: u64,
    /// When the last batch was committed.
    pub last_commit: Option<Timestamp>,
    /// The last reconcile round's duration, in milliseconds.
    pub round_ms: f64,
}

/// One class reading: when, and each class's bytes and packets.
pub type Reading = (Timestamp, Arc<Vec<(ClassKey, u64, u64)>>);

/// The engine as of one instant.
#[derive(Clone)]
pub struct Snapshot {
    /// The instant.
    pub now: Timestamp,
    /// When the daemon started.
    pub started: Timestamp,
    /// The running policy.
    pub policy: Arc<Policy>,
    /// The settings in force.
    pub settings: Arc<settings::Settings>,
    /// What it compiled to in the last round.
    pub compiled: Option<Arc<Compiled>>,
    /// Which class counts whose traffic.
    pub feeds: Arc<Feeds>,
    /// The last two counter readings, for rates.
    pub rates: Option<(Reading, Reading)>,
    /// Counters since start.
    pub counts: Counts,
    /// Counters the accountant tracks.
    pub counters_tracked: usize,
    /// Samples closed and not yet committed.
    pub pending_samples: usize,
    /// The last batch committed to the history (0 before the first): what
    /// the history's accounting state (and so its open slots) is as of.
    pub committed_sequence: u64,
    /// The last reconcile round.
    pub last_apply: Option<Applied>,
    /// Why the routes table cannot be read, while it cannot.
    pub routes_error: Option<String>,
    /// The overage automation's records.
    pub records: Records,
    /// Recent events, oldest first.
    pub events: Vec<Event>,
    /// The guard's incidents and counts, if the policy has `[guard]`.
    pub guard: Option<Arc<crate::guard::GuardView>>,
    /// Queueing delay, probes and latency alarms, if the policy has
    /// `[latency]`.
    pub latency: Option<Arc<latency::View>>,
    /// Agents' batches seen since start (a central tollgate).
    pub agents: crate::shipping::Agents,
    /// The transit guard's mode and steps.
    pub transit: Arc<crate::transit_run::TransitView>,
}

impl Snapshot {
    /// What an engine that has done nothing yet publishes: the policy and
    /// the settings, no round, no counters, no records. Tests and benches
    /// that serve the API without a daemon start from it and set what they
    /// need with `..Snapshot::at_start(…)`.
    pub fn at_start(
        now: Timestamp,
        policy: Arc<Policy>,
        settings: Arc<settings::Settings>,
    ) -> Snapshot {
        let transit = Arc::new(crate::transit_run::TransitView::new(
            crate::transit_run::mode(&policy),
            Default::default(),
        ));
        Snapshot {
            now,
            started: now,
            policy,
            settings,
            compiled: None,
            feeds: Arc::default(),
            rates: None,
            counts: Counts::default(),
            counters_tracked: 0,
            pending_samples: 0,
            committed_sequence: 0,
            last_apply: None,
            routes_error: None,
            records: Records::default(),
            events: Vec::new(),
            guard: None,
            latency: None,
            agents: Default::default(),
            transit,
        }
    }
}
