//! `tollgate realms`: traffic per realm, to and from, like rtacct.

use super::Context;
use crate::cli::history::RealmsArgs;
use crate::error::Result;
use query::range::RangeSpec;
use std::process::ExitCode;

pub fn run(cx: &Context, a: &RealmsArgs) -> Result<ExitCode> {
    let loaded = crate::policy_file::load(&cx.config).ok();
    let settings = crate::settings_file::settings(&a.settings, loaded.as_ref())?;
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let spec = RangeSpec::new(a.range.period.as_deref(), a.range.since.as_deref());
    let range = query::range::resolve(&settings, &spec, jiff::Timestamp::now())?;
    let store = cx
        .state
        .history_store(p.and_then(|p| p.history.as_ref()), false)?;
    let open = query::open::open_samples(&*store)?;
    let report = query::usage::realms(&*store, &open, p, &range)?;
    if a.json {
        say!("{}", crate::output::json_pretty(&report)?);
    } else {
        say!("{}", crate::output::history::realms(&report));
    }
    Ok(ExitCode::SUCCESS)
}
