//! What `tollgate import` prints: the report's diagnostics (stderr), a
//! summary, and the report as JSON.

use crate::error::Result;
use libreqos::{Report, Severity};
use std::path::Path;

/// Every diagnostic, `file:line: severity: message` and its hint.
pub fn diagnostics(report: &Report) {
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
}

fn counts(report: &Report) -> String {
    let mut parts = Vec::new();
    for (s, word) in [
        (Severity::Error, "error"),
        (Severity::Warning, "warning"),
        (Severity::Note, "note"),
    ] {
        let n = report.count(s);
        if n > 0 {
            parts.push(format!("{n} {word}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() {
        "nothing to report".into()
    } else {
        parts.join(", ")
    }
}

/// The one line after a policy was written (stderr, so that standard
/// output stays the policy).
pub fn summary(report: &Report, output: &str) {
    eprintln!(
        "imported {} of {} rows: {} tenants ({} devices) on {} plans under {} parents → {output}; {}",
        report.rows - report.rows_skipped,
        report.rows,
        report.tenants,
        report.devices,
        report.plans,
        report.parents,
        counts(report)
    );
}

/// Why nothing was written.
pub fn refused(report: &Report) -> String {
    if report.rows_skipped == 0 {
        // Nothing wrong with a row: the file as a whole (no header, bad
        // JSON) or the policy it makes (a kernel limit).
        format!(
            "nothing was imported ({}); nothing was written",
            counts(report)
        )
    } else {
        format!(
            "{} of {} rows cannot be imported ({}); nothing was written",
            report.rows_skipped,
            report.rows,
            counts(report)
        )
    }
}

/// The report as JSON, with where the policy was written (`null`: not
/// written).
pub fn json(report: &Report, written: Option<&Path>) -> Result<String> {
    let diagnostics: Vec<_> = report
        .diagnostics
        .iter()
        .map(|d| {
            serde_json::json!({
                "severity": d.severity.as_str(),
                "file": d.file,
                "line": d.line,
                "message": d.message,
                "hint": d.hint,
            })
        })
        .collect();
    super::json_pretty(&serde_json::json!({
        "written": written.map(|p| p.display().to_string()),
        "rows": report.rows,
        "rows_skipped": report.rows_skipped,
        "tenants": report.tenants,
        "devices": report.devices,
        "plans": report.plans,
        "parents": report.parents,
        "errors": report.count(Severity::Error),
        "warnings": report.count(Severity::Warning),
        "notes": report.count(Severity::Note),
        "diagnostics": diagnostics,
    }))
}
