//! `tollgate flows top`'s table.

use query::flows::FlowTop;
use std::fmt::Write;

/// One talker per line, the most bytes first, with its share of the
/// listed bytes.
pub fn top(t: &FlowTop) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "top {} by {} from {} to {}",
        t.talkers.len(),
        t.by.name(),
        t.from,
        t.to
    );
    if t.talkers.is_empty() {
        out.push_str("no flow records kept in this range\n");
        return out;
    }
    let total: u128 = t.talkers.iter().map(|x| x.bytes).sum();
    let width = t
        .talkers
        .iter()
        .map(|x| x.key.to_string().len())
        .max()
        .unwrap_or(0)
        .max(t.by.name().len());
    let _ = writeln!(
        out,
        "{:<width$}  {:>12}  {:>12}  {:>6}",
        t.by.name(),
        "bytes",
        "packets",
        "share"
    );
    for x in &t.talkers {
        let share = if total == 0 {
            0.0
        } else {
            x.bytes as f64 * 100.0 / total as f64
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>12}  {:>12}  {:>5.1}%",
            x.key.to_string(),
            super::bytes(x.bytes),
            super::count(x.packets),
            share
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::{FlowBy, FlowKey, Talker};

    #[test]
    fn talkers_are_listed_with_their_share() {
        let t = FlowTop {
            by: FlowBy::DstPort,
            from: "2026-12-07T07:00:00Z".parse().unwrap(),
            to: "2026-12-07T08:00:00Z".parse().unwrap(),
            talkers: vec![
                Talker {
                    key: FlowKey::Number(443),
                    bytes: 3_000_000,
                    packets: 2000,
                },
                Talker {
                    key: FlowKey::Number(53),
                    bytes: 1_000_000,
                    packets: 9000,
                },
            ],
        };
        let text = top(&t);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[2].starts_with("443 ") && lines[2].ends_with("75.0%"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("53 ") && lines[3].ends_with("25.0%"),
            "{text}"
        );
    }
}
