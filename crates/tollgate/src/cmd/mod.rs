//! One module per subcommand. None imports another: what two commands
//! share lives outside `cmd/` (the reconciler, the state directory, the
//! output rules, the query layer).

mod apply;
mod bill;
mod check;
mod completions;
mod down;
mod explain;
mod flows;
mod guard;
mod hook;
mod import;
mod lab;
mod latency;
mod man;
mod overage;
mod plan;
mod realms;
mod replay;
mod routes;
mod run;
mod status;
mod tenant;
mod token;
mod top;
mod transit;
mod usage;

use crate::cli::{Args, Command};
use crate::error::Result;
use crate::state_dir::StateDir;
use std::path::PathBuf;
use std::process::ExitCode;

/// What every command may need: where the policy is and the state
/// directory.
pub struct Context {
    /// The policy file (`-c`, `TOLLGATE_CONFIG`, or the default).
    pub config: PathBuf,
    /// The state directory (`--state-dir`, `TOLLGATE_STATE_DIR`, or the
    /// default).
    pub state: StateDir,
}

/// Runs the command the arguments name.
pub fn run(args: &Args) -> Result<ExitCode> {
    let cx = Context {
        config: args
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::cli::DEFAULT_CONFIG)),
        state: StateDir::new(&args.state_dir),
    };
    match &args.command {
        Command::Check { json } => check::run(&cx, *json),
        Command::Plan {
            offline,
            host,
            format,
        } => plan::run(&cx, *offline, host.as_deref(), *format),
        Command::Explain { tenant, json } => explain::run(&cx, tenant, *json),
        Command::Apply { every, json } => apply::run(&cx, *every, *json),
        Command::Status { json, interval } => status::run(&cx, *interval, *json),
        Command::Down => down::run(&cx),
        Command::Tenant(c) => tenant::run(&cx, c),
        Command::Hook(c) => hook::run(&cx, c),
        Command::Lab(c) => lab::run(&cx, c),
        Command::Routes(c) => routes::run(&cx, c),
        Command::Run(a) => run::run(&cx, a),
        Command::Usage(a) => usage::run(&cx, a),
        Command::Realms(a) => realms::run(&cx, a),
        Command::Top(a) => top::run(&cx, a),
        Command::Bill(a) => bill::run(&cx, a),
        Command::Transit(a) => transit::run(&cx, a),
        Command::Overage(c) => overage::run(&cx, c),
        Command::Flows(c) => flows::run(&cx, c),
        Command::Guard(c) => guard::run(&cx, c),
        Command::Latency(a) => latency::run(&cx, a),
        Command::Token(c) => token::run(&cx, c),
        Command::Replay { file } => replay::run(&cx, file),
        Command::Import(c) => import::run(c),
        Command::Completions { shell } => completions::run(*shell),
        Command::Man { dir } => man::run(dir),
    }
}
