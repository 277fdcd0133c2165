//! `tollgate status`: tenants, their classes, and their current rates from
//! two readings of the class counters.

use super::Context;
use crate::error::Result;
use crate::output::kernel::Status;
use crate::reconciler::Reconciler;
use query::rates::Reading;
use std::process::ExitCode;
use std::time::Duration;

pub fn run(cx: &Context, gap: Duration, json: bool) -> Result<ExitCode> {
    let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
    let mut r = Reconciler::open(&cx.state)?;
    let round = r.round(&loaded, &policy)?;
    std::thread::sleep(gap);
    let later = r.dp.observe(&round.compiled.plan)?;
    let present = round.observed_plan.classes.keys().copied().collect();
    let bytes = |o: &linux_dataplane::Observed| -> Reading {
        o.stats.iter().map(|(k, s)| (*k, s.bytes)).collect()
    };
    let classes = query::rates::classes(
        &policy,
        &round.compiled,
        &present,
        &bytes(&round.observed),
        &bytes(&later),
        gap.as_secs_f64(),
    );
    let status = Status {
        pending_changes: round.changes.len(),
        classes,
        // A missing or unreadable record shows no moves; `overage list`
        // says why.
        overage: crate::overage_files::load_settled(&cx.state, Some(&policy))
            .map(|r| r.moves)
            .unwrap_or_default(),
        offline_interfaces: r
            .offline
            .names()
            .iter()
            .map(|n| n.as_str().to_string())
            .collect(),
        routes_error: r.routes.error().map(str::to_owned),
        tenants: policy.tenants.len(),
        transit_steps: {
            let mode = policy
                .transit
                .as_ref()
                .map_or(policy::TransitGuardMode::Off, |t| t.guard.value);
            let state = crate::transit_files::load(&cx.state).unwrap_or_default();
            engine::transit_run::TransitView::new(mode, state).steps_in_force
        },
        // Only a fresh file: a stopped daemon's alarms are not "now".
        latency_alarms: crate::latency_file::read(&cx.state)
            .ok()
            .flatten()
            .filter(|s| !crate::latency_file::stale(s))
            .map(|s| s.view.alarms)
            .unwrap_or_default(),
    };
    let out = if json {
        crate::output::json_pretty(&status)?
    } else {
        crate::output::kernel::status_text(&status)
    };
    let out = crate::collector::annotate_status(&cx.state, out, json);
    // The daemon's clock (shifted in tests), for the agents' lag.
    let now = crate::daemon::clock::Clock::from_env()?.now();
    // Agents writing straight into a shared ClickHouse history are seen
    // only there.
    let stored = match policy.history.as_ref().map(|h| &h.store) {
        Some(policy::HistoryStore::ClickHouse { .. }) => cx
            .state
            .history_store(policy.history.as_ref(), false)
            .and_then(|s| {
                s.writers()
                    .map_err(|e| crate::error::Error::runtime(e.to_string()))
            })
            .unwrap_or_else(|e| {
                tracing::warn!("the agents in the shared history: {e}");
                vec![]
            }),
        _ => vec![],
    };
    say!(
        "{}",
        crate::shipping_status::annotate_status(&cx.state, out, json, now, &stored)
    );
    Ok(ExitCode::SUCCESS)
}
