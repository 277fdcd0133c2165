//! Latency figures and alarms, as pure code: samples and their times in,
//! figures and alarm decisions out.
//!
//! Three kinds of sample reach a [`Monitor`]:
//! - **queues** ([`queue`]): an HTB leaf class's counters and backlog,
//!   read once a second; the monitor turns two readings into the class's
//!   queueing delay (backlog over ceil: see [`queue::Figures`]), drops,
//!   overlimits, sent rate and the time the class spent held at its ceil;
//! - **probes** ([`probe`]): one active probe's reply (or its loss); the
//!   monitor keeps a minute of replies per probe for RTT, jitter and loss,
//!   and a longer baseline (the lowest RTT seen);
//! - **interfaces** ([`monitor::LinkSample`]): whether a watched interface
//!   is up and its packet counters, for "no packets at all while up";
//! - **TCP round trips** ([`rtt`]): the eBPF classifier's passive RTT
//!   samples and retransmissions per tenant × realm, folded into
//!   per-minute log-scale histograms (p50, p95, p99, max).
//!
//! Each sample may raise or clear an alarm ([`alarm::Change`]); the
//! engine turns those into events and effects. Time is an input: every
//! sample carries its instant on the caller's monotonic clock (a
//! [`Duration`] since some origin), and nothing here reads a clock.
//!
//! [`Duration`]: std::time::Duration

pub mod alarm;
pub mod millis;
pub mod minutes;
pub mod monitor;
pub mod probe;
pub mod queue;
pub mod rtt;

pub use alarm::{Alarm, AlarmKind, Change};
pub use minutes::{Minutes, ProbeMinute, QueueMinute, Recorder, RttMinute};
pub use monitor::{Config, LinkSample, Monitor, View};
pub use probe::{ProbeFigures, ProbeReply};
pub use queue::{ClassSample, Figures};
pub use rtt::{RttAlarm, RttSample, RttView};
