//! Moving in from LibreQoS: its `ShapedDevices.csv` (and `network.json`)
//! in, a tollgate policy and a report out.
//!
//! [`import`] takes the files' bytes and returns the policy as TOML text
//! with a comment above every tenant and parent naming the rows and nodes
//! it came from, and a [`Report`] of every row it could not represent
//! (with `file:line` and the reason) and every value it had to change.
//! Nothing is dropped silently. The policy is checked as `tollgate check`
//! checks it (parsed, validated and compiled) before it is returned, so
//! what comes out is always a valid policy.
//!
//! The mapping (docs/deploy.md has the operator's view):
//!
//! | LibreQoS | tollgate |
//! |---|---|
//! | a circuit (rows sharing a Circuit ID) | a tenant with every device's addresses |
//! | Download/Upload Min Mbps | the tenant's rate, through a plan per distinct set of rates |
//! | Download/Upload Max Mbps | the tenant's ceil |
//! | a network.json node | a parent with its bandwidth as rate and ceil |
//! | a virtual node | nothing: what is under it moves up, as in LibreQoS |
//! | Circuit Name, Device ID/Name, MAC, Anchor Node ID, Comment | comments |
//! | sqm | not imported (reported) |
//! | — | a `[site]` in router mode and one default realm |
//!
//! The reading rules (header by name, the legacy 13-column layout, `#`
//! comments, quoted address lists, fractional Mbps) are in `devices.rs`
//! and `csv.rs`; the tree rules in `network.rs`; circuits, addresses, ids
//! and names in `circuits.rs`.
//!
//! This crate does no I/O: the caller reads the files and draws progress
//! from the callback.

mod circuits;
mod csv;
mod devices;
pub mod fuzzing;
mod network;
mod render;
mod report;
pub mod synthetic;

pub use network::MAX_PARENT_DEPTH;
pub use report::{Diagnostic, Report, Severity};

use net_types::{IfName, Rate};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One input file: its name (for messages) and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// How messages name the file.
    pub name: &'a str,
    /// Its contents.
    pub bytes: &'a [u8],
}

/// What the input does not say: the box's interfaces, its capacity, the
/// realm's name.
#[derive(Clone, Debug)]
pub struct Options {
    /// The interface toward the upstream (LibreQoS's `to_internet`).
    pub uplink: IfName,
    /// The interface toward the customers (LibreQoS's `to_network`).
    pub lan: IfName,
    /// The site's capacity, down and up; `None`: the largest top-level
    /// node or circuit.
    pub capacity: Option<(Rate, Rate)>,
    /// The one realm every destination is in.
    pub realm: String,
    /// How the policy is named in the check's messages.
    pub output_name: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            uplink: IfName::new("eth0").expect("a valid name"),
            lan: IfName::new("eth1").expect("a valid name"),
            capacity: None,
            realm: "internet".into(),
            output_name: "policy.toml".into(),
        }
    }
}

/// What an import produced.
#[derive(Clone, Debug)]
pub struct Import {
    /// The policy, if at least one circuit could be imported. It holds
    /// every circuit that could be represented; the report says which
    /// were left out.
    pub policy: Option<String>,
    /// Counts and every diagnostic.
    pub report: Report,
}

/// The text of a file: UTF-8, or else Latin-1 (what spreadsheets on
/// Windows export), which is said with the line of the first byte that
/// is not UTF-8.
fn text_of<'a>(src: &Source<'a>, report: &mut Report) -> Cow<'a, str> {
    match std::str::from_utf8(src.bytes) {
        Ok(t) => Cow::Borrowed(t),
        Err(e) => {
            let at = e.valid_up_to();
            let line = src.bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            report.push(
                Diagnostic::new(
                    Severity::Warning,
                    src.name,
                    Some(line),
                    "the file is not UTF-8; it is read as Latin-1 (ISO 8859-1)",
                )
                .hint("check the names with accents in the policy; export the file as UTF-8 to be sure"),
            );
            Cow::Owned(src.bytes.iter().map(|&b| b as char).collect())
        }
    }
}

/// Imports ShapedDevices.csv and, if given, network.json. `progress` is
/// called with how many bytes of ShapedDevices.csv have been read.
pub fn import(
    devices: Source<'_>,
    network: Option<Source<'_>>,
    options: &Options,
    progress: &mut dyn FnMut(usize),
) -> Import {
    let mut report = Report::default();
    let done = |report: Report| Import {
        policy: None,
        report,
    };
    if options.realm.trim().is_empty() || options.realm == "default" {
        report.push(
            Diagnostic::new(
                Severity::Error,
                &options.output_name,
                None,
                format!("`{}` cannot name a realm", options.realm),
            )
            .hint("`default` says which realm is the default; pick a name such as `internet`"),
        );
        return done(report);
    }
    let mut net = match network {
        None => None,
        Some(src) => {
            let text = text_of(&src, &mut report);
            match network::read(src.name, &text, &mut report) {
                Some(n) => Some(n),
                None => return done(report),
            }
        }
    };
    let text = text_of(&devices, &mut report);
    let Some(rows) = devices::read(devices.name, &text, &mut report, progress) else {
        return done(report);
    };
    let mut circuits = circuits::build(devices.name, rows, net.as_ref(), &mut report);
    if circuits.is_empty() {
        report.push(
            Diagnostic::new(
                Severity::Error,
                devices.name,
                None,
                "no circuit could be imported",
            )
            .hint("the diagnostics above say why for each row"),
        );
        return done(report);
    }
    if let (Some(cap), Some(n)) = (options.capacity, net.as_mut()) {
        cap_nodes(
            network.map_or("network.json", |s| s.name),
            n,
            cap,
            &mut report,
        );
    }
    circuits::cap(
        devices.name,
        &mut circuits,
        net.as_ref(),
        options.capacity,
        &mut report,
    );
    let capacity = options.capacity.unwrap_or_else(|| {
        let top_nodes = net
            .iter()
            .flat_map(|n| &n.nodes)
            .filter(|n| n.parent.is_none())
            .map(|n| (n.down, n.up));
        let top_circuits = circuits
            .iter()
            .filter(|c| c.parent.is_none())
            .map(|c| (c.rates.down_max, c.rates.up_max));
        top_nodes
            .chain(top_circuits)
            .fold(None, |acc: Option<(Rate, Rate)>, (d, u)| {
                Some(acc.map_or((d, u), |(ad, au)| (ad.max(d), au.max(u))))
            })
            .expect("at least one circuit")
    });
    let plans: BTreeMap<circuits::Rates, String> = circuits
        .iter()
        .map(|c| (c.rates, render::plan_name(&c.rates)))
        .collect();
    let left_out: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.place(), d.message))
        .collect();
    let text = render::policy(&render::Parts {
        devices_file: devices.name,
        network_file: network.map(|s| s.name),
        options,
        capacity,
        capacity_from_input: options.capacity.is_none(),
        network: net.as_ref(),
        circuits: &circuits,
        plans: &plans,
        left_out: &left_out,
    });
    report.tenants = circuits.len();
    report.devices = circuits.iter().map(|c| c.devices.len()).sum();
    report.plans = plans.len();
    report.parents = net.as_ref().map_or(0, |n| n.nodes.len());
    let valid = check(&text, options, &mut report);
    Import {
        policy: valid.then_some(text),
        report,
    }
}

/// Caps nodes at the site's capacity, and then each at its (capped)
/// parent's, top down.
fn cap_nodes(file: &str, net: &mut network::Network, site: (Rate, Rate), report: &mut Report) {
    for i in 0..net.nodes.len() {
        let (bound, whose) = match net.nodes[i].parent {
            Some(p) => (
                (net.nodes[p].down, net.nodes[p].up),
                format!("parent `{}`", net.nodes[p].name),
            ),
            None => (site, "the site's capacity".to_string()),
        };
        let n = &mut net.nodes[i];
        if n.down > bound.0 || n.up > bound.1 {
            report.push(
                Diagnostic::new(
                    Severity::Warning,
                    file,
                    n.line,
                    format!(
                        "node `{}`'s bandwidth {}/{} Mbps exceeds {whose}'s {}/{} Mbps; capped at it",
                        devices::clip(&n.name),
                        render::mbps_text(n.down),
                        render::mbps_text(n.up),
                        render::mbps_text(bound.0),
                        render::mbps_text(bound.1)
                    ),
                )
                .hint("nothing under a node can get more than the node's parent"),
            );
            n.down = n.down.min(bound.0);
            n.up = n.up.min(bound.1);
        }
    }
}

/// Checks the policy as `tollgate check` does: parsed, validated and
/// compiled. Its warnings become notes. An error in parsing or
/// validation is a fault of this importer; an error in compiling is a
/// limit of the kernel's the input reaches (too many circuits under one
/// top-level node). Either way the policy is not returned.
fn check(text: &str, options: &Options, report: &mut Report) -> bool {
    let name = options.output_name.as_str();
    let loaded = policy::load_bytes(name, text.as_bytes(), &mut |_| {
        Err(policy::ReadError::Io(
            "an imported policy names no other files".into(),
        ))
    });
    let mut ok = loaded.policy.is_some();
    let say = |d: &policy::Diagnostic, fault: bool, report: &mut Report| {
        let r = d.to_record(&loaded.sources);
        let (severity, message) = match (d.is_error(), fault) {
            (true, true) => {
                report.importer_fault = true;
                (
                    Severity::Error,
                    format!(
                        "the imported policy does not pass `tollgate check`: {} (a fault of the importer; please report it with the input)",
                        r.message
                    ),
                )
            }
            (true, false) => (
                Severity::Error,
                format!("the imported policy does not compile: {}", r.message),
            ),
            (false, _) => (Severity::Note, format!("check: {}", r.message)),
        };
        let mut out = Diagnostic::new(severity, name, r.line, message);
        out.hint = match (d.is_error() && !fault, r.hint) {
            // A kernel limit: what to change is in LibreQoS's files.
            (true, Some(h)) => Some(format!(
                "{h}; in network.json, split the node or mark it \"virtual\": true so that its children become top-level"
            )),
            (_, h) => h,
        };
        report.push(out);
    };
    for d in &loaded.diagnostics {
        ok &= !d.is_error();
        say(d, true, report);
    }
    if let Some(p) = &loaded.policy {
        match compiler::compile(p, &compiler::HostFacts::default()) {
            Ok(c) => c.notes.iter().for_each(|d| say(d, false, report)),
            Err(e) => {
                ok = false;
                e.iter().for_each(|d| say(d, false, report));
            }
        }
    }
    ok
}
