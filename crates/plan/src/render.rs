//! Plans and change sets as text: `tc -batch` lines and `nft -f` scripts.
//!
//! The same text is what a person reads in `tollgate plan --format tc|nft`
//! and what the snapshot tests compare, so it is kept stable and sorted.

use crate::diff::{Change, ChangeSet};
use crate::model::*;
use std::fmt::Write as _;

fn class_line(verb: &str, key: &ClassKey, c: &Class) -> String {
    let mut s = format!(
        "class {verb} dev {} parent {} classid {} htb rate {} ceil {}",
        key.dev, c.parent, key.id, c.rate, c.ceil
    );
    if let Some(b) = c.burst {
        let _ = write!(s, " burst {b}");
    }
    if let Some(b) = c.cburst {
        let _ = write!(s, " cburst {b}");
    }
    let _ = write!(s, " prio {} quantum {}", c.prio, c.quantum);
    s
}

fn qdisc_line(verb: &str, key: &QdiscKey, q: &Qdisc) -> String {
    match q {
        Qdisc::Htb {
            major,
            default_minor,
        } => match key.attach {
            Attach::Class(parent) => format!(
                "qdisc {verb} dev {} parent {parent} handle {major:x}: htb default {default_minor:x}",
                key.dev
            ),
            _ => format!(
                "qdisc {verb} dev {} root handle {major:x}: htb default {default_minor:x}",
                key.dev
            ),
        },
        Qdisc::Clsact => format!("qdisc {verb} dev {} clsact", key.dev),
    }
}

/// Where a filter attaches, in tc's words. Tollgate's root HTB qdiscs
/// always have major 1.
fn hook_word(h: Hook) -> &'static str {
    match h {
        Hook::Egress => "egress",
        Hook::Ingress => "ingress",
        Hook::Root => "parent 1:",
    }
}

fn filter_line(verb: &str, key: &FilterKey, f: &Filter) -> String {
    let program = match f.select {
        Select::Ebpf(p) => format!("pinned {BPF_PIN_DIR}/<netns>/{}", p.name()),
        _ => format!("bytecode \"{}\"", f.select.bytecode()),
    };
    let mut s = format!(
        "filter {verb} dev {} {} prio {} handle 1 bpf {program}",
        key.dev,
        hook_word(key.hook),
        key.prio,
    );
    if let Some(to) = f.redirect_to {
        let _ = write!(s, " action mirred egress redirect dev {to}");
    }
    s
}

/// The comment tollgate puts on each nftables rule: `tg:` and a hash of the
/// rule's text as tollgate wrote it.
///
/// nftables prints rules back in its own normal form, which differs from
/// what was written (sets reordered, expressions simplified), so rules
/// cannot be compared by text. The tag lets the dataplane see that a rule
/// is still the one it wrote, and that none is missing or foreign.
pub fn rule_tag(rule: &str) -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("tg:{h:016x}")
}

/// The whole plan as `tc -batch` input. Devices are not tc objects, so they
/// are listed first as comments with the `ip` commands that create them.
pub fn plan_tc(plan: &Plan) -> String {
    let mut out = String::new();
    for name in plan.links.keys() {
        let _ = writeln!(
            out,
            "# ip link add {name} type ifb && ip link set {name} up"
        );
    }
    for (k, q) in &plan.qdiscs {
        if !matches!(k.attach, Attach::Class(_)) {
            let _ = writeln!(out, "{}", qdisc_line("add", k, q));
        }
    }
    // Parents must exist before children; a stable depth-first order also
    // makes the text easy to read. A nested qdisc follows the class it
    // hangs from, which comes before the nested tree's own classes.
    for (key, c) in topo(&plan.classes) {
        let _ = writeln!(out, "{}", class_line("add", key, c));
        let nested = QdiscKey {
            dev: key.dev,
            attach: Attach::Class(key.id),
        };
        if let Some(q) = plan.qdiscs.get(&nested) {
            let _ = writeln!(out, "{}", qdisc_line("add", &nested, q));
        }
    }
    for (k, f) in &plan.filters {
        let _ = writeln!(out, "{}", filter_line("add", k, f));
    }
    out
}

/// Classes ordered so that every parent precedes its children.
fn topo(classes: &std::collections::BTreeMap<ClassKey, Class>) -> Vec<(&ClassKey, &Class)> {
    let mut out = Vec::with_capacity(classes.len());
    let mut children: std::collections::BTreeMap<
        (&net_types::IfName, net_types::ClassId),
        Vec<&ClassKey>,
    > = Default::default();
    let mut roots = Vec::new();
    for (k, c) in classes {
        let parent_key = ClassKey {
            dev: k.dev,
            id: c.parent,
        };
        if c.parent.minor == 0 || !classes.contains_key(&parent_key) {
            roots.push(k);
        } else {
            children.entry((&k.dev, c.parent)).or_default().push(k);
        }
    }
    let mut stack: Vec<&ClassKey> = roots.into_iter().rev().collect();
    while let Some(k) = stack.pop() {
        out.push((k, &classes[k]));
        if let Some(kids) = children.get(&(&k.dev, k.id)) {
            stack.extend(kids.iter().rev());
        }
    }
    out
}

fn chain_header(name: &str, c: &Chain) -> String {
    match &c.hook {
        Some(h) => format!(
            "chain {name} {{ type filter hook egress device \"{}\" priority 0; policy accept; }}",
            h.dev
        ),
        None => format!("chain {name} {{ }}"),
    }
}

/// `set` for the guard's sets (no values), `map` for the others.
fn map_word(kind: MapKind) -> &'static str {
    if kind.is_guard_set() {
        "set"
    } else {
        "map"
    }
}

/// The nftables part of the plan as one `nft -f` script that creates the
/// table from nothing.
pub fn plan_nft(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table netdev {NFT_TABLE} {{");
    for (name, m) in plan.maps.iter().filter(|(_, m)| !m.kind.is_bpf()) {
        let _ = writeln!(out, "\t{} {name} {{", map_word(m.kind));
        let _ = writeln!(out, "\t\t{}", m.kind.declaration());
        if !m.elements.is_empty() {
            let elems: Vec<String> = m
                .elements
                .iter()
                .map(|(k, v)| format!("{k} : {v}"))
                .collect();
            let _ = writeln!(out, "\t\telements = {{ {} }}", elems.join(",\n\t\t\t     "));
        }
        let _ = writeln!(out, "\t}}");
    }
    // Regular chains first so that base chains jump to chains already read.
    let mut chains: Vec<(&String, &Chain)> = plan.chains.iter().collect();
    chains.sort_by_key(|(n, c)| (c.hook.is_some(), *n));
    for (name, c) in chains {
        let _ = writeln!(out, "\tchain {name} {{");
        if let Some(h) = &c.hook {
            let _ = writeln!(
                out,
                "\t\ttype filter hook egress device \"{}\" priority 0; policy accept;",
                h.dev
            );
        }
        for r in &c.rules {
            let _ = writeln!(out, "\t\t{r} comment \"{}\"", rule_tag(r));
        }
        let _ = writeln!(out, "\t}}");
    }
    let _ = writeln!(out, "}}");
    out
}

/// The tc part of a change set as `tc -batch` input, in order.
pub fn changes_tc(cs: &ChangeSet) -> String {
    let mut out = String::new();
    for c in &cs.changes {
        let line = match c {
            Change::AddLink { name, .. } => {
                format!("# ip link add {name} type ifb && ip link set {name} up")
            }
            Change::DelLink { name } => format!("# ip link del {name}"),
            Change::AddQdisc { key, qdisc } => qdisc_line("add", key, qdisc),
            Change::DelQdisc { key } => match key.attach {
                Attach::Root => format!("qdisc del dev {} root", key.dev),
                Attach::Clsact => format!("qdisc del dev {} clsact", key.dev),
                Attach::Class(c) => format!("qdisc del dev {} parent {c}", key.dev),
            },
            Change::AddClass { key, class } => class_line("add", key, class),
            Change::ChangeClass { key, class } => class_line("change", key, class),
            Change::DelClass { key } => format!("class del dev {} classid {}", key.dev, key.id),
            Change::SetFilter { key, filter } => filter_line("replace", key, filter),
            Change::DelFilter { key } => format!(
                "filter del dev {} {} prio {}",
                key.dev,
                hook_word(key.hook),
                key.prio
            ),
            _ => continue,
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The nftables part of a change set as one `nft -f` transaction.
///
/// Within each stretch of element changes, every deletion comes before any
/// addition. The transaction is atomic, so the order is invisible to
/// packets, but nft checks each addition to an interval map against what
/// is there at that point: a realm prefix replaced by a neighbouring or
/// nested one would otherwise "overlap" the element it replaces.
pub fn changes_nft(cs: &ChangeSet) -> String {
    let mut out = String::new();
    let t = format!("netdev {NFT_TABLE}");
    let mut deletes: Vec<String> = Vec::new();
    let mut adds: Vec<String> = Vec::new();
    let flush = |out: &mut String, deletes: &mut Vec<String>, adds: &mut Vec<String>| {
        for line in deletes.drain(..).chain(adds.drain(..)) {
            let _ = writeln!(out, "{line}");
        }
    };
    for c in &cs.changes {
        // The eBPF classifier's maps are BPF maps, not the table's.
        match c {
            Change::AddMap { name, .. }
            | Change::DelMap { name }
            | Change::SetElement { map: name, .. }
            | Change::DelElement { map: name, .. }
                if is_bpf_map(name) =>
            {
                continue
            }
            _ => {}
        }
        let text = match c {
            Change::AddMap { name, kind } => {
                format!(
                    "add {} {t} {name} {{ {}; }}",
                    map_word(*kind),
                    kind.declaration()
                )
            }
            Change::DelMap { name } => match crate::guard::set_kind(name) {
                Some(_) => format!("delete set {t} {name}"),
                None => format!("delete map {t} {name}"),
            },
            Change::SetChain { name, chain } => {
                let mut s = format!(
                    "add {}\nflush chain {t} {name}",
                    chain_header(name, chain).replacen("chain ", &format!("chain {t} "), 1)
                );
                for r in &chain.rules {
                    let _ = write!(s, "\nadd rule {t} {name} {r} comment \"{}\"", rule_tag(r));
                }
                s
            }
            Change::DelChain { name } => format!("flush chain {t} {name}\ndelete chain {t} {name}"),
            Change::SetElement {
                map,
                key,
                value,
                previous,
            } => {
                if let Some(p) = previous {
                    deletes.push(format!("delete element {t} {map} {{ {key} : {p} }}"));
                }
                adds.push(format!("add element {t} {map} {{ {key} : {value} }}"));
                continue;
            }
            Change::DelElement { map, key } => {
                deletes.push(format!("delete element {t} {map} {{ {key} }}"));
                continue;
            }
            _ => continue,
        };
        flush(&mut out, &mut deletes, &mut adds);
        let _ = writeln!(out, "{text}");
    }
    flush(&mut out, &mut deletes, &mut adds);
    if out.is_empty() {
        return out;
    }
    format!("add table {t}\n{out}")
}

/// A change set as a short human summary, one line per change.
pub fn changes_text(cs: &ChangeSet) -> String {
    let mut out = String::new();
    let mut step = None;
    for c in &cs.changes {
        if step != Some(c.step()) {
            step = Some(c.step());
            let _ = writeln!(out, "{:?}:", c.step());
        }
        let verb = match c {
            Change::AddLink { .. }
            | Change::AddQdisc { .. }
            | Change::AddClass { .. }
            | Change::AddMap { .. } => "create",
            Change::ChangeClass { .. } => "change",
            Change::SetChain { .. } | Change::SetFilter { .. } => "set",
            Change::SetElement {
                previous: Some(_), ..
            } => "repoint",
            Change::SetElement { .. } => "add",
            _ => "remove",
        };
        let detail = match c {
            Change::AddClass { class, .. } | Change::ChangeClass { class, .. } => {
                format!(" (rate {} ceil {})", class.rate, class.ceil)
            }
            Change::SetElement { value, .. } => format!(" → {value}"),
            Change::SetFilter { filter, .. } => match filter.redirect_to {
                Some(to) => format!(" → {to}"),
                None => " → class from mark".into(),
            },
            _ => String::new(),
        };
        let _ = writeln!(out, "  {verb} {}{detail}", c.object());
    }
    if cs.is_empty() {
        out.push_str("nothing to do: the kernel already matches the plan\n");
    }
    out
}
