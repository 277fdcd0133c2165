//! One HTB leaf class's queue, from two readings of its stats.
//!
//! # Which rate the delay is computed with
//!
//! The delay a packet entering the queue now would see is the backlog
//! divided by the rate the class drains at. That rate is not known in
//! advance: a leaf drains at its ceil when it can borrow from its parent,
//! and at no less than its rate (the guarantee) when the parent is
//! congested. So two figures are given:
//! - [`Figures::delay`]: backlog ÷ **ceil**, the fastest the class can
//!   ever drain: a lower bound. Alarms use it, so a raised alarm is never
//!   the estimate's fault: the queue really holds at least that much time.
//! - [`Figures::delay_at_rate`]: backlog ÷ **rate**, an upper bound as
//!   long as the guarantee holds (what the tenant sees when the parent is
//!   full).

use net_types::Rate;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One reading of a leaf class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSample {
    /// Bytes sent (dequeued) since the class was created.
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped (the leaf queue was full).
    pub drops: u64,
    /// Times HTB could not send from the class for lack of tokens.
    pub overlimits: u64,
    /// Bytes queued now.
    pub backlog_bytes: u64,
    /// Packets queued now.
    pub backlog_packets: u64,
    /// The class's guaranteed rate.
    pub rate: Option<Rate>,
    /// The class's ceil.
    pub ceil: Option<Rate>,
}

/// A class's figures after a reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Backlog ÷ ceil: the least time the queue holds (see the module).
    #[serde(rename = "delay_ms", with = "crate::millis")]
    pub delay: Duration,
    /// Backlog ÷ rate: the most, while the rate is guaranteed.
    #[serde(rename = "delay_at_rate_ms", with = "crate::millis::option")]
    pub delay_at_rate: Option<Duration>,
    /// Bytes queued.
    pub backlog_bytes: u64,
    /// Packets queued.
    pub backlog_packets: u64,
    /// Drops since the previous reading.
    pub drops: u64,
    /// Overlimits since the previous reading.
    pub overlimits: u64,
    /// Drops since the monitor first saw the class.
    pub drops_total: u64,
    /// Sent since the previous reading, in bits per second.
    pub sent_bps: u64,
    /// Whether the class was held at its ceil over the last interval.
    pub at_ceil: bool,
    /// Time held at its ceil since the monitor first saw the class.
    #[serde(rename = "time_at_ceil_ms", with = "crate::millis")]
    pub time_at_ceil: Duration,
}

/// How much of the ceil a class must send to count as at its ceil.
const AT_CEIL_SHARE: f64 = 0.95;

/// `bytes` drained at `rate`.
pub fn drain_time(bytes: u64, rate: Rate) -> Duration {
    let per_s = rate.bytes_per_second().max(1);
    Duration::from_nanos(
        u64::try_from(u128::from(bytes) * 1_000_000_000 / u128::from(per_s)).unwrap_or(u64::MAX),
    )
}

/// A counter's growth; a counter that went back (the class was
/// recreated, or a 32-bit kernel counter wrapped) counts from zero.
fn grew(now: u64, before: u64) -> u64 {
    now.checked_sub(before).unwrap_or(now)
}

/// The figures for `now` read at `at`, after `before` read at `then`
/// (none for the first reading), with the time at ceil so far.
pub fn figures(
    now: &ClassSample,
    before: Option<(&ClassSample, Duration)>,
    at: Duration,
    totals: (u64, Duration),
) -> Figures {
    let delay = now
        .ceil
        .map_or(Duration::ZERO, |c| drain_time(now.backlog_bytes, c));
    let delay_at_rate = now.rate.map(|r| drain_time(now.backlog_bytes, r));
    let mut f = Figures {
        delay,
        delay_at_rate,
        backlog_bytes: now.backlog_bytes,
        backlog_packets: now.backlog_packets,
        drops_total: totals.0,
        time_at_ceil: totals.1,
        ..Figures::default()
    };
    let Some((prev, then)) = before else {
        return f;
    };
    let Some(dt) = at.checked_sub(then).filter(|d| !d.is_zero()) else {
        return f;
    };
    f.drops = grew(now.drops, prev.drops);
    f.overlimits = grew(now.overlimits, prev.overlimits);
    f.drops_total += f.drops;
    let sent = grew(now.bytes, prev.bytes);
    f.sent_bps = u64::try_from(u128::from(sent) * 8 * 1_000_000_000 / dt.as_nanos().max(1))
        .unwrap_or(u64::MAX);
    // Held at its ceil: it sent (nearly) its ceil, or packets waited
    // through the whole interval while HTB refused to send them.
    let near_ceil = now
        .ceil
        .is_some_and(|c| f.sent_bps as f64 >= c.bps() as f64 * AT_CEIL_SHARE);
    let held = prev.backlog_packets > 0 && now.backlog_packets > 0 && f.overlimits > 0;
    f.at_ceil = near_ceil || held;
    if f.at_ceil {
        f.time_at_ceil += dt;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(bps: u64) -> Option<Rate> {
        Rate::from_bps(bps)
    }

    #[test]
    fn delay_is_backlog_over_ceil_and_over_rate() {
        // 24,000 bytes at 64 kbit/s (8,000 B/s) is 3 s; at 32 kbit/s, 6 s.
        let s = ClassSample {
            backlog_bytes: 24_000,
            backlog_packets: 16,
            rate: rate(32_000),
            ceil: rate(64_000),
            ..ClassSample::default()
        };
        let f = figures(&s, None, Duration::from_secs(1), (0, Duration::ZERO));
        assert_eq!(f.delay, Duration::from_secs(3));
        assert_eq!(f.delay_at_rate, Some(Duration::from_secs(6)));
        assert!(!f.at_ceil);
    }

    #[test]
    fn held_and_near_ceil_count_time_at_ceil() {
        let a = ClassSample {
            bytes: 0,
            backlog_packets: 3,
            ceil: rate(80_000),
            ..ClassSample::default()
        };
        // 9,600 bytes in one second is 76.8 kbit/s: 96% of the ceil.
        let b = ClassSample {
            bytes: 9_600,
            backlog_packets: 0,
            ..a
        };
        let f = figures(
            &b,
            Some((&a, Duration::from_secs(1))),
            Duration::from_secs(2),
            (0, Duration::from_secs(5)),
        );
        assert_eq!(f.sent_bps, 76_800);
        assert!(f.at_ceil);
        assert_eq!(f.time_at_ceil, Duration::from_secs(6));
        // Slow and without a waiting queue: not at ceil.
        let c = ClassSample { bytes: 100, ..a };
        let f = figures(
            &c,
            Some((&a, Duration::ZERO)),
            Duration::from_secs(1),
            (0, Duration::ZERO),
        );
        assert!(!f.at_ceil);
        // Waiting at both ends while HTB refused: held.
        let d = ClassSample {
            bytes: 100,
            overlimits: 4,
            ..a
        };
        let f = figures(
            &d,
            Some((&a, Duration::ZERO)),
            Duration::from_secs(1),
            (0, Duration::ZERO),
        );
        assert!(f.at_ceil);
        assert_eq!(f.overlimits, 4);
    }

    #[test]
    fn counters_that_go_back_count_from_zero() {
        let a = ClassSample {
            drops: 10,
            bytes: 5_000,
            ..ClassSample::default()
        };
        let b = ClassSample {
            drops: 2,
            bytes: 1_000,
            ..ClassSample::default()
        };
        let f = figures(
            &b,
            Some((&a, Duration::ZERO)),
            Duration::from_secs(1),
            (10, Duration::ZERO),
        );
        assert_eq!(f.drops, 2);
        assert_eq!(f.drops_total, 12);
        assert_eq!(f.sent_bps, 8_000);
    }
}
