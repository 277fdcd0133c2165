//! `tollgate routes import` on dumps that import nothing or skip records
//! (issue 12, item 29): an import of nothing is no success (exit 1, the
//! saved table untouched), and one that skips records says so, with the
//! count per reason, and still saves what it read. The dumps are built by
//! hand, record by record (RFC 6396 and RFC 8050), as
//! crates/bgp/tests/mrt/mod.rs builds its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.national]
id = 1
communities = ["65001:100"]

[realms.international]
id = 2

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

/// The test's folder (policy, dumps, state), removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("tg-import-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("policy.toml"), POLICY).unwrap();
        Dir(d)
    }

    fn table(&self) -> PathBuf {
        self.0.join("state/routes/table.tgr")
    }

    /// `tollgate routes import FILE` (plus `extra`) with this folder's
    /// policy and state, nothing from the environment.
    fn import(&self, dump: &[u8], extra: &[&str]) -> Output {
        let file = self.0.join("dump.mrt");
        std::fs::write(&file, dump).unwrap();
        self.tollgate(&["routes", "import", path(&file)], extra)
    }

    fn tollgate(&self, args: &[&str], extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .args(extra)
            .args(["-c", path(&self.0.join("policy.toml"))])
            .args(["--state-dir", path(&self.0.join("state"))])
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_STATE_DIR")
            .output()
            .expect("run tollgate")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One MRT record: timestamp, type, subtype, length, body.
fn record(kind: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
    let mut r = 0x5f5e_1000u32.to_be_bytes().to_vec();
    r.extend_from_slice(&kind.to_be_bytes());
    r.extend_from_slice(&subtype.to_be_bytes());
    r.extend_from_slice(&(body.len() as u32).to_be_bytes());
    r.extend_from_slice(body);
    r
}

const TABLE_DUMP: u16 = 12;
const TABLE_DUMP_V2: u16 = 13;
const BGP4MP: u16 = 16;

/// PEER_INDEX_TABLE: collector 192.0.2.100, view "test", one IPv4 peer
/// (192.0.2.1, AS 65001 in two bytes).
fn peer_index() -> Vec<u8> {
    let mut b = vec![192, 0, 2, 100, 0, 4];
    b.extend_from_slice(b"test");
    b.extend_from_slice(&[0, 1]);
    b.extend_from_slice(&[0, 192, 0, 2, 1, 192, 0, 2, 1, 0xfd, 0xe9]);
    record(TABLE_DUMP_V2, 1, &b)
}

/// RIB_IPV4_UNICAST (subtype 2, or multicast 3): one entry from peer 0
/// with ORIGIN, a 4-byte AS_PATH, NEXT_HOP and, if `national`,
/// COMMUNITY 65001:100.
fn rib4(subtype: u16, sequence: u32, prefix: [u8; 3], national: bool) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0];
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9]);
    attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]);
    if national {
        attrs.extend_from_slice(&[0xc0, 8, 4, 0xfd, 0xe9, 0, 100]);
    }
    let mut b = sequence.to_be_bytes().to_vec();
    b.push(24);
    b.extend_from_slice(&prefix);
    b.extend_from_slice(&[0, 1]); // one entry
    b.extend_from_slice(&[0, 0]); // peer index 0
    b.extend_from_slice(&0x5f00_0000u32.to_be_bytes());
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    record(TABLE_DUMP_V2, subtype, &b)
}

/// Records the importer skips: two BGP4MP updates, a multicast RIB, a
/// TABLE_DUMP (version 1) record and a TABLE_DUMP_V2 subtype no RFC
/// defines.
fn skipped_records() -> Vec<u8> {
    let mut d = record(BGP4MP, 4, &[0; 8]);
    d.extend(record(BGP4MP, 4, &[0; 8]));
    d.extend(rib4(3, 7, [203, 0, 113], true));
    d.extend(record(TABLE_DUMP, 1, &[0; 8]));
    d.extend(record(TABLE_DUMP_V2, 99, &[0; 8]));
    d
}

/// Warnings naming every reason of `skipped_records` with its count.
fn assert_skipped_warnings(err: &str) {
    for line in [
        "warning: ",
        "skipped 2 BGP4MP update records",
        "skipped 1 multicast RIB records",
        "skipped 1 TABLE_DUMP (version 1) records",
        "skipped 1 TABLE_DUMP_V2 records of unknown subtype 99",
    ] {
        assert!(err.contains(line), "no `{line}` in:\n{err}");
    }
}

#[test]
fn an_import_of_a_peer_table_alone_fails_and_keeps_the_saved_table() {
    let d = Dir::new("empty");
    // First a good import, so that there is a table to keep.
    let mut good = peer_index();
    good.extend(rib4(2, 0, [198, 51, 100], true));
    let o = d.import(&good, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let before = std::fs::read(d.table()).unwrap();

    let o = d.import(&peer_index(), &[]);
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an import of nothing succeeded: {err}"
    );
    assert!(
        err.contains("dump.mrt has no RIB entries (0 records skipped)")
            && err.contains("the saved table was not changed"),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert_eq!(std::fs::read(d.table()).unwrap(), before);

    // The same with --json: still a failure, and nothing on stdout that
    // could pass for an import.
    let o = d.import(&peer_index(), &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert_eq!(std::fs::read(d.table()).unwrap(), before);
}

#[test]
fn an_import_of_only_skipped_records_fails_and_names_every_reason() {
    let d = Dir::new("skipped");
    let mut dump = peer_index();
    dump.extend(skipped_records());
    let o = d.import(&dump, &[]);
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an import of nothing succeeded: {err}"
    );
    assert_skipped_warnings(&err);
    assert!(
        err.contains("has no RIB entries (5 records skipped)")
            && err.contains("the saved table was not changed"),
        "{err}"
    );
    assert!(!d.table().exists(), "a table was saved from nothing");
    // Without even a peer table: BGP4MP updates alone (a common mistake:
    // an updates file for a RIB dump).
    let o = d.import(&record(BGP4MP, 4, &[0; 8]), &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("skipped 1 BGP4MP update records") && err.contains("not BGP4MP update files"),
        "{err}"
    );
    assert!(!d.table().exists());
}

#[test]
fn an_import_that_skips_records_succeeds_with_a_warning_naming_the_counts() {
    let d = Dir::new("partial");
    let mut dump = peer_index();
    dump.extend(rib4(2, 0, [198, 51, 100], true));
    dump.extend(skipped_records());
    dump.extend(rib4(2, 1, [192, 0, 2], false));
    let o = d.import(&dump, &[]);
    let err = text(&o.stderr);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_skipped_warnings(&err);
    assert!(out.contains("imported 2 entries: 2 prefixes"), "{out}");
    assert!(
        out.contains("0 bad records or entries, 5 records of other types skipped"),
        "{out}"
    );
    // What was read is saved, with its realms.
    let o = d.tollgate(&["routes", "lookup", "198.51.100.7", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["realm"]["id"], 1, "{v}");
    let o = d.tollgate(&["routes", "lookup", "192.0.2.9", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["realm"]["id"], 2, "{v}");
    // The multicast route was skipped, not imported.
    let o = d.tollgate(&["routes", "lookup", "203.0.113.1", "--json"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));

    // --json carries the same counts.
    let o = d.import(&dump, &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_skipped_warnings(&text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["prefixes"], 2, "{v}");
    assert_eq!(v["skipped_records"], 5, "{v}");
    assert_eq!(
        v["skipped"]["BGP4MP update records (a RIB dump is needed)"], 2,
        "{v}"
    );
}

/// Issue 12, item 9: `routes import --state-dir X` writes the table the
/// other commands given `--state-dir X` read (the daemon included: they
/// share `StateDir`), whatever `TOLLGATE_STATE_DIR` says; a command given
/// only the variable reads the variable's folder.
#[test]
fn the_routes_table_lives_in_the_state_dir_given_not_the_environments() {
    let d = Dir::new("state-dir");
    let decoy = d.0.join("decoy");
    std::fs::create_dir_all(&decoy).unwrap();
    let mut dump = peer_index();
    dump.extend(rib4(2, 0, [198, 51, 100], true));
    let file = d.0.join("dump.mrt");
    std::fs::write(&file, &dump).unwrap();
    let policy = d.0.join("policy.toml");
    let tollgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .args(["-c", path(&policy)])
            .env_remove("TOLLGATE_CONFIG")
            .env("TOLLGATE_STATE_DIR", &decoy)
            .output()
            .expect("run tollgate")
    };
    let state = d.0.join("state");
    let o = tollgate(&["routes", "import", path(&file), "--state-dir", path(&state)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(d.table().is_file(), "the table is not under --state-dir");
    assert!(
        !decoy.join("routes").exists(),
        "the import wrote into TOLLGATE_STATE_DIR"
    );
    let o = tollgate(&[
        "routes",
        "lookup",
        "198.51.100.7",
        "--json",
        "--state-dir",
        path(&state),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["realm"]["id"], 1, "{v}");
    // Without --state-dir the variable's (empty) folder is read.
    let o = tollgate(&["routes", "lookup", "198.51.100.7", "--json"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o.stdout));
}
