//! The monitor: every class, probe and watched interface, their figures
//! and their alarms.

use crate::alarm::{Alarm, AlarmKind, Change, Hold, Reading};
use crate::probe::{History, ProbeFigures, ProbeReply};
use crate::queue::{self, ClassSample, Figures};
use crate::rtt::{Rtt, RttAlarm, RttSample, RttView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The thresholds and windows (the policy's `[latency]`, resolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// A class's delay (backlog ÷ ceil) above this…
    pub queue_delay: Duration,
    /// …for this long raises a queue alarm.
    pub queue_for: Duration,
    /// A probe's RTT above this raises an RTT alarm (none: no fixed
    /// threshold).
    pub probe_rtt: Option<Duration>,
    /// A probe's RTT above its baseline × this (none: off)…
    pub probe_factor: Option<u32>,
    /// …and at least this much above it (so that a 50 µs baseline
    /// doubling on a quiet LAN is not an alarm).
    pub probe_floor: Duration,
    /// An RTT condition must hold this long.
    pub probe_for: Duration,
    /// Loss over the window above this percentage raises a loss alarm.
    pub loss_percent: Option<f64>,
    /// Probes needed in the window before loss is judged.
    pub loss_min_probes: u32,
    /// An interface up with no packet for this long raises an idle alarm.
    pub idle_for: Duration,
    /// The window of the probes' figures (a minute).
    pub window: Duration,
    /// How far back the baseline looks.
    pub baseline: Duration,
    /// Each probe's name, by index.
    pub probes: Vec<String>,
    /// Passive TCP RTT is on (the classifier sends samples).
    #[serde(default)]
    pub tcp_rtt: bool,
    /// The alarm on a tenant × realm's TCP RTT p95 (none: off).
    #[serde(default)]
    pub tenant_rtt: Option<RttAlarm>,
    /// Realm names by id, for the RTT view and alarms.
    #[serde(default)]
    pub realm_names: BTreeMap<u16, String>,
}

/// One reading of a watched interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSample {
    /// Its name.
    pub name: String,
    /// Up (administratively and with carrier).
    pub up: bool,
    /// Packets received and sent since it was created.
    pub packets: u64,
}

/// A class as shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassView {
    /// The class (`dev major:minor`).
    pub class: String,
    /// Whose.
    pub tenant: Option<u32>,
    /// Its realm and direction, for people (`national down`).
    pub label: String,
    /// Its figures.
    pub figures: Figures,
}

/// A probe as shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeView {
    /// Its name (`national icmp 192.0.2.1`).
    pub name: String,
    /// Over the window.
    pub figures: ProbeFigures,
}

/// An interface as shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    /// Its name.
    pub name: String,
    /// Up.
    pub up: bool,
    /// How long it has passed no packet.
    #[serde(rename = "idle_ms", with = "crate::millis")]
    pub idle: Duration,
}

/// Everything the monitor shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The last queue reading's time (monotonic), if any.
    #[serde(rename = "sampled_ms", with = "crate::millis::option")]
    pub sampled: Option<Duration>,
    /// Every class of the last reading (shared: rebuilt once per
    /// reading, not for every probe reply).
    pub classes: Arc<Vec<ClassView>>,
    /// Every probe.
    pub probes: Vec<ProbeView>,
    /// Every watched interface.
    pub links: Vec<LinkView>,
    /// The alarms raised now.
    pub alarms: Vec<Alarm>,
    /// Alarms raised since start.
    pub raised_total: u64,
    /// Queue readings since start.
    pub readings: u64,
    /// Passive TCP RTT per tenant × realm (when `tcp_rtt` is on): the
    /// minute being filled and the last closed.
    #[serde(default)]
    pub tcp_rtt: Vec<RttView>,
    /// RTT samples and retransmissions received since start.
    #[serde(default)]
    pub rtt_events: u64,
}

#[derive(Default)]
struct ClassState {
    last: Option<(ClassSample, Duration)>,
    figures: Figures,
    tenant: Option<u32>,
    label: String,
    hold: Hold,
}

#[derive(Default)]
struct ProbeState {
    history: History,
    figures: ProbeFigures,
    rtt: Hold,
    loss: Hold,
}

struct LinkState {
    up: bool,
    packets: u64,
    quiet_since: Duration,
    hold: Hold,
}

/// A class in one queue reading: its name, whose it is, a label and its
/// stats.
pub struct QueueEntry {
    /// `dev major:minor`.
    pub class: String,
    /// Whose.
    pub tenant: Option<u32>,
    /// For people.
    pub label: String,
    /// The reading.
    pub sample: ClassSample,
}

/// The monitor.
pub struct Monitor {
    config: Config,
    classes: BTreeMap<String, ClassState>,
    probes: Vec<ProbeState>,
    links: BTreeMap<String, LinkState>,
    raised_total: u64,
    readings: u64,
    sampled: Option<Duration>,
    /// The classes as shown, and their raised alarms, as of the last
    /// queue reading.
    class_views: Arc<Vec<ClassView>>,
    class_alarms: Vec<Alarm>,
    rtt: Rtt,
    view: Arc<View>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Monitor {
    /// A monitor with nothing seen yet.
    pub fn new(config: Config) -> Monitor {
        let probes = config
            .probes
            .iter()
            .map(|_| ProbeState::default())
            .collect();
        let mut m = Monitor {
            config,
            classes: BTreeMap::new(),
            probes,
            links: BTreeMap::new(),
            raised_total: 0,
            readings: 0,
            sampled: None,
            class_views: Arc::default(),
            class_alarms: Vec::new(),
            rtt: Rtt::default(),
            view: Arc::default(),
        };
        m.rebuild();
        m
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the monitor shows now (rebuilt after each sample).
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view)
    }

    fn count(&mut self, changes: &[Change]) {
        self.raised_total += changes.iter().filter(|c| c.raised).count() as u64;
    }

    /// One reading of every class at `at`. Classes missing from it are
    /// gone (their alarms clear).
    pub fn queues(&mut self, at: Duration, entries: Vec<QueueEntry>) -> Vec<Change> {
        let mut out = Vec::new();
        let mut next = BTreeMap::new();
        let (limit, hold) = (self.config.queue_delay, self.config.queue_for);
        for e in entries {
            let mut st = self.classes.remove(&e.class).unwrap_or_default();
            let totals = (st.figures.drops_total, st.figures.time_at_ceil);
            let before = st.last.as_ref().map(|(s, t)| (s, *t));
            st.figures = queue::figures(&e.sample, before, at, totals);
            st.last = Some((e.sample, at));
            st.tenant = e.tenant;
            st.label = e.label;
            let f = st.figures;
            let msg = || {
                format!(
                    "{} holds {:.0} ms of traffic ({} bytes, {} packets queued; alarm above {:.0} ms)",
                    e.class,
                    ms(f.delay),
                    f.backlog_bytes,
                    f.backlog_packets,
                    ms(limit)
                )
            };
            let r = Reading {
                bad: f.delay > limit,
                value: ms(f.delay),
                threshold: ms(limit),
                message: &msg,
            };
            out.extend(
                st.hold
                    .update(at, hold, (AlarmKind::QueueDelay, &e.class, e.tenant), r),
            );
            next.insert(e.class, st);
        }
        for (_, mut gone) in std::mem::replace(&mut self.classes, next) {
            out.extend(gone.hold.drop_at(at));
        }
        // Minutes of TCP RTT close on the clock, samples or not.
        let c = &self.config;
        out.extend(self.rtt.roll(at, c.tenant_rtt, &c.realm_names));
        self.readings += 1;
        self.sampled = Some(at);
        self.count(&out);
        self.rebuild_classes();
        self.rebuild();
        out
    }

    /// One probe's reply (or loss).
    pub fn probe(&mut self, index: usize, reply: ProbeReply) -> Vec<Change> {
        let c = &self.config;
        let (Some(st), Some(name)) = (self.probes.get_mut(index), c.probes.get(index)) else {
            return Vec::new();
        };
        let at = reply.at;
        st.history.push(reply, c.baseline.max(c.window));
        st.figures = st.history.figures(at, c.window);
        let f = st.figures;
        let mut out = Vec::new();
        if let Some(rtt) = reply.rtt {
            // Against the baseline before this reply could lower it.
            let base = f.baseline.filter(|b| *b < rtt);
            let over_fixed = c.probe_rtt.filter(|t| rtt > *t);
            let over_base = match (c.probe_factor, base) {
                (Some(k), Some(b)) => {
                    let limit = (b * k).max(b + c.probe_floor);
                    (rtt > limit).then_some(limit)
                }
                _ => None,
            };
            let threshold = over_fixed.or(over_base).or(c.probe_rtt);
            let msg = || match (over_fixed, base) {
                (Some(t), _) => format!("{name}: RTT {:.1} ms above {:.1} ms", ms(rtt), ms(t)),
                (None, Some(b)) => format!(
                    "{name}: RTT {:.1} ms against a baseline of {:.1} ms",
                    ms(rtt),
                    ms(b)
                ),
                (None, None) => format!("{name}: RTT {:.1} ms", ms(rtt)),
            };
            let r = Reading {
                bad: over_fixed.is_some() || over_base.is_some(),
                value: ms(rtt),
                threshold: threshold.map_or(0.0, ms),
                message: &msg,
            };
            out.extend(
                st.rtt
                    .update(at, c.probe_for, (AlarmKind::ProbeRtt, name, None), r),
            );
        }
        if let Some(limit) = c.loss_percent {
            let msg = || {
                format!(
                    "{name}: {:.0}% of {} probes lost in the last {} s",
                    f.loss_percent,
                    f.sent,
                    c.window.as_secs()
                )
            };
            let r = Reading {
                bad: f.sent >= c.loss_min_probes && f.loss_percent > limit,
                value: f.loss_percent,
                threshold: limit,
                message: &msg,
            };
            out.extend(
                st.loss
                    .update(at, Duration::ZERO, (AlarmKind::ProbeLoss, name, None), r),
            );
        }
        self.count(&out);
        self.rebuild();
        out
    }

    /// One reading of the watched interfaces.
    pub fn links(&mut self, at: Duration, samples: Vec<LinkSample>) -> Vec<Change> {
        let mut out = Vec::new();
        let idle_for = self.config.idle_for;
        let mut next = BTreeMap::new();
        for s in samples {
            let mut st = self.links.remove(&s.name).unwrap_or(LinkState {
                up: s.up,
                packets: s.packets,
                quiet_since: at,
                hold: Hold::default(),
            });
            if s.packets != st.packets || !s.up {
                st.quiet_since = at;
            }
            st.packets = s.packets;
            st.up = s.up;
            let idle = at.saturating_sub(st.quiet_since);
            let msg = || {
                format!(
                    "{} is up and passed no packet for {} s",
                    s.name,
                    idle.as_secs()
                )
            };
            let r = Reading {
                bad: s.up && idle >= idle_for,
                value: idle.as_secs_f64(),
                threshold: idle_for.as_secs_f64(),
                message: &msg,
            };
            out.extend(
                st.hold
                    .update(at, Duration::ZERO, (AlarmKind::Idle, &s.name, None), r),
            );
            next.insert(s.name, st);
        }
        for (_, mut gone) in std::mem::replace(&mut self.links, next) {
            out.extend(gone.hold.drop_at(at));
        }
        self.count(&out);
        self.rebuild();
        out
    }

    /// TCP round trips (and retransmissions) drained at `at`.
    pub fn rtt(&mut self, at: Duration, samples: &[RttSample]) -> Vec<Change> {
        let c = &self.config;
        let out = self.rtt.add(at, samples, c.tenant_rtt, &c.realm_names);
        self.count(&out);
        self.rebuild();
        out
    }

    fn rebuild_classes(&mut self) {
        let mut alarms = Vec::new();
        let classes = self
            .classes
            .iter()
            .map(|(k, s)| {
                alarms.extend(s.hold.raised().cloned());
                ClassView {
                    class: k.clone(),
                    tenant: s.tenant,
                    label: s.label.clone(),
                    figures: s.figures,
                }
            })
            .collect();
        self.class_views = Arc::new(classes);
        self.class_alarms = alarms;
    }

    fn rebuild(&mut self) {
        let mut alarms = self.class_alarms.clone();
        let classes = Arc::clone(&self.class_views);
        let probes = self
            .probes
            .iter()
            .zip(&self.config.probes)
            .map(|(s, name)| {
                alarms.extend(s.rtt.raised().cloned());
                alarms.extend(s.loss.raised().cloned());
                ProbeView {
                    name: name.clone(),
                    figures: s.figures,
                }
            })
            .collect();
        alarms.extend(self.rtt.alarms().cloned());
        let at = self.sampled.unwrap_or_default();
        let links = self
            .links
            .iter()
            .map(|(k, s)| {
                alarms.extend(s.hold.raised().cloned());
                LinkView {
                    name: k.clone(),
                    up: s.up,
                    idle: at.saturating_sub(s.quiet_since),
                }
            })
            .collect();
        self.view = Arc::new(View {
            sampled: self.sampled,
            classes,
            probes,
            links,
            alarms,
            raised_total: self.raised_total,
            readings: self.readings,
            tcp_rtt: self.rtt.views(&self.config.realm_names),
            rtt_events: self.rtt.events,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use net_types::Rate;

    fn config() -> Config {
        Config {
            queue_delay: Duration::from_secs(1),
            queue_for: Duration::ZERO,
            probe_rtt: Some(Duration::from_millis(100)),
            probe_factor: Some(2),
            probe_floor: Duration::from_millis(1),
            probe_for: Duration::ZERO,
            loss_percent: Some(20.0),
            loss_min_probes: 5,
            idle_for: Duration::from_secs(3),
            window: Duration::from_secs(60),
            baseline: Duration::from_secs(600),
            probes: vec!["national icmp 192.0.2.1".into()],
            tcp_rtt: false,
            tenant_rtt: None,
            realm_names: BTreeMap::new(),
        }
    }

    fn entry(backlog: u64) -> QueueEntry {
        QueueEntry {
            class: "ifb0 1:12".into(),
            tenant: Some(7),
            label: "national down".into(),
            sample: ClassSample {
                backlog_bytes: backlog,
                backlog_packets: backlog / 1_000,
                ceil: Rate::from_bps(64_000),
                ..ClassSample::default()
            },
        }
    }

    fn s(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn the_seeds_stall_raises_at_the_first_reading_and_clears_when_drained() {
        let mut m = Monitor::new(config());
        assert!(m.queues(s(1), vec![entry(0)]).is_empty());
        // 24 kB at 64 kbit/s: 3 s queued.
        let c = m.queues(s(2), vec![entry(24_000)]);
        assert_eq!(c.len(), 1);
        assert!(c[0].raised);
        assert_eq!(c[0].alarm.tenant, Some(7));
        assert!((c[0].alarm.value - 3000.0).abs() < 1e-6);
        assert_eq!(m.view().alarms.len(), 1);
        assert!(m.queues(s(3), vec![entry(16_000)]).is_empty());
        // 8 kB is exactly one second: not above.
        let c = m.queues(s(4), vec![entry(8_000)]);
        assert!(!c[0].raised);
        assert!(m.view().alarms.is_empty());
        assert_eq!(m.view().raised_total, 1);
    }

    #[test]
    fn a_class_that_disappears_clears_its_alarm() {
        let mut m = Monitor::new(config());
        assert_eq!(m.queues(s(1), vec![entry(80_000)]).len(), 1);
        let c = m.queues(s(2), Vec::new());
        assert_eq!(c.len(), 1);
        assert!(!c[0].raised);
    }

    fn reply(at: u64, rtt_ms: Option<u64>) -> ProbeReply {
        ProbeReply {
            at: s(at),
            rtt: rtt_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn rtt_doubling_against_the_baseline_and_loss() {
        let mut m = Monitor::new(config());
        for i in 0..5 {
            assert!(m.probe(0, reply(i, Some(10))).is_empty());
        }
        // 25 ms against 10: more than doubled.
        let c = m.probe(0, reply(5, Some(25)));
        assert_eq!(c[0].alarm.kind, AlarmKind::ProbeRtt);
        assert!(c[0].raised);
        assert!(!m.probe(0, reply(6, Some(12)))[0].raised);
        // Above the fixed 100 ms whatever the baseline.
        assert!(m.probe(0, reply(7, Some(150)))[0].raised);
        // Losses: 3 of 11 is 27% > 20%.
        assert!(!m.probe(0, reply(8, None)).iter().any(|c| c.raised));
        assert!(!m.probe(0, reply(9, None)).iter().any(|c| c.raised));
        let c = m.probe(0, reply(10, None));
        assert!(c
            .iter()
            .any(|c| c.raised && c.alarm.kind == AlarmKind::ProbeLoss));
        let v = m.view();
        assert_eq!(v.probes[0].figures.sent, 11);
        assert_eq!(v.alarms.len(), 2);
    }

    #[test]
    fn an_up_interface_without_packets() {
        let mut m = Monitor::new(config());
        let l = |up, packets| {
            vec![LinkSample {
                name: "bond0".into(),
                up,
                packets,
            }]
        };
        assert!(m.links(s(0), l(true, 5)).is_empty());
        assert!(m.links(s(2), l(true, 5)).is_empty());
        let c = m.links(s(3), l(true, 5));
        assert!(c[0].raised && c[0].alarm.kind == AlarmKind::Idle);
        assert!(!m.links(s(4), l(true, 6))[0].raised);
        // Down is not idle: down is someone else's alarm.
        assert!(m.links(s(10), l(false, 6)).is_empty());
    }
}
