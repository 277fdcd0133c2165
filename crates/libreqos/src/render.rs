//! The policy as text: one `[site]`, one realm, a plan per distinct set
//! of rates, a parent per shaped node, a tenant per circuit, each with a
//! comment naming where in the source files it came from.

use crate::circuits::{Circuit, Rates};
use crate::network::Network;
use crate::Options;
use net_types::Rate;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A rate in Mbps, as LibreQoS writes it (`25`, `2.5`, `0.01`).
pub(crate) fn mbps_text(r: Rate) -> String {
    let bps = r.bps();
    let whole = bps / 1_000_000;
    let frac = bps % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:06}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// `s` as a TOML basic string, quotes included.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as a TOML key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// `s` made safe for the rest of a `#` comment line.
fn comment(s: &str) -> String {
    crate::devices::clip_long(s, 200)
}

/// The name of the plan of a set of rates: Max down x up, then Min.
pub(crate) fn plan_name(r: &Rates) -> String {
    format!(
        "{}x{}-min-{}x{}",
        mbps_text(r.down_max),
        mbps_text(r.up_max),
        mbps_text(r.down_min),
        mbps_text(r.up_min)
    )
}

/// What the policy is made of.
pub(crate) struct Parts<'a> {
    pub devices_file: &'a str,
    pub network_file: Option<&'a str>,
    pub options: &'a Options,
    pub capacity: (Rate, Rate),
    pub capacity_from_input: bool,
    pub network: Option<&'a Network>,
    pub circuits: &'a [Circuit],
    pub plans: &'a BTreeMap<Rates, String>,
    /// Lines about what was left out, put at the top.
    pub left_out: &'a [String],
}

/// Writes the policy.
pub(crate) fn policy(p: &Parts<'_>) -> String {
    let mut out = String::with_capacity(200 + p.circuits.len() * 300);
    let o = p.options;
    let sources = match p.network_file {
        Some(n) => format!("{} and {}", comment(p.devices_file), comment(n)),
        None => comment(p.devices_file),
    };
    let devices: usize = p.circuits.iter().map(|c| c.devices.len()).sum();
    let _ = writeln!(
        out,
        "# Imported from {sources} by `tollgate import libreqos`:\n\
         # {} circuits ({devices} devices) as tenants on {} plans, under {} parents.\n\
         # Min Mbps became each tenant's rate and Max Mbps its ceil. Check [site]\n\
         # before applying: `uplink` is LibreQoS's to_internet and `lan` its\n\
         # to_network (/etc/lqos.conf). docs/policy.md describes every key.",
        p.circuits.len(),
        p.plans.len(),
        p.network.map_or(0, |n| n.nodes.len()),
    );
    if !p.left_out.is_empty() {
        let _ = writeln!(out, "#\n# Left out ({}):", p.left_out.len());
        for l in p.left_out {
            let _ = writeln!(out, "#   {}", comment(l));
        }
    }
    let capacity_note = if p.capacity_from_input {
        "the largest top-level node or circuit; set what the uplink carries"
    } else {
        "as given"
    };
    let _ = writeln!(
        out,
        "\n[site]\nmode = \"router\"\nuplink = {}   # LibreQoS's to_internet\nlan = {}      # LibreQoS's to_network\ncapacity = {{ down = \"{}\", up = \"{}\" }}   # {capacity_note}\n",
        quoted(o.uplink.as_str()),
        quoted(o.lan.as_str()),
        p.capacity.0,
        p.capacity.1,
    );
    let _ = writeln!(
        out,
        "[realms]\ndefault = {}   # LibreQoS has no realms: every destination is in this one\n\n[realms.{}]\nid = 1\n",
        quoted(&o.realm),
        key(&o.realm)
    );
    for (rates, name) in p.plans {
        let _ = writeln!(
            out,
            "[plans.{}]   # Download Min/Max {}/{} Mbps, Upload Min/Max {}/{} Mbps\ndown = {{ rate = \"{}\", ceil = \"{}\" }}\nup = {{ rate = \"{}\", ceil = \"{}\" }}\n",
            quoted(name),
            mbps_text(rates.down_min),
            mbps_text(rates.down_max),
            mbps_text(rates.up_min),
            mbps_text(rates.up_max),
            rates.down_min,
            rates.down_max,
            rates.up_min,
            rates.up_max,
        );
    }
    if let Some(net) = p.network {
        let file = p.network_file.unwrap_or("network.json");
        for n in &net.nodes {
            let place = match n.line {
                Some(l) => format!("{}:{l}", comment(file)),
                None => comment(file),
            };
            let kind = if n.kind.is_empty() {
                String::new()
            } else {
                format!(" ({})", comment(&n.kind))
            };
            let _ = writeln!(
                out,
                "# {place}: node {}{kind}, {}/{} Mbps\n[[parents]]\nname = {}\nid = {}",
                comment(&n.name),
                mbps_text(n.down),
                mbps_text(n.up),
                quoted(&n.name),
                n.id
            );
            if let Some(up) = n.parent {
                let _ = writeln!(out, "parent = {}", quoted(&net.nodes[up].name));
            }
            let _ = writeln!(
                out,
                "down = {{ rate = \"{0}\", ceil = \"{0}\" }}\nup = {{ rate = \"{1}\", ceil = \"{1}\" }}\n",
                n.down, n.up
            );
        }
    }
    for c in p.circuits {
        tenant(&mut out, p, c);
    }
    out
}

fn tenant(out: &mut String, p: &Parts<'_>, c: &Circuit) {
    let (first, last) = c.lines();
    let lines = if first == last {
        format!("{first}")
    } else {
        format!("{first}-{last}")
    };
    let _ = writeln!(
        out,
        "# {}:{lines}: circuit {} {}",
        comment(p.devices_file),
        comment(&c.circuit_id),
        comment(&c.circuit_name)
    );
    for (row, _) in &c.devices {
        let mut about = format!("#   line {}: device", row.line);
        for (label, v) in [
            ("", &row.device_id),
            ("", &row.device_name),
            ("MAC ", &row.mac),
            ("anchor ", &row.anchor_node_id),
        ] {
            if !v.is_empty() {
                let _ = write!(about, " {label}{}", comment(v));
            }
        }
        if !row.comment.is_empty() {
            let _ = write!(about, "; {}", comment(&row.comment));
        }
        let _ = writeln!(out, "{about}");
    }
    let _ = writeln!(
        out,
        "[[tenants]]\nid = {}\nname = {}\nplan = {}",
        c.tenant_id,
        quoted(&c.name),
        quoted(&p.plans[&c.rates])
    );
    if let (Some(up), Some(net)) = (c.parent, p.network) {
        let _ = writeln!(out, "parent = {}", quoted(&net.nodes[up].name));
    }
    out.push_str("prefixes = [");
    let mut firstp = true;
    for (_, prefixes) in &c.devices {
        for pfx in prefixes {
            if !firstp {
                out.push_str(", ");
            }
            firstp = false;
            let _ = write!(out, "\"{pfx}\"");
        }
    }
    out.push_str("]\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbps_text_is_the_shortest_exact_decimal() {
        let r = |bps| Rate::from_bps(bps).unwrap();
        assert_eq!(mbps_text(r(25_000_000)), "25");
        assert_eq!(mbps_text(r(2_500_000)), "2.5");
        assert_eq!(mbps_text(r(10_000)), "0.01");
        assert_eq!(mbps_text(r(1)), "0.000001");
    }

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(quoted("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
