//! Per-minute records for the history: TCP RTT per tenant × realm, each
//! probe's minute, and each busy class's queue, closed once per UTC
//! minute.
//!
//! The monitor's own minutes ([`crate::rtt`]) run on the daemon's
//! monotonic clock, which is right for alarms but names no minute a
//! person can ask for. The [`Recorder`] runs on **wall-clock** minutes
//! (Unix seconds `div_euclid` 60, an input like every time here), so a
//! stored row is "12:07 UTC" and two daemons' rows line up.
//!
//! - A minute is closed **once**: when an input arrives in a later
//!   minute, or by [`Recorder::flush`] (the daemon stopping: the partial
//!   minute is stored, marked by nothing but having fewer samples). An
//!   input timed in an earlier minute than the open one (the wall clock
//!   stepped back) is counted in the open minute, never reopening a
//!   closed one: a stored row is never written twice.
//! - Rows exist only where something happened: a tenant × realm with a
//!   sample or a retransmission, a probe sent at least once, a class with
//!   a queue, a drop, an overlimit or time at its ceil. At 10,000 tenants
//!   the quiet ones cost nothing.

use crate::monitor::ClassView;
use crate::probe::{History, ProbeReply};
use crate::rtt::{Histogram, RttFigures, RttSample};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Seconds in a minute.
pub const MINUTE_SECS: i64 = 60;

/// The Unix minute (minutes since 1970-01-01 UTC) holding `unix_secs`.
pub fn minute_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(MINUTE_SECS)
}

/// A tenant × realm's TCP round trips over one UTC minute.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RttMinute {
    /// The Unix minute (its start is `minute × 60` s).
    pub minute: i64,
    /// The tenant's id.
    pub tenant: u32,
    /// The far end's realm.
    pub realm: u16,
    /// Timed going up: the far side (see [`crate::rtt`]).
    pub up: RttFigures,
    /// Timed going down: the tenant's side.
    pub down: RttFigures,
    /// Data segments the tenant sent again.
    pub retransmits_up: u64,
    /// Data segments the far end sent again.
    pub retransmits_down: u64,
}

impl RttMinute {
    /// About the round trip the tenant sees: the sum of the halves'
    /// medians (both needed), as in the monitor's live figures.
    pub fn rtt_p50(&self) -> Option<Duration> {
        self.up.p50.zip(self.down.p50).map(|(a, b)| a + b)
    }
}

/// One probe's UTC minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeMinute {
    /// The Unix minute.
    pub minute: i64,
    /// The probe's name (`national icmp 192.0.2.1`: realm, kind, target).
    pub probe: String,
    /// Probes sent in the minute.
    pub sent: u32,
    /// Of them, unanswered.
    pub lost: u32,
    /// The median RTT of the answered ones.
    #[serde(rename = "p50_ms", with = "crate::millis::option")]
    pub p50: Option<Duration>,
    /// The largest.
    #[serde(rename = "max_ms", with = "crate::millis::option")]
    pub max: Option<Duration>,
    /// Mean difference of consecutive RTTs (see [`crate::ProbeFigures`]).
    #[serde(rename = "jitter_ms", with = "crate::millis::option")]
    pub jitter: Option<Duration>,
}

/// One HTB leaf class's UTC minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueMinute {
    /// The Unix minute.
    pub minute: i64,
    /// The class (`dev major:minor`).
    pub class: String,
    /// Whose traffic it carries (none: the unclassified class).
    pub tenant: Option<u32>,
    /// Its realm and direction, for people (`national down`).
    pub label: String,
    /// The largest queueing delay read in the minute (backlog ÷ ceil).
    #[serde(rename = "max_delay_ms", with = "crate::millis")]
    pub max_delay: Duration,
    /// Packets dropped.
    pub drops: u64,
    /// Times HTB held the class back for lack of tokens.
    pub overlimits: u64,
    /// Time held at its ceil.
    #[serde(rename = "at_ceil_ms", with = "crate::millis")]
    pub at_ceil: Duration,
}

/// Rows of closed minutes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Minutes {
    /// TCP RTT per tenant × realm.
    pub rtt: Vec<RttMinute>,
    /// Per probe.
    pub probes: Vec<ProbeMinute>,
    /// Per busy class.
    pub queues: Vec<QueueMinute>,
}

impl Minutes {
    /// No row at all.
    pub fn is_empty(&self) -> bool {
        self.rtt.is_empty() && self.probes.is_empty() && self.queues.is_empty()
    }

    /// Rows in all.
    pub fn len(&self) -> usize {
        self.rtt.len() + self.probes.len() + self.queues.len()
    }

    /// Adds another close's rows.
    pub fn extend(&mut self, other: Minutes) {
        self.rtt.extend(other.rtt);
        self.probes.extend(other.probes);
        self.queues.extend(other.queues);
    }
}

#[derive(Default)]
struct RttAcc {
    up: Histogram,
    down: Histogram,
    retransmits_up: u64,
    retransmits_down: u64,
}

#[derive(Default)]
struct QueueAcc {
    tenant: Option<u32>,
    label: String,
    max_delay: Duration,
    drops: u64,
    overlimits: u64,
    at_ceil: Duration,
}

/// The open minute's accumulators.
#[derive(Default)]
pub struct Recorder {
    minute: Option<i64>,
    rtt: BTreeMap<(u32, u16), RttAcc>,
    probes: BTreeMap<String, History>,
    queues: BTreeMap<String, QueueAcc>,
    /// The last queue reading's monotonic time.
    last_reading: Option<Duration>,
}

impl Recorder {
    /// The open minute, if anything was recorded since the last close.
    pub fn open_minute(&self) -> Option<i64> {
        self.minute
    }

    /// Moves to the minute holding `unix_secs`: closes the open one if it
    /// ended before. A time in an earlier minute changes nothing.
    pub fn advance(&mut self, unix_secs: i64) -> Minutes {
        let now = minute_of(unix_secs);
        match self.minute {
            Some(m) if m < now => {
                let out = self.flush();
                self.minute = Some(now);
                out
            }
            Some(_) => Minutes::default(),
            None => {
                self.minute = Some(now);
                Minutes::default()
            }
        }
    }

    /// TCP round trips drained at `unix_secs`.
    pub fn rtt(&mut self, unix_secs: i64, samples: &[RttSample]) -> Minutes {
        let out = self.advance(unix_secs);
        for s in samples {
            let a = self.rtt.entry((s.tenant, s.realm)).or_default();
            match (s.rtt, s.up) {
                (Some(r), true) => a.up.add(r),
                (Some(r), false) => a.down.add(r),
                (None, true) => a.retransmits_up += 1,
                (None, false) => a.retransmits_down += 1,
            }
        }
        out
    }

    /// One probe's reply (or loss), sent in the minute of `unix_secs`.
    pub fn probe(&mut self, unix_secs: i64, name: &str, reply: ProbeReply) -> Minutes {
        let out = self.advance(unix_secs);
        // The whole minute is kept: nothing is forgotten before it closes.
        let keep = Duration::MAX;
        match self.probes.get_mut(name) {
            Some(h) => h.push(reply, keep),
            None => {
                let mut h = History::default();
                h.push(reply, keep);
                self.probes.insert(name.to_string(), h);
            }
        }
        out
    }

    /// One reading of every class (the monitor's figures after it) at
    /// `unix_secs`, taken at `at` on the monitor's monotonic clock. Only
    /// busy classes cost anything: an idle one allocates nothing.
    pub fn queues(&mut self, unix_secs: i64, at: Duration, classes: &[ClassView]) -> Minutes {
        let out = self.advance(unix_secs);
        // The interval this reading's `at_ceil` speaks for, as the
        // monitor adds it to its running total (a first reading: none).
        let dt = self
            .last_reading
            .map_or(Duration::ZERO, |t| at.saturating_sub(t));
        self.last_reading = Some(at);
        for c in classes {
            let f = &c.figures;
            let ceil = if f.at_ceil { dt } else { Duration::ZERO };
            let busy = !f.delay.is_zero() || f.drops + f.overlimits > 0 || !ceil.is_zero();
            if !busy {
                continue;
            }
            let a = match self.queues.get_mut(&c.class) {
                Some(a) => a,
                None => self
                    .queues
                    .entry(c.class.clone())
                    .or_insert_with(|| QueueAcc {
                        tenant: c.tenant,
                        label: c.label.clone(),
                        ..QueueAcc::default()
                    }),
            };
            a.max_delay = a.max_delay.max(f.delay);
            a.drops = a.drops.saturating_add(f.drops);
            a.overlimits = a.overlimits.saturating_add(f.overlimits);
            a.at_ceil += ceil;
        }
        out
    }

    /// Closes the open minute now, whole or partial (the daemon stops, or
    /// the minute ended): its rows, and nothing open after it.
    pub fn flush(&mut self) -> Minutes {
        let Some(minute) = self.minute.take() else {
            return Minutes::default();
        };
        let rtt = std::mem::take(&mut self.rtt)
            .into_iter()
            .map(|((tenant, realm), a)| RttMinute {
                minute,
                tenant,
                realm,
                up: a.up.figures(),
                down: a.down.figures(),
                retransmits_up: a.retransmits_up,
                retransmits_down: a.retransmits_down,
            })
            .collect();
        let probes = std::mem::take(&mut self.probes)
            .into_iter()
            .map(|(probe, h)| {
                let f = h.figures(Duration::ZERO, Duration::MAX);
                ProbeMinute {
                    minute,
                    probe,
                    sent: f.sent,
                    lost: f.sent - f.received,
                    p50: f.p50,
                    max: f.max,
                    jitter: f.jitter,
                }
            })
            .collect();
        let queues = std::mem::take(&mut self.queues)
            .into_iter()
            .map(|(class, a)| QueueMinute {
                minute,
                class,
                tenant: a.tenant,
                label: a.label,
                max_delay: a.max_delay,
                drops: a.drops,
                overlimits: a.overlimits,
                at_ceil: a.at_ceil,
            })
            .collect();
        Minutes {
            rtt,
            probes,
            queues,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Figures;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn s(tenant: u32, up: bool, rtt: Option<u64>) -> RttSample {
        RttSample {
            tenant,
            realm: 1,
            up,
            rtt: rtt.map(ms),
        }
    }

    // 2026-12-07 04:00:00 UTC, a whole minute.
    const T0: i64 = 1_796_616_000;

    #[test]
    fn minute_boundaries_are_utc_minutes_and_negative_times_floor() {
        assert_eq!(minute_of(T0) * 60, T0);
        assert_eq!(minute_of(T0 + 59), minute_of(T0));
        assert_eq!(minute_of(T0 + 60), minute_of(T0) + 1);
        assert_eq!(minute_of(-1), -1);
    }

    #[test]
    fn a_minute_closes_once_when_the_next_begins() {
        let mut r = Recorder::default();
        let early: Vec<RttSample> = (1..=100)
            .map(|i| s(7, true, Some(i)))
            .chain((0..10).map(|_| s(7, false, Some(2))))
            .chain([s(7, true, None), s(8, false, None)])
            .collect();
        assert!(r.rtt(T0 + 5, &early).is_empty());
        assert!(r.rtt(T0 + 59, &[s(7, true, Some(50))]).is_empty());
        // The clock steps back: counted in the open minute, nothing closes.
        assert!(r.rtt(T0 - 30, &[s(7, true, Some(50))]).is_empty());
        let closed = r.rtt(T0 + 60, &[s(7, true, Some(9))]);
        assert_eq!(closed.rtt.len(), 2);
        let m = closed.rtt[0];
        assert_eq!((m.minute, m.tenant, m.realm), (minute_of(T0), 7, 1));
        assert_eq!(m.up.samples, 102);
        assert_eq!((m.retransmits_up, m.retransmits_down), (1, 0));
        let near = |d: Option<Duration>, v: f64| {
            let d = d.unwrap().as_secs_f64() * 1000.0;
            (d - v).abs() <= 0.033 * v
        };
        assert!(near(m.up.p50, 50.0), "{m:?}");
        assert!(near(m.up.p95, 95.0), "{m:?}");
        assert!(near(m.up.p99, 99.0), "{m:?}");
        assert_eq!(m.up.max, Some(ms(100)));
        assert_eq!(m.down.p50, Some(ms(2)));
        assert!(near(m.rtt_p50(), 52.0), "{m:?}");
        // Tenant 8: a retransmission only, no figures.
        let q = closed.rtt[1];
        assert_eq!((q.tenant, q.up.samples, q.retransmits_down), (8, 0, 1));
        assert_eq!(q.rtt_p50(), None);
        // The next minute holds only its own sample; the closed one is
        // never produced again.
        assert!(r.rtt(T0 + 61, &[]).is_empty());
        let last = r.flush();
        assert_eq!(last.rtt.len(), 1);
        assert_eq!(last.rtt[0].minute, minute_of(T0) + 1);
        assert_eq!(last.rtt[0].up.samples, 1);
        assert!(r.flush().is_empty());
    }

    #[test]
    fn a_quiet_gap_closes_the_open_minute_alone() {
        let mut r = Recorder::default();
        r.rtt(T0, &[s(1, true, Some(3))]);
        // Ten minutes later: one row, for the first minute only.
        let c = r.rtt(T0 + 600, &[]);
        assert_eq!(c.rtt.len(), 1);
        assert_eq!(c.rtt[0].minute, minute_of(T0));
        assert!(r.flush().is_empty());
    }

    #[test]
    fn probes_count_sent_lost_and_jitter_per_minute() {
        let mut r = Recorder::default();
        let reply = |at: u64, rtt: Option<u64>| ProbeReply {
            at: Duration::from_secs(at),
            rtt: rtt.map(ms),
        };
        for (i, rtt) in [Some(10), Some(14), None, Some(12)].into_iter().enumerate() {
            r.probe(
                T0 + i as i64,
                "national icmp 192.0.2.1",
                reply(i as u64, rtt),
            );
        }
        let c = r.flush();
        let p = &c.probes[0];
        assert_eq!((p.sent, p.lost), (4, 1));
        assert_eq!((p.p50, p.max), (Some(ms(12)), Some(ms(14))));
        assert_eq!(p.jitter, Some(ms(3)));
    }

    #[test]
    fn queues_keep_the_worst_delay_sums_and_time_at_ceil_of_busy_classes() {
        let view = |class: &str, delay: u64, drops: u64, at_ceil: bool| ClassView {
            class: class.into(),
            tenant: Some(3),
            label: "national down".into(),
            figures: Figures {
                delay: ms(delay),
                drops,
                overlimits: drops * 2,
                at_ceil,
                ..Figures::default()
            },
        };
        let mut r = Recorder::default();
        let at = |s: u64| Duration::from_millis(s * 1000 + 500);
        // The first reading: at its ceil, but over no interval yet.
        r.queues(
            T0,
            at(0),
            &[
                view("lan0 1:10", 0, 0, true),
                view("lan0 1:11", 0, 0, false),
            ],
        );
        r.queues(
            T0 + 1,
            at(1),
            &[
                view("lan0 1:10", 30, 2, true),
                view("lan0 1:11", 0, 0, false),
            ],
        );
        // A reading 1.5 s later: that much at the ceil.
        r.queues(
            T0 + 2,
            at(1) + ms(1_500),
            &[
                view("lan0 1:10", 10, 1, true),
                view("lan0 1:11", 0, 0, false),
            ],
        );
        let c = r.queues(T0 + 60, at(60), &[view("lan0 1:10", 0, 0, false)]);
        assert_eq!(c.queues.len(), 1, "the idle class has no row: {c:?}");
        let q = &c.queues[0];
        assert_eq!(q.max_delay, ms(30));
        assert_eq!((q.drops, q.overlimits), (3, 6));
        assert_eq!(q.at_ceil, ms(2_500));
        assert_eq!(q.tenant, Some(3));
        // The next minute: nothing busy, so nothing is stored.
        assert!(r.flush().queues.is_empty());
    }
}
