//! `tollgate guard watch`: packet capture → detector → ladder, in the
//! foreground.
//!
//! The capture (`packet-capture`) sends one `TickReport` per 100 ms; each
//! becomes a `guard::Observation` (field by field, its time on a monotonic
//! clock whose origin is this process's start) and the detector returns
//! the ladder's decisions, which are carried out here:
//! - `notify`: the script is spawned with FastNetMon's arguments
//!   (`IP incoming|outgoing PPS ban|unban`) and the JSON report on stdin;
//!   a thread per script feeds its stdin and reaps it, so a slow script
//!   never holds up the loop, and at most [`MAX_NOTIFY`] run at once;
//! - `blackhole`: a kernel blackhole route per prefix, through
//!   `linux_dataplane::blackhole` (marked with its own routing protocol,
//!   so only tollgate's routes are ever removed);
//! - `rtbh`: the prefixes announced with the rung's communities to the
//!   policy's `[bgp]` peers with `announce = true` (`crate::bgp_rungs`),
//!   withdrawn when the rung ends;
//! - `flowspec`: the step's rules announced the same way to peers that
//!   also have `flowspec = true`;
//! - the other rungs are logged as not available yet, and the ladder goes
//!   on.
//!
//! The ladder's state is saved (atomically) at every change and restored
//! at start: rungs in place before a restart are applied again (a missing
//! blackhole route is added back). SIGTERM and SIGINT stop the capture,
//! save the state and exit 0; the routes stay, as the bans do.

use super::Context;
use crate::bgp_rungs::BgpRungs;
use crate::cli::guard::{GuardCommand, WatchArgs};
use crate::error::{Error, Result};
use guard::{
    Action, Decision, Detector, Direction, HostCounters, HostSample, Limit, Metric, Monotonic,
    Observation, Rung, RungConfig, SavedState, Step,
};
use linux_dataplane::blackhole::{Added, Blackholes};
use net_types::Prefix;
use packet_capture::{Capture, CaptureConfig, TickReport};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most notify scripts running at once; a ban or unban beyond is
/// logged and not notified (a script that hangs must not pile up
/// processes during a long attack).
const MAX_NOTIFY: usize = 32;

/// How long the notify rung added by `--notify` stays at least, when the
/// ladder had no notify rung.
const NOTIFY_HOLD: Duration = Duration::from_secs(60);

pub fn run(cx: &Context, cmd: &GuardCommand) -> Result<ExitCode> {
    match cmd {
        GuardCommand::Watch(a) => watch(cx, a),
    }
}

/// The detector's configuration: the policy's `[guard]` with the command
/// line's overrides, and the interfaces to capture on.
fn configure(
    cx: &Context,
    a: &WatchArgs,
) -> Result<(guard::Config, CaptureConfig, Option<policy::Bgp>)> {
    let (_, policy) = crate::policy_file::valid(&cx.config)?;
    let section = policy.guard.as_ref();
    let mut config = match section {
        Some(g) => g.config(&policy),
        None => guard::Config::new(Vec::new()),
    };
    if !a.networks.is_empty() {
        config.networks = a
            .networks
            .iter()
            .map(|n| Prefix::parse(n).map_err(|e| Error::invalid(format!("--network {n}: {e}"))))
            .collect::<Result<_>>()?;
    }
    if let Some(pps) = a.threshold_pps {
        if pps == 0 {
            return Err(Error::invalid("--threshold-pps must be at least 1"));
        }
        config
            .global
            .set(Direction::In, Metric::Pps, Limit::At(pps));
    }
    if let Some(script) = &a.notify {
        let script = Some(script.display().to_string());
        match config.ladder.iter_mut().find(|r| r.rung() == Rung::Notify) {
            Some(RungConfig {
                action: Action::Notify { script: s, .. },
                ..
            }) => *s = script,
            _ => {
                // First in the ladder: the rung that was first now waits
                // for nothing after it (`after` zero), as it did before.
                config.ladder.insert(
                    0,
                    RungConfig::new(
                        Action::Notify {
                            script,
                            webhook: None,
                            every: None,
                        },
                        Duration::ZERO,
                        NOTIFY_HOLD,
                    ),
                );
            }
        }
    }
    let errors = config.check();
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        return Err(Error::invalid(format!(
            "the guard's configuration is not usable:\n{}",
            list.join("\n")
        ))
        .hint(
            "give the policy a [guard] section (docs/guard.md), or --network and --threshold-pps",
        ));
    }
    if config.global.is_empty() && config.groups.iter().all(|g| g.thresholds.is_empty()) {
        tracing::warn!("no threshold is set: nothing will be detected (--threshold-pps, or [guard.thresholds])");
    }
    let capture = section.and_then(|g| g.capture.as_ref());
    let ifaces: Vec<String> = if a.ifaces.is_empty() {
        capture
            .map(|c| c.interfaces.iter().map(|i| i.to_string()).collect())
            .unwrap_or_default()
    } else {
        a.ifaces.clone()
    };
    if ifaces.is_empty() {
        return Err(Error::invalid("no interface to capture on")
            .hint("name one with --iface, or in the policy's [guard.capture] interfaces"));
    }
    let mut cc = CaptureConfig::new(ifaces, config.networks.clone());
    if let Some(c) = capture {
        cc.threads_per_interface = usize::from(c.threads.max(1));
        cc.sample_one_in = c.sample_one_in.max(1);
        cc.tick = c.tick;
    }
    Ok((config, cc, policy.bgp.clone()))
}

fn watch(cx: &Context, a: &WatchArgs) -> Result<ExitCode> {
    let (config, capture_config, bgp) = configure(cx, a)?;
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone())?;
    let origin = Instant::now();
    let mono = |i: Instant| Monotonic(i.saturating_duration_since(origin));
    let state_path = cx.state.guard_state();
    let mut shell = Shell {
        blackholes: Blackholes::open()
            .map_err(|e| Error::runtime(format!("cannot open a route netlink socket: {e}")))?,
        in_flight: Arc::new(AtomicUsize::new(0)),
        bgp: match bgp.filter(|b| b.peers.iter().any(|p| p.announce)) {
            Some(b) => Some(BgpRungs::start(crate::bgp_rungs::speaker_config(&b))?),
            None => None,
        },
    };
    let (mut detector, restored) = restore(config, &state_path, mono(Instant::now()))?;
    if !restored.is_empty() {
        tracing::info!(rungs = restored.len(), "restoring the ladder's state");
        shell.carry_out(&restored);
        save(&detector, &state_path, mono(Instant::now()));
    }
    let interfaces = capture_config.interfaces.clone();
    let (capture, ticks) = Capture::start(capture_config)
        .map_err(|e| Error::runtime(format!("cannot start the capture: {e}")))?;
    tracing::info!(
        ?interfaces,
        networks = ?detector.config().networks.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "guard watching"
    );
    let mut failed = false;
    while !stop.load(Ordering::SeqCst) {
        match ticks.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => {
                let decisions = detector.tick(&observation(&t, origin));
                if !decisions.is_empty() {
                    shell.carry_out(&decisions);
                    save(&detector, &state_path, mono(Instant::now()));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                failed = true;
                break;
            }
        }
    }
    tracing::info!("stopping: ending the capture and saving the state");
    let result = capture.stop();
    // The capture's last, shorter report: nothing counted is left out.
    for t in ticks.try_iter() {
        let decisions = detector.tick(&observation(&t, origin));
        shell.carry_out(&decisions);
    }
    save(&detector, &state_path, mono(Instant::now()));
    if let Some(b) = shell.bgp.take() {
        b.shutdown();
    }
    match result {
        Err(e) => Err(Error::runtime(format!("the capture failed: {e}"))),
        Ok(()) if failed => Err(Error::runtime("the capture ended on its own")),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Sets `stop` at SIGTERM or SIGINT. Returns once the handlers are in
/// place, so a signal from then on is never the default (fatal) one.
fn watch_signals(stop: Arc<AtomicBool>) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<std::result::Result<(), String>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start the signal runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (mut term, mut int) = match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    (Ok(t), Ok(i)) => (t, i),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = tx.send(Err(format!("cannot watch signals: {e}")));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                stop.store(true, Ordering::SeqCst);
            });
        })
        .map_err(|e| Error::runtime(format!("cannot start the signal thread: {e}")))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::runtime(e)),
        Err(_) => Err(Error::runtime("the signal thread ended early")),
    }
}

/// One tick's report as the detector's observation, field by field.
fn observation(t: &TickReport, origin: Instant) -> Observation {
    Observation {
        at: Monotonic(t.ended.saturating_duration_since(origin)),
        hosts: t
            .hosts
            .iter()
            .map(|h| {
                let c = &h.counters;
                HostSample {
                    addr: h.addr,
                    direction: match h.direction {
                        packet_capture::Direction::In => Direction::In,
                        packet_capture::Direction::Out => Direction::Out,
                    },
                    counters: HostCounters {
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
                        flows: h.flows,
                        top_udp_src_ports: h.top_udp_src_ports.as_slice().to_vec().into(),
                        min_packet_len: h.min_packet_len,
                        max_packet_len: h.max_packet_len,
                    },
                }
            })
            .collect(),
    }
}

/// The detector, with the incidents of the saved state if there is one.
fn restore(
    config: guard::Config,
    path: &Path,
    now: Monotonic,
) -> Result<(Detector, Vec<Decision>)> {
    let fresh = |config| {
        Detector::new(config)
            .map(|d| (d, Vec::new()))
            .map_err(|e| Error::invalid(format!("the guard's configuration: {e}")))
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return fresh(config),
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read the guard state {}: {e}",
                path.display()
            )))
        }
    };
    let saved: SavedState = match serde_json::from_slice(&text) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(
                "the guard state {} is unreadable ({e}); starting without it",
                path.display()
            );
            return fresh(config);
        }
    };
    match Detector::restore(config.clone(), &saved, now) {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::error!(
                "the guard state {} cannot be restored ({e}); starting without it",
                path.display()
            );
            fresh(config)
        }
    }
}

/// Saves the ladder's state; a failure is logged (the guard goes on: a
/// full disk must not stop the defence).
fn save(detector: &Detector, path: &Path, now: Monotonic) {
    let saved = detector.save(now);
    let bytes = match serde_json::to_vec_pretty(&saved) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("cannot encode the guard state: {e}");
            return;
        }
    };
    if let Err(e) = crate::state_dir::replace_atomically(path, &bytes) {
        tracing::error!("cannot save the guard state: {e}");
    }
}

/// What carries the decisions out.
struct Shell {
    blackholes: Blackholes,
    in_flight: Arc<AtomicUsize>,
    /// The speaker for the rtbh rung, when `[bgp]` has a peer to announce to.
    bgp: Option<BgpRungs>,
}

impl Shell {
    fn carry_out(&mut self, decisions: &[Decision]) {
        for d in decisions {
            match d {
                Decision::Start(step) => {
                    tracing::info!(
                        address = %step.target,
                        direction = step.direction.as_script_word(),
                        kind = %step.attack.kind,
                        pps = crate::output::guard::attack_pps(step),
                        trigger = ?step.attack.trigger.by,
                        "ban started"
                    );
                    self.apply(step, false);
                }
                Decision::Escalate { from, step } => {
                    tracing::info!(address = %step.target, direction = step.direction.as_script_word(), %from, to = %step.rung, "escalating");
                    self.apply(step, false);
                }
                Decision::Restore(step) => {
                    tracing::info!(address = %step.target, direction = step.direction.as_script_word(), rung = %step.rung, "restoring");
                    self.apply(step, true);
                }
                Decision::Update(step) => {
                    if let Action::Notify {
                        script: Some(s), ..
                    } = &step.action
                    {
                        self.notify(s, step, "attack_details");
                    }
                }
                Decision::Stop { step, ended } => {
                    self.remove(step);
                    if *ended {
                        tracing::info!(
                            address = %step.target,
                            direction = step.direction.as_script_word(),
                            kind = %step.attack.kind,
                            pps = step.attack.peak_pps,
                            packets = step.attack.packets,
                            "ban ended"
                        );
                    }
                }
                Decision::Refused {
                    target,
                    direction,
                    rung,
                    reason,
                } => tracing::warn!(
                    address = %target,
                    direction = direction.as_script_word(),
                    %rung,
                    ?reason,
                    "rung refused; the ladder stops below it"
                ),
            }
        }
    }

    /// Puts a rung in place (`restoring`: it was before a restart, so a
    /// notify script is not called again).
    fn apply(&mut self, step: &Step, restoring: bool) {
        match &step.action {
            Action::Notify {
                script, webhook, ..
            } => {
                if restoring {
                    return;
                }
                if let Some(s) = script {
                    self.notify(s, step, "ban");
                }
                if webhook.is_some() {
                    tracing::warn!("notify: webhooks are not available yet; only the script runs");
                }
            }
            Action::Blackhole => {
                for p in &step.prefixes {
                    match self.blackholes.add(*p) {
                        Ok(Added::New) => tracing::info!(prefix = %p, "blackhole route added"),
                        Ok(Added::AlreadyThere) => {
                            tracing::info!(prefix = %p, "a route for the prefix is already there; left as it is")
                        }
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
            Action::Rtbh { .. } | Action::Flowspec { .. } => match &mut self.bgp {
                Some(b) => {
                    b.apply(step);
                }
                None => no_bgp_peer(),
            },
            other => not_yet(other.rung()),
        }
    }

    /// Takes a rung away.
    fn remove(&mut self, step: &Step) {
        match &step.action {
            Action::Notify { script, .. } => {
                if let Some(s) = script {
                    self.notify(s, step, "unban");
                }
            }
            Action::Blackhole => {
                for p in &step.prefixes {
                    match self.blackholes.remove(*p) {
                        Ok(true) => tracing::info!(prefix = %p, "blackhole route removed"),
                        Ok(false) => {
                            tracing::info!(prefix = %p, "no blackhole route of ours to remove")
                        }
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
            Action::Rtbh { .. } | Action::Flowspec { .. } => {
                if let Some(b) = &mut self.bgp {
                    b.remove(step);
                }
            }
            other => not_yet(other.rung()),
        }
    }

    /// Runs `script IP DIRECTION PPS ACTION` with the report on stdin,
    /// without waiting for it: a thread writes its stdin and reaps it.
    fn notify(&self, script: &str, step: &Step, action: &str) {
        if self.in_flight.load(Ordering::SeqCst) >= MAX_NOTIFY {
            tracing::warn!(
                address = %step.target,
                action,
                "{MAX_NOTIFY} notify scripts still running; this one is skipped"
            );
            return;
        }
        // FastNetMon's order: IP DIRECTION PPS ACTION.
        let mut args = step.script_args(action == "ban");
        args[3] = action.to_owned();
        let mut child = match Command::new(script)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot run the notify script {script}: {e}");
                return;
            }
        };
        let report = crate::output::guard::notify_json(step, action);
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        let script = script.to_owned();
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                if let Some(mut stdin) = child.stdin.take() {
                    // A script that does not read its stdin closes the
                    // pipe: that is its choice, not an error.
                    let _ = stdin.write_all(&report);
                }
                match child.wait() {
                    Ok(s) if s.success() => {}
                    Ok(s) => tracing::warn!("the notify script {script} exited with {s}"),
                    Err(e) => tracing::warn!("the notify script {script}: {e}"),
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("cannot start a thread for the notify script: {e}");
        }
    }
}

fn no_bgp_peer() {
    tracing::warn!("rtbh/flowspec: the policy's [bgp] has no peer with `announce = true`; nothing is announced, and the ladder goes on");
}

fn not_yet(rung: Rung) {
    tracing::warn!(
        %rung,
        "this rung is not available yet in `guard watch` (issue 15); the ladder goes on"
    );
}
