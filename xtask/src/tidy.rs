//! Architecture invariants, checked mechanically.
//!
//! - The pure crates do no I/O and read no clock: no `std::fs`,
//!   `std::process`, `std::net::*Socket`, `SystemTime` or `Instant`.
//! - The pure crates depend on no effect crate.
//! - Every crate has a `//!` overview.
//! - No `todo!`/`unimplemented!`/`dbg!` outside tests.

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
];
/// Crates that may touch the world.
const EFFECT: &[&str] = &[
    "tollgate",
    "linux-dataplane",
    "history",
    "bgp-speaker",
    "flow-collector",
];
/// Text that marks I/O or a clock in a pure crate.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::process",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "SystemTime",
    "Instant::now",
    "std::env::var",
];

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
            // Unit tests at the bottom of a file may do what they like.
            let body = text.split("#[cfg(test)]").next().unwrap_or("");
            for bad in ["todo!(", "unimplemented!(", "dbg!("] {
                if body.contains(bad) {
                    problems.push(format!("{}: contains {bad}", f.display()));
                }
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
                }) {
                    problems.push(format!(
                        "crates/{name}: pure crate depends on effect crate `{effect}`"
                    ));
                }
            }
        }
    }
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
}
