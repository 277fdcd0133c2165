//! `tollgate flows`: the flow collector on its own, and its status.

use super::Context;
use crate::error::{Error, Result};
use std::process::ExitCode;

pub fn run(cx: &Context, cmd: &crate::cli::flows::FlowsCommand) -> Result<ExitCode> {
    crate::collector::run(&cx.config, &cx.state, cmd).map_err(Error::runtime)
}
