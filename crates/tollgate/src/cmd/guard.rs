//! `tollgate guard`: `watch` runs the guard alone in the foreground;
//! `status`, `ban` and `unban` talk to the daemon (`tollgate run`), which
//! runs the guard when the policy has `[guard]`, through the state
//! directory as `overage release` does: the daemon writes
//! `guard-status.json`, and takes `guard-requests/NAME.json`, answering in
//! `NAME.answer`. The files need no token and work without the API.
//!
//! `guard watch`: packet capture → detector → ladder, in the foreground.
//!
//! The capture (`packet-capture`) sends one `TickReport` per 100 ms; each
//! becomes a `guard::Observation` (field by field, its time on a monotonic
//! clock whose origin is this process's start) and the detector returns
//! the ladder's decisions, which `crate::guard_rungs` carries out (the
//! same code as the daemon's: notify scripts, blackhole routes, and the
//! `rtbh` and `flowspec` rungs announced to the policy's `[bgp]` peers
//! that have `announce = true`).
//!
//! The ladder's state is saved (atomically) at every change and restored
//! at start: rungs in place before a restart are applied again (a missing
//! blackhole route is added back). SIGTERM and SIGINT stop the capture,
//! save the state and exit 0; the routes stay, as the bans do.

use super::Context;
use crate::cli::guard::{GuardCommand, WatchArgs};
use crate::error::{Error, Result};
use crate::guard_rungs::{observation, save, Rungs};
use guard::{Action, Decision, Detector, Direction, Limit, Metric, Monotonic, Rung, RungConfig};
use net_types::Prefix;
use packet_capture::{Capture, CaptureConfig};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the notify rung added by `--notify` stays at least, when the
/// ladder had no notify rung.
const NOTIFY_HOLD: Duration = Duration::from_secs(60);

pub fn run(cx: &Context, cmd: &GuardCommand) -> Result<ExitCode> {
    match cmd {
        GuardCommand::Watch(a) => watch(cx, a),
        GuardCommand::Status { json } => status(cx, *json),
        GuardCommand::History { last, json, since } => match since {
            Some(since) => history_since(cx, since, *last, *json),
            None => history(cx, *last, *json),
        },
        GuardCommand::Ban {
            address,
            rung,
            duration,
            permanent,
            direction,
            json,
        } => {
            let body = api::guard::BanBody {
                address: address.clone(),
                direction: direction.clone(),
                rung: rung.clone(),
                duration: duration.clone(),
                permanent: *permanent,
            };
            let command = api::guard::ban_command(&body).map_err(refused)?;
            request(cx, command, *json)
        }
        GuardCommand::Unban {
            target,
            direction,
            json,
        } => {
            let body = api::guard::UnbanBody {
                target: target.clone(),
                direction: direction.clone(),
            };
            let command = api::guard::unban_command(&body).map_err(refused)?;
            request(cx, command, *json)
        }
    }
}

/// How long a ban or unban waits for the daemon.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// A status file older than this was not written by a running daemon.
const STALE: Duration = Duration::from_secs(5);

/// The API's refusal of an argument, as the command line's (the same
/// checks, naming the option).
fn refused(p: api::problem::Problem) -> Error {
    let option = match p.field.as_deref() {
        Some("address") => "ADDR".to_string(),
        Some("target") => "ADDR|GROUP".to_string(),
        Some(f) => format!("--{f}"),
        None => "the arguments".to_string(),
    };
    Error::invalid(format!("{option}: {}", p.detail))
}

fn history(cx: &Context, last: usize, json: bool) -> Result<ExitCode> {
    let path = cx.state.guard_history();
    let (records, bad) = api::guard::read_history(&path).map_err(|e| {
        Error::runtime(format!(
            "cannot read the guard history {}: {e}",
            path.display()
        ))
    })?;
    if bad > 0 {
        tracing::warn!("{bad} lines of the guard history could not be read and are left out");
    }
    let shown = &records[records.len().saturating_sub(last)..];
    if json {
        say!("{}", crate::output::json_pretty(&shown)?);
    } else {
        say!(
            "{}",
            crate::output::guard::history_text(shown, records.len())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The ended attacks the history store keeps (`--since`): SQLite in the
/// state directory, or the policy's `[history]` store.
fn history_since(cx: &Context, since: &str, last: usize, json: bool) -> Result<ExitCode> {
    let since = api::guard::parse_since(since, jiff::Timestamp::now())
        .map_err(|e| Error::invalid(format!("--since: {e}")))?;
    let loaded = crate::policy_file::load(&cx.config).ok();
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let store = cx
        .state
        .history_store(p.and_then(|p| p.history.as_ref()), false)?;
    let rows = store
        .attacks(since, last.min(history::MAX_ATTACKS))
        .map_err(|e| Error::runtime(format!("cannot read the attacks from the history: {e}")))?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        match api::guard::AttackRecord::from_row(row) {
            Ok(r) => records.push(r),
            Err(e) => tracing::warn!(
                "the attack on {} at {} cannot be read ({e}); left out",
                row.target,
                row.started
            ),
        }
    }
    if json {
        say!("{}", crate::output::json_pretty(&records)?);
    } else {
        say!(
            "{}",
            crate::output::guard::history_text(&records, records.len())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status(cx: &Context, json: bool) -> Result<ExitCode> {
    let path = cx.state.guard_status();
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::runtime(format!(
                "no guard status in {}",
                cx.state.root().display()
            ))
            .hint("the daemon writes it when it runs with a [guard] section in its policy: start `tollgate run`, or pass the --state-dir it uses"))
        }
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let status: api::guard::GuardStatus = serde_json::from_slice(&text)
        .map_err(|e| Error::runtime(format!("{} cannot be read: {e}", path.display())))?;
    let age = jiff::Timestamp::now().duration_since(status.as_of);
    let stale = age > jiff::SignedDuration::try_from(STALE).unwrap_or_default();
    if stale {
        tracing::warn!(
            "{} was written {:.0}s ago: the daemon is not running (or uses another --state-dir); this is what it saw last",
            path.display(),
            age.as_secs_f64()
        );
    }
    if json {
        say!("{}", crate::output::json_pretty(&status)?);
    } else {
        say!("{}", crate::output::guard::status_text(&status, stale));
    }
    Ok(ExitCode::SUCCESS)
}

/// Leaves `command` for the daemon and waits for its answer.
fn request(cx: &Context, command: engine::guard::GuardCommand, json: bool) -> Result<ExitCode> {
    let dir = cx.state.guard_requests();
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::runtime(format!("cannot create {}: {e}", dir.display())).hint(
            "the state directory must be writable by you; pass --state-dir if the daemon uses another",
        )
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let name = format!("{nanos}-{}", std::process::id());
    let req = dir.join(format!("{name}.json"));
    let answer = dir.join(format!("{name}.answer"));
    let bytes = serde_json::to_vec(&command)
        .map_err(|e| Error::runtime(format!("cannot encode the request: {e}")))?;
    crate::state_dir::replace_atomically(&req, &bytes)?;
    let started = Instant::now();
    let text = loop {
        match std::fs::read(&answer) {
            Ok(t) => break t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::runtime(format!(
                    "cannot read {}: {e}",
                    answer.display()
                )))
            }
        }
        if started.elapsed() > ANSWER_WAIT {
            // Not taken: withdraw it, so a daemon started later does not
            // carry out a command its author saw fail.
            let taken = std::fs::remove_file(&req).is_err();
            return Err(Error::runtime(if taken {
                "the daemon took the request but did not answer within 10 seconds; `tollgate guard status` shows whether it was carried out".to_string()
            } else {
                "no daemon answered within 10 seconds; the request is withdrawn".to_string()
            })
            .hint("is `tollgate run` running, with a [guard] section and this --state-dir?"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Err(e) = std::fs::remove_file(&answer) {
        tracing::warn!(path = %answer.display(), "cannot remove the answer: {e}");
    }
    let answer: engine::io::Answer = serde_json::from_slice(&text)
        .map_err(|e| Error::runtime(format!("the daemon's answer cannot be read: {e}")))?;
    if json {
        say!("{}", crate::output::json_pretty(&answer)?);
    }
    match answer {
        engine::io::Answer::Done { message, .. } => {
            if !json {
                sayln!("{message}");
            }
            Ok(ExitCode::SUCCESS)
        }
        engine::io::Answer::Invalid { message, .. } | engine::io::Answer::NotFound { message } => {
            Err(Error::invalid(message))
        }
        engine::io::Answer::Failed { message } => Err(Error::runtime(message)),
        // An agent's batch is answered through the API, never here.
        engine::io::Answer::BatchAdded { .. } => Err(Error::runtime(
            "the daemon answered a guard request with a batch's answer",
        )),
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
    let mut shell = Rungs::open(bgp.as_ref(), Some(cx.state.guard_history()))?;
    let (mut detector, restored) = restore(config, &state_path, mono(Instant::now()))?;
    if !restored.is_empty() {
        tracing::info!(rungs = restored.len(), "restoring the ladder's state");
        shell.carry_out(&restored, origin);
        save(&detector.save(mono(Instant::now())), &state_path);
    }
    // The guard's sets hold what the restored rungs hold, nothing else.
    shell.reassert();
    let interfaces = capture_config.interfaces.clone();
    let (capture, ticks) = Capture::start(capture_config)
        .map_err(|e| Error::runtime(format!("cannot start the capture: {e}")))?;
    tracing::info!(
        interfaces = %interfaces.join(", "),
        networks = %detector.config().networks.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        "guard watching"
    );
    let mut failed = false;
    while !stop.load(Ordering::SeqCst) {
        match ticks.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => {
                let decisions = detector.tick(&observation(&t, origin));
                if !decisions.is_empty() {
                    shell.carry_out(&decisions, origin);
                    save(&detector.save(mono(Instant::now())), &state_path);
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
        shell.carry_out(&decisions, origin);
    }
    save(&detector.save(mono(Instant::now())), &state_path);
    shell.shutdown();
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
    let Some(saved) = crate::guard_rungs::read_state(path)? else {
        return fresh(config);
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
