//! DDoS detection and mitigation decisions, pure: per-address counter
//! samples and time in, ladder decisions out.
//!
//! - [`sample`]: what is fed in, one [`Observation`] per tick (counter
//!   deltas per address and direction), and [`spread`] for flow records;
//! - [`Config`]: networks, thresholds (a global profile and host groups by
//!   prefix, inheriting explicitly), smoothing, the ladder;
//! - [`Detector`]: [`Detector::tick`] and [`Detector::command`] return
//!   [`Decision`]s (start, escalate, stop, restore a rung);
//!   [`Detector::save`] and [`Detector::restore`] carry the ladder across a
//!   restart.
//!
//! Nothing here reads a clock or does I/O: time is the observation's
//! `at`, on a monotonic clock the caller owns. See `docs/guard.md` for
//! the operator's view.

pub mod config;
pub mod decision;
mod detect;
mod ladder;
pub mod report;
mod resolve;
pub mod sample;
pub mod spread;
mod state;

pub use config::{
    Action, Community, Config, ConfigError, GroupConfig, InvalidConfig, Limit, Metric, Rung,
    RungConfig, Thresholds, GLOBAL, METRICS,
};
pub use decision::{Command, CommandError, Decision, Hold, Refusal, Step, Target};
pub use detect::{Detector, Stats};
pub use ladder::IncidentView;
pub use report::{AttackKind, AttackReport, FlowAction, FlowSpecRule, Trigger, TriggerKind};
pub use sample::{
    Direction, HostCounters, HostSample, Monotonic, Observation, TopPorts, TOP_PORTS,
};
pub use state::{RestoreError, SavedIncident, SavedRung, SavedState, STATE_VERSION};
