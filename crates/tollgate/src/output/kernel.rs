//! How the live kernel's state is shown: change sets, apply reports, and
//! `status`.

use super::Format;
use crate::error::Result;
use engine::records::Move;
use linux_dataplane::ApplyReport;
use plan::ChangeSet;
use query::rates::ClassRow;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// A change set in `format`.
pub fn changes(changes: &ChangeSet, format: Format) -> Result<String> {
    Ok(match format {
        Format::Tc => plan::render::changes_tc(changes),
        Format::Nft => plan::render::changes_nft(changes),
        Format::Json => super::json_pretty(changes)?,
        Format::Text => plan::render::changes_text(changes),
    })
}

/// One line about an apply, with a line per failed change.
pub fn apply_summary(r: &ApplyReport) -> String {
    let mut s = format!(
        "applied {} changes in {:.1} ms",
        r.applied,
        r.elapsed.as_secs_f64() * 1e3
    );
    if !r.drained.is_zero() {
        let _ = write!(
            s,
            " ({:.1} ms waiting for queues to drain)",
            r.drained.as_secs_f64() * 1e3
        );
    }
    for f in &r.failed {
        let _ = write!(s, "\n  failed: {}: {}", f.object, f.message);
    }
    for k in &r.kept {
        let _ = write!(s, "\n  kept: {k}");
    }
    if !r.failed.is_empty() {
        s.push_str("\n  hint: the next `tollgate apply` (or reconcile round) retries what failed");
    }
    s
}

/// One apply round as a JSON line.
pub fn apply_json(changes: usize, r: &ApplyReport, round: Duration) -> Result<String> {
    let failed: Vec<_> = r
        .failed
        .iter()
        .map(|f| serde_json::json!({"object": f.object, "error": f.message}))
        .collect();
    super::json_line(&serde_json::json!({
        "changes": changes,
        "applied": r.applied,
        "failed": failed,
        "apply_ms": r.elapsed.as_secs_f64() * 1e3,
        "round_ms": round.as_secs_f64() * 1e3,
    }))
}

/// Everything `tollgate status` shows.
#[derive(Serialize)]
pub struct Status {
    /// Changes `apply` would make now.
    pub pending_changes: usize,
    /// The tenants' classes with their rates.
    pub classes: Vec<ClassRow>,
    /// Tenants the daemon moved into the overage plan.
    pub overage: Vec<Move>,
    /// Interfaces taken offline by `hook vif offline`.
    pub offline_interfaces: Vec<String>,
    /// Why the saved routes table cannot be read, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes_error: Option<String>,
    /// Tenants in the policy.
    #[serde(skip)]
    pub tenants: usize,
    /// Latency alarms raised now, as the running daemon last published
    /// them (none without `[latency]` or a running daemon).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_alarms: Vec<latency::Alarm>,
}

/// `status` as text.
pub fn status_text(s: &Status) -> String {
    let mut out = format!(
        "{} tenants; the kernel {}\n{:<6} {:<12} {:<5} {:<14} {:>10} {:>10} {:>12}\n",
        s.tenants,
        if s.pending_changes == 0 {
            "matches the policy".to_string()
        } else {
            format!(
                "differs from the policy by {} changes (run `tollgate apply`)",
                s.pending_changes
            )
        },
        "id",
        "name",
        "dir",
        "realm",
        "rate",
        "ceil",
        "now"
    );
    for r in &s.classes {
        let _ = writeln!(
            out,
            "{:<6} {:<12} {:<5} {:<14} {:>10} {:>10} {:>12}{}",
            r.tenant,
            r.name,
            r.direction.unwrap_or(""),
            r.realm.as_deref().unwrap_or("(all)"),
            r.rate,
            r.ceil,
            super::rate(r.bits_per_second),
            if r.present { "" } else { "  (missing)" }
        );
    }
    for i in &s.offline_interfaces {
        let _ = writeln!(
            out,
            "interface {i} is offline (`hook vif offline`): not shaped until `hook vif online {i}` or until it is recreated"
        );
    }
    if let Some(e) = &s.routes_error {
        let _ = writeln!(out, "routes table: {e}");
    }
    if !s.overage.is_empty() {
        let _ = writeln!(out, "in the overage plan (moved by the daemon):");
        for m in &s.overage {
            out.push_str("  ");
            out.push_str(&super::history::overage_move(m));
        }
    }
    if !s.latency_alarms.is_empty() {
        let _ = writeln!(out, "latency alarms (`tollgate latency` for the figures):");
        for a in &s.latency_alarms {
            let _ = writeln!(out, "  {} {}: {}", a.kind.as_str(), a.subject, a.message);
        }
    }
    out
}
