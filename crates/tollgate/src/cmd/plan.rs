//! `tollgate plan`: what `apply` would change (or, offline, the whole
//! plan against given facts).

use super::Context;
use crate::cli::Format;
use crate::error::{Error, Result};
use crate::reconciler::Reconciler;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cx: &Context, offline: bool, host: Option<&Path>, format: Format) -> Result<ExitCode> {
    if !offline {
        if host.is_some() {
            return Err(Error::invalid("--host only applies to --offline plans")
                .hint("without --offline, the facts come from the live kernel"));
        }
        let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
        let mut r = Reconciler::open(&cx.state)?;
        let round = r.round(&loaded, &policy)?;
        say!(
            "{}",
            crate::output::kernel::changes(&round.changes, format)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let facts = match host {
        Some(h) => crate::policy_file::load_facts(h)?,
        None => compiler::HostFacts::default(),
    };
    let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
    let compiled = crate::reconciler::compile(&loaded, &policy, &facts)?;
    crate::output::policy::print_plan(&policy, &compiled, format)?;
    Ok(ExitCode::SUCCESS)
}
