//! The guard's side of the shell: the capture, the rungs, the ladder's
//! state file, the status file and the requests of `tollgate guard
//! ban|unban`.
//!
//! - The capture (`packet-capture`) runs on its own threads; a forwarder
//!   thread turns each 100 ms `TickReport` into an engine input
//!   (`GuardInput::Tick`, its time on this process's monotonic clock) and
//!   sends it to the loop like a signal or an API command. The engine
//!   starts, restarts (reload) and stops it with `GuardEffect::Capture`.
//!   Without a capture (none configured, or one that failed) a clock
//!   thread sends an empty tick once a second instead, so the detector's
//!   time goes on: holds and manual bans run out.
//! - With `[guard.capture] source = "ebpf"` a reader thread takes the
//!   eBPF classifier's per-address counters instead
//!   (`linux_dataplane::addr_counters`, every tick on the monotonic
//!   clock) and makes each read a `TickReport` of the same shape, so the
//!   forwarding and the detector are the same.
//! - With `[guard] flows = true` a reader thread takes the flow
//!   collector's decoded records from a bounded tap
//!   (`flow_collector::Tap`, set on the collector by the shell after each
//!   capture change: [`GuardShell::flow_tap`]) and spreads them into the
//!   same 100 ms ticks (`super::guard_flows`). Beside a capture, its
//!   ticks go to a merging thread instead, which folds them into the
//!   capture's next tick; flow records count only for addresses the
//!   capture has not seen ([`merge_ticks`]).
//! - Decisions (`GuardEffect::Apply`) are carried out by
//!   `crate::guard_rungs`, the same code as `tollgate guard watch`.
//! - `GuardEffect::Save` replaces `guard-state.json` atomically; at start
//!   the file is handed back to the engine (`GuardInput::Restore`).
//! - `guard-status.json` is what `tollgate guard status` reads: the same
//!   shape as `GET /api/v1/guard`, written after every change and once a
//!   second while the guard runs (so its holds left are never more than
//!   a second old).
//! - `tollgate guard ban|unban` leave `guard-requests/NAME.json` (one
//!   engine command); the shell hands it to the engine like an API
//!   command, removes it, and writes the answer to `NAME.answer`, which
//!   the command line reads and removes.

use super::Message;
use crate::error::Result;
use crate::guard_rungs::Rungs;
use crate::state_dir::StateDir;
use engine::guard::{
    CaptureCounts, CaptureSource, CaptureSpec, GuardCommand, GuardEffect, GuardInput, GuardTick,
};
use engine::io::{Answer, Command, Input};
use engine::Engine;
use guard::Monotonic;
use packet_capture::{Capture, CaptureConfig, TickReport};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often the status file is rewritten while nothing changes.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How often the clock ticks without a capture. A second is fine for
/// holds of seconds to hours; an empty tick tells the detector only that
/// time passed (a capture's ticks must not be split by one: their
/// counts would look twice as fast).
const CLOCK_EVERY: Duration = Duration::from_secs(1);

/// A running capture (or none) and the thread that forwards its ticks
/// (or keeps the clock).
struct Running {
    capture: Option<Capture>,
    /// Set before the capture is stopped on purpose, so the forwarder
    /// does not report the end as a failure, and the clock stops.
    stopping: Arc<AtomicBool>,
    forwarder: JoinHandle<()>,
    /// The flow collector's tap the forwarder reads (`source = flows`).
    tap: Option<Arc<flow_collector::Tap>>,
    /// Flow records as a second input beside the capture.
    merge: Option<Merge>,
}

/// The flow records' reader and the thread merging its ticks with the
/// capture's (`[guard] flows = true` beside `[guard.capture]`).
struct Merge {
    tap: Arc<flow_collector::Tap>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Merge {
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// How long an address the capture saw keeps flow records about it out
/// of the detector: an exporter's active timeout (often 60 s) plus the
/// spread over a flow's span (at most 30 s), with room to spare.
const CAPTURE_HORIZON: Duration = Duration::from_secs(120);

/// Sends the capture's ticks on, each with the flow ticks that arrived
/// since the one before merged in (`guard::MergedInputs`: flow records
/// count only for addresses the capture has not seen), the flow counts
/// added to the capture's. The capture's ticks keep the detector's clock,
/// so its rates are over the capture's spans; flow ticks in between are
/// folded into the next one. Ends when the capture's forwarder ends.
fn merge_ticks(
    primary: &mpsc::Receiver<Message>,
    flows: &mpsc::Receiver<Message>,
    tx: &mpsc::Sender<Message>,
) {
    let mut merged = guard::MergedInputs::new(CAPTURE_HORIZON);
    for m in primary {
        let Message::Guard(input) = m else {
            if tx.send(m).is_err() {
                return;
            }
            continue;
        };
        let GuardInput::Tick(mut tick) = *input else {
            if tx.send(Message::Guard(input)).is_err() {
                return;
            }
            continue;
        };
        let mut seen = Vec::new();
        while let Ok(f) = flows.try_recv() {
            match f {
                Message::Guard(f) => match *f {
                    GuardInput::Tick(f) => {
                        seen.extend(f.observation.hosts);
                        let c = &mut tick.capture;
                        c.flow_records += f.capture.flow_records;
                        c.flow_dropped += f.capture.flow_dropped;
                        c.flow_overflow += f.capture.flow_overflow;
                        tick.scans.extend(f.scans);
                    }
                    other => {
                        let _ = tx.send(Message::Guard(Box::new(other)));
                    }
                },
                other => {
                    let _ = tx.send(other);
                }
            }
        }
        let hosts = std::mem::take(&mut tick.observation.hosts);
        tick.observation.hosts = merged.merge(tick.observation.at, hosts, seen);
        if tx
            .send(Message::Guard(Box::new(GuardInput::Tick(tick))))
            .is_err()
        {
            return;
        }
    }
}

/// Sends an empty tick every [`CLOCK_EVERY`] until `stop` is set or the
/// loop is gone; wakes every 100 ms to notice `stop`.
fn keep_time(tx: &mpsc::Sender<Message>, origin: Instant, stop: &AtomicBool) {
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < CLOCK_EVERY || stop.load(Ordering::SeqCst) {
            continue;
        }
        last = Instant::now();
        let tick = GuardTick {
            observation: guard::Observation {
                at: Monotonic(origin.elapsed()),
                hosts: Vec::new(),
            },
            capture: CaptureCounts::default(),
            scans: Vec::new(),
        };
        if tx
            .send(Message::Guard(Box::new(GuardInput::Tick(tick))))
            .is_err()
        {
            return;
        }
    }
}

/// The guard's side of the shell.
pub struct GuardShell {
    tx: mpsc::Sender<Message>,
    /// The monotonic clock's origin: the daemon's start.
    origin: Instant,
    state: StateDir,
    capture: Option<Running>,
    /// Opened at start when `bgp` has a peer to announce to (a BGP
    /// speaker and a netlink socket), else at the first decision.
    rungs: Option<Rungs>,
    /// The running policy's `[bgp]`: the rtbh and flowspec rungs' peers
    /// (read at start; a reload that changes it arrives as
    /// `GuardEffect::Bgp`).
    bgp: Option<policy::Bgp>,
    /// Whether the guard's sets are still to be brought in line with
    /// the restored ladder (after the first round).
    sync_sets: bool,
    /// Whether the status file is behind.
    dirty: bool,
    last_status: Option<Instant>,
    /// Requests handed to the engine, waiting for their answers.
    waiting: Vec<(PathBuf, oneshot::Receiver<Answer>)>,
}

/// A request file's command, or why it cannot be read.
fn read_request(path: &std::path::Path) -> std::result::Result<GuardCommand, String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("not a guard command: {e}"))
}

impl GuardShell {
    /// The guard's side, its clock starting now.
    pub fn new(
        tx: mpsc::Sender<Message>,
        state: &StateDir,
        bgp: Option<policy::Bgp>,
    ) -> GuardShell {
        // With peers to announce to, the sessions start now, not with the
        // first ban: the operator sees them up, and a ban does not wait
        // for a session to open.
        let rungs = match &bgp {
            Some(b) if b.peers.iter().any(|p| p.announce) => {
                match Rungs::open(Some(b), Some(state.guard_history())) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::error!("guard: {e}; trying again at the first ban");
                        None
                    }
                }
            }
            _ => None,
        };
        GuardShell {
            bgp,
            rungs,
            tx,
            origin: Instant::now(),
            state: state.clone(),
            capture: None,
            sync_sets: true,
            dirty: true,
            last_status: None,
            waiting: Vec::new(),
        }
    }

    fn now(&self) -> Monotonic {
        Monotonic(self.origin.elapsed())
    }

    /// The saved ladder as an input, if there is one.
    pub fn restore_input(&self) -> Result<Option<Input>> {
        let saved = crate::guard_rungs::read_state(&self.state.guard_state())?;
        Ok(saved.map(|saved| {
            Input::Guard(GuardInput::Restore {
                at: self.now(),
                saved,
            })
        }))
    }

    /// Carries out one of the engine's guard effects.
    pub fn execute(&mut self, effect: GuardEffect) {
        match effect {
            GuardEffect::Capture { spec, clock } => {
                self.stop_capture();
                match spec {
                    Some(spec) => self.start_capture(spec),
                    None if clock => self.start_clock(self.tx.clone()),
                    None => {}
                }
                self.dirty = true;
            }
            GuardEffect::Apply { decision } => {
                if self.rungs.is_none() {
                    match Rungs::open(self.bgp.as_ref(), Some(self.state.guard_history())) {
                        Ok(r) => self.rungs = Some(r),
                        Err(e) => tracing::error!("guard: {e}; the decision is not carried out"),
                    }
                }
                if let Some(r) = &mut self.rungs {
                    r.carry_out(std::slice::from_ref(&decision), self.origin);
                }
                self.dirty = true;
            }
            GuardEffect::Bgp { bgp } => {
                self.bgp = bgp.map(|b| *b);
                match &mut self.rungs {
                    Some(r) => r.set_bgp(self.bgp.as_ref()),
                    None if self
                        .bgp
                        .as_ref()
                        .is_some_and(|b| b.peers.iter().any(|p| p.announce)) =>
                    {
                        match Rungs::open(self.bgp.as_ref(), Some(self.state.guard_history())) {
                            Ok(r) => self.rungs = Some(r),
                            Err(e) => tracing::error!("guard: {e}; trying again at the first ban"),
                        }
                    }
                    None => {}
                }
            }
            GuardEffect::Save { state } => {
                crate::guard_rungs::save(&state, &self.state.guard_state());
                self.dirty = true;
            }
        }
    }

    /// The attacks that ended since the last call (for the history
    /// store).
    pub fn take_ended(&mut self) -> Vec<api::guard::AttackRecord> {
        self.rungs
            .as_mut()
            .map(Rungs::take_ended)
            .unwrap_or_default()
    }

    /// Puts the throttle and drop rungs' set elements back, after an
    /// apply that created one of the guard's sets.
    pub fn reassert(&self) {
        if let Some(r) = &self.rungs {
            r.reassert();
        }
    }

    /// Once, after the round that restored the saved ladder: the guard's
    /// sets in the kernel are made to hold what the restored rungs hold,
    /// and nothing else (a rung that ended while the daemon was stopped,
    /// or a lost state file, leaves no element behind).
    fn sync_after_restore(&mut self) {
        if !std::mem::take(&mut self.sync_sets) {
            return;
        }
        if self.rungs.is_none() {
            match Rungs::open(self.bgp.as_ref(), Some(self.state.guard_history())) {
                Ok(r) => self.rungs = Some(r),
                Err(e) => {
                    tracing::error!("guard: {e}; the sets are not brought in line");
                    return;
                }
            }
        }
        if let Some(r) = &self.rungs {
            r.reassert();
        }
    }

    fn start_capture(&mut self, spec: CaptureSpec) {
        if spec.source == CaptureSource::Flows {
            return self.start_flows(&spec);
        }
        // With flow records as well, the capture's ticks go through the
        // merging thread, which sends them on to the loop.
        let merged = if spec.with_flows {
            self.start_merge(&spec)
        } else {
            None
        };
        let (tx, merge) = match merged {
            Some((tx, merge)) => (tx, Some(merge)),
            None => (self.tx.clone(), None),
        };
        match spec.source {
            CaptureSource::Ebpf => self.start_counters(spec, tx),
            _ => self.start_af_packet(spec, tx),
        }
        match (&mut self.capture, merge) {
            (Some(r), Some(m)) => {
                r.tap = Some(Arc::clone(&m.tap));
                r.merge = Some(m);
            }
            (None, Some(m)) => m.stop(),
            (_, None) => {}
        }
    }

    /// The flow records' reader and the merging thread; the sender the
    /// capture's forwarder must use.
    fn start_merge(&mut self, spec: &CaptureSpec) -> Option<(mpsc::Sender<Message>, Merge)> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ptx, prx) = mpsc::channel();
        let (ftx, frx) = mpsc::channel();
        let networks = spec.networks.clone();
        let (tap, rx) = super::guard_flows::tap(&networks);
        let (reader, origin, flag) = (Arc::clone(&tap), self.origin, Arc::clone(&stop));
        let flows = std::thread::Builder::new()
            .name("guard-flows".into())
            .spawn(move || super::guard_flows::run(&rx, &reader, &networks, origin, &flag, &ftx));
        let flows = match flows {
            Ok(t) => t,
            Err(e) => {
                self.failed(format!("cannot start the guard's flow thread: {e}"));
                return None;
            }
        };
        let tx = self.tx.clone();
        let merger = std::thread::Builder::new()
            .name("guard-merge".into())
            .spawn(move || merge_ticks(&prx, &frx, &tx));
        match merger {
            Ok(merger) => {
                tracing::info!("guard reading the flow collector's records beside the capture");
                Some((
                    ptx,
                    Merge {
                        tap,
                        stop,
                        threads: vec![merger, flows],
                    },
                ))
            }
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                let _ = flows.join();
                self.failed(format!("cannot start the guard's merging thread: {e}"));
                None
            }
        }
    }

    /// AF_PACKET capture on the spec's interfaces; its ticks go to `tx`.
    fn start_af_packet(&mut self, spec: CaptureSpec, tx: mpsc::Sender<Message>) {
        let mut cc = CaptureConfig::new(spec.interfaces.clone(), spec.networks.clone());
        cc.threads_per_interface = usize::from(spec.threads.max(1));
        cc.sample_one_in = spec.sample_one_in.max(1);
        cc.tick = Duration::from_millis(spec.tick_ms.max(1));
        let (capture, ticks) = match Capture::start(cc) {
            Ok(c) => c,
            Err(e) => {
                self.failed(format!(
                    "cannot start the capture on {:?}: {e}",
                    spec.interfaces
                ));
                self.start_clock(tx);
                return;
            }
        };
        let stopping = Arc::new(AtomicBool::new(false));
        let (origin, stop) = (self.origin, stopping.clone());
        let forwarder = std::thread::Builder::new()
            .name("guard-ticks".into())
            .spawn(move || {
                for t in ticks.iter() {
                    let input = GuardInput::Tick(tick(&t, origin));
                    if tx.send(Message::Guard(Box::new(input))).is_err() {
                        return;
                    }
                }
                if !stop.load(Ordering::SeqCst) {
                    let _ = tx.send(Message::Guard(Box::new(GuardInput::CaptureFailed {
                        error: "the capture ended on its own".into(),
                    })));
                    // The capture is gone; the clock goes on.
                    keep_time(&tx, origin, &stop);
                }
            });
        match forwarder {
            Ok(forwarder) => {
                tracing::info!(interfaces = %spec.interfaces.join(", "), "guard capturing");
                self.capture = Some(Running {
                    capture: Some(capture),
                    stopping,
                    forwarder,
                    tap: None,
                    merge: None,
                });
            }
            Err(e) => {
                stopping.store(true, Ordering::SeqCst);
                let _ = capture.stop();
                self.failed(format!("cannot start the guard's tick thread: {e}"));
            }
        }
    }

    /// Reads the eBPF classifier's per-address counters every tick. Until
    /// the classifier is in the kernel (the first apply loads it), the
    /// thread keeps the clock with empty ticks, as without a capture.
    fn start_counters(&mut self, spec: CaptureSpec, tx: mpsc::Sender<Message>) {
        let stopping = Arc::new(AtomicBool::new(false));
        let (origin, stop) = (self.origin, stopping.clone());
        let every = Duration::from_millis(spec.tick_ms.max(1));
        let networks = spec.networks.clone();
        let thread = std::thread::Builder::new()
            .name("guard-counters".into())
            .spawn(move || {
                let mut last_error = String::new();
                linux_dataplane::addr_counters::run(every, &stop, |t| {
                    let tick = match t {
                        Ok(t) => tick(&counters_report(&t, &networks), origin),
                        Err(e) => {
                            if e != last_error {
                                tracing::warn!("guard: no per-address counters yet: {e}");
                                last_error = e;
                            }
                            GuardTick {
                                observation: guard::Observation {
                                    at: Monotonic(origin.elapsed()),
                                    hosts: Vec::new(),
                                },
                                capture: CaptureCounts::default(),
                                scans: Vec::new(),
                            }
                        }
                    };
                    tx.send(Message::Guard(Box::new(GuardInput::Tick(tick))))
                        .is_ok()
                });
            });
        match thread {
            Ok(forwarder) => {
                tracing::info!("guard capturing from the eBPF classifier's per-address counters");
                self.capture = Some(Running {
                    capture: None,
                    stopping,
                    forwarder,
                    tap: None,
                    merge: None,
                });
            }
            Err(e) => self.failed(format!("cannot start the guard's counter thread: {e}")),
        }
    }

    /// Reads the flow collector's records through a tap; the shell sets
    /// the tap on the collector ([`GuardShell::flow_tap`]).
    fn start_flows(&mut self, spec: &CaptureSpec) {
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, origin, stop) = (self.tx.clone(), self.origin, stopping.clone());
        let networks = spec.networks.clone();
        let (tap, rx) = super::guard_flows::tap(&networks);
        let reader = Arc::clone(&tap);
        let thread = std::thread::Builder::new()
            .name("guard-flows".into())
            .spawn(move || super::guard_flows::run(&rx, &reader, &networks, origin, &stop, &tx));
        match thread {
            Ok(forwarder) => {
                tracing::info!("guard capturing from the flow collector's records");
                self.capture = Some(Running {
                    capture: None,
                    stopping,
                    forwarder,
                    tap: Some(tap),
                    merge: None,
                });
            }
            Err(e) => self.failed(format!("cannot start the guard's flow thread: {e}")),
        }
    }

    /// The tap the flow collector must feed now: `Some` while the guard
    /// reads flow records, `None` otherwise.
    pub fn flow_tap(&self) -> Option<Arc<flow_collector::Tap>> {
        self.capture.as_ref().and_then(|r| r.tap.clone())
    }

    /// Keeps the guard's time without a capture.
    fn start_clock(&mut self, tx: mpsc::Sender<Message>) {
        let stopping = Arc::new(AtomicBool::new(false));
        let (origin, stop) = (self.origin, stopping.clone());
        match std::thread::Builder::new()
            .name("guard-clock".into())
            .spawn(move || keep_time(&tx, origin, &stop))
        {
            Ok(forwarder) => {
                self.capture = Some(Running {
                    capture: None,
                    stopping,
                    forwarder,
                    tap: None,
                    merge: None,
                });
            }
            Err(e) => tracing::error!(
                "guard: cannot start the clock thread ({e}); holds run out only with traffic"
            ),
        }
    }

    /// Tells the engine the capture failed (through the loop, as an input).
    fn failed(&self, error: String) {
        tracing::error!("guard: {error}");
        let _ = self
            .tx
            .send(Message::Guard(Box::new(GuardInput::CaptureFailed {
                error,
            })));
    }

    /// Stops the capture (its last short tick still reaches the engine),
    /// or the clock.
    pub fn stop_capture(&mut self) {
        if let Some(r) = self.capture.take() {
            r.stopping.store(true, Ordering::SeqCst);
            if let Some(Err(e)) = r.capture.map(Capture::stop) {
                tracing::warn!("guard: the capture stopped with an error: {e}");
            }
            let _ = r.forwarder.join();
            // The forwarder's end closes the merger's input.
            if let Some(m) = r.merge {
                m.stop();
            }
        }
    }

    /// Before the process exits: the capture stopped, the BGP sessions
    /// ended (their routes come back with the ladder's restore).
    pub fn finish(&mut self) {
        self.stop_capture();
        if let Some(rungs) = self.rungs.take() {
            rungs.shutdown();
        }
    }

    /// The requests `tollgate guard ban|unban` left, as engine commands;
    /// `command` registers each answer's way back.
    pub fn requests(
        &mut self,
        command: &mut dyn FnMut(Command, oneshot::Sender<Answer>) -> Input,
    ) -> Vec<Input> {
        let Ok(entries) = std::fs::read_dir(self.state.guard_requests()) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            let answer_path = path.with_extension("answer");
            let parsed = read_request(&path);
            // Taken: removed before it is carried out, so it is carried
            // out once (a crash in between loses the request, and the
            // command line says the daemon did not answer).
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), "cannot remove a guard request: {e}");
                continue;
            }
            match parsed {
                Ok(guard) => {
                    let (reply, rx) = oneshot::channel();
                    out.push(command(Command::Guard { guard }, reply));
                    self.waiting.push((answer_path, rx));
                }
                Err(message) => write_answer(
                    &answer_path,
                    &Answer::Invalid {
                        message,
                        diagnostics: Vec::new(),
                    },
                ),
            }
        }
        out
    }

    /// After each round of inputs: the answers that came, and the status
    /// file if it is behind.
    pub fn after_round(&mut self, engine: &Engine, now: jiff::Timestamp) {
        // Without [guard] there is no ladder to restore, and the plan has
        // none of the guard's sets.
        if engine.guard_view().is_some() {
            self.sync_after_restore();
        } else {
            self.sync_sets = false;
        }
        self.waiting.retain_mut(|(path, rx)| match rx.try_recv() {
            Ok(answer) => {
                write_answer(path, &answer);
                false
            }
            Err(oneshot::error::TryRecvError::Empty) => true,
            Err(oneshot::error::TryRecvError::Closed) => false,
        });
        let Some(view) = engine.guard_view() else {
            return;
        };
        let due = self.last_status.is_none_or(|t| t.elapsed() >= STATUS_EVERY);
        if !(self.dirty || due) {
            return;
        }
        let status = api::guard::GuardStatus::from_view(&view, now);
        match serde_json::to_vec_pretty(&status) {
            Ok(bytes) => {
                if let Err(e) =
                    crate::state_dir::replace_atomically(&self.state.guard_status(), &bytes)
                {
                    tracing::warn!("guard: cannot write the status file: {e}");
                }
            }
            Err(e) => tracing::warn!("guard: cannot encode the status: {e}"),
        }
        self.dirty = false;
        self.last_status = Some(Instant::now());
    }
}

fn write_answer(path: &std::path::Path, answer: &Answer) {
    let bytes = serde_json::to_vec(answer).unwrap_or_default();
    if let Err(e) = crate::state_dir::replace_atomically(path, &bytes) {
        tracing::warn!(path = %path.display(), "guard: cannot write the answer: {e}");
    }
}

/// One capture tick as the engine's input.
fn tick(t: &TickReport, origin: Instant) -> GuardTick {
    GuardTick {
        observation: crate::guard_rungs::observation(t, origin),
        capture: CaptureCounts {
            frames: t.frames,
            kernel_drops: t.kernel_drops,
            malformed: t.malformed,
            overflow_packets: t.overflow.packets,
            ..CaptureCounts::default()
        },
        scans: t
            .scans
            .iter()
            .map(|x| guard::ScanSample {
                source: x.source,
                targets: x.targets.estimate(),
                packets: x.packets,
            })
            .collect(),
    }
}

/// One read of the per-address counters as a capture tick: the addresses
/// of the protected networks per host, the rest as `foreign` (as the
/// AF_PACKET capture counts them). Flows, top source ports and packet
/// lengths are not counted in the kernel: zero, empty and 0.
fn counters_report(
    t: &linux_dataplane::addr_counters::AddrTick,
    networks: &[net_types::Prefix],
) -> TickReport {
    use bpf_classify::counters::Way;
    use packet_capture::{Counters, Direction, HostDelta};
    let mut foreign = Counters::default();
    let mut hosts = Vec::with_capacity(t.hosts.len());
    let mut packets = 0;
    for (addr, way, c) in &t.hosts {
        let counters = Counters {
            packets: c.packets,
            bytes: c.bytes,
            tcp_packets: c.tcp_packets,
            tcp_bytes: c.tcp_bytes,
            udp_packets: c.udp_packets,
            udp_bytes: c.udp_bytes,
            icmp_packets: c.icmp_packets,
            icmp_bytes: c.icmp_bytes,
            tcp_syn: c.tcp_syn,
            fragments: c.fragments,
            fragment_bytes: c.fragment_bytes,
        };
        packets += c.packets;
        if !networks.iter().any(|n| n.contains(*addr)) {
            foreign.merge(&counters);
            continue;
        }
        hosts.push(HostDelta {
            addr: *addr,
            direction: match way {
                Way::In => Direction::In,
                Way::Out => Direction::Out,
            },
            counters,
            flows: 0,
            top_udp_src_ports: Default::default(),
            // The per-address counters know no ports or sources.
            top_dst_ports: Default::default(),
            top_sources: Default::default(),
            min_packet_len: 0,
            max_packet_len: 0,
        });
    }
    TickReport {
        started: t.started,
        ended: t.ended,
        hosts,
        internal: Counters::default(),
        foreign,
        overflow: Counters::default(),
        non_ip: 0,
        malformed: 0,
        malformed_by_reason: Default::default(),
        frames: packets,
        kernel_packets: packets,
        kernel_drops: 0,
        ring_full_events: 0,
        sample_one_in: 1,
        // The kernel counts per local address only: no sources, so no
        // scan reports from this capture.
        scans: Vec::new(),
        scan_untracked: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_classify::counters::{AddrCounts, Way};

    #[test]
    fn a_counter_read_becomes_a_tick_of_the_networks_hosts() {
        let now = Instant::now();
        let c = |packets| AddrCounts {
            packets,
            bytes: packets * 40,
            tcp_packets: packets,
            tcp_bytes: packets * 40,
            tcp_syn: packets,
            ..Default::default()
        };
        let t = linux_dataplane::addr_counters::AddrTick {
            started: now,
            ended: now + Duration::from_millis(100),
            hosts: vec![
                ("192.0.2.9".parse().unwrap(), Way::Out, c(3)),
                ("203.0.113.10".parse().unwrap(), Way::In, c(500)),
                ("2001:db8::7".parse().unwrap(), Way::Out, c(2)),
            ],
            entries: 3,
        };
        let nets = [
            net_types::Prefix::parse("203.0.113.0/24").unwrap(),
            net_types::Prefix::parse("2001:db8::/32").unwrap(),
        ];
        let r = counters_report(&t, &nets);
        assert_eq!(r.hosts.len(), 2);
        assert_eq!(r.hosts[0].direction, packet_capture::Direction::In);
        assert_eq!(
            (r.hosts[0].counters.tcp_syn, r.hosts[0].counters.bytes),
            (500, 20_000)
        );
        assert_eq!(r.foreign.packets, 3);
        assert_eq!(r.frames, 505);
        let o = crate::guard_rungs::observation(&r, now);
        assert_eq!(o.at, Monotonic(Duration::from_millis(100)));
        assert_eq!(o.hosts[1].counters.packets, 2);
    }
}
