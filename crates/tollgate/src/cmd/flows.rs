//! `tollgate flows`: the flow collector on its own, its status, and the
//! top talkers of the records kept (`flows top`).

use super::Context;
use crate::cli::flows::{FlowTopArgs, FlowsCommand};
use crate::error::{Error, Result};
use std::process::ExitCode;

pub fn run(cx: &Context, cmd: &FlowsCommand) -> Result<ExitCode> {
    match cmd {
        FlowsCommand::Top(a) => top(cx, a),
        _ => crate::collector::run(&cx.config, &cx.state, cmd).map_err(Error::runtime),
    }
}

/// The top talkers from the history the policy names.
fn top(cx: &Context, a: &FlowTopArgs) -> Result<ExitCode> {
    let now = jiff::Timestamp::now();
    let q = query::flows::query(&a.by, &a.since, Some(a.limit), now)?;
    let loaded = crate::policy_file::load(&cx.config).ok();
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let store = cx
        .state
        .history_store(p.and_then(|p| p.history.as_ref()), false)?;
    let top = query::flows::top(&*store, &q)?;
    if a.json {
        say!("{}", crate::output::json_pretty(&top)?);
    } else {
        say!("{}", crate::output::flows::top(&top));
    }
    Ok(ExitCode::SUCCESS)
}
