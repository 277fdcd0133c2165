//! `tollgate transit`: the site's own bill against each upstream of the
//! policy's `[transit]`: the commit, the 95th so far with the upstream's
//! rule and cycle, the burst budget spent and left, the projection, and
//! the transit guard's steps (from the daemon's `transit-guard.json`).
//! `tollgate transit relax` leaves the daemon a request to undo them.

use super::Context;
use crate::cli::history::{TransitAction, TransitArgs};
use crate::error::Result;
use engine::transit_run::TransitView;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn run(cx: &Context, a: &TransitArgs) -> Result<ExitCode> {
    let (_, policy) = crate::policy_file::valid(&cx.config)?;
    if let Some(TransitAction::Relax) = a.action {
        return relax(cx, &policy);
    }
    let now = jiff::Timestamp::now();
    let store = cx.state.history_store(policy.history.as_ref(), false)?;
    let report = query::transit::report(&policy, &*store, now, a.period.as_deref())?;
    let mode = policy
        .transit
        .as_ref()
        .map_or(policy::TransitGuardMode::Off, |t| t.guard.value);
    let guard = TransitView::new(mode, crate::transit_files::load(&cx.state)?);
    let answer = api::transit::TransitAnswer::new(report, Some(guard));
    if a.json {
        say!("{}", crate::output::json_pretty(&answer)?);
    } else {
        let r = query::transit::TransitReport {
            now: answer.now,
            upstreams: answer.upstreams,
        };
        say!("{}", crate::output::transit::report(&r));
        if let Some(g) = &answer.guard {
            say!("{}", crate::output::transit::guard(g));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Leaves the request and waits (at most 10 s) for the daemon to take it.
fn relax(cx: &Context, policy: &policy::Policy) -> Result<ExitCode> {
    if policy
        .transit
        .as_ref()
        .is_none_or(|t| t.guard.value == policy::TransitGuardMode::Off)
    {
        return Err(crate::error::Error::invalid(
            "the transit guard is off in the policy: there is nothing to relax",
        )
        .hint("[transit] guard = \"on\" or \"dry-run\" turns it on (docs/transit.md)"));
    }
    crate::transit_files::request_relax(&cx.state)?;
    let start = Instant::now();
    while cx.state.transit_relax().exists() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(crate::error::Error::runtime(
                "the daemon did not take the relax request within 10 s; it stays for the daemon to take when it runs",
            )
            .hint("is `tollgate run` running with this --state-dir?"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The state is saved right after the request is taken.
    std::thread::sleep(Duration::from_millis(300));
    let state = crate::transit_files::load(&cx.state)?;
    let until = state
        .relaxed_until
        .map_or("unknown".to_owned(), |u| u.to_string());
    say!("relax taken by the daemon: no step in force; no tightening until {until}");
    Ok(ExitCode::SUCCESS)
}
