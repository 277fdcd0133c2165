//! `tollgate transit`: the site's own bill against each upstream of the
//! policy's `[transit]`: the commit, the 95th so far with the upstream's
//! rule and cycle, the burst budget spent and left, and the projection.

use super::Context;
use crate::cli::history::TransitArgs;
use crate::error::Result;
use std::process::ExitCode;

pub fn run(cx: &Context, a: &TransitArgs) -> Result<ExitCode> {
    let (_, policy) = crate::policy_file::valid(&cx.config)?;
    let now = jiff::Timestamp::now();
    let store = cx.state.history_store(policy.history.as_ref(), false)?;
    let report = query::transit::report(&policy, &*store, now, a.period.as_deref())?;
    if a.json {
        say!("{}", crate::output::json_pretty(&report)?);
    } else {
        say!("{}", crate::output::transit::report(&report));
    }
    Ok(ExitCode::SUCCESS)
}
