//! `tollgate token`: API tokens, kept hashed in the file the policy's
//! `[api] tokens` names.

use super::Context;
use crate::cli::token::TokenCommand;
use crate::error::{Error, Result};
use std::process::ExitCode;

pub fn run(_cx: &Context, _cmd: &TokenCommand) -> Result<ExitCode> {
    Err(Error::runtime("tokens arrive with the API"))
}
