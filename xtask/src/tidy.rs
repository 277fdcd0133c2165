//! Architecture invariants, checked mechanically.
//!
//! - The pure crates do no I/O and read no clock: no `std::fs`,
//!   `std::process`, `std::net::*Socket`, `SystemTime`, `Instant::now`,
//!   `Timestamp::now`, `Zoned::now`, tokio, socket2 or libc, anywhere in a
//!   file but its `#[cfg(test)]` modules (the whole file is read).
//! - The pure crates depend on no effect crate, and not on tokio, socket2
//!   or libc.
//! - Every crate has a `//!` overview.
//! - No `todo!`/`unimplemented!`/`dbg!` outside tests.
//! - The binary's modules import each other in no cycle, and no module
//!   under `cmd/` imports another one.
//! - Every third-party dependency is pinned once, in the workspace's
//!   `[workspace.dependencies]`: a crate's manifest names it with
//!   `workspace = true`, never with a version of its own.
//! - Files are renamed in one place only, [`ATOMIC_HELPER`]: a file is
//!   replaced by `state_dir::replace_atomically` (temporary file, fsync,
//!   rename, fsync of the folder), so no other code can replace a file
//!   without the fsyncs that make "old or new after a crash" true.

use std::path::{Path, PathBuf};

/// Crates that must stay free of side effects.
const PURE: &[&str] = &[
    "net-types",
    "policy",
    "plan",
    "compiler",
    "prefix-map",
    "bgp",
    "tc-netlink",
    "nft-reader",
    "nft-netlink",
    "accounting",
    "billing",
    "routes",
    "flow-wire",
    "flows",
    "settings",
    "engine",
    "libreqos",
    "packet-wire",
    "guard",
    "latency",
    "bpf-classify",
];
/// Crates that may touch the world.
const EFFECT: &[&str] = &[
    "tollgate",
    "linux-dataplane",
    "history",
    "bgp-speaker",
    "flow-collector",
    "query",
    "api",
    "lab",
    "testkit",
    "packet-capture",
];
/// The one file allowed to rename files: the atomic replacement.
const ATOMIC_HELPER: &str = "crates/tollgate/src/state_dir.rs";

/// Whether `body` renames a file: `fs::rename` (std's or tokio's) or
/// `libc::rename*` anywhere (a call, an import, a function value), or a
/// bare `rename(`/`renameat(` call (one imported). A method named
/// `rename` (`x.rename(…)`) and a function defined with that name are not
/// renames of files.
fn renames(body: &str) -> bool {
    for (i, _) in body.match_indices("rename") {
        let tail: String = body[i + 6..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !matches!(tail.as_str(), "" | "at" | "at2") {
            continue;
        }
        let head = &body[..i];
        if head.ends_with("fs::") || head.ends_with("libc::") {
            return true;
        }
        let word_before = head
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':');
        let called = body[i + 6 + tail.len()..].trim_start().starts_with('(');
        if called && !word_before && !head.trim_end().ends_with("fn") {
            return true;
        }
    }
    false
}

/// Dependencies a pure crate may not have.
const FORBIDDEN_DEPS: &[&str] = &["tokio", "socket2", "libc"];
/// Text that marks I/O or a clock in a pure crate.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::process",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "SystemTime",
    "Instant::now",
    "Timestamp::now",
    "Zoned::now",
    "std::env::var",
    "tokio::",
    "socket2::",
    "libc::",
];

/// `text` without its `#[cfg(test)]` items (a test module, a test-only
/// function): the attribute, then everything to the end of the item's
/// balanced braces (or its semicolon).
fn without_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let mut depth = 0i32;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Dependencies with a version of their own in a crate's manifest.
fn pinned_once(root: &Path, problems: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root.join("crates")) else {
        return;
    };
    let manifests = entries
        .flatten()
        .map(|e| e.path().join("Cargo.toml"))
        .chain([root.join("xtask/Cargo.toml")]);
    for m in manifests {
        let Ok(text) = std::fs::read_to_string(&m) else {
            continue;
        };
        let mut section = String::new();
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                section = t.to_string();
                continue;
            }
            let deps = section.ends_with("dependencies]");
            if deps
                && t.contains('=')
                && !t.starts_with('#')
                && !t.contains("path =")
                && !t.contains("workspace = true")
            {
                problems.push(format!(
                    "{}: `{t}`: pin it once in [workspace.dependencies] and write `{} = {{ workspace = true }}`",
                    m.display(),
                    t.split('=').next().unwrap_or("").trim()
                ));
            }
        }
    }
}

/// The binary's top-level module a file belongs to (`cmd`, `daemon`, …).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "main").then(|| name.to_string())
}

/// The binary's modules that `text` names with `crate::NAME`.
fn crate_refs(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let name: String = text[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// Cycles among the binary's modules, and `cmd/` modules that import
/// each other.
fn binary_layering(root: &Path, problems: &mut Vec<String>) {
    let src = root.join("crates/tollgate/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        let text = without_tests(&std::fs::read_to_string(f).unwrap_or_default());
        let refs = crate_refs(&text);
        edges
            .entry(m.clone())
            .or_default()
            .extend(refs.into_iter().filter(|r| *r != m));
        // A subcommand's module may use `super::Context` and nothing else
        // of its siblings.
        if m == "cmd" && f.parent() == Some(src.join("cmd").as_path())
            || f.starts_with(src.join("cmd"))
        {
            let own = f
                .strip_prefix(src.join("cmd"))
                .ok()
                .and_then(|r| r.components().next())
                .and_then(|c| c.as_os_str().to_str())
                .map(|s| s.trim_end_matches(".rs").to_string())
                .unwrap_or_default();
            for (i, _) in text.match_indices("crate::cmd::") {
                let other: String = text[i + 12..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if other != own && other != "Context" {
                    problems.push(format!(
                        "{}: cmd/{own} imports cmd/{other}; what two subcommands share belongs outside cmd/",
                        f.display()
                    ));
                }
            }
            for (i, _) in text.match_indices("super::") {
                let other: String = text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let nested = f.parent() != Some(src.join("cmd").as_path());
                if !nested && own != "mod" && other != "Context" && !other.is_empty() {
                    problems.push(format!(
                        "{}: cmd/{own} uses super::{other}; subcommands share nothing but the Context",
                        f.display()
                    ));
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(
        n: &str,
        edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        state: &mut std::collections::BTreeMap<String, u8>,
        path: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if !edges.contains_key(m) {
                continue;
            }
            match state.get(m.as_str()).copied().unwrap_or(0) {
                0 => visit(m, edges, state, path, cycles),
                1 => {
                    let from = path.iter().position(|p| p == m).unwrap_or(0);
                    let mut c = path[from..].to_vec();
                    c.push(m.clone());
                    cycles.push(c);
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
    }
    let mut state: std::collections::BTreeMap<String, u8> = Default::default();
    let mut cycles = Vec::new();
    for n in edges.keys() {
        if !state.contains_key(n.as_str()) {
            visit(n, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    for c in cycles {
        problems.push(format!(
            "crates/tollgate: the binary's modules import each other in a cycle: {}",
            c.join(" → ")
        ));
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Runs every check; returns how many files were read.
pub fn check(root: &Path) -> Result<usize, String> {
    let mut problems = Vec::new();
    let mut files = 0;
    let crates = root.join("crates");
    let Ok(entries) = std::fs::read_dir(&crates) else {
        return Err(format!("no crates/ under {}", root.display()));
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let top = if lib.exists() { lib } else { main };
        match std::fs::read_to_string(&top) {
            Ok(text) if text.trim_start().starts_with("//!") => {}
            Ok(_) => problems.push(format!("{}: the crate has no //! overview", top.display())),
            Err(_) => problems.push(format!("crates/{name}: no src/lib.rs or src/main.rs")),
        }
        let mut src = Vec::new();
        rust_files(&dir.join("src"), &mut src);
        files += src.len();
        for f in &src {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            // Test modules may do what they like; the rest of the file, all
            // of it, may not.
            let body = without_tests(&text);
            let body = body.as_str();
            for bad in ["todo!(", "unimplemented!(", "dbg!("] {
                if body.contains(bad) {
                    problems.push(format!("{}: contains {bad}", f.display()));
                }
            }
            if renames(body) && !f.ends_with(ATOMIC_HELPER) {
                problems.push(format!(
                    "{}: renames a file itself; replace a file with state_dir::replace_atomically ({ATOMIC_HELPER}: temporary file, fsync, rename, fsync of the folder), the one place that renames",
                    f.display()
                ));
            }
            if PURE.contains(&name.as_str()) {
                for bad in FORBIDDEN {
                    if body.contains(bad) {
                        problems.push(format!("{}: pure crate `{name}` uses {bad}", f.display()));
                    }
                }
            }
        }
        if PURE.contains(&name.as_str()) {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
            let deps = manifest.split("[dev-dependencies]").next().unwrap_or("");
            for effect in EFFECT {
                if deps.lines().any(|l| {
                    l.trim_start().starts_with(&format!("{effect} "))
                        || l.trim_start().starts_with(&format!("{effect}="))
                        || l.trim_start().starts_with(&format!("{effect}."))
                }) {
                    problems.push(format!(
                        "crates/{name}: pure crate depends on effect crate `{effect}`"
                    ));
                }
            }
            for bad in FORBIDDEN_DEPS {
                if deps.lines().any(|l| {
                    l.trim_start().starts_with(&format!("{bad} "))
                        || l.trim_start().starts_with(&format!("{bad}="))
                        || l.trim_start().starts_with(&format!("{bad}."))
                }) {
                    problems.push(format!("crates/{name}: pure crate depends on `{bad}`"));
                }
            }
        }
    }
    if root.join("crates/tollgate/src").exists() {
        binary_layering(root, &mut problems);
    }
    pinned_once(root, &mut problems);
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(format!(
            "tidy found {} problems:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_repository_is_tidy() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let files = super::check(&root).unwrap_or_else(|e| panic!("{e}"));
        assert!(files > 10, "tidy read only {files} files");
    }

    #[test]
    fn tidy_catches_io_in_a_pure_crate() {
        let dir = std::env::temp_dir().join(format!("tidy-{}", std::process::id()));
        let src = dir.join("crates/policy/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("lib.rs"),
            "//! x\npub fn f() { let _ = std::fs::read(\"x\"); }\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("crates/policy/Cargo.toml"),
            "[dependencies]\ntollgate = { path = \"..\" }\n",
        )
        .unwrap();
        let err = super::check(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("uses std::fs"), "{err}");
        assert!(err.contains("depends on effect crate `tollgate`"), "{err}");
    }

    #[test]
    fn tidy_reads_past_a_test_module_and_a_clock_in_a_pure_crate() {
        let dir = std::env::temp_dir().join(format!("tidy-clock-{}", std::process::id()));
        let src = dir.join("crates/engine/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("lib.rs"),
            "//! x
#[cfg(test)]
mod tests { fn t() { let _ = std::fs::read(\"x\"); } }
pub fn f() -> jiff::Timestamp { jiff::Timestamp::now() }
",
        )
        .unwrap();
        std::fs::write(
            dir.join("crates/engine/Cargo.toml"),
            "[dependencies]
tokio = \"1\"
",
        )
        .unwrap();
        let err = super::check(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("uses Timestamp::now"), "{err}");
        assert!(!err.contains("std::fs"), "{err}");
        assert!(err.contains("depends on `tokio`"), "{err}");
    }

    #[test]
    fn tidy_refuses_a_cycle_among_the_binarys_modules() {
        let dir = std::env::temp_dir().join(format!("tidy-cycle-{}", std::process::id()));
        let src = dir.join("crates/tollgate/src");
        std::fs::create_dir_all(src.join("cmd")).unwrap();
        std::fs::write(
            src.join("main.rs"),
            "//! x
mod a;
mod b;
mod cmd;
",
        )
        .unwrap();
        std::fs::write(
            src.join("a.rs"),
            "use crate::b::x;
",
        )
        .unwrap();
        std::fs::write(
            src.join("b.rs"),
            "pub fn x() { crate::a::y() }
",
        )
        .unwrap();
        std::fs::write(
            src.join("cmd/mod.rs"),
            "mod one;
mod two;
",
        )
        .unwrap();
        std::fs::write(
            src.join("cmd/one.rs"),
            "use super::Context;
use crate::cmd::two::f;
",
        )
        .unwrap();
        std::fs::write(
            src.join("cmd/two.rs"),
            "pub fn f() {}
",
        )
        .unwrap();
        let err = super::check(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("in a cycle: a → b → a"), "{err}");
        assert!(err.contains("cmd/one imports cmd/two"), "{err}");
    }

    #[test]
    fn tidy_refuses_a_rename_outside_the_one_atomic_helper() {
        let dir = std::env::temp_dir().join(format!("tidy-rename-{}", std::process::id()));
        let src = dir.join("crates/tollgate/src");
        std::fs::create_dir_all(&src).unwrap();
        let api = dir.join("crates/api/src");
        std::fs::create_dir_all(&api).unwrap();
        std::fs::write(src.join("main.rs"), "//! x\nmod state_dir;\nmod status;\n").unwrap();
        std::fs::write(
            src.join("state_dir.rs"),
            "pub fn replace() { let _ = std::fs::rename(\"a\", \"b\"); }\n",
        )
        .unwrap();
        std::fs::write(
            src.join("status.rs"),
            "pub fn save() { std::fs::write(\"t\", \"x\").unwrap(); std::fs::rename(\"t\", \"f\").unwrap(); }
pub fn name(t: &mut Tenant) { t.rename(\"x\"); }
fn rename(x: u8) -> u8 { x }
#[cfg(test)]
mod tests { fn t() { let _ = std::fs::rename(\"a\", \"b\"); } }
",
        )
        .unwrap();
        std::fs::write(
            api.join("lib.rs"),
            "//! x\nuse tokio::fs::rename;\npub async fn f() { rename (\"a\", \"b\").await.unwrap(); }\n",
        )
        .unwrap();
        let err = super::check(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("status.rs: renames a file itself"), "{err}");
        assert!(
            err.contains("api/src/lib.rs: renames a file itself"),
            "{err}"
        );
        assert!(!err.contains("state_dir.rs: renames"), "{err}");
        assert_eq!(err.matches("renames a file itself").count(), 2, "{err}");
        assert!(!super::renames(
            "let t = tenant.rename(\"x\"); fn rename(a: u8) {}"
        ));
        assert!(super::renames("let r = libc::renameat2(a, b, c, d, 0);"));
        assert!(super::renames(
            "paths.iter().try_for_each(|(a, b)| fs::rename(a, b))"
        ));
    }
}
