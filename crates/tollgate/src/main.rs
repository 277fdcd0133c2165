//! The `tollgate` command: the one binary that wires the crates together.
//!
//! - `cli/`: the command line's clap definitions, and nothing else;
//! - `cmd/`: one module per subcommand, none importing another;
//! - `output/`: everything printed (text, JSON, CSV, units);
//! - the pieces commands share: the policy file (`policy_file`), the
//!   state directory (`state_dir`), the reconciler (`reconciler`), the
//!   saved routes table (`saved_routes`), the daemon's shell (`daemon/`)
//!   and the flow collector's (`collector/`);
//! - `error`: the one error type and the documented exit codes.
//!
//! `cargo xtask tidy` refuses an import cycle among these modules.

#[macro_use]
mod output;

mod accounting_copy;
mod api_server;
mod bgp_rungs;
mod class_counters;
mod cli;
mod cmd;
mod collector;
mod crash_point;
mod daemon;
mod error;
mod guard_rungs;
mod latency_file;
mod ledger;
mod notify;
mod offline_vifs;
mod overage_files;
mod policy_file;
mod reconciler;
mod saved_routes;
mod settings_file;
mod shipping_status;
mod state_dir;
mod transit_files;
mod xdp_list;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(a) => a,
        // --help and --version, or a mistake in the arguments: clap prints
        // it; a mistake is invalid input (exit 1) like any other.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(error::Kind::Invalid.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let default = if args.verbose {
        "debug"
    } else if matches!(
        args.command,
        cli::Command::Run(_)
            | cli::Command::Flows(cli::flows::FlowsCommand::Collect(_))
            | cli::Command::Guard(_)
    ) {
        // A daemon's log is its record of what it did.
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into a log file,
        // and not for one who asks for none (https://no-color.org), as
        // clap's help and errors already do.
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
    if let Some(ns) = &args.netns {
        // Before anything else: every socket and child process from here on
        // lives in that namespace.
        if let Err(e) = linux_dataplane::netns::enter(ns) {
            eprintln!("tollgate: cannot enter network namespace `{ns}`: {e}\n  hint: `ip netns list` shows the namespaces");
            return ExitCode::from(error::Kind::Runtime.code());
        }
    }
    match cmd::run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate: {e}");
            e.exit_code()
        }
    }
}
