//! Latency inside the daemon: the monitor (`crates/latency`) owned by the
//! engine, fed the shell's queue readings, probe replies and interface
//! counters as inputs; its alarms become events and notify effects.
//!
//! Time: like the guard, the monitor runs on the shell's **monotonic**
//! clock (time since the daemon started), carried by every input, so a
//! rate or a hold never jumps when NTP steps the wall clock.
//!
//! - At start, and when a reload changes `[latency]`, the engine asks the
//!   shell to (re)start its sampler and probes
//!   ([`LatencyEffect::Sample`]); each start has a new generation, and
//!   readings of an older one (in flight across the restart) are ignored.
//! - A queue reading names classes by device and handle; the engine
//!   says whose traffic each one carries (its feeds: tenant, realm,
//!   direction) and hands the rest to [`latency::Monitor`].
//! - Each raise and clear is an [`Event`](crate::io::Event)
//!   (`latency_alarm`, `latency_clear`) and, with `notify` or
//!   `webhook`, a [`LatencyEffect::Notify`].

use crate::io::{Effect, Level};
use crate::Engine;
use jiff::Timestamp;
use latency::monitor::QueueEntry;
use latency::{Change, ClassSample, LinkSample, Monitor, ProbeReply, RttSample, View};
use plan::ClassKey;
use policy::{Policy, ProbeKind};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One probe the shell runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// Its name (`national icmp 192.0.2.1`).
    pub name: String,
    /// What it asks.
    pub target: IpAddr,
    /// A TCP connect to this port, or (none) an ICMP echo.
    pub tcp_port: Option<u16>,
    /// One probe every…
    pub interval: Duration,
    /// Unanswered after this: lost.
    pub timeout: Duration,
}

/// What the shell samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerSpec {
    /// Increases with every (re)start.
    pub generation: u64,
    /// How often the queues and interfaces are read.
    pub sample: Duration,
    /// The interfaces watched for "up and no packet".
    pub interfaces: Vec<String>,
    /// The probes, by index.
    pub probes: Vec<ProbeSpec>,
    /// Drain the eBPF classifier's TCP RTT samples (`tcp_rtt = true`).
    #[serde(default)]
    pub tcp_rtt: bool,
}

/// The latency inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "latency")]
pub enum LatencyInput {
    /// One reading of every class on tollgate's devices, and of the
    /// watched interfaces.
    Sampled {
        /// The sampler's generation.
        generation: u64,
        /// When (monotonic).
        at: Duration,
        /// Each class's stats.
        classes: Vec<(ClassKey, ClassSample)>,
        /// Each watched interface.
        links: Vec<LinkSample>,
    },
    /// A probe's reply, or its loss.
    Probed {
        /// The sampler's generation.
        generation: u64,
        /// The probe's index in the spec.
        probe: usize,
        /// The reply.
        reply: ProbeReply,
    },
    /// TCP round trips (and retransmissions) drained from the eBPF
    /// classifier's ring buffer.
    Rtt {
        /// The sampler's generation.
        generation: u64,
        /// When they were drained (monotonic).
        at: Duration,
        /// In the order the kernel sent them.
        samples: Vec<RttSample>,
    },
    /// The sampler could not read the kernel, or a probe could not be
    /// sent at all (not a loss: a socket that cannot be opened).
    Failed {
        /// Why.
        error: String,
    },
    /// What the history did with closed minutes
    /// ([`crate::io::Effect::StoreLatency`]).
    Stored {
        /// Rows stored.
        stored: u64,
        /// Rows refused as absurd, each with its reason.
        refused: Vec<String>,
        /// The write failed as a whole (the rows are lost: a minute's
        /// figures are not worth blocking on).
        error: Option<String>,
    },
}

/// What the shell must do for latency.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "latency")]
pub enum LatencyEffect {
    /// Sample with this (stopping any running sampler first), or stop.
    Sample {
        /// What, or nothing.
        spec: Option<SamplerSpec>,
    },
    /// Tell the notify script and/or the webhook about a raise or a clear
    /// (without waiting).
    Notify {
        /// The script.
        script: Option<String>,
        /// The URL the change is POSTed to.
        webhook: Option<String>,
        /// What happened.
        change: Change,
    },
}

/// The engine's latency state.
#[derive(Default)]
pub(crate) struct Latency {
    monitor: Option<Monitor>,
    spec: Option<SamplerSpec>,
    generation: u64,
    notify: Option<String>,
    webhook: Option<String>,
    /// The last failure reported, so a failing sampler is one event, not
    /// one a second.
    failing: Option<String>,
    /// The open UTC minute's rows for the history (kept across monitor
    /// restarts: a reload does not cut a minute).
    recorder: latency::Recorder,
}

/// The monitor's settings from the policy's `[latency]`.
fn config(policy: &Policy, l: &policy::Latency) -> latency::Config {
    let a = &l.alarms;
    latency::Config {
        tcp_rtt: l.tcp_rtt,
        tenant_rtt: a.tenant_rtt.map(|p95| latency::RttAlarm {
            p95,
            // Whole minutes, at least one.
            minutes: (a.tenant_rtt_for.as_secs().div_ceil(60)).max(1) as u32,
        }),
        realm_names: policy
            .realms
            .list
            .iter()
            .map(|r| (r.id.0, r.name.clone()))
            .collect(),
        queue_delay: a.queue_delay,
        queue_for: a.queue_for,
        probe_rtt: a.rtt,
        probe_factor: a.rtt_factor,
        probe_floor: a.rtt_floor,
        probe_for: a.rtt_for,
        loss_percent: a.loss.map(f64::from),
        loss_min_probes: 10,
        idle_for: a.idle_for,
        window: Duration::from_secs(60),
        baseline: Duration::from_secs(600),
        probes: l.probes.iter().map(policy::Probe::name).collect(),
    }
}

fn probes(l: &policy::Latency) -> Vec<ProbeSpec> {
    l.probes
        .iter()
        .map(|p| ProbeSpec {
            name: p.name(),
            target: p.target,
            tcp_port: match p.kind {
                ProbeKind::Icmp => None,
                ProbeKind::Tcp { port } => Some(port),
            },
            interval: p.interval,
            timeout: p.timeout,
        })
        .collect()
}

/// A class's realm and direction, for people.
fn label(policy: &Policy, key: &accounting::UsageKey) -> String {
    let realm = policy
        .realms
        .list
        .iter()
        .find(|r| r.id == key.realm)
        .map_or_else(|| "all".to_string(), |r| r.name.clone());
    format!("{realm} {}", key.direction.as_str())
}

impl Engine {
    /// Starts, restarts or stops the sampler for the running policy.
    pub(crate) fn latency_policy(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        let policy = self.running.policy.clone();
        let Some(l) = &policy.latency else {
            if let Some(old) = self.latency.monitor.take() {
                // Every raise gets its clear, with the script it was
                // raised with.
                for a in &old.view().alarms {
                    let change = Change {
                        raised: false,
                        at: a.raised,
                        alarm: a.clone(),
                    };
                    self.latency_change(now, change, out);
                }
                self.latency.spec = None;
                self.latency_flush(out);
                out.push(Effect::Latency(LatencyEffect::Sample { spec: None }));
                self.event(
                    out,
                    now,
                    Level::Info,
                    "latency_stopped",
                    "[latency] was removed from the policy: sampling and probes stop".into(),
                    None,
                );
            }
            return;
        };
        self.latency.notify = l.notify.clone();
        self.latency.webhook = l.webhook.clone();
        let cfg = config(&policy, l);
        let same = self.latency.spec.as_ref().is_some_and(|s| {
            s.sample == l.sample
                && s.interfaces
                    .iter()
                    .map(String::as_str)
                    .eq(l.interfaces.iter().map(|i| i.as_str()))
                && s.probes == probes(l)
                && s.tcp_rtt == l.tcp_rtt
        }) && self
            .latency
            .monitor
            .as_ref()
            .is_some_and(|m| m.config() == &cfg);
        if same {
            return;
        }
        self.latency.generation += 1;
        let spec = SamplerSpec {
            generation: self.latency.generation,
            sample: l.sample,
            interfaces: l
                .interfaces
                .iter()
                .map(|i| i.as_str().to_string())
                .collect(),
            probes: probes(l),
            tcp_rtt: l.tcp_rtt,
        };
        // A new monitor: alarms raised under the old thresholds are
        // cleared first, so every raise has its clear.
        if let Some(old) = self.latency.monitor.take() {
            for a in &old.view().alarms {
                let change = Change {
                    raised: false,
                    at: a.raised,
                    alarm: a.clone(),
                };
                self.latency_change(now, change, out);
            }
        }
        self.latency.monitor = Some(Monitor::new(cfg));
        self.latency.spec = Some(spec.clone());
        out.push(Effect::Latency(LatencyEffect::Sample { spec: Some(spec) }));
    }

    fn latency_change(&mut self, now: Timestamp, c: Change, out: &mut Vec<Effect>) {
        let (kind, level) = if c.raised {
            ("latency_alarm", Level::Warn)
        } else {
            ("latency_clear", Level::Info)
        };
        let message = if c.raised {
            format!("{}: {}", c.alarm.kind.as_str(), c.alarm.message)
        } else {
            format!("{} cleared: {}", c.alarm.kind.as_str(), c.alarm.subject)
        };
        self.event(out, now, level, kind, message, c.alarm.tenant);
        if self.latency.notify.is_some() || self.latency.webhook.is_some() {
            out.push(Effect::Latency(LatencyEffect::Notify {
                script: self.latency.notify.clone(),
                webhook: self.latency.webhook.clone(),
                change: c,
            }));
        }
    }

    /// Handles a latency input.
    pub(crate) fn latency_input(
        &mut self,
        now: Timestamp,
        input: LatencyInput,
        out: &mut Vec<Effect>,
    ) {
        let generation = self.latency.generation;
        let secs = now.as_second();
        let changes = match input {
            LatencyInput::Stored {
                stored,
                refused,
                error,
            } => {
                self.latency_stored(now, stored, refused, error, out);
                return;
            }
            LatencyInput::Failed { error } => {
                if self.latency.failing.as_ref() != Some(&error) {
                    self.event(
                        out,
                        now,
                        Level::Error,
                        "latency_failed",
                        error.clone(),
                        None,
                    );
                    self.latency.failing = Some(error);
                }
                return;
            }
            LatencyInput::Sampled {
                generation: g,
                at,
                classes,
                links,
            } if g == generation => {
                self.latency.failing = None;
                let policy = self.running.policy.clone();
                let entries: Vec<QueueEntry> = classes
                    .into_iter()
                    .filter_map(|(key, sample)| {
                        // Only leaves that carry a tenant's traffic queue
                        // packets: inner classes hold no backlog.
                        let usage = self.feeds.get(&key)?;
                        // The default class: traffic of no tenant, whose
                        // queue matters as much.
                        let unclassified = usage.tenant == billing::UNCLASSIFIED;
                        Some(QueueEntry {
                            class: format!("{} {}", key.dev, key.id),
                            tenant: (!unclassified).then_some(usage.tenant.0),
                            label: if unclassified {
                                format!("unclassified {}", usage.direction.as_str())
                            } else {
                                label(&policy, usage)
                            },
                            sample,
                        })
                    })
                    .collect();
                let Some(m) = &mut self.latency.monitor else {
                    return;
                };
                let mut c = m.queues(at, entries);
                if !links.is_empty() || !m.view().links.is_empty() {
                    c.extend(m.links(at, links));
                }
                let closed = self.latency.recorder.queues(secs, at, &m.view().classes);
                self.latency_store(closed, out);
                c
            }
            LatencyInput::Probed {
                generation: g,
                probe,
                reply,
            } if g == generation => {
                let Some(m) = &mut self.latency.monitor else {
                    return;
                };
                let c = m.probe(probe, reply);
                if let Some(name) = m.config().probes.get(probe) {
                    let closed = self.latency.recorder.probe(secs, name, reply);
                    self.latency_store(closed, out);
                }
                c
            }
            LatencyInput::Rtt {
                generation: g,
                at,
                samples,
            } if g == generation => {
                let Some(m) = &mut self.latency.monitor else {
                    return;
                };
                let c = m.rtt(at, &samples);
                let closed = self.latency.recorder.rtt(secs, &samples);
                self.latency_store(closed, out);
                c
            }
            // From a sampler already replaced.
            LatencyInput::Sampled { .. }
            | LatencyInput::Probed { .. }
            | LatencyInput::Rtt { .. } => return,
        };
        for c in changes {
            self.latency_change(now, c, out);
        }
    }

    /// Hands closed minutes to the history, if there are any.
    fn latency_store(&mut self, closed: latency::Minutes, out: &mut Vec<Effect>) {
        if !closed.is_empty() {
            out.push(Effect::StoreLatency(Box::new(closed)));
        }
    }

    /// Closes the open minute as it is (the daemon stops, or `[latency]`
    /// goes): a partial minute is stored rather than lost.
    pub(crate) fn latency_flush(&mut self, out: &mut Vec<Effect>) {
        let closed = self.latency.recorder.flush();
        self.latency_store(closed, out);
    }

    fn latency_stored(
        &mut self,
        now: Timestamp,
        stored: u64,
        refused: Vec<String>,
        error: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        self.counts.latency_rows_written += stored;
        if let Some(e) = error {
            self.event(
                out,
                now,
                Level::Error,
                "latency_store_failed",
                format!("cannot store the latency minutes: {e}"),
                None,
            );
        }
        if !refused.is_empty() {
            self.counts.latency_rows_refused += refused.len() as u64;
            let shown: Vec<&str> = refused.iter().take(5).map(String::as_str).collect();
            self.event(
                out,
                now,
                Level::Warn,
                "latency_refused",
                format!(
                    "the history refused {} latency rows ({} since start; the rest is stored): {}",
                    refused.len(),
                    self.counts.latency_rows_refused,
                    shown.join("; ")
                ),
                None,
            );
        }
    }

    /// What the monitor shows, if `[latency]` is on.
    pub fn latency_view(&self) -> Option<Arc<View>> {
        self.latency.monitor.as_ref().map(Monitor::view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Input, Intervals, Observation, PolicyText, Start};

    const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[plans.tiny]
down = { rate = "64kbit", ceil = "64kbit" }
up = { rate = "1mbit", ceil = "1mbit" }

[[tenants]]
id = 1
name = "voip"
plan = "tiny"
prefixes = ["203.0.113.0/25"]
"#;

    const LATENCY: &str = r#"
[latency]
notify = "/usr/local/bin/latency-alarm"
[latency.alarms]
rtt = "100ms"
[[latency.probes]]
realm = "uplink"
target = "192.0.2.1"
"#;

    fn text(policy: &str) -> PolicyText {
        PolicyText {
            name: "latency.toml".into(),
            text: policy.into(),
            files: Default::default(),
        }
    }

    fn t0() -> Timestamp {
        "2026-12-06T12:00:00Z".parse().unwrap()
    }

    fn start(policy: &str) -> (Engine, Vec<Effect>) {
        let s = Start {
            policy: text(policy),
            settings: None,
            resume: None,
            records: Default::default(),
            intervals: Intervals {
                read_ms: 10_000,
                reconcile_ms: 60_000,
            },
            flows: false,
            transit: Default::default(),
        };
        Engine::start(t0(), s).unwrap()
    }

    fn samplers(effects: &[Effect]) -> Vec<Option<SamplerSpec>> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Latency(LatencyEffect::Sample { spec }) => Some(spec.clone()),
                _ => None,
            })
            .collect()
    }

    fn notified(effects: &[Effect]) -> Vec<(bool, latency::AlarmKind)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Latency(LatencyEffect::Notify { change, .. }) => {
                    Some((change.raised, change.alarm.kind))
                }
                _ => None,
            })
            .collect()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn without_latency_nothing_is_sampled() {
        let (e, first) = start(POLICY);
        assert!(samplers(&first).is_empty());
        assert!(e.latency_view().is_none());
    }

    #[test]
    fn a_stalled_queue_and_a_slow_probe_raise_and_clear() {
        let (mut e, first) = start(&format!("{POLICY}{LATENCY}"));
        let spec = samplers(&first).pop().flatten().expect("a sampler");
        assert_eq!(spec.probes[0].name, "uplink icmp 192.0.2.1");
        let g = spec.generation;
        // The kernel as observed: the engine compiles, and knows whose
        // each class is.
        let obs = Observation {
            interfaces: ["wan0", "lan0"]
                .iter()
                .map(|n| net_types::IfName::new(n).unwrap())
                .collect(),
            offline: Default::default(),
            bridges: Default::default(),
            foreign_roots: Default::default(),
            live: Default::default(),
            counters: Vec::new(),
        };
        e.handle(t0(), Input::Observed(Box::new(obs)));
        let key = *e
            .feeds
            .iter()
            .find(|(_, u)| u.tenant.0 == 1 && u.direction == accounting::Direction::Down)
            .expect("the tenant's down leaf")
            .0;
        let sample = |backlog: u64| ClassSample {
            backlog_bytes: backlog,
            backlog_packets: backlog / 1000,
            ceil: net_types::Rate::from_bps(64_000),
            rate: net_types::Rate::from_bps(64_000),
            ..ClassSample::default()
        };
        let sampled = |gen: u64, at: u64, backlog: u64| {
            Input::Latency(LatencyInput::Sampled {
                generation: gen,
                at: ms(at),
                classes: vec![(key, sample(backlog))],
                links: Vec::new(),
            })
        };
        assert!(notified(&e.handle(t0(), sampled(g, 1_000, 0))).is_empty());
        // 24 kB behind 64 kbit/s: 3 s.
        let out = e.handle(t0(), sampled(g, 2_000, 24_000));
        assert_eq!(notified(&out), vec![(true, latency::AlarmKind::QueueDelay)]);
        assert!(out.iter().any(
            |o| matches!(o, Effect::Event(ev) if ev.kind == "latency_alarm" && ev.tenant == Some(1))
        ));
        // A reading of an older sampler is ignored.
        assert!(e.handle(t0(), sampled(g - 1, 2_500, 0)).is_empty());
        assert_eq!(e.latency_view().unwrap().alarms.len(), 1);
        let out = e.handle(t0(), sampled(g, 3_000, 4_000));
        assert_eq!(
            notified(&out),
            vec![(false, latency::AlarmKind::QueueDelay)]
        );
        // A probe above the fixed 100 ms.
        let probed = |at: u64, rtt: u64| {
            Input::Latency(LatencyInput::Probed {
                generation: g,
                probe: 0,
                reply: ProbeReply {
                    at: ms(at),
                    rtt: Some(ms(rtt)),
                },
            })
        };
        assert!(notified(&e.handle(t0(), probed(3_100, 20))).is_empty());
        assert_eq!(
            notified(&e.handle(t0(), probed(3_200, 150))),
            vec![(true, latency::AlarmKind::ProbeRtt)]
        );
        // A reload without [latency]: the sampler stops, the view goes.
        let out = e.handle(t0(), Input::PolicyRead(Box::new(text(POLICY))));
        assert_eq!(samplers(&out), vec![None]);
        assert_eq!(notified(&out), vec![(false, latency::AlarmKind::ProbeRtt)]);
        assert!(e.latency_view().is_none());
    }

    #[test]
    fn a_webhook_alone_is_told_of_each_raise_and_clear() {
        let policy = format!("{POLICY}{LATENCY}").replace(
            "notify = \"/usr/local/bin/latency-alarm\"",
            "webhook = \"http://192.0.2.9/latency\"",
        );
        let (mut e, first) = start(&policy);
        let g = samplers(&first)
            .pop()
            .flatten()
            .expect("a sampler")
            .generation;
        let out = e.handle(
            t0(),
            Input::Latency(LatencyInput::Probed {
                generation: g,
                probe: 0,
                reply: ProbeReply {
                    at: ms(1_000),
                    rtt: Some(ms(150)),
                },
            }),
        );
        let told: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Effect::Latency(LatencyEffect::Notify {
                    script,
                    webhook,
                    change,
                }) => Some((script.clone(), webhook.clone(), change.raised)),
                _ => None,
            })
            .collect();
        assert_eq!(
            told,
            vec![(None, Some("http://192.0.2.9/latency".to_string()), true)]
        );
    }

    #[test]
    fn tcp_rtt_samples_fold_per_tenant_and_a_slow_tenant_alarms() {
        let policy = format!(
            "{}\ntcp_rtt = true\nnotify = \"/bin/true\"\n[latency.alarms]\ntenant_rtt = \"100ms\"\ntenant_rtt_for = \"1m\"\n",
            POLICY.replace("lan = \"lan0\"", "lan = \"lan0\"\nclassifier = \"ebpf\"")
                + "\n[latency]"
        );
        let (mut e, first) = start(&policy);
        let spec = samplers(&first).pop().flatten().expect("a sampler");
        assert!(spec.tcp_rtt);
        let rtt = |at: u64, ms_: u64| {
            Input::Latency(LatencyInput::Rtt {
                generation: spec.generation,
                at: ms(at),
                samples: (0..10)
                    .flat_map(|_| {
                        [true, false].map(|up| RttSample {
                            tenant: 1,
                            realm: 0,
                            up,
                            rtt: Some(ms(ms_)),
                        })
                    })
                    .collect(),
            })
        };
        assert!(notified(&e.handle(t0(), rtt(1_000, 150))).is_empty());
        let v = e.latency_view().unwrap();
        assert_eq!(v.tcp_rtt.len(), 1);
        assert_eq!(v.tcp_rtt[0].realm_name, "all");
        assert_eq!(v.tcp_rtt[0].current.up.samples, 10);
        assert_eq!(v.rtt_events, 20);
        // The minute closes with p95 150 ms > 100 ms: raised.
        assert_eq!(
            notified(&e.handle(t0(), rtt(61_000, 5))),
            vec![(true, latency::AlarmKind::TenantRtt)]
        );
        assert_eq!(e.latency_view().unwrap().alarms[0].tenant, Some(1));
        // The next minute was fast: cleared.
        assert_eq!(
            notified(&e.handle(t0(), rtt(121_000, 5))),
            vec![(false, latency::AlarmKind::TenantRtt)]
        );
        // A reading of an older sampler is ignored.
        let mut old = rtt(122_000, 5);
        if let Input::Latency(LatencyInput::Rtt { generation, .. }) = &mut old {
            *generation -= 1;
        }
        assert!(e.handle(t0(), old).is_empty());
    }

    fn stored(effects: &[Effect]) -> Vec<latency::Minutes> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::StoreLatency(m) => Some((**m).clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn utc_minutes_go_to_the_history_once_and_the_partial_one_at_stop() {
        let policy = POLICY.replace("lan = \"lan0\"", "lan = \"lan0\"\nclassifier = \"ebpf\"")
            + "\n[latency]\ntcp_rtt = true\n";
        let (mut e, first) = start(&policy);
        let g = samplers(&first)
            .pop()
            .flatten()
            .expect("a sampler")
            .generation;
        let rtt = |rtt_ms: u64| {
            Input::Latency(LatencyInput::Rtt {
                generation: g,
                // The monitor's clock: unrelated to the wall's minutes.
                at: ms(500),
                samples: vec![RttSample {
                    tenant: 1,
                    realm: 0,
                    up: true,
                    rtt: Some(ms(rtt_ms)),
                }],
            })
        };
        let at = |s: i64| t0() + jiff::SignedDuration::from_secs(s);
        // t0 is 12:00:00 UTC: 12:00:59 is the same minute, 12:01:00 is not.
        assert!(stored(&e.handle(at(1), rtt(10))).is_empty());
        assert!(stored(&e.handle(at(59), rtt(20))).is_empty());
        let closed = stored(&e.handle(at(60), rtt(30)));
        assert_eq!(closed.len(), 1);
        let row = closed[0].rtt[0];
        assert_eq!(row.minute, t0().as_second() / 60);
        assert_eq!(row.up.samples, 2);
        assert_eq!(row.up.max, Some(ms(20)));
        // Stopping stores the partial minute, then reads the counters.
        let out = e.handle(at(70), Input::Stop);
        let partial = stored(&out);
        assert_eq!(partial.len(), 1);
        assert_eq!(partial[0].rtt[0].minute, row.minute + 1);
        assert_eq!(partial[0].rtt[0].up.samples, 1);
        let order: Vec<bool> = out
            .iter()
            .filter_map(|o| match o {
                Effect::StoreLatency(_) => Some(true),
                Effect::ReadCounters => Some(false),
                _ => None,
            })
            .collect();
        assert_eq!(order, vec![true, false]);
        // The history's refusals are an event, counted.
        let out = e.handle(
            at(71),
            Input::Latency(LatencyInput::Stored {
                stored: 3,
                refused: vec!["rtt row of minute 1 (tenant 1 realm 0): absurd".into()],
                error: None,
            }),
        );
        assert!(out.iter().any(|o| matches!(o, Effect::Event(ev)
            if ev.kind == "latency_refused" && ev.message.contains("1 since start"))));
        assert_eq!(e.counts.latency_rows_refused, 1);
        assert_eq!(e.snapshot(at(72)).counts.latency_rows_written, 3);
    }
}
