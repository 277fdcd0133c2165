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
    /// The transit guard's steps in force (docs/transit.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transit_steps: Vec<engine::transit_run::StepInForce>,
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
    if !s.transit_steps.is_empty() {
        let _ = writeln!(
            out,
            "transit guard steps in force (`tollgate transit`; undo with `tollgate transit relax`):"
        );
        for st in &s.transit_steps {
            let _ = writeln!(
                out,
                "  upstream {}: {}{}",
                st.upstream,
                super::transit::step(&st.step),
                if st.applied {
                    ""
                } else {
                    " (dry run: not applied)"
                }
            );
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

/// One address's rates in `top --addresses`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AddressRate {
    /// The local address.
    pub address: std::net::IpAddr,
    /// Packets per second towards it.
    pub pps_in: f64,
    /// Packets per second from it.
    pub pps_out: f64,
    /// Bits per second towards it (IP length).
    pub bps_in: f64,
    /// Bits per second from it.
    pub bps_out: f64,
    /// TCP SYN (without ACK) per second towards it.
    pub syn_in: f64,
    /// Fragments per second towards it.
    pub frag_in: f64,
}

/// The ticks' deltas as rates per address, busiest (packets either way)
/// first, at most `limit`.
pub fn address_rates(
    hosts: &[(
        std::net::IpAddr,
        bpf_classify::counters::Way,
        bpf_classify::counters::AddrCounts,
    )],
    secs: f64,
    limit: usize,
) -> Vec<AddressRate> {
    use bpf_classify::counters::Way;
    let mut by: std::collections::BTreeMap<std::net::IpAddr, AddressRate> = Default::default();
    for (addr, way, c) in hosts {
        let r = by.entry(*addr).or_insert(AddressRate {
            address: *addr,
            pps_in: 0.0,
            pps_out: 0.0,
            bps_in: 0.0,
            bps_out: 0.0,
            syn_in: 0.0,
            frag_in: 0.0,
        });
        let (pps, bps) = (c.packets as f64 / secs, c.bytes as f64 * 8.0 / secs);
        match way {
            Way::In => {
                r.pps_in = pps;
                r.bps_in = bps;
                r.syn_in = c.tcp_syn as f64 / secs;
                r.frag_in = c.fragments as f64 / secs;
            }
            Way::Out => {
                r.pps_out = pps;
                r.bps_out = bps;
            }
        }
    }
    let mut rows: Vec<AddressRate> = by.into_values().collect();
    rows.sort_by(|a, b| {
        (b.pps_in + b.pps_out)
            .total_cmp(&(a.pps_in + a.pps_out))
            .then(a.address.cmp(&b.address))
    });
    rows.truncate(limit);
    rows
}

/// `top --addresses` as a table.
pub fn top_addresses(
    rows: &[AddressRate],
    entries: usize,
    secs: f64,
    once: bool,
    clear: bool,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if clear {
        out.push_str("\x1b[H\x1b[2J");
    }
    let _ = writeln!(
        out,
        "tollgate top --addresses: {entries} counter entries, rates over {secs:.1} s{}\n{:<40} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9}",
        if once { "" } else { " (Ctrl-C quits)" },
        "address",
        "pps in",
        "pps out",
        "in",
        "out",
        "SYN/s in",
        "frag/s in"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<40} {:>10.0} {:>10.0} {:>12} {:>12} {:>9.0} {:>9.0}",
            r.address.to_string(),
            r.pps_in,
            r.pps_out,
            super::rate(r.bps_in),
            super::rate(r.bps_out),
            r.syn_in,
            r.frag_in
        );
    }
    out
}
