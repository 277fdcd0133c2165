//! `tollgate bill`: every tenant's bill for one period, with the
//! percentile's method and rank rule and the coverage behind every figure.
//! A frozen period is shown exactly as it was frozen; `--freeze` stores a
//! closed period's bill in the history, where it never changes again.

use super::Context;
use crate::cli::history::BillArgs;
use crate::error::Result;
use query::range::RangeSpec;
use std::process::ExitCode;

pub fn run(cx: &Context, a: &BillArgs) -> Result<ExitCode> {
    let loaded = crate::policy_file::load(&cx.config).ok();
    let settings = crate::settings_file::settings(&a.settings, loaded.as_ref())?;
    let policy = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let now = jiff::Timestamp::now();
    let spec = a
        .period
        .clone()
        .map_or(RangeSpec::Current, RangeSpec::Period);
    let period = query::range::period(&settings, &spec, now)?;
    let mut store = cx
        .state
        .history_store(policy.and_then(|p| p.history.as_ref()), false)?;
    let open = query::open::open_samples(&*store)?;
    let answer = query::bills::bills(policy, &settings, &*store, &open, &period, now)?;
    if a.freeze {
        query::bills::freeze(&mut *store, &answer, now)?;
        sayln!(
            "period {} frozen with {} tenants' bills",
            period.label,
            answer.bills.bills.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let only = match &a.tenant {
        Some(who) => Some(query::names::tenant_id(policy, who)?),
        None => None,
    };
    let shown: Vec<_> = answer
        .bills
        .bills
        .iter()
        .filter(|b| only.is_none_or(|id| b.bill.tenant.0 == id))
        .collect();
    if a.json {
        let out = serde_json::json!({ "period": answer.bills.period, "status": answer.standing.to_string(), "standing": answer.standing, "bills": shown });
        say!("{}", crate::output::json_pretty(&out)?);
    } else if a.csv {
        say!("{}", crate::output::history::bills_csv(&shown));
    } else {
        say!(
            "{}",
            crate::output::history::bills(&answer, &shown, &settings.cycle.to_string(), policy)
        );
    }
    Ok(ExitCode::SUCCESS)
}
