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
//! map, the binary passes the file system. What the callback may read (only
//! regular files, only inside the policy's folder, up to a size) and how it
//! says why not is the contract in `files.rs` ([`ReadError`],
//! [`PrefixFolders`]).
//!
//! The format is documented in `docs/policy.md`; the shipped examples are
//! under `examples/`.

mod api;
mod bgp;
mod billing;
mod central;
mod diagnostic;
pub mod edit;
mod files;
mod flows;
mod guard;
mod history;
mod latency;
mod model;
mod parse;
mod reader;
mod route_rules;
mod source;
mod transit;
mod validate;

pub use diagnostic::{Diagnostic, DiagnosticRecord, Severity};
pub use files::{
    resolve_prefix_file, PrefixFolders, ReadError, POLICY_FILE_LIMIT, PREFIX_FILE_LIMIT,
};
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
/// Kept for callers that read files as text; [`load_bytes`] is the entry
/// with the typed file contract.
pub fn load(
    name: &str,
    text: &str,
    read_file: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Loaded {
    load_bytes(name, text.as_bytes(), &mut |path| {
        read_file(path)
            .map(String::into_bytes)
            .map_err(ReadError::Io)
    })
}

/// Parses and validates a policy given as bytes, as read from its file.
///
/// Bytes that are not UTF-8 are reported as an error at the line and column
/// of the first bad byte, like any other invalid policy. `read_file` is
/// asked for every prefix-list file the policy names, with the path exactly
/// as written; the caller resolves it with [`PrefixFolders::resolve`] (or
/// uses [`load_with_folders`], which does) and reads only regular files of
/// at most [`PREFIX_FILE_LIMIT`] bytes, saying why not with a [`ReadError`].
pub fn load_bytes(
    name: &str,
    bytes: &[u8],
    read_file: &mut dyn FnMut(&str) -> Result<Vec<u8>, ReadError>,
) -> Loaded {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return not_utf8(name, bytes, e),
    };
    let mut sources = Sources::new();
    let main = sources.add(SourceFile::new(name, text));
    let mut cx = Cx {
        file: main,
        diags: Vec::new(),
    };
    let whole = Span::new(main, 0..text.len().min(1));
    if bytes.len() as u64 > POLICY_FILE_LIMIT {
        cx.error(
            whole,
            format!("the policy is larger than {} MiB", POLICY_FILE_LIMIT >> 20),
            "check that this is the policy file; tollgate reads it whole",
        );
        return Loaded {
            sources,
            policy: None,
            diagnostics: cx.diags,
        };
    }
    let doc = match toml_edit::Document::parse(text) {
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
    // The syntax tree is several times the size of the text; nothing after
    // this needs it.
    drop(doc);

    // Prefix-list files: each is a source of its own, so errors point into it.
    for (realm, path, span) in std::mem::take(&mut parsed.prefix_files) {
        let read = read_file(&path).and_then(|bytes| {
            // A caller that forgot the limit still gets the refusal, if late.
            if bytes.len() as u64 > PREFIX_FILE_LIMIT {
                Err(ReadError::TooLarge {
                    limit: PREFIX_FILE_LIMIT,
                })
            } else {
                Ok(bytes)
            }
        });
        match read {
            Ok(bytes) => {
                let id = FileId(sources.len() as u32);
                let mut fcx = Cx {
                    file: id,
                    diags: Vec::new(),
                };
                let list = parse::prefix_file(&mut fcx, &path, &bytes);
                sources.add(SourceFile::new(path.clone(), list.shown));
                cx.diags.append(&mut fcx.diags);
                if let Some(r) = parsed.realms.iter_mut().find(|r| r.id == realm) {
                    r.prefixes.extend(list.prefixes);
                }
            }
            Err(e) => cx.error(
                span,
                format!("cannot read prefix list `{path}`: {e}"),
                e.hint(),
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

/// Opens a resolved path and reads at most `limit + 1` bytes of it.
pub type OpenFile<'a> = dyn FnMut(&std::path::Path, u64) -> Result<Vec<u8>, ReadError> + 'a;

/// [`load_bytes`] with the file contract applied here: each `prefix_files`
/// entry is resolved with [`PrefixFolders::resolve`] (refused outside the
/// folders, before anything is opened), and `open` is handed the resolved
/// path and the byte limit. `open` only opens and reads: with `O_NONBLOCK`,
/// `fstat` must say a regular file, and at most `limit + 1` bytes are read.
pub fn load_with_folders(
    name: &str,
    bytes: &[u8],
    folders: &PrefixFolders,
    open: &mut OpenFile<'_>,
) -> Loaded {
    load_bytes(name, bytes, &mut |written| {
        let path = folders.resolve(written)?;
        let bytes = open(&path, folders.limit)?;
        if bytes.len() as u64 > folders.limit {
            return Err(ReadError::TooLarge {
                limit: folders.limit,
            });
        }
        Ok(bytes)
    })
}

/// Loads a policy that names no prefix-list files (or from a test).
pub fn load_str(name: &str, text: &str) -> Loaded {
    load_bytes(name, text.as_bytes(), &mut |_| {
        Err(ReadError::Io("no files can be read here".into()))
    })
}

/// A policy that is not UTF-8: one error at the first bad byte. The text is
/// kept up to the end of that line (bad bytes shown as U+FFFD) so that the
/// error renders with its line; nothing else is checked, as with a TOML
/// syntax error.
fn not_utf8(name: &str, bytes: &[u8], e: std::str::Utf8Error) -> Loaded {
    let at = e.valid_up_to();
    let line_end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    let shown = String::from_utf8_lossy(&bytes[..line_end]).into_owned();
    let mut sources = Sources::new();
    let main = sources.add(SourceFile::new(name, shown));
    let bad = bytes[at];
    let diagnostics = vec![Diagnostic::error(
        Some(Span::new(main, at..at + e.error_len().unwrap_or(1))),
        format!("the policy is not UTF-8 text: byte 0x{bad:02x} here is not valid UTF-8"),
    )
    .with_hint("save the file as UTF-8 (from Latin-1: `iconv -f latin1 -t utf-8`); the other checks run once it is")];
    Loaded {
        sources,
        policy: None,
        diagnostics,
    }
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
    // A probe measures one realm's path: the realm must exist (a policy
    // without realms has one, and any name labels it).
    {
        for realm in &p.probe_realms {
            if p.realm_names.is_empty() || p.realm_names.contains(&realm.value) {
                continue;
            }
            let hint = match reader::closest(&realm.value, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("declared realms: {}", names.join(", ")),
            };
            diags.push(
                Diagnostic::error(
                    Some(realm.span),
                    format!("unknown realm `{}` in [[latency.probes]]", realm.value),
                )
                .with_hint(hint),
            );
        }
    }
    // Flow records kept come from the collector.
    if let Some(fl) = p.history.as_ref().and_then(|h| h.flows.as_ref()) {
        if fl.keep && p.flows.is_none() {
            diags.push(
                Diagnostic::error(
                    Some(fl.span),
                    "[history.flows] keeps flow records, but there is no [flows] collector",
                )
                .with_hint("add [flows] with the exporters, or set keep = false"),
            );
        }
    }
    p.plans.sort_by(|a, b| a.name.cmp(&b.name));
    p.tenants.sort_by_key(|t| t.id);
    // Cross-item checks run even when [site] or the default realm could not
    // be read, so that one early mistake does not hide the others. Checks
    // that need the site are skipped then; the policy is not returned.
    let complete = p.site.is_some() && default.is_some();
    let site_ok = p.site.is_some();
    if let (Some(t), Some(s)) = (&mut p.transit, &p.site) {
        transit::resolve(t, s.uplink);
    }
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
        history: p.history,
        guard: p.guard,
        transit: p.transit,
        bgp: p.bgp,
        central: p.central,
        latency: p.latency,
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
        uplink_span: span,
        lan: None,
        capacity: PerDirection { down: max, up: max },
        shards: 1,
        default_rate: PerDirection { down: max, up: max },
        bill_broadcast: false,
        bill_multicast: false,
        classifier: None,
        shape_on: ShapeOn::Ifb,
        shape_on_span: None,
        span,
    }
}
