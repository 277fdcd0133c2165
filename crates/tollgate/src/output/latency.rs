//! `tollgate latency`'s text.

use api::latency::LatencyStatus;
use std::fmt::Write as _;
use std::time::Duration;

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), ms)
}

/// The status as text: alarms, probes, interfaces, then the busy
/// classes.
pub fn text(s: &LatencyStatus, stale: bool) -> String {
    let v = &s.view;
    let mut o = String::new();
    let as_of = s.as_of.strftime("%Y-%m-%d %H:%M:%S UTC");
    if stale {
        let _ = writeln!(o, "as of {as_of} (the daemon is not writing it now)");
    }
    let now = v.sampled.unwrap_or_default();
    if v.alarms.is_empty() {
        let _ = writeln!(o, "alarms: none ({} raised since start)", v.raised_total);
    } else {
        let _ = writeln!(o, "alarms ({}):", v.alarms.len());
        for a in &v.alarms {
            let since = now.saturating_sub(a.since).as_secs();
            let tenant = a.tenant.map(|t| format!(" tenant {t}")).unwrap_or_default();
            let _ = writeln!(
                o,
                "  {:<12} {}{tenant}: {} (for {since} s)",
                a.kind.as_str(),
                a.subject,
                a.message
            );
        }
    }
    if !v.probes.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<36} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
            "probe (last minute)", "p50", "min", "max", "jitter", "baseline", "loss"
        );
        for p in &v.probes {
            let f = &p.figures;
            let _ = writeln!(
                o,
                "{:<36} {:>9} {:>9} {:>9} {:>9} {:>9} {:>5.1}%",
                p.name,
                opt(f.p50),
                opt(f.min),
                opt(f.max),
                opt(f.jitter),
                opt(f.baseline),
                f.loss_percent
            );
        }
    }
    if !v.links.is_empty() {
        let _ = writeln!(o, "\ninterfaces:");
        for l in &v.links {
            let state = if l.up { "up" } else { "down" };
            let _ = writeln!(o, "  {:<16} {state:<4} idle {} s", l.name, l.idle.as_secs());
        }
    }
    if !v.tcp_rtt.is_empty() || s.rtt_entries > 0 {
        rtt(&mut o, s);
    }
    let shown = &v.classes;
    let _ = writeln!(
        o,
        "\n{} classes read; {} busy (a queue, drops, or at the ceil at the last reading){}",
        s.classes_read,
        shown.len(),
        if shown.is_empty() { "" } else { ":" }
    );
    if !shown.is_empty() {
        let _ = writeln!(
            o,
            "{:<16} {:>6} {:<22} {:>9} {:>9} {:>9} {:>7} {:>7} {:>11}",
            "class",
            "tenant",
            "realm direction",
            "delay",
            "at rate",
            "backlog",
            "drops",
            "at ceil",
            "time at ceil"
        );
        for c in shown.iter() {
            let f = &c.figures;
            let _ = writeln!(
                o,
                "{:<16} {:>6} {:<22} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} s",
                c.class,
                c.tenant.map_or_else(|| "-".into(), |t| t.to_string()),
                c.label,
                ms(f.delay),
                opt(f.delay_at_rate),
                format!("{} B", f.backlog_bytes),
                f.drops_total,
                if f.at_ceil { "yes" } else { "no" },
                f.time_at_ceil.as_secs()
            );
        }
    }
    o
}

/// The passive TCP RTT table: per tenant × realm, the minute being
/// filled and the last closed one.
fn rtt(o: &mut String, s: &LatencyStatus) {
    let v = &s.view;
    let _ = writeln!(
        o,
        "\nTCP RTT (passive): {} tenant × realm pairs{}; up = the far side, down = the tenant's side",
        s.rtt_entries,
        if v.tcp_rtt.len() < s.rtt_entries {
            format!(", the {} slowest shown", v.tcp_rtt.len())
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "{:>6} {:<12} {:<6} {:>9} {:<4} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "tenant",
        "realm",
        "minute",
        "rtt p50",
        "half",
        "samples",
        "p50",
        "p95",
        "p99",
        "max",
        "retrans"
    );
    for r in &v.tcp_rtt {
        let minutes =
            std::iter::once(("now", &r.current)).chain(r.last.as_ref().map(|l| ("last", l)));
        for (which, m) in minutes {
            for (half, f, retrans) in [
                ("up", &m.up, m.retransmits_up),
                ("down", &m.down, m.retransmits_down),
            ] {
                let _ = writeln!(
                    o,
                    "{:>6} {:<12} {:<6} {:>9} {:<4} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7}",
                    r.tenant,
                    r.realm_name,
                    which,
                    if half == "up" {
                        opt(m.rtt_p50)
                    } else {
                        String::new()
                    },
                    half,
                    f.samples,
                    opt(f.p50),
                    opt(f.p95),
                    opt(f.p99),
                    opt(f.max),
                    retrans
                );
            }
        }
    }
}

/// Stored minutes as tables: TCP RTT, probes, busy queues.
pub fn history(h: &query::latency::LatencyHistory) -> String {
    let mut o = String::new();
    let t = |ts: jiff::Timestamp| ts.strftime("%Y-%m-%d %H:%M").to_string();
    let _ = writeln!(
        o,
        "stored minutes from {} to {} UTC{}{}",
        t(h.from),
        t(h.to),
        h.tenant
            .map(|t| format!(", tenant {t}"))
            .unwrap_or_default(),
        if h.truncated {
            format!(
                " (the first {} rows of a kind shown)",
                query::latency::ROW_LIMIT
            )
        } else {
            String::new()
        }
    );
    if h.tcp_rtt.is_empty() && h.probes.is_empty() && h.queues.is_empty() {
        let _ = writeln!(
            o,
            "none: the daemon stores a minute once it ends (and the partial one when it stops), with a [latency] section; TCP RTT needs tcp_rtt = true"
        );
        return o;
    }
    if !h.tcp_rtt.is_empty() {
        let _ = writeln!(
            o,
            "\nTCP RTT (passive); up = the far side, down = the tenant's side"
        );
        let _ = writeln!(
            o,
            "{:<16} {:>6} {:<12} {:>9} {:<4} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7}",
            "minute",
            "tenant",
            "realm",
            "rtt p50",
            "half",
            "samples",
            "p50",
            "p95",
            "p99",
            "max",
            "retrans"
        );
        for r in &h.tcp_rtt {
            let m = &r.row;
            for (half, f, retrans) in [
                ("up", &m.up, m.retransmits_up),
                ("down", &m.down, m.retransmits_down),
            ] {
                let first = half == "up";
                let _ = writeln!(
                    o,
                    "{:<16} {:>6} {:<12} {:>9} {:<4} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7}",
                    if first { t(r.start) } else { String::new() },
                    if first {
                        m.tenant.to_string()
                    } else {
                        String::new()
                    },
                    if first { r.realm_name.as_str() } else { "" },
                    if first { opt(r.rtt_p50) } else { String::new() },
                    half,
                    f.samples,
                    opt(f.p50),
                    opt(f.p95),
                    opt(f.p99),
                    opt(f.max),
                    retrans
                );
            }
        }
    }
    if !h.probes.is_empty() {
        let _ = writeln!(o, "\nprobes");
        let _ = writeln!(
            o,
            "{:<16} {:<32} {:>5} {:>5} {:>9} {:>9} {:>9}",
            "minute", "probe", "sent", "lost", "p50", "max", "jitter"
        );
        for p in &h.probes {
            let r = &p.row;
            let _ = writeln!(
                o,
                "{:<16} {:<32} {:>5} {:>5} {:>9} {:>9} {:>9}",
                t(p.start),
                r.probe,
                r.sent,
                r.lost,
                opt(r.p50),
                opt(r.max),
                opt(r.jitter)
            );
        }
    }
    if !h.queues.is_empty() {
        let _ = writeln!(o, "\nbusy queues");
        let _ = writeln!(
            o,
            "{:<16} {:<14} {:>6} {:<18} {:>10} {:>7} {:>10} {:>8}",
            "minute", "class", "tenant", "label", "max delay", "drops", "overlimits", "at ceil"
        );
        for q in &h.queues {
            let r = &q.row;
            let _ = writeln!(
                o,
                "{:<16} {:<14} {:>6} {:<18} {:>10} {:>7} {:>10} {:>6} s",
                t(q.start),
                r.class,
                r.tenant
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.label,
                ms(r.max_delay),
                r.drops,
                r.overlimits,
                r.at_ceil.as_secs()
            );
        }
    }
    o
}
