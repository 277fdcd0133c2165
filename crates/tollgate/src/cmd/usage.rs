//! `tollgate usage`: traffic per tenant, realm, direction and local day.

use super::Context;
use crate::cli::history::UsageArgs;
use crate::error::Result;
use history::Tenants;
use net_types::TenantId;
use query::range::RangeSpec;
use std::process::ExitCode;

pub fn run(cx: &Context, a: &UsageArgs) -> Result<ExitCode> {
    // The policy gives names and its [billing]; usage works without it.
    let loaded = crate::policy_file::load(&cx.config).ok();
    let settings = crate::settings_file::settings(&a.settings, loaded.as_ref())?;
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let range = query::range::resolve(
        &settings,
        &RangeSpec::new(a.range.period.as_deref(), a.range.since.as_deref()),
        jiff::Timestamp::now(),
    )?;
    let tenants = match &a.tenant {
        Some(who) => Tenants::Only(vec![TenantId(query::names::tenant_id(p, who)?)]),
        None => Tenants::All,
    };
    let store = cx
        .state
        .history_store(p.and_then(|p| p.history.as_ref()), false)?;
    let open = query::open::open_samples(&*store)?;
    let report = query::usage::usage(&*store, &open, p, &range, &tenants)?;
    if a.json {
        say!("{}", crate::output::json_pretty(&report)?);
    } else {
        say!("{}", crate::output::history::usage(&report));
    }
    Ok(ExitCode::SUCCESS)
}
