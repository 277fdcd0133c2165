//! The `tollgate` command: the one binary that wires the crates together.
//!
//! Subcommands live in their own modules; this file only parses the command
//! line and sets up logging. Everything that touches files lives in
//! `files.rs`, so the rest of the program works on values.

/// Prints command output like `print!`, but a closed pipe (`tollgate plan |
/// head`) ends the program quietly, as it would any Unix filter, instead of
/// panicking.
macro_rules! say {
    ($($arg:tt)*) => { $crate::write_stdout(&format!($($arg)*)) };
}

/// `say!` with a newline, like `println!`.
macro_rules! sayln {
    ($($arg:tt)*) => { $crate::write_stdout(&(format!($($arg)*) + "\n")) };
}

mod bill;
mod cli;
mod collector;
mod commands;
mod daemon;
mod files;
mod lab;
mod ledger;
mod live;
mod overage;
mod routes;
mod settings;
mod top;
mod usage;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if args.verbose {
                    "debug"
                } else if matches!(
                    args.command,
                    cli::Command::Run(_) | cli::Command::Flows(collector::FlowsCommand::Collect(_))
                ) {
                    // A daemon's log is its record of what it did.
                    "info"
                } else {
                    "warn"
                })
            }),
        )
        .init();
    if let Some(ns) = &args.netns {
        // Before anything else: every socket and child process from here on
        // lives in that namespace.
        if let Err(e) = linux_dataplane::netns::enter(ns) {
            eprintln!("tollgate: cannot enter network namespace `{ns}`: {e}\n  hint: `ip netns list` shows the namespaces");
            return ExitCode::from(2);
        }
    }
    match commands::run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes to stdout; see `say!`. Exits with 0 on a broken pipe, because the
/// reader chose to stop reading, and with 2 on any other write error.
fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("tollgate: cannot write the output: {e}");
        std::process::exit(2);
    }
}
