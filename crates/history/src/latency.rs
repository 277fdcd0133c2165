//! Latency minutes in the history: the rows `latency::Recorder` closes
//! (TCP RTT per tenant × realm, probes, busy queues), their checks, and
//! the column form both stores write.
//!
//! # Columns
//!
//! Durations are whole **microseconds** (rounded to the nearest), as
//! signed 64-bit integers, never null: a figure that does not exist is
//! stored as 0 and comes back as `None` from the counts that say so
//! (RTT figures need `samples > 0`, a probe's RTT an answered probe, its
//! jitter two). So SQLite and ClickHouse (18.16 has no cheap nullable
//! columns in RowBinary) store the same thing.
//!
//! # Refusals
//!
//! Each row is checked alone ([`check`]); an absurd one (a round trip or a
//! queue of more than [`MAX_LATENCY`], a count above [`MAX_COUNT`],
//! percentiles out of order, more probes lost than sent, a minute outside
//! years 1970–9999, an empty or overlong name) is **refused**, counted in
//! the [`LatencyReport`] and never stored; the rest of the write commits.
//! Such rows are not kept in the quarantine (which holds traffic samples
//! for billing): a latency figure has no money riding on it, and the
//! refusal's text says what was wrong.
//!
//! # One row per minute, per daemon run
//!
//! A minute is closed once by the daemon that recorded it. A daemon
//! stopped in the middle of a minute stores what it saw (a partial
//! minute); one started in the same minute stores the rest when the
//! minute ends, so that minute has two rows, both kept and both read
//! back, rather than one overwritten.

use crate::StoreError;
use latency::rtt::RttFigures;
use latency::{Minutes, ProbeMinute, QueueMinute, RttMinute};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest round trip, queueing delay or time at ceil a row may carry:
/// an hour. Anything longer is a broken clock or counter, not a network.
pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// The largest count (samples, retransmissions, drops, overlimits, probes)
/// a row may carry: 2^40, far above a minute of any link.
pub const MAX_COUNT: u64 = 1 << 40;

/// The longest probe or class name.
pub const MAX_NAME: usize = 256;

/// The last Unix minute stored (9999-12-31 23:59 UTC).
pub const LAST_MINUTE: i64 = 253_402_300_799 / 60;

/// Which latency minutes to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyQuery {
    /// Only this tenant's RTT and queue rows, and no probes (the site's);
    /// `None`: everything.
    pub tenant: Option<u32>,
    /// The first Unix minute.
    pub from: i64,
    /// The first Unix minute after the range.
    pub to: i64,
    /// At most this many rows of each kind, the earliest first.
    pub limit: usize,
}

/// A row a write refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyRefusal {
    /// `rtt`, `probe` or `queue`.
    pub kind: String,
    /// Its minute.
    pub minute: i64,
    /// Whose (`tenant 7 realm 1`, the probe's or the class's name).
    pub subject: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for LatencyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} row of minute {} ({}): {}",
            self.kind, self.minute, self.subject, self.problem
        )
    }
}

/// What a latency write did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Rows stored.
    pub stored: u64,
    /// Rows refused (not stored), each with its reason.
    pub refused: Vec<LatencyRefusal>,
}

/// Whole microseconds, rounded to the nearest.
pub fn micros(d: Duration) -> i64 {
    i64::try_from((d.as_nanos() + 500) / 1000).unwrap_or(i64::MAX)
}

fn duration(us: i64, place: &str) -> Result<Duration, StoreError> {
    u64::try_from(us)
        .map(Duration::from_micros)
        .map_err(|_| StoreError::corrupt(place, format!("{us} µs is negative")))
}

fn count(v: i64, place: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(place, format!("count {v} is negative")))
}

fn check_duration(d: Duration, what: &str) -> Result<(), String> {
    if d > MAX_LATENCY {
        return Err(format!(
            "{what} of {:.3} s is above the {} s any real path or queue holds",
            d.as_secs_f64(),
            MAX_LATENCY.as_secs()
        ));
    }
    Ok(())
}

fn check_count(n: u64, what: &str) -> Result<(), String> {
    if n > MAX_COUNT {
        return Err(format!("{what} {n} is above 2^40 in a minute"));
    }
    Ok(())
}

fn check_minute(m: i64) -> Result<(), String> {
    if !(0..=LAST_MINUTE).contains(&m) {
        return Err(format!("minute {m} is outside 1970–9999"));
    }
    Ok(())
}

fn check_name(n: &str, what: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > MAX_NAME {
        return Err(format!(
            "the {what} name must be 1 to {MAX_NAME} bytes, not {}",
            n.len()
        ));
    }
    Ok(())
}

fn check_half(f: &RttFigures, half: &str) -> Result<(), String> {
    check_count(f.samples, &format!("{half} samples"))?;
    let all = [f.min, f.p50, f.p95, f.p99, f.max];
    if f.samples == 0 {
        return match all.iter().all(Option::is_none) {
            true => Ok(()),
            false => Err(format!("{half}: figures without a sample")),
        };
    }
    let Some(v) = all.into_iter().collect::<Option<Vec<Duration>>>() else {
        return Err(format!(
            "{half}: {} samples but a figure missing",
            f.samples
        ));
    };
    for d in &v {
        check_duration(*d, &format!("{half} RTT"))?;
    }
    if v.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!(
            "{half}: min ≤ p50 ≤ p95 ≤ p99 ≤ max does not hold ({v:?})"
        ));
    }
    Ok(())
}

/// Why `row` cannot be stored, if it cannot.
pub fn check_rtt(r: &RttMinute) -> Result<(), String> {
    check_minute(r.minute)?;
    check_half(&r.up, "up")?;
    check_half(&r.down, "down")?;
    check_count(r.retransmits_up, "retransmits up")?;
    check_count(r.retransmits_down, "retransmits down")
}

/// Why a probe row cannot be stored, if it cannot.
pub fn check_probe(p: &ProbeMinute) -> Result<(), String> {
    check_minute(p.minute)?;
    check_name(&p.probe, "probe")?;
    if p.lost > p.sent {
        return Err(format!("{} lost of {} sent", p.lost, p.sent));
    }
    for (d, what) in [(p.p50, "RTT p50"), (p.max, "RTT max"), (p.jitter, "jitter")] {
        if let Some(d) = d {
            check_duration(d, what)?;
        }
    }
    if p.p50.zip(p.max).is_some_and(|(a, b)| a > b) {
        return Err("p50 above max".into());
    }
    if (p.sent > p.lost) != p.p50.is_some() {
        return Err("an RTT without an answered probe, or the reverse".into());
    }
    Ok(())
}

/// Why a queue row cannot be stored, if it cannot.
pub fn check_queue(q: &QueueMinute) -> Result<(), String> {
    check_minute(q.minute)?;
    check_name(&q.class, "class")?;
    if q.label.len() > MAX_NAME {
        return Err(format!("a label of {} bytes", q.label.len()));
    }
    check_duration(q.max_delay, "queueing delay")?;
    check_duration(q.at_ceil, "time at ceil")?;
    check_count(q.drops, "drops")?;
    check_count(q.overlimits, "overlimits")
}

/// The rows of `m` that may be stored, and the refusals of the rest.
pub fn check(m: &Minutes) -> (Minutes, Vec<LatencyRefusal>) {
    let mut ok = Minutes::default();
    let mut refused = Vec::new();
    let mut refuse = |kind: &str, minute, subject: String, problem| {
        refused.push(LatencyRefusal {
            kind: kind.into(),
            minute,
            subject,
            problem,
        })
    };
    for r in &m.rtt {
        match check_rtt(r) {
            Ok(()) => ok.rtt.push(*r),
            Err(e) => refuse(
                "rtt",
                r.minute,
                format!("tenant {} realm {}", r.tenant, r.realm),
                e,
            ),
        }
    }
    for p in &m.probes {
        match check_probe(p) {
            Ok(()) => ok.probes.push(p.clone()),
            Err(e) => refuse("probe", p.minute, p.probe.clone(), e),
        }
    }
    for q in &m.queues {
        match check_queue(q) {
            Ok(()) => ok.queues.push(q.clone()),
            Err(e) => refuse("queue", q.minute, q.class.clone(), e),
        }
    }
    (ok, refused)
}

/// Puts rows read back in the one order every store answers in: by
/// minute and key, then (two rows of one minute and key: a restart) by
/// their figures.
pub fn order(m: &mut Minutes) {
    m.rtt
        .sort_by_key(|r| (r.minute, r.tenant, r.realm, rtt_columns(r)));
    m.probes.sort_by(|a, b| {
        (a.minute, &a.probe, probe_columns(a)).cmp(&(b.minute, &b.probe, probe_columns(b)))
    });
    m.queues.sort_by(|a, b| {
        let k = |q: &QueueMinute| {
            (
                q.minute,
                q.class.clone(),
                micros(q.max_delay),
                q.drops,
                q.overlimits,
                micros(q.at_ceil),
            )
        };
        k(a).cmp(&k(b))
    });
}

/// An RTT row's columns after minute, tenant and realm: each half's
/// samples, min, p50, p95, p99, max (µs), then the retransmissions.
pub const RTT_FIGURES: usize = 14;

fn half_columns(f: &RttFigures) -> [i64; 6] {
    let us = |d: Option<Duration>| d.map_or(0, micros);
    [
        i64::try_from(f.samples).unwrap_or(i64::MAX),
        us(f.min),
        us(f.p50),
        us(f.p95),
        us(f.p99),
        us(f.max),
    ]
}

fn half_from(c: &[i64], place: &str) -> Result<RttFigures, StoreError> {
    let samples = count(c[0], place)?;
    let d = |v: i64| -> Result<Option<Duration>, StoreError> {
        Ok((samples > 0).then_some(duration(v, place)?))
    };
    Ok(RttFigures {
        samples,
        min: d(c[1])?,
        p50: d(c[2])?,
        p95: d(c[3])?,
        p99: d(c[4])?,
        max: d(c[5])?,
    })
}

/// The figures of an RTT row as columns (see [`RTT_FIGURES`]).
pub fn rtt_columns(r: &RttMinute) -> [i64; RTT_FIGURES] {
    let mut c = [0; RTT_FIGURES];
    c[..6].copy_from_slice(&half_columns(&r.up));
    c[6..12].copy_from_slice(&half_columns(&r.down));
    c[12] = i64::try_from(r.retransmits_up).unwrap_or(i64::MAX);
    c[13] = i64::try_from(r.retransmits_down).unwrap_or(i64::MAX);
    c
}

/// An RTT row from its key and columns.
pub fn rtt_row(
    minute: i64,
    tenant: u32,
    realm: u16,
    c: &[i64; RTT_FIGURES],
) -> Result<RttMinute, StoreError> {
    let place = "latency_rtt";
    Ok(RttMinute {
        minute,
        tenant,
        realm,
        up: half_from(&c[..6], place)?,
        down: half_from(&c[6..12], place)?,
        retransmits_up: count(c[12], place)?,
        retransmits_down: count(c[13], place)?,
    })
}

/// A probe row's RTT columns: p50, max, jitter (µs; 0 when absent).
pub fn probe_columns(p: &ProbeMinute) -> [i64; 3] {
    let us = |d: Option<Duration>| d.map_or(0, micros);
    [us(p.p50), us(p.max), us(p.jitter)]
}

/// A probe row from its columns.
pub fn probe_row(
    minute: i64,
    probe: String,
    sent: u32,
    lost: u32,
    c: [i64; 3],
) -> Result<ProbeMinute, StoreError> {
    let place = "latency_probes";
    let answered = sent.saturating_sub(lost);
    let d = |v: i64, present: bool| -> Result<Option<Duration>, StoreError> {
        Ok(present.then_some(duration(v, place)?))
    };
    Ok(ProbeMinute {
        minute,
        probe,
        sent,
        lost,
        p50: d(c[0], answered > 0)?,
        max: d(c[1], answered > 0)?,
        jitter: d(c[2], answered > 1)?,
    })
}

/// A queue row from its columns (tenant −1: none).
#[allow(clippy::too_many_arguments)]
pub fn queue_row(
    minute: i64,
    class: String,
    tenant: i64,
    label: String,
    max_delay_us: i64,
    drops: i64,
    overlimits: i64,
    at_ceil_us: i64,
) -> Result<QueueMinute, StoreError> {
    let place = "latency_queues";
    Ok(QueueMinute {
        minute,
        class,
        tenant: u32::try_from(tenant).ok(),
        label,
        max_delay: duration(max_delay_us, place)?,
        drops: count(drops, place)?,
        overlimits: count(overlimits, place)?,
        at_ceil: duration(at_ceil_us, place)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Option<Duration> {
        Some(Duration::from_millis(v))
    }

    fn half(samples: u64, p: [u64; 5]) -> RttFigures {
        RttFigures {
            samples,
            min: ms(p[0]),
            p50: ms(p[1]),
            p95: ms(p[2]),
            p99: ms(p[3]),
            max: ms(p[4]),
        }
    }

    fn row() -> RttMinute {
        RttMinute {
            minute: 29_000_000,
            tenant: 7,
            realm: 1,
            up: half(20, [1, 2, 3, 4, 5]),
            down: RttFigures::default(),
            retransmits_up: 3,
            retransmits_down: 0,
        }
    }

    #[test]
    fn columns_round_trip_to_the_microsecond() {
        let mut r = row();
        r.up.p50 = Some(Duration::from_nanos(2_000_499));
        let back = rtt_row(r.minute, 7, 1, &rtt_columns(&r)).unwrap();
        assert_eq!(back.up.p50, Some(Duration::from_micros(2_000)));
        assert_eq!(back.down, RttFigures::default());
        assert_eq!(back.retransmits_up, 3);
        assert_eq!(micros(Duration::from_nanos(1_500)), 2);
    }

    #[test]
    fn absurd_rows_are_refused_alone() {
        let good = row();
        let mut slow = row();
        slow.up = half(1, [1, 1, 1, 1, 7_200_000]);
        let mut disorder = row();
        disorder.up = half(5, [1, 9, 3, 4, 10]);
        let mut lonely = row();
        lonely.down.p50 = ms(1);
        let mut early = row();
        early.minute = -1;
        let probe = ProbeMinute {
            minute: 29_000_000,
            probe: "national icmp 192.0.2.1".into(),
            sent: 2,
            lost: 3,
            p50: None,
            max: None,
            jitter: None,
        };
        let queue = QueueMinute {
            minute: 29_000_000,
            class: "lan0 1:10".into(),
            tenant: Some(7),
            label: "national down".into(),
            max_delay: Duration::from_secs(1),
            drops: 1 << 41,
            overlimits: 0,
            at_ceil: Duration::ZERO,
        };
        let m = Minutes {
            rtt: vec![good, slow, disorder, lonely, early],
            probes: vec![probe],
            queues: vec![queue],
        };
        let (ok, refused) = check(&m);
        assert_eq!(ok.rtt, vec![good]);
        assert!(ok.probes.is_empty() && ok.queues.is_empty());
        let problems: Vec<String> = refused.iter().map(ToString::to_string).collect();
        assert_eq!(refused.len(), 6, "{problems:#?}");
        assert!(problems[0].contains("7200.000 s"), "{problems:#?}");
        assert!(problems[1].contains("does not hold"), "{problems:#?}");
        assert!(problems[2].contains("without a sample"), "{problems:#?}");
        assert!(problems[3].contains("1970"), "{problems:#?}");
        assert!(problems[4].contains("3 lost of 2 sent"), "{problems:#?}");
        assert!(problems[5].contains("drops"), "{problems:#?}");
    }
}
