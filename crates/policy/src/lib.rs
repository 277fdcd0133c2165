//! The tollgate policy file: one declarative TOML file that says what every
//! tenant gets.
//!
//! [`load`] turns text into a [`Policy`] and a list of [`Diagnostic`]s. It
//! never stops at the first problem: every problem in the file is reported,
//! each with `file:line:col`, the offending text and a hint. A policy with any
//! error is not returned, so nothing downstream can act on it.
//!
//! This crate does no I/O. Prefix-list files named by the policy are read
//! through the `read_file` callback that the caller passes in; tests pass a
//! map, the binary passes the file system.
//!
//! The format is documented in `docs/policy.md`; the shipped examples are
//! under `examples/`.

mod api;
mod billing;
mod diagnostic;
pub mod edit;
mod flows;
mod model;
mod parse;
mod reader;
mod route_rules;
mod source;
mod validate;

pub use diagnostic::{Diagnostic, DiagnosticRecord, Severity};
pub use model::*;
pub use route_rules::{parse_community, parse_large_community, RouteRules, RouteView};
pub use source::{FileId, SourceFile, Sources, Span};

use reader::Cx;

/// The outcome of loading a policy.
#[derive(Debug)]
pub struct Loaded {
    /// Every file read, for rendering diagnostics.
    pub sources: Sources,
    /// The policy, if it has no errors.
    pub policy: Option<Policy>,
    /// Every problem found, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Every diagnostic rendered for a terminal.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.sources))
            .collect()
    }
}

/// Parses and validates a policy.
///
/// `name` is used in messages only. `read_file` is asked for every
/// prefix-list file the policy names, with the path exactly as written.
pub fn load(
    name: &str,
    text: &str,
    read_file: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Loaded {
    let mut sources = Sources::new();
    let main = sources.add(SourceFile::new(name, text));
    let mut cx = Cx {
        file: main,
        diags: Vec::new(),
    };
    let whole = Span::new(main, 0..text.len().min(1));
    let doc = match toml_edit::Document::parse(text.to_owned()) {
        Ok(doc) => doc,
        Err(e) => {
            let span = Span::new(main, e.span().unwrap_or(0..0));
            let message = e.message().trim().to_owned();
            cx.diags.push(
                Diagnostic::error(Some(span), format!("this is not valid TOML: {message}"))
                    .with_hint("fix the syntax first; the other checks run once the file parses"),
            );
            return Loaded {
                sources,
                policy: None,
                diagnostics: cx.diags,
            };
        }
    };
    let mut parsed = parse::document(&mut cx, doc.as_table(), whole);

    // Prefix-list files: each is a source of its own, so errors point into it.
    for (realm, path, span) in std::mem::take(&mut parsed.prefix_files) {
        match read_file(&path) {
            Ok(text) => {
                let id = sources.add(SourceFile::new(path.clone(), text.clone()));
                let mut fcx = Cx {
                    file: id,
                    diags: Vec::new(),
                };
                let prefixes = parse::prefix_file(&mut fcx, &text);
                cx.diags.append(&mut fcx.diags);
                if let Some(r) = parsed.realms.iter_mut().find(|r| r.id == realm) {
                    r.prefixes.extend(prefixes);
                }
            }
            Err(e) => cx.error(
                span,
                format!("cannot read prefix list `{path}`: {e}"),
                "check the path; relative paths are read from the policy file's folder",
            ),
        }
    }

    let mut diags = cx.diags;
    let policy = assemble(parsed, whole, &mut diags);
    sort(&mut diags);
    let policy = policy.filter(|_| !diags.iter().any(Diagnostic::is_error));
    Loaded {
        sources,
        policy,
        diagnostics: diags,
    }
}

/// Loads a policy that names no prefix-list files (or from a test).
pub fn load_str(name: &str, text: &str) -> Loaded {
    load(name, text, &mut |path| {
        Err(format!("`{path}`: no files can be read here"))
    })
}

fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
}

/// Resolves realm names, then runs the cross-item checks.
fn assemble(mut p: parse::Parsed, whole: Span, diags: &mut Vec<Diagnostic>) -> Option<Policy> {
    // Realm ids must be unique before anything refers to them by id.
    p.realms.sort_by_key(|r| r.id);
    let mut seen = std::collections::HashMap::new();
    for (id, span) in &p.realm_id_spans {
        if seen.insert(*id, *span).is_some() {
            diags.push(
                Diagnostic::error(Some(*span), format!("duplicate realm id {id}"))
                    .with_hint("each realm needs its own id"),
            );
        }
    }
    let names: Vec<&str> = p.realms.iter().map(|r| r.name.as_str()).collect();
    let default = match &p.default_realm {
        Some((name, span)) => match p.realms.iter().find(|r| &r.name == name) {
            Some(r) => Some(r.id),
            None if p.realm_names.contains(name) => None,
            None => {
                let hint = match reader::closest(name, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "declare [realms.{name}] with an id, or pick one of: {}",
                        names.join(", ")
                    ),
                };
                diags.push(
                    Diagnostic::error(Some(*span), format!("unknown realm `{name}` as default"))
                        .with_hint(hint),
                );
                None
            }
        },
        None if p.realms.is_empty() => Some(net_types::RealmId(0)),
        None => {
            diags.push(
                Diagnostic::error(p.realms.first().map(|r| r.span), "realms are declared but none is the default")
                    .with_hint("add `default = \"<name>\"` under [realms]: it catches every destination no prefix matches"),
            );
            None
        }
    };
    for (plan, realm, dir, cap, span) in std::mem::take(&mut p.plan_realm_refs) {
        match p.realms.iter().find(|r| r.name == realm) {
            None if p.realm_names.contains(&realm) => {}
            Some(r) => {
                if let Some(pl) = p.plans.iter_mut().find(|pl| pl.name == plan) {
                    if pl.is_shared() {
                        diags.push(Diagnostic::error(Some(span), format!("shared plan `{plan}` caps realm `{realm}`")).with_hint("per-realm caps inside a shared pool are not supported yet; cap realms in the members' own plans"));
                    } else {
                        pl.realm_caps.push((r.id, dir, cap, span));
                    }
                }
            }
            None => {
                let hint = match reader::closest(&realm, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "declared realms: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                };
                diags.push(
                    Diagnostic::error(
                        Some(span),
                        format!("unknown realm `{realm}` in plan `{plan}`"),
                    )
                    .with_hint(hint),
                );
            }
        }
    }
    p.plans.sort_by(|a, b| a.name.cmp(&b.name));
    p.tenants.sort_by_key(|t| t.id);
    // Cross-item checks run even when [site] or the default realm could not
    // be read, so that one early mistake does not hide the others. Checks
    // that need the site are skipped then; the policy is not returned.
    let complete = p.site.is_some() && default.is_some();
    let site_ok = p.site.is_some();
    let policy = Policy {
        site: p.site.unwrap_or_else(|| placeholder_site(whole)),
        realms: Realms {
            list: p.realms,
            default: default.unwrap_or(net_types::RealmId(0)),
        },
        bands: p.bands,
        plans: p.plans,
        parents: p.parents,
        tenants: p.tenants,
        flows: p.flows,
        billing: p.billing,
        overage: p.overage,
        api: p.api,
    };
    validate::policy(
        &policy,
        site_ok,
        &p.plan_names,
        &p.parent_names,
        &p.realm_names,
        diags,
    );
    complete.then_some(policy)
}

/// A site no check can complain about, used only to run the other checks
/// when the real [site] had errors.
fn placeholder_site(span: Span) -> Site {
    let max = net_types::Rate::from_bps(u64::MAX).expect("nonzero");
    Site {
        mode: Mode::Router,
        uplink: net_types::IfName::new("placeholder").expect("valid name"),
        lan: None,
        capacity: PerDirection { down: max, up: max },
        shards: 1,
        default_rate: PerDirection { down: max, up: max },
        span,
    }
}
