//! `tollgate --help` and every subcommand's help, the manual pages
//! (`tollgate man`) and the shell completions (`tollgate completions
//! bash|zsh|fish`) list the same commands. All are made from the same
//! clap definitions; this catches a generator that drops or invents a
//! command (and a package built from an older binary than the CLI).
//!
//! Commands are compared as space-separated paths (`routes import`),
//! clap's own `help` left out.

use std::collections::BTreeSet;
use std::process::Command;

fn tollgate(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .expect("run tollgate");
    assert!(
        o.status.success(),
        "tollgate {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8")
}

/// The names in a help text's `Commands:` section.
fn help_commands(help: &str) -> Vec<String> {
    let Some(start) = help.find("\nCommands:\n") else {
        return Vec::new();
    };
    help[start + 11..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path, by walking `--help` down.
fn from_help() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        out.insert(path.join(" "));
        for sub in help_commands(&tollgate(&args)) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
    }
    out
}

fn path_of_page(name: &str) -> String {
    name.strip_prefix("tollgate")
        .unwrap_or(name)
        .trim_start_matches('-')
        .replace('-', " ")
}

/// The pages written, and the pages each page lists under SUBCOMMANDS.
fn from_man() -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = std::env::temp_dir().join(format!("tg-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tollgate(&["man", dir.to_str().unwrap()]);
    let mut files = BTreeSet::new();
    let mut listed = BTreeSet::from([String::new()]);
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let page = name.strip_suffix(".1").expect("a section 1 page");
        files.insert(path_of_page(page));
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(text.contains(".SH NAME"), "{name} is not a manual page");
        if let Some(at) = text.find(".SH SUBCOMMANDS") {
            let section = text[at..].split("\n.SH ").next().unwrap_or("");
            for l in section.lines().filter(|l| l.ends_with("(1)")) {
                let page = l.trim_end_matches("(1)").replace("\\-", "-");
                if !page.ends_with("-help") {
                    listed.insert(path_of_page(&page));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    (files, listed)
}

fn from_bash() -> BTreeSet<String> {
    tollgate(&["completions", "bash"])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cmd=\"tollgate"))
        .filter_map(|l| l.strip_suffix('"'))
        .map(|l| {
            l.split("__subcmd__")
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.split(' ').any(|w| w == "help"))
        .collect()
}

fn from_zsh() -> BTreeSet<String> {
    let script = tollgate(&["completions", "zsh"]);
    let mut out = BTreeSet::from([String::new()]);
    let mut current: Option<String> = None;
    for l in script.lines() {
        if let Some(f) = l.strip_suffix("_commands() {") {
            // `_tollgate_commands` (the top) or `_tollgate__subcmd__routes_commands`.
            let path: Vec<&str> = f
                .trim_start_matches("_tollgate")
                .split("__subcmd__")
                .filter(|s| !s.is_empty())
                .collect();
            current = (!path.contains(&"help")).then(|| path.join(" "));
        } else if l.starts_with('}') {
            current = None;
        } else if let (Some(parent), Some(rest)) = (&current, l.strip_prefix('\'')) {
            let name = rest.split(':').next().unwrap_or("");
            if !name.is_empty() && name != "help" {
                out.insert(format!("{parent} {name}").trim().to_string());
            }
        }
    }
    out
}

fn from_fish() -> BTreeSet<String> {
    let mut out = BTreeSet::from([String::new()]);
    for l in tollgate(&["completions", "fish"]).lines() {
        let Some((cond, rest)) = l
            .strip_prefix("complete -c tollgate -n \"")
            .and_then(|r| r.split_once('"'))
        else {
            continue;
        };
        let Some(name) = rest
            .strip_prefix(" -f -a \"")
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if name == "help" || cond.contains("__fish_seen_subcommand_from help") {
            continue;
        }
        if cond == "__fish_tollgate_needs_command" {
            out.insert(name.to_string());
        } else if let Some(parent) = cond
            .strip_prefix("__fish_tollgate_using_subcommand ")
            .and_then(|c| c.split(';').next())
            .filter(|p| *p != "help" && cond.contains("and not __fish_seen_subcommand_from"))
        {
            out.insert(format!("{parent} {name}"));
        }
    }
    out
}

#[test]
fn help_man_pages_and_completions_list_the_same_commands() {
    let help = from_help();
    // A sanity floor, so that a parser reading nothing cannot pass.
    for must in [
        "",
        "check",
        "import",
        "import libreqos",
        "routes import",
        "man",
        "completions",
    ] {
        assert!(help.contains(must), "--help lacks `{must}`: {help:?}");
    }
    let (pages, listed) = from_man();
    assert_eq!(pages, help, "manual pages written vs --help");
    assert_eq!(listed, help, "pages listed under SUBCOMMANDS vs --help");
    assert_eq!(from_bash(), help, "bash completions vs --help");
    assert_eq!(from_zsh(), help, "zsh completions vs --help");
    assert_eq!(from_fish(), help, "fish completions vs --help");
}
