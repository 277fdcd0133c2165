//! `tollgate flows`: the flow collector on its own (`collect`) and its
//! status. `tollgate run` starts the same collector beside the kernel loop
//! when the policy has `[flows]`.
//!
//! - [`books`]: the collector's harvests into the history store, the
//!   decoders' templates, quarantined records, and the status file;
//! - [`commit`]: committing so that a sample the store refuses is set
//!   aside and never blocks the others;
//! - [`quarantine`]: the bounded file of what was set aside;
//! - [`saved`]: the templates file and what a stop could not commit,
//!   written crash-safe;
//! - [`status`]: the status file and its rendering.

mod books;
mod commit;
mod quarantine;
mod saved;
mod status;

pub use books::FlowBooks;
pub use status::{annotate_status, live_rates, Status};

use crate::cli::parse_duration;
use crate::ledger::StateArgs;
use clap::{Args, Subcommand};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// `tollgate flows …`.
#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// Collect NetFlow v5/v9, IPFIX and sFlow from the policy's exporters
    /// into the history, without shaping anything.
    #[command(
        after_help = "The policy's [flows] section says where to listen and which \
exporters to believe; tenants with measured_by = \"flows\" are attributed by address, to the realm \
of the other end (the policy's realm prefixes and the routes' realms). Records are multiplied by \
the exporter's sampling interval, or the policy's override. Usage lands in the same history as \
kernel counters, so `usage`, `bill` and `top` work on it. SIGHUP reloads the policy; SIGTERM \
drains the sockets, commits and exits. `tollgate run` does the same when the policy has [flows].

Examples:
  tollgate flows collect -c /etc/tollgate/tollgate.toml
  tollgate flows collect --state-dir /tmp/tg-flows --interval 2s"
    )]
    Collect(CollectArgs),

    /// What the collector reported last: records, attribution, and drops
    /// and errors per socket and exporter.
    #[command(after_help = "Examples:
  tollgate flows status
  tollgate flows status --json | jq .totals")]
    Status {
        #[command(flatten)]
        state: StateArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tollgate flows collect`'s options.
#[derive(Args, Debug)]
pub struct CollectArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// How often what was received is committed to the history.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub interval: Duration,
}

/// Runs a `tollgate flows` command.
pub fn run(path: &Path, cmd: &FlowsCommand) -> Result<ExitCode, String> {
    match cmd {
        FlowsCommand::Collect(a) => collect(path, a),
        FlowsCommand::Status { state, json } => {
            let s = Status::load(&state.state_dir)?;
            if *json {
                let text = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
                sayln!("{text}");
            } else {
                say!("{}", s.render());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn collect(path: &Path, a: &CollectArgs) -> Result<ExitCode, String> {
    let (_, mut policy) = crate::commands::valid(path)?;
    let Some(flows) = policy.flows.clone() else {
        return Err(format!(
            "the policy {} has no [flows] section\n  hint: add [flows] with `listen` and [[flows.exporters]] (docs/flows.md)",
            path.display()
        ));
    };
    let mut realms = crate::live::RouteRealms::default();
    let mut books = FlowBooks::start(&policy, &flows, &a.state.state_dir, realms.current(&policy))?;
    let mut reads = realms.reads();
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
                    if let Some(current) = realms.changed_since(&policy, &mut reads) {
                        if let Err(e) = books.reload(&policy, current) {
                            tracing::error!("{e}");
                        }
                    }
                    if let Err(e) = books.commit() {
                        tracing::error!("{e}");
                    }
                }
                _ = hup.recv() => match crate::files::load_policy(path).map(|l| (l.policy.clone(), l)) {
                    Ok((Some(p), _)) => {
                        realms = crate::live::RouteRealms::default();
                        match books.reload(&p, realms.current(&p)) {
                            Ok(()) => {
                                reads = realms.reads();
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
