//! `tollgate completions SHELL`: a completion script made from the same
//! clap definitions as `--help`.

use crate::cli::Args;
use crate::error::Result;
use clap::CommandFactory as _;
use std::process::ExitCode;

pub fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut cmd = Args::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tollgate", &mut script);
    say!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}
