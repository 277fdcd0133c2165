//! How the history is shown: `usage`, `realms`, `bill`, `top` and the
//! overage moves.

use super::{bytes, count, csv_field, rate};
use engine::records::Move;
use query::bills::{Billed, BillsAnswer};
use query::rates::TenantRate;
use query::usage::{RealmsReport, Traffic, UsageReport};
use std::fmt::Write as _;

/// `usage` as text: per tenant, a row per day and realm, then totals.
pub fn usage(r: &UsageReport) -> String {
    let mut out = format!(
        "{} [{} .. {}), days in {}\n",
        r.range.label, r.range.from, r.range.to, r.range.zone
    );
    if r.tenants.is_empty() {
        out.push_str("no traffic recorded in this range\n");
    }
    let row = |out: &mut String, when: &str, realm: &str, v: &Traffic| {
        let _ = writeln!(
            out,
            "  {when:<11} {realm:<16} {:>12} {:>12} {:>12}",
            bytes(v.down_bytes),
            bytes(v.up_bytes),
            bytes(v.bytes())
        );
    };
    for t in &r.tenants {
        let _ = writeln!(
            out,
            "\n{} (tenant {})\n  {:<11} {:<16} {:>12} {:>12} {:>12}",
            t.name, t.tenant, "day", "realm", "down", "up", "total"
        );
        for d in &t.days {
            row(&mut out, &d.day, &d.realm_name, &d.traffic);
        }
        let _ = writeln!(out, "  {}", "-".repeat(66));
        for s in &t.totals {
            row(&mut out, "total", &s.realm_name, &s.traffic);
        }
        row(&mut out, "total", "(all realms)", &t.all());
    }
    out
}

/// `realms` as text, like rtacct.
pub fn realms(r: &RealmsReport) -> String {
    let mut out = format!(
        "{} [{} .. {}); \"to\" is tenants' traffic toward the realm (up), \"from\" toward the tenants (down)\n{:<16} {:>6} {:>12} {:>10} {:>12} {:>10}\n",
        r.range.label, r.range.from, r.range.to, "realm", "id", "bytes to", "pkts to", "bytes from", "pkts from"
    );
    for v in &r.realms {
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>12} {:>10} {:>12} {:>10}",
            v.name,
            v.realm,
            bytes(v.bytes_to),
            count(v.packets_to),
            bytes(v.bytes_from),
            count(v.packets_from)
        );
    }
    if r.realms.is_empty() {
        out.push_str("no traffic recorded in this range\n");
    }
    out
}

/// The bills as text. `cycle` describes the billing cycle; realms are named
/// from `policy` when there is one.
pub fn bills(
    a: &BillsAnswer,
    shown: &[&Billed],
    cycle: &str,
    policy: Option<&policy::Policy>,
) -> String {
    let realm = |r: net_types::RealmId| {
        policy
            .and_then(|p| p.realms.by_id(r))
            .map(|x| x.name.clone())
    };
    let p = &a.bills.period;
    let mut out = format!(
        "bills for period {} [{} .. {}), {} ({} expected 5-minute samples; {})\n",
        p.label,
        p.start,
        p.end,
        cycle,
        p.expected_samples(),
        a.standing
    );
    for b in shown {
        let _ = write!(out, "\n{} ", b.name);
        out.push_str(&b.bill.to_text_named(&realm));
        for l in &b.bill.lines {
            let v = &l.volume;
            let _ = writeln!(
                out,
                "    ({}: {} down, {} up)",
                l.name,
                bytes(v.down.bytes()),
                bytes(v.up.bytes())
            );
        }
    }
    out
}

/// The bills as CSV: one row per tenant and charge line.
pub fn bills_csv(bills: &[&Billed]) -> String {
    let mut out = String::from(
        "period,tenant,name,charge,percentile,method,rank_rule,billed_bps,billed_rank,ranked_samples,expected,seen,missing,estimated,partial,commit_bps,over_bps,over_percent,volume_bytes,down_bytes,up_bytes,quota_bytes,over_quota_bytes\n",
    );
    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or(String::new(), |v| v.to_string())
    }
    for b in bills {
        for l in &b.bill.lines {
            let f = l.percentile.as_ref();
            let c = f.map_or(l.volume.coverage, |f| f.coverage);
            let v = &l.volume;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                b.bill.period.label,
                b.bill.tenant,
                csv_field(&b.name),
                csv_field(&l.name),
                opt(f.map(|f| u64::from(f.rule.percentile.get()))),
                f.map_or(String::new(), |f| f.rule.method.to_string()),
                f.map_or(String::new(), |f| f.rule.rank.to_string()),
                opt(f.map(|f| f.rate().bps())),
                opt(f.and_then(|f| f.value).map(|v| v.rank as u64)),
                opt(f.and_then(|f| f.value).map(|v| v.of as u64)),
                c.expected,
                c.seen,
                c.missing,
                c.estimated,
                c.partial,
                opt(l.overage.map(|o| o.commit.bps())),
                opt(l.overage.map(|o| o.over.bps())),
                l.overage
                    .map_or(String::new(), |o| format!("{:.2}", o.over_percent)),
                v.used.bytes(),
                v.down.bytes(),
                v.up.bytes(),
                opt(v.quota.map(|q| q.bytes())),
                opt(v.over.map(|o| o.bytes())),
            );
        }
    }
    out
}

/// One `top` frame as text; `clear` starts it with a clear-screen.
pub fn top(rows: &[TenantRate], tenants: usize, secs: f64, once: bool, clear: bool) -> String {
    let mut out = String::new();
    if clear {
        out.push_str("\x1b[H\x1b[2J");
    }
    let _ = writeln!(
        out,
        "tollgate top: {tenants} tenants, rates over {secs:.1} s{}\n{:<7} {:<16} {:<16} {:>12} {:>12}",
        if once { "" } else { " (Ctrl-C quits)" },
        "id",
        "tenant",
        "realm",
        "down",
        "up"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<7} {:<16} {:<16} {:>12} {:>12}",
            r.tenant,
            r.name,
            r.realm_name,
            rate(r.down_bps),
            rate(r.up_bps)
        );
    }
    out
}

/// One line about an overage move.
pub fn overage_move(m: &Move) -> String {
    use billing::Decision;
    let why = match &m.decision {
        Decision::MoveCertain { floor, commit } => {
            format!("its 95th cannot end below {floor}, over its commit {commit}")
        }
        Decision::MoveProjectedRate {
            projected,
            threshold,
        } => format!("projected percentile {projected} above {threshold} (commit + margin)"),
        Decision::MoveProjectedVolume {
            projected,
            threshold,
        } => format!(
            "projected volume {} above {} (quota + margin)",
            bytes(projected.bytes()),
            bytes(threshold.bytes())
        ),
        Decision::StayTooEarly { elapsed, needed } => {
            format!("too early to project ({elapsed} of {needed} samples)")
        }
        Decision::Stay => "within its commit and quota".to_string(),
    };
    format!(
        "{} (tenant {}): plan `{}` → `{}` since {} for period {}: {why}\n",
        m.name, m.tenant, m.from_plan, m.to_plan, m.moved_at, m.period
    )
}
