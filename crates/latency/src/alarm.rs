//! Alarms: a condition that must hold for a while before it is raised,
//! and is cleared at the first sample where it no longer holds.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What an alarm is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A class's queueing delay above the threshold.
    QueueDelay,
    /// A probe's RTT above its threshold, or above its baseline × factor.
    ProbeRtt,
    /// A probe's loss over the last minute above the threshold.
    ProbeLoss,
    /// An interface that is up passed no packet at all.
    Idle,
    /// A tenant × realm's passive TCP RTT p95 above the threshold for
    /// whole minutes.
    TenantRtt,
}

impl AlarmKind {
    /// The name used in logs, metrics and the notify script's arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::QueueDelay => "queue_delay",
            AlarmKind::ProbeRtt => "probe_rtt",
            AlarmKind::ProbeLoss => "probe_loss",
            AlarmKind::Idle => "idle",
            AlarmKind::TenantRtt => "tenant_rtt",
        }
    }
}

/// A raised alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// What kind.
    pub kind: AlarmKind,
    /// What it is about: a class (`ifb0 1:12`), a probe (`national
    /// icmp 192.0.2.1`) or an interface.
    pub subject: String,
    /// The tenant whose class it is, for queue alarms.
    pub tenant: Option<u32>,
    /// When the condition started to hold (monotonic).
    #[serde(rename = "since_ms", with = "crate::millis")]
    pub since: Duration,
    /// When the alarm was raised (monotonic).
    #[serde(rename = "raised_ms", with = "crate::millis")]
    pub raised: Duration,
    /// The figure that raised it, in its unit (ms, percent, seconds idle).
    pub value: f64,
    /// The threshold it crossed, in the same unit.
    pub threshold: f64,
    /// For people.
    pub message: String,
}

/// An alarm raised or cleared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Raised (`true`) or cleared.
    pub raised: bool,
    /// When (monotonic).
    pub at: Duration,
    /// The alarm (as raised, for a clear).
    pub alarm: Alarm,
}

/// One condition's state.
#[derive(Clone, Debug, Default)]
pub struct Hold {
    since: Option<Duration>,
    raised: Option<Alarm>,
}

/// What one sample says about a condition.
pub struct Reading<'a> {
    /// Whether the condition holds.
    pub bad: bool,
    /// The figure and the threshold.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// For people, when raised.
    pub message: &'a dyn Fn() -> String,
}

impl Hold {
    /// Whether the alarm is raised.
    pub fn raised(&self) -> Option<&Alarm> {
        self.raised.as_ref()
    }

    /// Feeds one sample at `at`: raises once the condition has held for
    /// `hold` (at the first sample when `hold` is zero), clears at the
    /// first sample where it does not hold.
    pub fn update(
        &mut self,
        at: Duration,
        hold: Duration,
        (kind, subject, tenant): (AlarmKind, &str, Option<u32>),
        r: Reading<'_>,
    ) -> Option<Change> {
        if !r.bad {
            self.since = None;
            return self.raised.take().map(|alarm| Change {
                raised: false,
                at,
                alarm,
            });
        }
        let since = *self.since.get_or_insert(at);
        if self.raised.is_some() || at.saturating_sub(since) < hold {
            if let Some(a) = &mut self.raised {
                a.value = r.value;
            }
            return None;
        }
        let alarm = Alarm {
            kind,
            subject: subject.to_string(),
            tenant,
            since,
            raised: at,
            value: r.value,
            threshold: r.threshold,
            message: (r.message)(),
        };
        self.raised = Some(alarm.clone());
        Some(Change {
            raised: true,
            at,
            alarm,
        })
    }

    /// Clears without a sample (the subject is gone).
    pub fn drop_at(&mut self, at: Duration) -> Option<Change> {
        self.since = None;
        self.raised.take().map(|alarm| Change {
            raised: false,
            at,
            alarm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(h: &mut Hold, at: u64, bad: bool) -> Option<bool> {
        let msg = || "m".to_string();
        h.update(
            Duration::from_secs(at),
            Duration::from_secs(2),
            (AlarmKind::Idle, "eth0", None),
            Reading {
                bad,
                value: 1.0,
                threshold: 0.0,
                message: &msg,
            },
        )
        .map(|c| c.raised)
    }

    #[test]
    fn raised_after_the_hold_and_cleared_at_once() {
        let mut h = Hold::default();
        assert_eq!(feed(&mut h, 10, true), None);
        assert_eq!(feed(&mut h, 11, true), None);
        assert_eq!(feed(&mut h, 12, true), Some(true));
        assert_eq!(h.raised().map(|a| a.since), Some(Duration::from_secs(10)));
        assert_eq!(feed(&mut h, 13, true), None);
        assert_eq!(feed(&mut h, 14, false), Some(false));
        assert_eq!(feed(&mut h, 15, false), None);
        // A blip shorter than the hold raises nothing.
        assert_eq!(feed(&mut h, 16, true), None);
        assert_eq!(feed(&mut h, 17, false), None);
        assert_eq!(feed(&mut h, 18, true), None);
    }
}
