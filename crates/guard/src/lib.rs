//! DDoS detection and mitigation decisions, pure: per-address counter
//! samples and time in, ladder decisions out.
//!
//! - [`sample`]: what is fed in, one [`Observation`] per tick (counter
//!   deltas per address and direction), and [`spread`] for flow records;
//! - [`scan`]: sources that touch many of our addresses ([`ScanBook`]);
//! - [`Config`]: networks, thresholds (a global profile and host groups by
//!   prefix, inheriting explicitly), smoothing, the ladder;
//! - [`Detector`]: [`Detector::tick`] and [`Detector::command`] return
//!   [`Decision`]s (start, escalate, stop, restore a rung);
//!   [`Detector::save`] and [`Detector::restore`] carry the ladder across a
//!   restart.
//!
//! Nothing here reads a clock or does I/O: time is the observation's
//! `at`, on a monotonic clock the caller owns. The same inputs always give
//! the same decisions. See `docs/guard.md` for the operator's view.
//!
//! ```
//! use std::time::Duration;
//! use guard::*;
//! use net_types::Prefix;
//!
//! let mut config = Config::new(vec![Prefix::parse("203.0.113.0/24").unwrap()]);
//! config.global = Thresholds::new().with(Direction::In, Metric::Syn, Limit::At(5_000));
//! config.instant = Some(Duration::ZERO); // fire on the first tick over
//! let mut detector = Detector::new(config).unwrap();
//!
//! // The first observation only sets the clock; rates need two.
//! detector.tick(&Observation { at: Monotonic::from_millis(0), hosts: vec![] });
//! let flood = HostCounters { packets: 1_000, bytes: 60_000, tcp_packets: 1_000,
//!     tcp_bytes: 60_000, tcp_syn: 1_000, ..HostCounters::default() };
//! let decisions = detector.tick(&Observation {
//!     at: Monotonic::from_millis(100), // 1,000 SYN in 100 ms: 10k/s
//!     hosts: vec![HostSample { addr: "203.0.113.7".parse().unwrap(),
//!         direction: Direction::In, counters: flood }],
//! });
//! let Decision::Start(step) = &decisions[0] else { panic!() };
//! assert_eq!(step.rung, Rung::Notify);
//! assert_eq!(step.attack.kind, AttackKind::SynFlood);
//! assert_eq!(step.prefixes, vec![Prefix::parse("203.0.113.7/32").unwrap()]);
//! ```

pub mod config;
pub mod decision;
mod detect;
pub mod fuzzing;
mod ladder;
pub mod report;
mod resolve;
pub mod sample;
pub mod scan;
pub mod spread;
mod state;
mod table;

pub use config::{
    Action, Community, Config, ConfigError, GroupConfig, InvalidConfig, Limit, Metric, PrefixSet,
    Rung, RungConfig, Thresholds, GLOBAL, METRICS,
};
pub use decision::{Command, CommandError, Decision, Hold, Refusal, Step, Target};
pub use detect::{Detector, Stats};
pub use ladder::IncidentView;
pub use report::{AttackKind, AttackReport, FlowAction, FlowSpecRule, Trigger, TriggerKind};
pub use sample::{
    Direction, HostCounters, HostSample, MergedInputs, Monotonic, Observation, SourceCount,
    TopPorts, TopSources, TOP_PORTS, TOP_SOURCES,
};
pub use scan::{Scan, ScanBook, ScanConfig, ScanSample};
pub use state::{RestoreError, SavedIncident, SavedRung, SavedState, STATE_VERSION};
