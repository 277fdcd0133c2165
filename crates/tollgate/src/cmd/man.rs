//! `tollgate man DIR`: a manual page per command and subcommand, made
//! from the same clap definitions as `--help` (so they always describe
//! this binary): `tollgate.1`, `tollgate-check.1`,
//! `tollgate-routes-import.1`, …

use crate::cli::Args;
use crate::error::{Error, Result};
use clap::CommandFactory as _;
use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path) -> Result<ExitCode> {
    let mut root = Args::command();
    // Fills in every subcommand's `tollgate …` usage line.
    root.build();
    let mut pages = Vec::new();
    collect(&root, "tollgate", &mut pages)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
    for (name, page) in &pages {
        crate::state_dir::replace_atomically(&dir.join(format!("{name}.1")), page)?;
    }
    sayln!("{} manual pages written to {}", pages.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The page of `cmd`, named `name`, and those of its subcommands (but
/// clap's own `help`), named `name-sub`.
fn collect(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.to_string()))
        .render(&mut page)
        .map_err(|e| Error::runtime(format!("cannot render the page of {name}: {e}")))?;
    pages.push((name.to_string(), page));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}
