//! Devices into circuits, circuits into tenants.
//!
//! - Rows with one Circuit ID are the devices of one circuit: one tenant
//!   with every device's addresses. The circuit's rates, name and parent
//!   are its first row's; a later row that says otherwise is reported.
//! - Download/Upload Min Mbps become the tenant's rate, Max its ceil
//!   (through a plan per distinct set of the four).
//! - A circuit goes under the parent its Parent Node ID or Parent Node
//!   names; one naming a node network.json lacks is left out.
//! - Every address belongs to one tenant: a device whose address overlaps
//!   an earlier circuit's is left out, naming both lines; an address a
//!   circuit already holds is dropped from the later device.
//! - A circuit whose Max exceeds its parent's bandwidth is capped there.
//! - Tenant ids are the Circuit IDs where those are whole numbers
//!   1–4294967295; other circuits are numbered after the largest, in file
//!   order. Names are the Circuit Names where tollgate can use them.

use crate::devices::{clip, Row};
use crate::network::{Network, Placement};
use crate::report::{Diagnostic, Report, Severity};
use net_types::{Prefix, Rate};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Four rates: what makes a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Rates {
    pub down_min: Rate,
    pub down_max: Rate,
    pub up_min: Rate,
    pub up_max: Rate,
}

impl Rates {
    fn of(r: &Row) -> Rates {
        Rates {
            down_min: r.down_min,
            down_max: r.down_max,
            up_min: r.up_min,
            up_max: r.up_max,
        }
    }

    /// Capped at a parent's bandwidth: ceil at most the bandwidth, rate at
    /// most the ceil.
    fn capped(self, down: Rate, up: Rate) -> Rates {
        let down_max = self.down_max.min(down);
        let up_max = self.up_max.min(up);
        Rates {
            down_min: self.down_min.min(down_max),
            down_max,
            up_min: self.up_min.min(up_max),
            up_max,
        }
    }
}

/// One circuit, as it goes into the policy.
#[derive(Clone, Debug)]
pub(crate) struct Circuit {
    pub circuit_id: String,
    pub circuit_name: String,
    pub tenant_id: u32,
    pub name: String,
    pub rates: Rates,
    /// Its parent, an index into the network's nodes.
    pub parent: Option<usize>,
    /// The devices imported, each with the addresses it kept.
    pub devices: Vec<(Row, Vec<Prefix>)>,
}

impl Circuit {
    pub fn lines(&self) -> (usize, usize) {
        let first = self.devices.first().map_or(0, |d| d.0.line);
        let last = self.devices.last().map_or(0, |d| d.0.line);
        (first, last)
    }
}

/// Addresses taken so far, as disjoint ranges per family.
#[derive(Default)]
struct Taken {
    ranges: BTreeMap<(bool, u128), Holder>,
}

#[derive(Clone, Copy)]
struct Holder {
    end: u128,
    circuit: usize,
    line: usize,
    prefix: Prefix,
}

impl Taken {
    /// A range already taken that `p` overlaps, if any. The ranges are
    /// disjoint, so the one starting at or before `p` and the first one
    /// after are the only candidates.
    fn overlap(&self, p: Prefix) -> Option<Holder> {
        let fam = !p.is_ipv4();
        let (start, end) = (p.start_bits(), p.end_bits());
        if let Some((k, h)) = self.ranges.range(..=(fam, start)).next_back() {
            if k.0 == fam && h.end >= start {
                return Some(*h);
            }
        }
        if let Some((k, h)) = self.ranges.range((fam, start)..).next() {
            if k.0 == fam && k.1 <= end {
                return Some(*h);
            }
        }
        None
    }
}

/// Groups rows into circuits, places them, checks their addresses and
/// names them. Rows and circuits left out are reported.
pub(crate) fn build(
    file: &str,
    rows: Vec<Row>,
    network: Option<&Network>,
    report: &mut Report,
) -> Vec<Circuit> {
    // Group, in order of first appearance.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for r in rows {
        match index.get(&r.circuit_id) {
            Some(&i) => {
                let first = &groups[i][0];
                if Rates::of(first) != Rates::of(&r) {
                    report.push(
                        Diagnostic::new(
                            Severity::Warning,
                            file,
                            Some(r.line),
                            format!(
                                "circuit `{}`'s rates here differ from its first row's (line {}); the first row's are used",
                                clip(&r.circuit_id),
                                first.line
                            ),
                            )
                        .hint("a circuit's rows are its devices; give them the same four rates"),
                    );
                }
                if (&first.parent_node, &first.parent_node_id)
                    != (&r.parent_node, &r.parent_node_id)
                {
                    report.push(
                        Diagnostic::new(
                            Severity::Warning,
                            file,
                            Some(r.line),
                            format!(
                                "circuit `{}`'s parent node here differs from its first row's (line {}); the first row's is used",
                                clip(&r.circuit_id),
                                first.line
                            ),
                        )
                        .hint("a circuit sits under one node; give its rows the same Parent Node"),
                    );
                }
                groups[i].push(r);
            }
            None => {
                index.insert(r.circuit_id.clone(), groups.len());
                groups.push(vec![r]);
            }
        }
    }
    drop(index);

    // Place each circuit.
    let mut placed: Vec<(Vec<Row>, Option<usize>)> = Vec::with_capacity(groups.len());
    let mut parent_without_network: Option<(usize, usize)> = None;
    for g in groups {
        let first = &g[0];
        let parent = match network {
            None => {
                if !first.parent_node.is_empty() || !first.parent_node_id.is_empty() {
                    let e = parent_without_network.get_or_insert((0, first.line));
                    e.0 += 1;
                }
                None
            }
            Some(net) => match net.place(&first.parent_node_id, &first.parent_node) {
                Placement::Under(p) => p,
                Placement::Unknown => {
                    let wanted = if first.parent_node.is_empty() {
                        format!("Parent Node ID `{}`", clip(&first.parent_node_id))
                    } else {
                        format!("Parent Node `{}`", clip(&first.parent_node))
                    };
                    let hint = match closest(&first.parent_node, net.names()) {
                        Some(c) => format!("did you mean `{c}`? Node names are matched exactly"),
                        None => "add the node to network.json, or empty the circuit's Parent Node to put it at the top".into(),
                    };
                    report.push(
                        Diagnostic::new(
                            Severity::Error,
                            file,
                            Some(first.line),
                            format!(
                                "circuit `{}` names {wanted}, which network.json does not have; the circuit ({} row{}) is left out",
                                clip(&first.circuit_id),
                                g.len(),
                                if g.len() == 1 { "" } else { "s" }
                            ),
                        )
                        .hint(hint),
                    );
                    report.rows_skipped += g.len();
                    continue;
                }
            },
        };
        placed.push((g, parent));
    }
    if let Some((n, line)) = parent_without_network {
        report.push(
            Diagnostic::new(
                Severity::Warning,
                file,
                Some(line),
                format!("{n} circuit{} name a parent node, but no network.json was given; every circuit is put at the top", if n == 1 { "" } else { "s" }),
            )
            .hint("pass network.json after ShapedDevices.csv to import the nodes as parents"),
        );
    }

    // Addresses: every one belongs to one circuit.
    let mut taken = Taken::default();
    let mut circuits: Vec<Circuit> = Vec::with_capacity(placed.len());
    for (g, parent) in placed {
        let ci = circuits.len();
        let first_line = g[0].line;
        let rates = Rates::of(&g[0]);
        let circuit_id = g[0].circuit_id.clone();
        let circuit_name = g[0].circuit_name.clone();
        let rows = g.len();
        let mut devices = Vec::with_capacity(g.len());
        'device: for row in g {
            let mut kept: Vec<Prefix> = Vec::with_capacity(row.prefixes.len());
            let mut added: Vec<(bool, u128)> = Vec::new();
            for &p in &row.prefixes {
                match taken.overlap(p) {
                    None => {
                        let key = (!p.is_ipv4(), p.start_bits());
                        taken.ranges.insert(
                            key,
                            Holder {
                                end: p.end_bits(),
                                circuit: ci,
                                line: row.line,
                                prefix: p,
                            },
                        );
                        added.push(key);
                        kept.push(p);
                    }
                    Some(h)
                        if h.circuit == ci
                            && h.prefix.start_bits() <= p.start_bits()
                            && p.end_bits() <= h.end =>
                    {
                        report.push(
                            Diagnostic::new(
                                Severity::Warning,
                                file,
                                Some(row.line),
                                format!(
                                    "{p} is already the circuit's, in {} on line {}; not repeated",
                                    h.prefix, h.line
                                ),
                            )
                            .hint("list each address once per circuit"),
                        );
                    }
                    Some(h) => {
                        for k in added {
                            taken.ranges.remove(&k);
                        }
                        let whose = if h.circuit == ci {
                            "the same circuit's".to_string()
                        } else {
                            format!("circuit `{}`'s", clip(&circuits[h.circuit].circuit_id))
                        };
                        report.push(
                            Diagnostic::new(
                                Severity::Error,
                                file,
                                Some(row.line),
                                format!(
                                    "{p} (circuit `{}`) overlaps {whose} {} on line {}; this device is left out",
                                    clip(&row.circuit_id),
                                    h.prefix,
                                    h.line
                                ),
                            )
                            .hint("every address must belong to exactly one circuit; correct one of the two rows"),
                        );
                        report.rows_skipped += 1;
                        continue 'device;
                    }
                }
            }
            devices.push((row, kept));
        }
        if devices.is_empty() {
            continue;
        }
        if devices.iter().all(|(_, p)| p.is_empty()) {
            report.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    Some(first_line),
                    format!(
                        "circuit `{}` has no address in IPv4 or IPv6; it is left out",
                        clip(&circuit_id)
                    ),
                )
                .hint("tollgate recognises a circuit's traffic by its addresses; add them to the circuit's rows"),
            );
            report.rows_skipped += devices.len();
            continue;
        }
        let _ = rows;
        circuits.push(Circuit {
            circuit_id,
            circuit_name,
            tenant_id: 0,
            name: String::new(),
            rates,
            parent,
            devices,
        });
    }
    ids_and_names(file, &mut circuits, report);
    circuits
}

/// Caps each circuit at its parent's bandwidth (or the site's capacity
/// for one at the top, when given).
pub(crate) fn cap(
    file: &str,
    circuits: &mut [Circuit],
    network: Option<&Network>,
    site: Option<(Rate, Rate)>,
    report: &mut Report,
) {
    for c in circuits {
        let (bound, whose) = match c.parent.and_then(|p| network.map(|n| &n.nodes[p])) {
            Some(node) => (
                (node.down, node.up),
                format!("parent `{}`", clip(&node.name)),
            ),
            None => match site {
                Some(s) => (s, "the site's capacity".to_string()),
                None => continue,
            },
        };
        let capped = c.rates.capped(bound.0, bound.1);
        if capped != c.rates {
            report.push(
                Diagnostic::new(
                    Severity::Warning,
                    file,
                    Some(c.lines().0),
                    format!(
                        "circuit `{}`'s Max {}/{} Mbps exceeds {whose}'s {}/{} Mbps; capped at it",
                        clip(&c.circuit_id),
                        crate::render::mbps_text(c.rates.down_max),
                        crate::render::mbps_text(c.rates.up_max),
                        crate::render::mbps_text(bound.0),
                        crate::render::mbps_text(bound.1)
                    ),
                )
                .hint("a circuit can never get more than its parent; raise the node's bandwidth or lower the circuit's Max"),
            );
            c.rates = capped;
        }
    }
}

/// A tenant name tollgate accepts for tenant `id` (see docs/policy.md):
/// not empty, printable, not another tenant's id, not in `tg-`.
fn usable_name(name: &str, id: u32) -> bool {
    let empty = name.trim().is_empty();
    let unprintable = name.chars().any(char::is_control);
    let someone_elses_id =
        name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u32>().ok() != Some(id);
    let reserved = name.starts_with("tg-");
    !(empty || unprintable || someone_elses_id || reserved)
}

/// The Circuit ID as a tenant id, if it is a whole number 1–4294967295
/// written plainly.
fn numeric_id(s: &str) -> Option<u32> {
    if s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&v| v > 0)
}

fn ids_and_names(file: &str, circuits: &mut [Circuit], report: &mut Report) {
    let mut used: HashSet<u32> = HashSet::new();
    for c in circuits.iter_mut() {
        if let Some(id) = numeric_id(&c.circuit_id) {
            c.tenant_id = id;
            used.insert(id);
        }
    }
    let start = used.iter().max().copied().unwrap_or(0);
    let mut next = start;
    let mut numbered: Option<(usize, usize, u32)> = None;
    for c in circuits.iter_mut().filter(|c| c.tenant_id == 0) {
        loop {
            next = if next == u32::MAX { 1 } else { next + 1 };
            if used.insert(next) {
                break;
            }
        }
        c.tenant_id = next;
        let e = numbered.get_or_insert((0, c.lines().0, next));
        e.0 += 1;
    }
    if let Some((n, line, first)) = numbered {
        report.push(
            Diagnostic::new(
                Severity::Note,
                file,
                Some(line),
                format!(
                    "{n} circuit{} not whole numbers 1–4294967295; numbered from {first} in file order, and each tenant's comment names its Circuit ID",
                    if n == 1 { "'s Circuit ID is" } else { "s' Circuit IDs are" }
                ),
            )
            .hint("a tenant id names its history and bills: import again from a file in the same order, or give circuits numeric IDs"),
        );
    }
    let mut names: HashSet<String> = HashSet::new();
    let mut renamed: Option<(usize, usize)> = None;
    for c in circuits.iter_mut() {
        let wanted: String = c
            .circuit_name
            .chars()
            .map(|ch| if ch.is_control() { ' ' } else { ch })
            .collect::<String>()
            .trim()
            .to_string();
        let fallback = format!("circuit-{}", c.tenant_id);
        let mut name = if usable_name(&wanted, c.tenant_id) {
            wanted.clone()
        } else {
            fallback.clone()
        };
        if names.contains(&name) {
            let e = renamed.get_or_insert((0, c.lines().0));
            e.0 += 1;
            name = format!("{name} ({})", c.tenant_id);
            let mut k = 2;
            while names.contains(&name) {
                name = format!("{fallback} ({k})");
                k += 1;
            }
        }
        names.insert(name.clone());
        c.name = name;
    }
    if let Some((n, line)) = renamed {
        report.push(
            Diagnostic::new(
                Severity::Note,
                file,
                Some(line),
                format!(
                    "{n} circuit{} a Circuit Name an earlier circuit has; tenant names are unique, so {} named `NAME (TENANT ID)`",
                    if n == 1 { " has" } else { "s have" },
                    if n == 1 { "it is" } else { "they are" }
                ),
            )
            .hint("commands find a tenant by id or name; rename the circuits to tell them apart"),
        );
    }
}

/// The candidate closest to `name` by edit distance, if close enough.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for c in candidates.filter(|c| c.len() <= 64) {
        let d = distance(&name.to_lowercase(), &c.to_lowercase());
        if d <= 2.max(name.len() / 4) && best.is_none_or(|(bd, bc)| (d, c) < (bd, bc)) {
            best = Some((d, c));
        }
    }
    best.map(|b| b.1)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_follow_tollgates_rules() {
        assert!(usable_name("Alice", 3));
        assert!(!usable_name("", 3));
        assert!(!usable_name("7", 3));
        assert!(usable_name("3", 3));
        assert!(!usable_name("tg-x", 3));
        assert!(!usable_name("a\u{7}b", 3));
        assert_eq!(numeric_id("42"), Some(42));
        for bad in ["042", "0", "-1", "4294967296", "x1", ""] {
            assert_eq!(numeric_id(bad), None, "{bad}");
        }
        assert_eq!(
            closest("Site_A", ["Site_B", "Tower"].into_iter()),
            Some("Site_B")
        );
        assert_eq!(closest("zzz", ["Site_B"].into_iter()), None);
    }
}
