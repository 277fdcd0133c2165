//! `tollgate guard`'s texts: the JSON report a notify script reads
//! on stdin, the numbers its arguments carry, and `guard status`.

use guard::{Step, Target};
use serde::Serialize;

/// What a notify script gets on stdin: the FastNetMon-style arguments
/// again, the rung's prefixes and the attack report as the detector keeps
/// it (`attack.kind.kind` is `syn_flood`, `udp_flood`, `amplification`…).
#[derive(Serialize)]
struct NotifyReport<'a> {
    ip: String,
    direction: &'static str,
    action: &'a str,
    pps: u64,
    attack_type: String,
    prefixes: Vec<String>,
    attack: &'a guard::AttackReport,
}

/// The address (or `group NAME`) a script's first argument names.
pub fn target_arg(target: &Target) -> String {
    match target {
        Target::Host(a) => a.to_string(),
        Target::Group(g) => g.clone(),
    }
}

/// The packets per second a script's third argument gives: the highest
/// one-tick rate seen, or the rate that fired before one was measured.
pub fn attack_pps(step: &Step) -> u64 {
    if step.attack.peak_pps > 0 {
        step.attack.peak_pps
    } else {
        step.attack.trigger.rate
    }
}

/// The JSON a notify script reads on stdin, one line.
pub fn notify_json(step: &Step, action: &str) -> Vec<u8> {
    let r = NotifyReport {
        ip: target_arg(&step.target),
        direction: step.direction.as_script_word(),
        action,
        pps: attack_pps(step),
        attack_type: step.attack.kind.to_string(),
        prefixes: step.prefixes.iter().map(|p| p.to_string()).collect(),
        attack: &step.attack,
    };
    let mut v = serde_json::to_vec(&r).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Left-aligned columns two spaces apart, the header first; the last
/// column is not padded.
fn columns<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    use std::fmt::Write as _;
    let mut widths = head.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; N]| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(*head);
    for r in rows {
        line(r.each_ref().map(String::as_str));
    }
    out
}

/// `tollgate guard history` for people: one line per ended attack.
pub fn history_text(records: &[api::guard::AttackRecord], total: usize) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    if records.is_empty() {
        let _ = writeln!(o, "no attack recorded");
        return o;
    }
    let field = |r: &api::guard::AttackRecord, k: &str| {
        r.report.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
    };
    // The busiest source and how many more the report names.
    let sources = |r: &api::guard::AttackRecord| {
        let list = r.report.get("top_sources").and_then(|v| v.as_array());
        match list.map(|l| (l.first(), l.len())) {
            Some((Some(first), n)) => {
                let addr = first.get("addr").and_then(|a| a.as_str()).unwrap_or("?");
                if n > 1 {
                    format!("{addr} +{}", n - 1)
                } else {
                    addr.to_string()
                }
            }
            _ => "-".to_string(),
        }
    };
    let rows: Vec<[String; 10]> = records
        .iter()
        .map(|r| {
            [
                r.recorded_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                r.target.clone(),
                r.direction.clone(),
                r.attack.clone(),
                super::count(field(r, "peak_pps")),
                super::rate(field(r, "peak_bps") as f64),
                super::count(field(r, "packets")),
                format!("{:.0}s", r.duration_s),
                sources(r),
                r.rungs.join(","),
            ]
        })
        .collect();
    let head = [
        "ENDED (UTC)",
        "TARGET",
        "DIR",
        "ATTACK",
        "PEAK PPS",
        "PEAK BPS",
        "PACKETS",
        "LASTED",
        "TOP SOURCES",
        "RUNGS",
    ];
    o.push_str(&columns(&head, &rows));
    if total > records.len() {
        let _ = writeln!(
            o,
            "the latest {} of {total} attacks (--last N for more)",
            records.len()
        );
    }
    o
}

/// `tollgate guard status` for people: one line per incident, then the
/// counts.
pub fn status_text(s: &api::guard::GuardStatus, stale: bool) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let as_of = s.as_of.strftime("%Y-%m-%d %H:%M:%S UTC");
    if stale {
        let _ = writeln!(o, "as of {as_of} (the daemon is not writing it now)");
    }
    let capture = if s.capturing {
        let also = match s.source.ends_with("+flows") {
            true => ", and reading the flow collector's records",
            false => "",
        };
        match s.source.as_str() {
            "flows" => "reading the flow collector's records".to_string(),
            "ebpf" | "ebpf+flows" => format!("counting in the eBPF classifier{also}"),
            _ => format!("capturing on {}{also}", s.interfaces.join(", ")),
        }
    } else {
        match &s.capture_error {
            Some(e) => format!("NOT capturing: {e}"),
            None => "NOT capturing: [guard.capture] names no interface".to_string(),
        }
    };
    let _ = writeln!(o, "guard: {capture}; protecting {}", s.networks.join(", "));
    if s.incidents.is_empty() {
        let _ = writeln!(o, "no open incident");
    } else {
        let rows: Vec<[String; 8]> = s
            .incidents
            .iter()
            .map(|i| {
                [
                    i.target.clone(),
                    i.direction.clone(),
                    i.attack_type.clone(),
                    super::count(i.peak_pps),
                    super::rate(i.peak_bps as f64),
                    i.rung.clone().unwrap_or_else(|| "-".into()),
                    i.since.strftime("%H:%M:%S").to_string(),
                    match i.hold_left_s {
                        None => "permanent".into(),
                        Some(h) => format!("{h:.0}s"),
                    },
                ]
            })
            .collect();
        let head = [
            "TARGET",
            "DIR",
            "ATTACK",
            "PEAK PPS",
            "PEAK BPS",
            "RUNG",
            "SINCE",
            "HOLD LEFT",
        ];
        o.push_str(&columns(&head, &rows));
    }
    let t = &s.stats;
    let _ = writeln!(
        o,
        "{} ticks; {} addresses tracked; {} overflow, {} evicted; capture: {} frames, {} dropped by the kernel, {} malformed",
        t.ticks, t.hosts, t.overflow, t.evicted, t.frames, t.capture_drops, t.malformed
    );
    if s.source.ends_with("flows") {
        let _ = writeln!(
            o,
            "flow records: {} taken, {} dropped (tap queue full), {} beyond the addresses followed",
            t.flow_records, t.flow_dropped, t.flow_overflow
        );
    }
    if !s.scans.is_empty() {
        let _ = writeln!(
            o,
            "scans (sources reaching {}+ of our addresses in 10 s), the most recent first:",
            s.scan_targets
        );
        let rows: Vec<[String; 5]> = s
            .scans
            .iter()
            .map(|x| {
                [
                    x.source.to_string(),
                    super::count(x.max_targets),
                    super::count(x.packets),
                    x.first_seen.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                    x.last_seen.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                ]
            })
            .collect();
        o.push_str(&columns(
            &["SOURCE", "ADDRESSES", "PACKETS", "FIRST SEEN", "LAST SEEN"],
            &rows,
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::guard::{GuardStats, GuardStatus, Incident, RungState, Trigger};

    fn incident(target: &str, hold_left_s: Option<f64>) -> Incident {
        Incident {
            target: target.into(),
            target_kind: "address".into(),
            group: "global".into(),
            direction: "in".into(),
            attack_type: "SYN flood".into(),
            attack: "syn_flood".into(),
            trigger: Trigger {
                check: "instant".into(),
                metric: "pps".into(),
                rate: 20_000,
                threshold: 2_000,
            },
            peak_pps: 21_500,
            peak_bps: 10_320_000,
            packets: 100_000,
            rung: Some("blackhole".into()),
            rungs: vec![RungState {
                rung: "blackhole".into(),
                for_s: 3.0,
                hold_left_s: 57.0,
            }],
            since: "2026-12-06T12:00:01Z".parse().unwrap(),
            hold: if hold_left_s.is_some() {
                "auto"
            } else {
                "permanent"
            }
            .into(),
            hold_left_s,
            calm_for_s: None,
        }
    }

    #[test]
    fn status_lines_up_its_columns_and_says_permanent() {
        let s = GuardStatus {
            as_of: "2026-12-06T12:00:04Z".parse().unwrap(),
            capturing: true,
            capture_error: None,
            interfaces: vec!["wan0".into()],
            source: "af_packet".into(),
            networks: vec!["203.0.113.0/24".into()],
            incidents: vec![
                incident("203.0.113.10", Some(56.6)),
                incident("2001:db8::7", None),
            ],
            stats: GuardStats {
                ticks: 40,
                ..GuardStats::default()
            },
            scans: vec![api::guard::ScanSource {
                source: "198.51.100.66".parse().unwrap(),
                first_seen: "2026-11-20T03:00:10Z".parse().unwrap(),
                last_seen: "2026-12-06T11:59:50Z".parse().unwrap(),
                windows: 3,
                max_targets: 250,
                packets: 1_200,
            }],
            scan_targets: 64,
        };
        let text = status_text(&s, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "guard: capturing on wan0; protecting 203.0.113.0/24"
        );
        assert_eq!(
            lines[1],
            "TARGET        DIR  ATTACK     PEAK PPS  PEAK BPS   RUNG       SINCE     HOLD LEFT"
        );
        assert_eq!(
            lines[2],
            "203.0.113.10  in   SYN flood  21.5k     10.32Mbit  blackhole  12:00:01  57s"
        );
        assert!(lines[3].ends_with("  permanent"), "{text}");
        assert!(lines[4].starts_with("40 ticks;"), "{text}");
        assert_eq!(
            lines[5],
            "scans (sources reaching 64+ of our addresses in 10 s), the most recent first:"
        );
        assert_eq!(
            lines[7],
            "198.51.100.66  250        1200     2026-11-20 03:00:10  2026-12-06 11:59:50"
        );
        // A stale file says so first.
        assert!(status_text(&s, true).starts_with("as of 2026-12-06 12:00:04 UTC"));
        let idle = GuardStatus {
            incidents: Vec::new(),
            capturing: false,
            capture_error: Some("no such device".into()),
            ..s
        };
        let text = status_text(&idle, false);
        assert!(text.contains("NOT capturing: no such device"), "{text}");
        assert!(text.contains("no open incident"), "{text}");
        let flows = GuardStatus {
            source: "flows".into(),
            interfaces: Vec::new(),
            stats: GuardStats {
                flow_records: 120,
                flow_dropped: 3,
                ..GuardStats::default()
            },
            ..idle
        };
        let flows = GuardStatus {
            capturing: true,
            capture_error: None,
            ..flows
        };
        let text = status_text(&flows, false);
        assert!(
            text.starts_with("guard: reading the flow collector's records;"),
            "{text}"
        );
        assert!(
            text.contains("flow records: 120 taken, 3 dropped (tap queue full), 0 beyond the addresses followed"),
            "{text}"
        );
    }
}
