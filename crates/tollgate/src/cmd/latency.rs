//! `tollgate latency`: what the daemon last published about queueing
//! delay, probes and latency alarms (`latency-status.json`, the shape of
//! `GET /api/v1/latency`); with `--since`, the minutes stored in the
//! history (the shape of `GET /api/v1/latency/history`).

use super::Context;
use crate::cli::LatencyArgs;
use crate::error::{Error, Result};
use std::process::ExitCode;

pub fn run(cx: &Context, a: &LatencyArgs) -> Result<ExitCode> {
    if let Some(since) = &a.since {
        return stored(cx, a, since);
    }
    let Some(status) = crate::latency_file::read(&cx.state)? else {
        return Err(Error::runtime(format!(
            "no latency status in {}",
            cx.state.root().display()
        ))
        .hint("the daemon writes it when it runs with a [latency] section in its policy: start `tollgate run`, or pass the --state-dir it uses"));
    };
    let tenant = match &a.tenant {
        Some(who) => {
            let loaded = crate::policy_file::load(&cx.config).ok();
            let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
            Some(query::names::tenant_id(p, who)?)
        }
        None => None,
    };
    let stale = crate::latency_file::stale(&status);
    let (read, rtt_entries) = (status.classes_read, status.rtt_entries);
    let mut status = api::latency::LatencyStatus::from_view(&status.view, status.as_of, tenant);
    status.classes_read = read;
    if tenant.is_none() {
        status.rtt_entries = rtt_entries;
    }
    if stale {
        tracing::warn!(
            "{} was written at {}: the daemon is not running (or uses another --state-dir); this is what it saw last",
            cx.state.latency_status().display(),
            status.as_of
        );
    }
    if a.json {
        say!("{}", crate::output::json_pretty(&status)?);
    } else {
        say!("{}", crate::output::latency::text(&status, stale));
    }
    Ok(ExitCode::SUCCESS)
}

/// The stored minutes since `since`.
fn stored(cx: &Context, a: &LatencyArgs, since: &str) -> Result<ExitCode> {
    let loaded = crate::policy_file::load(&cx.config).ok();
    let p = loaded.as_ref().and_then(|l| l.policy.as_ref());
    let tenant = match &a.tenant {
        Some(who) => Some(query::names::tenant_id(p, who)?),
        None => None,
    };
    let now = jiff::Timestamp::now();
    let from = query::latency::since(since, now)?;
    let store = cx
        .state
        .history_store(p.and_then(|p| p.history.as_ref()), false)?;
    let h = query::latency::history(&*store, p, tenant, from, now)?;
    if a.json {
        say!("{}", crate::output::json_pretty(&h)?);
    } else {
        say!("{}", crate::output::latency::history(&h));
    }
    Ok(ExitCode::SUCCESS)
}
