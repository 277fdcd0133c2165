//! `tollgate flows`: the flow collector on its own (`collect`) and its
//! status. `tollgate run` starts the same collector beside the kernel loop
//! when the policy has `[flows]`.
//!
//! - [`books`]: the collector's harvests into the history store, the
//!   decoders' templates, quarantined records, and the status file;
//! - [`commit`]: committing so that a sample the store refuses is set
//!   aside and never blocks the others;
//! - [`kept`]: the decoded records kept in ClickHouse (`[history.flows]`)
//!   through the collector's second tap;
//! - [`quarantine`]: the bounded file of what was set aside;
//! - [`saved`]: the templates file and what a stop could not commit,
//!   written crash-safe;
//! - [`status`]: the status file and its rendering.

mod books;
mod commit;
mod kept;
mod quarantine;
mod saved;
mod status;

pub use books::FlowBooks;
pub use commit::WRITER as FLOWS_WRITER;
pub use status::{annotate_status, live_rates, Status};

use crate::cli::flows::{CollectArgs, FlowsCommand};
use crate::saved_routes::{Refresh, SavedRoutes};
use crate::state_dir::StateDir;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Runs a `tollgate flows` command.
pub fn run(path: &Path, state: &StateDir, cmd: &FlowsCommand) -> Result<ExitCode, String> {
    match cmd {
        FlowsCommand::Collect(a) => collect(path, state, a),
        FlowsCommand::Status { json } => {
            let s = Status::load(state.root())?;
            if *json {
                let text = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
                sayln!("{text}");
            } else {
                say!("{}", s.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        FlowsCommand::Top(_) => Err("`flows top` reads the history, not the collector".into()),
    }
}

fn collect(path: &Path, state: &StateDir, a: &CollectArgs) -> Result<ExitCode, String> {
    let (_, mut policy) = crate::policy_file::valid(path).map_err(|e| e.to_string())?;
    let Some(flows) = policy.flows.clone() else {
        return Err(format!(
            "the policy {} has no [flows] section\n  hint: add [flows] with `listen` and [[flows.exporters]] (docs/flows.md)",
            path.display()
        ));
    };
    let mut realms = SavedRoutes::new(state.routes_table());
    if let Refresh::Failed(e) = realms.refresh(&policy) {
        return Err(e);
    }
    let mut books = FlowBooks::start(&policy, &flows, state.root(), realms.current())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let sig = |k| signal(k).map_err(|e| format!("cannot watch signals: {e}"));
        let (mut hup, mut term, mut int) = (
            sig(SignalKind::hangup())?,
            sig(SignalKind::terminate())?,
            sig(SignalKind::interrupt())?,
        );
        let mut tick = tokio::time::interval(a.interval.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match realms.refresh(&policy) {
                        Refresh::Changed => {
                            if let Err(e) = books.reload(&policy, realms.current()) {
                                tracing::error!("{e}");
                            }
                        }
                        Refresh::Unchanged => {}
                        Refresh::Failed(e) => tracing::error!("{e}; the last good routes table is kept"),
                    }
                    if let Err(e) = books.commit() {
                        tracing::error!("{e}");
                    }
                }
                _ = hup.recv() => match crate::policy_file::load(path).map(|l| (l.policy.clone(), l)) {
                    Ok((Some(p), _)) => {
                        realms.rules_changed();
                        let _ = realms.refresh(&p);
                        match books.reload(&p, realms.current()) {
                            Ok(()) => {
                                policy = p;
                                tracing::info!("policy reloaded");
                            }
                            Err(e) => tracing::error!("reload refused: {e}"),
                        }
                    }
                    Ok((None, l)) => tracing::error!("reload refused, the running policy is kept:\n{}", l.render()),
                    Err(e) => tracing::error!("reload refused: {e}"),
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        tracing::info!("stopping: draining the sockets and committing");
        match books.stop() {
            Ok(c) => {
                tracing::info!(
                    samples = c.samples,
                    bytes = c.bytes,
                    refused = c.refused,
                    saved_for_next_start = c.spilled,
                    "flows committed; exiting"
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                tracing::error!("{e}");
                Ok(ExitCode::from(1))
            }
        }
    })
}
