//! One active probe's replies: RTT, jitter and loss over the last minute,
//! and a baseline over a longer window.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// One probe sent: its reply's round-trip time, or `None` when no reply
/// came before the probe's timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReply {
    /// When the probe was sent, on the caller's monotonic clock.
    pub at: Duration,
    /// The round trip, if answered.
    pub rtt: Option<Duration>,
}

/// The figures over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeFigures {
    /// Probes in the window.
    pub sent: u32,
    /// Of them, answered.
    pub received: u32,
    /// Unanswered share, in percent.
    pub loss_percent: f64,
    /// The last answered probe's RTT.
    #[serde(rename = "last_ms", with = "crate::millis::option")]
    pub last: Option<Duration>,
    /// Lowest, median and highest RTT in the window.
    #[serde(rename = "min_ms", with = "crate::millis::option")]
    pub min: Option<Duration>,
    /// The median.
    #[serde(rename = "p50_ms", with = "crate::millis::option")]
    pub p50: Option<Duration>,
    /// The highest.
    #[serde(rename = "max_ms", with = "crate::millis::option")]
    pub max: Option<Duration>,
    /// The mean RTT.
    #[serde(rename = "mean_ms", with = "crate::millis::option")]
    pub mean: Option<Duration>,
    /// Mean absolute difference of consecutive answered probes' RTTs
    /// (RFC 3550's idea, without its smoothing: a minute is the window).
    #[serde(rename = "jitter_ms", with = "crate::millis::option")]
    pub jitter: Option<Duration>,
    /// The lowest RTT over the baseline window: what the path does when
    /// nothing queues.
    #[serde(rename = "baseline_ms", with = "crate::millis::option")]
    pub baseline: Option<Duration>,
}

/// A probe's recent replies.
#[derive(Clone, Debug, Default)]
pub struct History {
    replies: VecDeque<ProbeReply>,
}

impl History {
    /// Adds a reply, forgetting those older than `keep` before it.
    pub fn push(&mut self, reply: ProbeReply, keep: Duration) {
        self.replies.push_back(reply);
        while self
            .replies
            .front()
            .is_some_and(|r| reply.at.saturating_sub(r.at) > keep)
        {
            self.replies.pop_front();
        }
    }

    /// The figures over the `window` before `now`, and the baseline over
    /// everything kept.
    pub fn figures(&self, now: Duration, window: Duration) -> ProbeFigures {
        let recent: Vec<&ProbeReply> = self
            .replies
            .iter()
            .filter(|r| now.saturating_sub(r.at) < window)
            .collect();
        let rtts: Vec<Duration> = recent.iter().filter_map(|r| r.rtt).collect();
        let sent = recent.len() as u32;
        let received = rtts.len() as u32;
        let mut sorted = rtts.clone();
        sorted.sort();
        let jitter = (rtts.len() >= 2).then(|| {
            let sum: Duration = rtts.windows(2).map(|w| w[0].abs_diff(w[1])).sum();
            sum / (rtts.len() as u32 - 1)
        });
        ProbeFigures {
            sent,
            received,
            loss_percent: if sent == 0 {
                0.0
            } else {
                f64::from(sent - received) * 100.0 / f64::from(sent)
            },
            last: self.replies.iter().rev().find_map(|r| r.rtt),
            min: sorted.first().copied(),
            p50: sorted.get(sorted.len().saturating_sub(1) / 2).copied(),
            max: sorted.last().copied(),
            mean: (!rtts.is_empty()).then(|| rtts.iter().sum::<Duration>() / received),
            jitter,
            baseline: self.replies.iter().filter_map(|r| r.rtt).min(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_minute_of_replies() {
        let mut h = History::default();
        let keep = ms(600_000);
        // An old, fast reply: only the baseline remembers it.
        h.push(
            ProbeReply {
                at: ms(0),
                rtt: Some(ms(5)),
            },
            keep,
        );
        for (i, rtt) in [Some(10), Some(14), None, Some(12), None]
            .into_iter()
            .enumerate()
        {
            h.push(
                ProbeReply {
                    at: ms(100_000 + i as u64 * 1_000),
                    rtt: rtt.map(ms),
                },
                keep,
            );
        }
        let f = h.figures(ms(105_000), ms(60_000));
        assert_eq!((f.sent, f.received), (5, 3));
        assert!((f.loss_percent - 40.0).abs() < 1e-9);
        assert_eq!(f.min, Some(ms(10)));
        assert_eq!(f.p50, Some(ms(12)));
        assert_eq!(f.max, Some(ms(14)));
        assert_eq!(f.mean, Some(ms(12)));
        // |14-10| + |12-14| = 6 over 2 pairs.
        assert_eq!(f.jitter, Some(ms(3)));
        assert_eq!(f.last, Some(ms(12)));
        assert_eq!(f.baseline, Some(ms(5)));
    }

    #[test]
    fn old_replies_are_forgotten() {
        let mut h = History::default();
        h.push(
            ProbeReply {
                at: ms(0),
                rtt: Some(ms(1)),
            },
            ms(10_000),
        );
        h.push(
            ProbeReply {
                at: ms(20_000),
                rtt: Some(ms(9)),
            },
            ms(10_000),
        );
        let f = h.figures(ms(20_000), ms(60_000));
        assert_eq!(f.sent, 1);
        assert_eq!(f.baseline, Some(ms(9)));
    }
}
