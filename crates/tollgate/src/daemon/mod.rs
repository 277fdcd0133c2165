//! `tollgate run`: the shell around the engine.
//!
//! The engine (`crates/engine`) decides; this module does what it says and
//! tells it what happened. One thread runs the loop:
//! - it waits for the engine's next deadline or for a message (a signal,
//!   an API command);
//! - it hands the engine the input (`Tick`, `Stop`, `PolicyRead`,
//!   `Command`…) with the time, and carries out the effects in order
//!   ([`shell::Shell::execute`]); an effect that asks a question (observe,
//!   read, store, write the policy) is answered with an input at once,
//!   before anything else reaches the engine;
//! - after each input it publishes the engine's snapshot, which the API
//!   and the metrics read without asking the engine anything.
//!
//! Signals: SIGHUP reloads the policy (an invalid one is refused and the
//! running one kept); SIGTERM and SIGINT read the counters one last time,
//! commit, and exit 0. With `--record FILE`, every input goes to FILE as
//! one JSON line, so that `tollgate replay FILE` (and the tests) can feed
//! the same run to an engine again.

mod allocator;
mod central_clickhouse;
mod central_client;
pub(crate) mod clock;
mod guard;
mod guard_flows;
mod kernel;
mod latency;
mod overage_watch;
mod probes;
mod record;
mod shell;
mod shipper;
mod transit;

pub use clock::Clock;
pub use record::Recorded;

use crate::cli::daemon::RunArgs;
use crate::error::{Context as _, Error, Result};
use crate::state_dir::StateDir;
use engine::io::{Input, Intervals, Resume, SettingsText, Start};
use engine::Engine;
use history::Store;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// What reaches the loop from other threads.
pub enum Message {
    /// SIGHUP.
    Reload,
    /// SIGTERM or SIGINT.
    Stop(&'static str),
    /// A command, with where to send its answer.
    Command(
        engine::io::Command,
        tokio::sync::oneshot::Sender<engine::io::Answer>,
    ),
    /// A guard capture tick, or its failure.
    Guard(Box<engine::guard::GuardInput>),
    /// A latency reading or probe reply.
    Latency(Box<engine::latency::LatencyInput>),
}

/// Reads what the engine starts from.
fn start_input(
    config: &Path,
    state: &StateDir,
    args: &RunArgs,
    store: &dyn Store,
    copy: Option<&Path>,
) -> Result<Start> {
    let policy = crate::policy_file::read_policy_text(config)?;
    let settings = match &args.settings.accounting {
        Some(p) => Some(SettingsText {
            name: p.display().to_string(),
            text: crate::policy_file::read_text(p)?,
        }),
        None => {
            let p = Path::new(settings::DEFAULT_PATH);
            p.exists()
                .then(|| crate::policy_file::read_text(p))
                .transpose()?
                .map(|text| SettingsText {
                    name: p.display().to_string(),
                    text,
                })
        }
    };
    let resume = match store.last_state() {
        Ok(last) => last.map(|s| Resume {
            sequence: s.sequence,
            state: s.blob,
        }),
        Err(e @ history::StoreError::Unreachable { .. }) => resume_from_copy(copy, &e)?,
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read the accounting state: {e}"
            )))
        }
    };
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(100);
    Ok(Start {
        flows: policy.load().policy.is_some_and(|p| p.flows.is_some()),
        policy,
        settings,
        resume,
        records: crate::overage_files::load(state)?,
        transit: crate::transit_files::load(state)?,
        intervals: Intervals {
            read_ms: ms(args.interval),
            reconcile_ms: ms(args.reconcile),
        },
    })
}

/// The history's server is unreachable at start: resume from this host's
/// copy of the last committed batch if it is certain (nothing can have
/// been stored after it), so that shaping and accounting start now and
/// the history catches up when the server is back.
fn resume_from_copy(copy: Option<&Path>, e: &history::StoreError) -> Result<Option<Resume>> {
    let refuse = |why: &str| {
        Error::runtime(format!("cannot read the accounting state: {e}")).hint(format!(
            "{why}; start the history's server (the daemon starts without it once this host has a certain copy of the last batch it committed)"
        ))
    };
    let Some(path) = copy else {
        return Err(refuse("the history is not ClickHouse"));
    };
    match crate::accounting_copy::load(path)? {
        Some(c) if c.certain => {
            tracing::warn!(
                "{e}; resuming from this host's copy of batch {} ({}): the history catches up when the server is back",
                c.sequence,
                path.display()
            );
            Ok(Some(Resume {
                sequence: c.sequence,
                state: c.state,
            }))
        }
        Some(c) => Err(refuse(&format!(
            "this host's copy of batch {} ({}) is uncertain (an append after it may have landed unseen, {} says), and resuming from it could count that batch twice",
            c.sequence,
            path.display(),
            crate::accounting_copy::marker(path).display()
        ))),
        None => Err(refuse(&format!(
            "this host has no copy of a committed batch ({})",
            path.display()
        ))),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config: &Path, state: &StateDir, args: &RunArgs) -> Result<ExitCode> {
    allocator::use_few_arenas();
    let clock = Clock::from_env()?;
    // The store the policy's [history] names, chosen once at start.
    let first_policy = crate::policy_file::read_policy_text(config)?.load().policy;
    let history = first_policy.as_ref().and_then(|p| p.history.clone());
    // The guard's BGP peers, also chosen once at start.
    let bgp = first_policy.and_then(|p| p.bgp);
    let (store, clickhouse) = state.daemon_history(history.as_ref())?;
    let copy = clickhouse.then(|| state.accounting_copy());
    let start = start_input(config, state, args, &store, copy.as_deref())?;
    let mut recorder = record::Recorder::open(args.record.as_deref())?;
    let now = clock.now();
    recorder.write(now, &Input::Start(Box::new(start.clone())))?;
    let flows = start.flows;
    let (mut engine, first) = Engine::start(now, start)
        .map_err(|e| Error::invalid(format!("{}: {e}", config.display())))?;
    let mut shell = shell::Shell::open(config, state, store, clock, &engine, flows)?;
    shell.accounting_copy = copy;
    if let Some(agents) = shipper::saved_agents(state) {
        let input = Input::AgentsRestored { agents };
        recorder.write(now, &input)?;
        let effects = engine.handle(now, input);
        debug_assert!(effects.is_empty(), "{effects:?}");
    }
    shipper::start(config, state, engine.policy(), clock)?;
    let (tx, rx) = mpsc::channel::<Message>();
    shell.guard = Some(guard::GuardShell::new(tx.clone(), state, bgp));
    shell.latency = Some(latency::LatencyShell::new(
        tx.clone(),
        state,
        std::time::Instant::now(),
    ));
    signals(tx.clone())?;
    let inbox = std::sync::Mutex::new(tx);
    let commands: api::Commands = Arc::new(move |command| {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Message::Command(command, reply));
        sent.is_ok().then_some(answer)
    });
    let snapshots = crate::api_server::start(config, state, args, engine.snapshot(now), commands)?;
    tracing::info!(
        policy = %config.display(),
        state_dir = %state.root().display(),
        "tollgate daemon running"
    );
    let mut pending = shell.execute_all(&engine, first);
    // The guard's saved ladder, before its first tick.
    pending.extend(
        shell
            .guard
            .as_ref()
            .map(|g| g.restore_input())
            .transpose()?
            .flatten(),
    );
    loop {
        while let Some(input) = pending.pop_front() {
            let now = shell.clock.now();
            recorder.write(now, &input)?;
            let effects = engine.handle(now, input);
            pending.extend(shell.execute_all(&engine, effects));
        }
        if let Some(code) = shell.exit {
            shell.finish();
            return Ok(ExitCode::from(code));
        }
        if let Some(s) = &snapshots {
            s.send_replace(Arc::new(engine.snapshot(shell.clock.now())));
        }
        shell.send_answers();
        if let Some(g) = &mut shell.guard {
            g.after_round(&engine, shell.clock.now());
        }
        if let Some(l) = &mut shell.latency {
            l.after_round(&engine, shell.clock.now());
        }
        // Things the shell watches on its own: the routes table and the
        // release requests.
        pending.extend(shell.watch(&engine));
        if !pending.is_empty() {
            continue;
        }
        let wait = shell.clock.until(engine.next_due());
        let input = match rx.recv_timeout(wait) {
            Ok(Message::Reload) => match crate::policy_file::read_policy_text(config) {
                Ok(text) => Input::PolicyRead(Box::new(text)),
                Err(e) => Input::PolicyUnreadable {
                    error: e.to_string(),
                },
            },
            Ok(Message::Stop(signal)) => {
                tracing::info!("{signal}: stopping");
                shell.stop_flows();
                Input::Stop
            }
            Ok(Message::Command(command, reply)) => shell.command(command, reply),
            Ok(Message::Guard(g)) => Input::Guard(*g),
            Ok(Message::Latency(l)) => Input::Latency(*l),
            Err(mpsc::RecvTimeoutError::Timeout) => Input::Tick,
            Err(mpsc::RecvTimeoutError::Disconnected) => Input::Stop,
        };
        pending.push_back(input);
    }
}

/// Turns SIGHUP, SIGTERM and SIGINT into messages, from a thread of its
/// own.
fn signals(tx: mpsc::Sender<Message>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .runtime("cannot start the signal runtime")?;
    use tokio::signal::unix::{signal, SignalKind};
    let (mut hup, mut term, mut int) = rt.block_on(async {
        let sig = |k| signal(k).runtime("cannot watch signals");
        Ok::<_, Error>((
            sig(SignalKind::hangup())?,
            sig(SignalKind::terminate())?,
            sig(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let m = tokio::select! {
                        _ = hup.recv() => Message::Reload,
                        _ = term.recv() => Message::Stop("SIGTERM"),
                        _ = int.recv() => Message::Stop("SIGINT"),
                    };
                    if tx.send(m).is_err() {
                        return;
                    }
                }
            });
        })
        .runtime("cannot start the signal thread")?;
    Ok(())
}
