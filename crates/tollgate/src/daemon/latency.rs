//! Latency's side of the shell: the sampler and the probes, the notify
//! script and webhook, and the status file.
//!
//! - The sampler thread reads every class on tollgate's devices (backlog,
//!   drops, overlimits, rate and ceil: `class_counters::queues`, one
//!   read-only rtnetlink dump) and the watched interfaces every `sample`,
//!   and sends each reading to the loop as an engine input, its time on
//!   this process's monotonic clock.
//! - With `tcp_rtt`, a thread drains the eBPF classifier's RTT ring
//!   buffer every 200 ms and sends what it held as one input.
//! - One thread per probe sends a probe every `interval`, waits for its
//!   reply up to `timeout`, and sends the reply (or the loss) the same
//!   way.
//! - The engine starts, restarts (reload) and stops them with
//!   `LatencyEffect::Sample`; threads of an older start see their stop
//!   flag and end (readings already in flight carry the old generation,
//!   which the engine ignores).
//! - `LatencyEffect::Notify` runs the policy's script as
//!   `SCRIPT raise|clear KIND SUBJECT VALUE THRESHOLD` with the change as
//!   JSON on stdin, and POSTs the same JSON to the webhook, without
//!   waiting (`crate::notify`).
//! - `latency-status.json` is what `tollgate latency` reads: the shape of
//!   `GET /api/v1/latency` with only the busy classes (a queue, drops, or
//!   at the ceil), written at most once a second, and at once when the
//!   alarms change.

use super::probes::{self, Pinger};
use super::Message;
use crate::notify::Notifier;
use crate::state_dir::StateDir;
use engine::latency::{LatencyEffect, LatencyInput, ProbeSpec, SamplerSpec};
use engine::Engine;
use latency::{Change, ProbeReply};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How often the status file is rewritten while the alarms stay the same.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Sleeps until `until` or until `stop` is set, in slices of 50 ms;
/// returns whether to go on.
fn sleep_until(until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return true;
        };
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn send(tx: &mpsc::Sender<Message>, input: LatencyInput) -> bool {
    tx.send(Message::Latency(Box::new(input))).is_ok()
}

/// Reads the queues and interfaces every `spec.sample`.
fn sample(tx: &mpsc::Sender<Message>, origin: Instant, spec: &SamplerSpec, stop: &AtomicBool) {
    let mut dp = match linux_dataplane::Dataplane::open() {
        Ok(dp) => dp,
        Err(e) => {
            send(
                tx,
                LatencyInput::Failed {
                    error: format!("latency: cannot open rtnetlink: {e}"),
                },
            );
            return;
        }
    };
    let mut next = Instant::now();
    while sleep_until(next, stop) {
        let at = origin.elapsed();
        let read = crate::class_counters::queues(&mut dp)
            .and_then(|c| Ok((c, crate::class_counters::links(&mut dp, &spec.interfaces)?)));
        let input = match read {
            Ok((classes, links)) => LatencyInput::Sampled {
                generation: spec.generation,
                at,
                classes,
                links,
            },
            Err(e) => LatencyInput::Failed {
                error: format!("latency: {e}"),
            },
        };
        if !send(tx, input) {
            return;
        }
        // On a fixed grid, so a slow read does not stretch the interval.
        next += spec.sample;
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// How often the RTT ring buffer is drained.
const RTT_DRAIN: Duration = Duration::from_millis(200);
/// How often the ring buffer is looked for again (an apply that had to
/// load a fresh classifier object leaves the old one to nobody).
const RTT_REFIND: Duration = Duration::from_secs(5);
/// The most events taken in one drain (the rest wait for the next).
const RTT_MAX_DRAIN: usize = 200_000;

/// Drains the eBPF classifier's TCP RTT ring buffer every [`RTT_DRAIN`]
/// and sends what it held as one input.
fn drain_rtt(tx: &mpsc::Sender<Message>, origin: Instant, generation: u64, stop: &AtomicBool) {
    use linux_dataplane::rtt_events::RttEvents;
    let mut ring: Option<RttEvents> = None;
    let mut looked = None::<Instant>;
    let started = Instant::now();
    let mut told = false;
    let mut dropped = 0u64;
    let mut events = Vec::new();
    let mut next = Instant::now();
    while sleep_until(next, stop) {
        next += RTT_DRAIN;
        if looked.is_none_or(|t| t.elapsed() >= RTT_REFIND) {
            looked = Some(Instant::now());
            match RttEvents::find() {
                Ok(r) if ring.as_ref().is_none_or(|o| o.id() != r.id()) => {
                    tracing::info!(map = r.id(), "latency: draining the TCP RTT ring buffer");
                    dropped = r.dropped().unwrap_or(0);
                    ring = Some(r);
                }
                Ok(_) => {}
                Err(e) if ring.is_none() => {
                    // The classifier is loaded by the first apply: only a
                    // lasting absence is a failure.
                    tracing::debug!("latency: {e}");
                    if !told && started.elapsed() > Duration::from_secs(20) {
                        told = true;
                        let error = format!("latency: tcp_rtt is on but {e}");
                        if !send(tx, LatencyInput::Failed { error }) {
                            return;
                        }
                    }
                }
                Err(_) => {}
            }
        }
        let Some(r) = ring.as_mut() else {
            continue;
        };
        events.clear();
        let bad = r.drain(&mut events, RTT_MAX_DRAIN);
        if bad > 0 {
            tracing::warn!(
                bad,
                "latency: events in the RTT ring buffer that tollgate never writes"
            );
        }
        if let Some(d) = r.dropped() {
            if d > dropped {
                tracing::warn!(
                    lost = d - dropped,
                    "latency: the TCP RTT ring buffer was full; samples were lost"
                );
                dropped = d;
            }
        }
        if events.is_empty() {
            continue;
        }
        let samples = events
            .iter()
            .map(|e| latency::RttSample {
                tenant: e.tenant,
                realm: e.realm,
                up: e.up,
                rtt: match e.kind {
                    bpf_classify::rtt::EventKind::Sample(ns) => Some(Duration::from_nanos(ns)),
                    bpf_classify::rtt::EventKind::Retransmission => None,
                },
            })
            .collect();
        let input = LatencyInput::Rtt {
            generation,
            at: origin.elapsed(),
            samples,
        };
        if !send(tx, input) {
            return;
        }
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// Runs one probe every `p.interval`.
fn probe(
    tx: &mpsc::Sender<Message>,
    origin: Instant,
    generation: u64,
    index: usize,
    p: &ProbeSpec,
    stop: &AtomicBool,
) {
    let mut pinger: Option<Pinger> = None;
    let mut next = Instant::now();
    while sleep_until(next, stop) {
        next += p.interval;
        let at = origin.elapsed();
        let rtt = match p.tcp_port {
            Some(port) => probes::tcp(SocketAddr::new(p.target, port), p.timeout),
            None => {
                if pinger.is_none() {
                    match Pinger::open(p.target) {
                        Ok(s) => pinger = Some(s),
                        Err(e) => {
                            send(
                                tx,
                                LatencyInput::Failed {
                                    error: format!("probe {}: {e}", p.name),
                                },
                            );
                            continue;
                        }
                    }
                }
                match pinger.as_mut().map(|s| s.probe(p.timeout)) {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        // A send that fails (no route): a loss, and a
                        // fresh socket next time.
                        tracing::debug!("probe {}: {e}", p.name);
                        pinger = None;
                        None
                    }
                    None => None,
                }
            }
        };
        let input = LatencyInput::Probed {
            generation,
            probe: index,
            reply: ProbeReply { at, rtt },
        };
        if !send(tx, input) {
            return;
        }
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// Latency's side of the shell.
pub struct LatencyShell {
    tx: mpsc::Sender<Message>,
    origin: Instant,
    state: StateDir,
    /// The running sampler's and probes' stop flag.
    stop: Option<Arc<AtomicBool>>,
    notifier: Notifier,
    last_status: Option<Instant>,
    last_alarms: usize,
    last_raised: u64,
}

impl LatencyShell {
    /// Latency's side, its clock starting at `origin` (the daemon's start).
    pub fn new(tx: mpsc::Sender<Message>, state: &StateDir, origin: Instant) -> LatencyShell {
        LatencyShell {
            tx,
            origin,
            state: state.clone(),
            stop: None,
            notifier: Notifier::default(),
            last_status: None,
            last_alarms: 0,
            last_raised: 0,
        }
    }

    /// Carries out one effect.
    pub fn execute(&mut self, effect: LatencyEffect) {
        match effect {
            LatencyEffect::Sample { spec } => self.start(spec),
            LatencyEffect::Notify {
                script,
                webhook,
                change,
            } => self.notify(script.as_deref(), webhook.as_deref(), &change),
        }
    }

    fn start(&mut self, spec: Option<SamplerSpec>) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, Ordering::SeqCst);
        }
        let Some(spec) = spec else {
            return;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            if let Err(e) = std::thread::Builder::new().name(name).spawn(f) {
                tracing::error!("latency: cannot start a thread: {e}");
            }
        };
        let (tx, origin, s, st) = (self.tx.clone(), self.origin, spec.clone(), stop.clone());
        spawn(
            "latency".into(),
            Box::new(move || sample(&tx, origin, &s, &st)),
        );
        if spec.tcp_rtt {
            let (tx, origin, st, g) = (self.tx.clone(), self.origin, stop.clone(), spec.generation);
            spawn(
                "rtt".into(),
                Box::new(move || drain_rtt(&tx, origin, g, &st)),
            );
        }
        for (i, p) in spec.probes.iter().enumerate() {
            let (tx, origin, p, st, g) = (
                self.tx.clone(),
                self.origin,
                p.clone(),
                stop.clone(),
                spec.generation,
            );
            spawn(
                format!("probe{i}"),
                Box::new(move || probe(&tx, origin, g, i, &p, &st)),
            );
        }
        tracing::info!(
            sample_ms = spec.sample.as_millis() as u64,
            probes = spec.probes.len(),
            interfaces = spec.interfaces.len(),
            "latency: sampling"
        );
        self.stop = Some(stop);
    }

    fn notify(&self, script: Option<&str>, webhook: Option<&str>, c: &Change) {
        let a = &c.alarm;
        let action = if c.raised { "raise" } else { "clear" };
        let report = serde_json::to_vec(c).unwrap_or_default();
        if let Some(script) = script {
            let args = [
                action.to_string(),
                a.kind.as_str().to_string(),
                a.subject.clone(),
                format!("{:.3}", a.value),
                format!("{:.3}", a.threshold),
            ];
            self.notifier.script(script, &args, report.clone());
        }
        if let Some(url) = webhook {
            self.notifier.webhook(url, action, report);
        }
    }

    /// After each round of inputs: the status file, when due.
    pub fn after_round(&mut self, engine: &Engine, now: jiff::Timestamp) {
        let Some(view) = engine.latency_view() else {
            return;
        };
        let changed =
            view.alarms.len() != self.last_alarms || view.raised_total != self.last_raised;
        let due = self.last_status.is_none_or(|t| t.elapsed() >= STATUS_EVERY);
        if !changed && !due {
            return;
        }
        let status = api::latency::LatencyStatus::from_view(&view, now, None).busy_only();
        match serde_json::to_vec(&status) {
            Ok(bytes) => {
                if let Err(e) =
                    crate::state_dir::replace_atomically(&self.state.latency_status(), &bytes)
                {
                    tracing::warn!("latency: cannot write the status file: {e}");
                }
            }
            Err(e) => tracing::warn!("latency: cannot encode the status: {e}"),
        }
        self.last_status = Some(Instant::now());
        self.last_alarms = view.alarms.len();
        self.last_raised = view.raised_total;
    }

    /// Before the process exits: the threads stop.
    pub fn finish(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}
