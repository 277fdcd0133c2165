//! Passive TCP round-trip times per tenant × realm: samples (from the
//! eBPF classifier's timestamp matching) folded into per-minute
//! histograms, and the alarm on a tenant's p95.
//!
//! **Two halves.** The classifier sits in the middle of every path. A
//! sample timed on a packet going **up** (from the tenant, echoed by the
//! far end) is the far side's round trip: the tenant's upload queue in
//! tollgate and everything beyond. One timed going **down** (echoed by
//! the tenant) is the tenant's side: its download queue and its own link
//! and stack. The round trip the tenant sees is about the sum
//! ([`MinuteFigures::rtt_p50`]); each half alone is a lower bound of it,
//! which is what the alarm judges (the larger half's p95), so an alarm is
//! never the estimate's fault.
//!
//! **Histograms.** A fixed log-scale histogram ([`Histogram`]): 16
//! buckets per power of two of nanoseconds (each bucket at most 1/16 of
//! its lower edge wide, a value read back at the bucket's middle: within
//! 3.2%), stored sparsely (at most 500 buckets from 1 ns to 10 s), plus
//! the exact largest and smallest sample. A minute is a whole minute on
//! the caller's monotonic clock (`at / 60 s`); each tenant × realm keeps
//! the minute being filled and the last one closed, and is forgotten
//! after a minute without samples, so memory follows the tenants with TCP
//! traffic, not the policy.

use crate::alarm::{Alarm, AlarmKind, Change, Hold, Reading};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One event from the classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RttSample {
    /// The tenant's id.
    pub tenant: u32,
    /// The far end's realm.
    pub realm: u16,
    /// The timed packet went up (from the tenant).
    pub up: bool,
    /// The round trip; `None` for a retransmitted data segment.
    pub rtt: Option<Duration>,
}

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;

/// The bucket of `ns` (≥ 1).
fn bucket(ns: u64) -> u16 {
    let ns = ns.max(1);
    let msb = 63 - ns.leading_zeros();
    if msb < SUB_BITS {
        return ns as u16;
    }
    let sub = (ns >> (msb - SUB_BITS)) & (SUB - 1);
    ((msb - SUB_BITS + 1) as u64 * SUB + sub) as u16
}

/// The lower edge and width of bucket `b`.
fn edges(b: u16) -> (u64, u64) {
    let b = u64::from(b);
    if b < SUB {
        return (b, 1);
    }
    let shift = b / SUB - 1;
    let sub = b % SUB;
    ((SUB + sub) << shift, 1 << shift)
}

/// A log-scale histogram of round trips.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    buckets: BTreeMap<u16, u32>,
    count: u64,
    min: Option<Duration>,
    max: Option<Duration>,
}

impl Histogram {
    /// Adds one round trip.
    pub fn add(&mut self, rtt: Duration) {
        let ns = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        *self.buckets.entry(bucket(ns)).or_default() += 1;
        self.count += 1;
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        self.max = Some(self.max.map_or(rtt, |m| m.max(rtt)));
    }

    /// Samples in it.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 < q ≤ 1): the middle of the bucket holding the
    /// sample of rank ⌈q·n⌉, kept within the exact min and max.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (b, n) in &self.buckets {
            seen += u64::from(*n);
            if seen >= rank {
                let (lo, w) = edges(*b);
                let mid = Duration::from_nanos(lo + w / 2);
                return Some(mid.clamp(self.min?, self.max?));
            }
        }
        self.max
    }

    /// Its figures.
    pub fn figures(&self) -> RttFigures {
        RttFigures {
            samples: self.count,
            min: self.min,
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }
}

/// One half's figures over a minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RttFigures {
    /// Samples.
    pub samples: u64,
    /// The smallest.
    #[serde(rename = "min_ms", with = "crate::millis::option")]
    pub min: Option<Duration>,
    /// The median.
    #[serde(rename = "p50_ms", with = "crate::millis::option")]
    pub p50: Option<Duration>,
    /// The 95th percentile.
    #[serde(rename = "p95_ms", with = "crate::millis::option")]
    pub p95: Option<Duration>,
    /// The 99th percentile.
    #[serde(rename = "p99_ms", with = "crate::millis::option")]
    pub p99: Option<Duration>,
    /// The largest.
    #[serde(rename = "max_ms", with = "crate::millis::option")]
    pub max: Option<Duration>,
}

/// A tenant × realm's minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteFigures {
    /// Where the minute starts (monotonic).
    #[serde(rename = "start_ms", with = "crate::millis")]
    pub start: Duration,
    /// Timed going up: the far side (upload queue and beyond).
    pub up: RttFigures,
    /// Timed going down: the tenant's side (download queue, its link).
    pub down: RttFigures,
    /// The sum of the halves' medians: about the round trip the tenant
    /// sees (both halves needed).
    #[serde(rename = "rtt_p50_ms", with = "crate::millis::option")]
    pub rtt_p50: Option<Duration>,
    /// Data segments the tenant sent again.
    pub retransmits_up: u64,
    /// Data segments the far end sent again.
    pub retransmits_down: u64,
}

/// A tenant × realm as shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RttView {
    /// The tenant.
    pub tenant: u32,
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub realm_name: String,
    /// The minute being filled.
    pub current: MinuteFigures,
    /// The last minute closed, if it had samples.
    pub last: Option<MinuteFigures>,
}

#[derive(Default)]
struct Minute {
    up: Histogram,
    down: Histogram,
    retransmits_up: u64,
    retransmits_down: u64,
}

impl Minute {
    fn figures(&self, start: Duration) -> MinuteFigures {
        let (up, down) = (self.up.figures(), self.down.figures());
        MinuteFigures {
            start,
            up,
            down,
            rtt_p50: up.p50.zip(down.p50).map(|(a, b)| a + b),
            retransmits_up: self.retransmits_up,
            retransmits_down: self.retransmits_down,
        }
    }

    fn is_empty(&self) -> bool {
        self.up.count() + self.down.count() + self.retransmits_up + self.retransmits_down == 0
    }
}

#[derive(Default)]
struct TenantRealm {
    minute: u64,
    current: Minute,
    last: Option<MinuteFigures>,
    hold: Hold,
}

const MINUTE: Duration = Duration::from_secs(60);

fn minute_of(at: Duration) -> u64 {
    at.as_secs() / 60
}

/// The alarm's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RttAlarm {
    /// The larger half's p95 over a minute above this…
    pub p95: Duration,
    /// …for this many whole minutes in a row (at least one).
    pub minutes: u32,
}

/// Every tenant × realm with TCP round trips.
#[derive(Default)]
pub struct Rtt {
    entries: BTreeMap<(u32, u16), TenantRealm>,
    /// Samples and retransmissions folded since start.
    pub events: u64,
}

/// A realm's name: `all` in a policy without realms (every class has
/// realm 0), else the policy's name or its id.
fn realm_name(names: &BTreeMap<u16, String>, realm: u16) -> String {
    match names.get(&realm) {
        Some(n) => n.clone(),
        None if names.is_empty() => "all".into(),
        None => realm.to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Rtt {
    /// Closes every minute that ended before `at`: judges the alarm on it,
    /// and forgets a tenant × realm whose minutes are empty.
    pub fn roll(
        &mut self,
        at: Duration,
        alarm: Option<RttAlarm>,
        names: &BTreeMap<u16, String>,
    ) -> Vec<Change> {
        let now = minute_of(at);
        let mut out = Vec::new();
        self.entries.retain(|&(tenant, realm), e| {
            if e.minute >= now {
                return true;
            }
            let start = MINUTE * e.minute as u32;
            let closed = std::mem::take(&mut e.current);
            let f = (!closed.is_empty()).then(|| closed.figures(start));
            // A minute with nothing after the closed one: empty too.
            e.last = if e.minute + 1 == now { f } else { None };
            e.minute = now;
            if let Some(a) = alarm {
                let end = start + MINUTE;
                let worst = f.and_then(|f| f.up.p95.max(f.down.p95));
                let subject = format!("tenant {tenant} {}", realm_name(names, realm));
                let msg = || {
                    let p95 = worst.unwrap_or_default();
                    format!(
                        "{subject}: TCP RTT p95 {:.1} ms above {:.1} ms for {} min",
                        ms(p95),
                        ms(a.p95),
                        a.minutes
                    )
                };
                let r = Reading {
                    bad: worst.is_some_and(|w| w > a.p95),
                    value: worst.map_or(0.0, ms),
                    threshold: ms(a.p95),
                    message: &msg,
                };
                let hold = MINUTE * a.minutes.saturating_sub(1);
                out.extend(e.hold.update(
                    end,
                    hold,
                    (AlarmKind::TenantRtt, &subject, Some(tenant)),
                    r,
                ));
            }
            let keep = e.last.is_some() || e.hold.raised().is_some();
            if !keep {
                out.extend(e.hold.drop_at(at));
            }
            keep
        });
        out
    }

    /// Folds samples taken at `at` (closing the minutes that ended
    /// before, with their alarms).
    pub fn add(
        &mut self,
        at: Duration,
        samples: &[RttSample],
        alarm: Option<RttAlarm>,
        names: &BTreeMap<u16, String>,
    ) -> Vec<Change> {
        let out = self.roll(at, alarm, names);
        let now = minute_of(at);
        for s in samples {
            let e = self
                .entries
                .entry((s.tenant, s.realm))
                .or_insert_with(|| TenantRealm {
                    minute: now,
                    ..TenantRealm::default()
                });
            let m = &mut e.current;
            match (s.rtt, s.up) {
                (Some(r), true) => m.up.add(r),
                (Some(r), false) => m.down.add(r),
                (None, true) => m.retransmits_up += 1,
                (None, false) => m.retransmits_down += 1,
            }
            self.events += 1;
        }
        out
    }

    /// Every tenant × realm as shown.
    pub fn views(&self, names: &BTreeMap<u16, String>) -> Vec<RttView> {
        self.entries
            .iter()
            .map(|(&(tenant, realm), e)| RttView {
                tenant,
                realm,
                realm_name: realm_name(names, realm),
                current: e.current.figures(MINUTE * e.minute as u32),
                last: e.last,
            })
            .collect()
    }

    /// The alarms raised now.
    pub fn alarms(&self) -> impl Iterator<Item = &Alarm> {
        self.entries.values().filter_map(|e| e.hold.raised())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn buckets_cover_every_value_within_3_percent() {
        let mut last = 0;
        for ns in [
            1u64,
            7,
            15,
            16,
            17,
            31,
            32,
            1000,
            999_999,
            20_000_000,
            10_000_000_000,
        ] {
            let b = bucket(ns);
            assert!(b >= last);
            last = b;
            let (lo, w) = edges(b);
            assert!(lo <= ns && ns < lo + w, "{ns} in [{lo}, {})", lo + w);
            let mid = (lo + w / 2) as f64;
            assert!(
                (mid - ns as f64).abs() <= 0.033 * ns as f64 + 1.0,
                "{ns}: {mid}"
            );
        }
        assert!(bucket(10_000_000_000) < 500);
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for i in 1..=100 {
            h.add(ms(i));
        }
        let f = h.figures();
        assert_eq!(f.samples, 100);
        let near = |d: Option<Duration>, v: f64| {
            let d = d.unwrap().as_secs_f64() * 1000.0;
            (d - v).abs() <= 0.033 * v
        };
        assert!(near(f.p50, 50.0), "{f:?}");
        assert!(near(f.p95, 95.0), "{f:?}");
        assert!(near(f.p99, 99.0), "{f:?}");
        assert_eq!((f.min, f.max), (Some(ms(1)), Some(ms(100))));
        // One sample: every quantile is it, exactly.
        let mut h = Histogram::default();
        h.add(Duration::from_micros(1234));
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(1234)));
    }

    fn sample(tenant: u32, up: bool, rtt: Option<u64>) -> RttSample {
        RttSample {
            tenant,
            realm: 1,
            up,
            rtt: rtt.map(ms),
        }
    }

    #[test]
    fn minutes_close_alarm_after_the_hold_and_forget_the_quiet() {
        let names = BTreeMap::from([(1, "national".to_string())]);
        let alarm = Some(RttAlarm {
            p95: ms(100),
            minutes: 2,
        });
        let mut r = Rtt::default();
        let slow: Vec<RttSample> = (0..20)
            .flat_map(|_| [sample(7, true, Some(150)), sample(7, false, Some(2))])
            .chain([sample(7, true, None)])
            .collect();
        assert!(r.add(ms(1_000), &slow, alarm, &names).is_empty());
        let v = r.views(&names);
        assert_eq!(v[0].current.up.samples, 20);
        assert_eq!(v[0].current.retransmits_up, 1);
        assert!(v[0].last.is_none());
        // Minute 0 closes: bad, but one minute of two.
        assert!(r.add(ms(61_000), &slow, alarm, &names).is_empty());
        let last = r.views(&names)[0].last.unwrap();
        assert_eq!(last.up.samples, 20);
        let p50 = last.rtt_p50.unwrap().as_secs_f64() * 1000.0;
        assert!((p50 - 152.0).abs() < 5.0, "{p50}");
        // Minute 1 closes bad too: raised.
        let c = r.add(ms(121_000), &[sample(7, true, Some(10))], alarm, &names);
        assert_eq!(c.len(), 1);
        assert!(c[0].raised);
        assert_eq!(c[0].alarm.kind, AlarmKind::TenantRtt);
        assert_eq!(c[0].alarm.tenant, Some(7));
        assert_eq!(r.alarms().count(), 1);
        // Minute 2 was fast: cleared.
        let c = r.roll(ms(181_000), alarm, &names);
        assert!(c.len() == 1 && !c[0].raised);
        // Minute 3 empty, then forgotten.
        assert!(r.roll(ms(241_000), alarm, &names).is_empty());
        assert!(r.views(&names).is_empty());
    }
}
