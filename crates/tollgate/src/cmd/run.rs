//! `tollgate run`: the daemon.

use super::Context;
use crate::cli::daemon::RunArgs;
use crate::error::Result;
use std::process::ExitCode;

pub fn run(cx: &Context, a: &RunArgs) -> Result<ExitCode> {
    crate::daemon::run(&cx.config, &cx.state, a)
}
