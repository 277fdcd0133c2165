//! How the lab's measurements are shown.

use crate::error::Result;
use lab::Measurement;
use std::fmt::Write as _;

/// The measurements as JSON.
pub fn traffic_json(ms: &[Measurement]) -> Result<String> {
    let rows: Vec<_> = ms
        .iter()
        .map(|m| {
            serde_json::json!({
                "tenant": m.tenant, "name": m.tenant_name, "realm": m.realm,
                "direction": m.direction.as_str(), "server": m.server.to_string(),
                "mbit": m.mbit, "ceil_mbit": m.expected_ceil_mbit,
            })
        })
        .collect();
    super::json_pretty(&rows)
}

/// The measurements as a table, each against its ceil.
pub fn traffic_text(ms: &[Measurement]) -> String {
    let mut out = format!(
        "{:<10} {:<14} {:<5} {:<18} {:>10} {:>10} {:>8}\n",
        "tenant", "realm", "dir", "server", "measured", "ceil", "of ceil"
    );
    for m in ms {
        let ceil = m.expected_ceil_mbit;
        let _ = writeln!(
            out,
            "{:<10} {:<14} {:<5} {:<18} {:>10} {:>10} {:>8}",
            m.tenant_name,
            m.realm,
            m.direction.as_str(),
            m.server.to_string(),
            format!("{:.2}Mbit", m.mbit),
            ceil.map_or("-".into(), |c| format!("{c:.2}Mbit")),
            ceil.map_or("-".into(), |c| format!("{:.0}%", 100.0 * m.mbit / c)),
        );
    }
    out.push_str("iperf3 counts TCP payload; HTB counts whole frames, so about 95% of a ceil is the most a TCP flow can show.\n");
    out
}
