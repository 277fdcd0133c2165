//! `tollgate transit` as text: per upstream, the commit, the 95th so far,
//! the burst budget and where the pace leads.

use crate::output::{count, rate};
use query::transit::{TransitReport, UpstreamReport};
use std::fmt::Write;

/// The transit guard: its mode, the steps in force, the last actions.
pub fn guard(g: &engine::transit_run::TransitView) -> String {
    let mut out = String::new();
    let mode = match g.mode {
        policy::TransitGuardMode::Off => "off",
        policy::TransitGuardMode::DryRun => "dry-run (reports only)",
        policy::TransitGuardMode::On => "on",
    };
    let _ = writeln!(
        out,
        "transit guard: {mode}; {} steps taken, {} relaxed",
        g.state.tightened, g.state.relaxed
    );
    if let Some(u) = g.state.relaxed_until {
        let _ = writeln!(out, "  relaxed by hand: no tightening until {u}");
    }
    if g.steps_in_force.is_empty() {
        let _ = writeln!(out, "  steps in force: none");
    }
    for s in &g.steps_in_force {
        let what = step(&s.step);
        let applied = if s.applied {
            ""
        } else {
            " (dry run: not applied)"
        };
        let _ = writeln!(
            out,
            "  in force    upstream {}: {what}{applied}",
            s.upstream
        );
    }
    for a in g.state.actions.iter().rev().take(5) {
        let _ = writeln!(out, "  {}  {a}", a.at);
    }
    out
}

/// One step in force, in words.
pub fn step(s: &engine::transit_guard::Step) -> String {
    match s {
        engine::transit_guard::Step::LowerPoolCeil { ceil } => {
            format!("the overage pool's ceil lowered to {ceil}")
        }
        engine::transit_guard::Step::MoveHeaviest { tenants } => {
            let ids: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
            format!("tenants {} moved into the overage plan", ids.join(", "))
        }
        engine::transit_guard::Step::LowerParentCeil { ceil, .. } => {
            format!("the uplink's ceil lowered to {ceil}")
        }
    }
}

/// The whole report, one block per upstream.
pub fn report(r: &TransitReport) -> String {
    if r.upstreams.is_empty() {
        return "no [transit] upstreams in the policy (docs/transit.md)\n".into();
    }
    let mut out = String::new();
    for u in &r.upstreams {
        upstream(&mut out, u);
    }
    out
}

fn upstream(out: &mut String, u: &UpstreamReport) {
    let s = &u.status;
    let bps = |b: u64| rate(b as f64);
    let realms = if u.realms.is_empty() {
        "every realm, and traffic of no tenant".to_owned()
    } else {
        u.realms.join(", ")
    };
    let _ = writeln!(out, "upstream {} on {} ({realms})", u.name, u.uplink);
    let _ = writeln!(
        out,
        "  period      {} ({}), {}: {}",
        u.period.label,
        u.cycle,
        if u.running { "running" } else { "closed" },
        format_args!(
            "{} of {} slots closed, {} seen",
            count(s.elapsed as u64),
            count(s.expected as u64),
            count(u.coverage.seen as u64)
        )
    );
    let _ = writeln!(
        out,
        "  rule        {}th, {}, {}, missing samples {}",
        u.rule.percentile.get(),
        u.rule.method,
        u.rule.rank,
        u.rule.missing
    );
    let _ = writeln!(
        out,
        "  commit      {} (aiming under {}: {} % margin)",
        bps(s.commit.bps()),
        bps(s.target.bps()),
        u.margin_percent
    );
    let so_far = s
        .so_far
        .map_or("no sample yet".to_owned(), |v| bps(v.rate.bps()));
    let _ = writeln!(out, "  95th so far {so_far}");
    if let Some(f) = s.floor {
        let _ = writeln!(out, "  floor       {} (cannot end below)", bps(f.bps()));
    }
    let exact = if s.exact_budget {
        ""
    } else {
        " (estimated: missing samples are skipped, so the period's n is not known yet)"
    };
    let _ = writeln!(
        out,
        "  budget      {} samples above the commit allowed ({}), {} spent, {} left{exact}",
        count(s.budget as u64),
        hours(s.budget),
        count(s.spent as u64),
        count(s.left as u64),
    );
    let verdict = if s.lost() {
        "OVER: more samples above the commit than the period allows; the bill is above the commit"
            .to_owned()
    } else if let Some(at) = s.runs_out_at {
        format!(
            "AT RISK: {} above the commit by the end at this pace; the budget runs out at slot {} of {} ({} before the end)",
            count(s.projected_spent as u64),
            count(at as u64),
            count(s.expected as u64),
            hours(s.expected.saturating_sub(at)),
        )
    } else {
        format!(
            "within: {} above the commit by the end at this pace",
            count(s.projected_spent as u64)
        )
    };
    let projected = s.projected.map_or("–".to_owned(), |v| bps(v.rate.bps()));
    let _ = writeln!(out, "  projection  95th {projected}; {verdict}");
    out.push('\n');
}

/// Samples as hours (12 a hour), for people.
fn hours(samples: usize) -> String {
    let h = samples as f64 / 12.0;
    if h.fract() == 0.0 {
        format!("{h:.0} h")
    } else {
        format!("{h:.1} h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_reads_in_hours() {
        assert_eq!(hours(432), "36 h");
        assert_eq!(hours(445), "37.1 h");
    }
}
