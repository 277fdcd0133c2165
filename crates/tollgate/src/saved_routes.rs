//! The saved routes table (`routes/table.tgr` in the state directory):
//! reading it, saving it, and the realms the compiler gets from it.
//!
//! # Fail closed
//!
//! A table that exists but cannot be read (damaged, unreadable, written by
//! a newer tollgate) is never taken to mean "no routes": that would
//! reconcile every route realm out of the kernel. A one-shot command
//! refuses to go on; the daemon keeps the last table it read well, reports
//! the error (log, `status`, metric) and tries again when the file
//! changes. Only a table that is *absent* means no route realms.
//!
//! # Read again only when it changes
//!
//! A full table takes a second or more to decode and classify, too much
//! for every reconcile round, so the file is read again only when its
//! inode, size or modification time change, and [`Refresh::Changed`] is
//! reported only when the realms it yields really changed, so that users
//! that rebuild something from them (the flow collector's tables) do so
//! only then. Realms depend on the policy's rules too: [`SavedRoutes::rules_changed`]
//! makes the next read classify again.

use crate::error::{Error, Result};
use net_types::{Prefix, RealmId};
use policy::Policy;
use routes::snapshot::Snapshot;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// What identifies one version of the file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    inode: u64,
    len: u64,
    modified_ns: i128,
}

fn fingerprint(path: &Path) -> std::io::Result<Option<Fingerprint>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Fingerprint {
            inode: m.ino(),
            len: m.len(),
            modified_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The saved table's realms, read again only when the file changes.
pub struct SavedRoutes {
    path: PathBuf,
    /// The file last read well: `Some(None)` is "absent", `None` is "not
    /// read yet".
    seen: Option<Option<Fingerprint>>,
    realms: Vec<(Prefix, RealmId)>,
    error: Option<String>,
    /// The version of the file that could not be read: not read again
    /// until it changes.
    failed: Option<Fingerprint>,
}

/// What [`SavedRoutes::refresh`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// The realms are what they were.
    Unchanged,
    /// The realms changed.
    Changed,
    /// The file could not be read; the last good realms are kept.
    Failed(String),
}

impl SavedRoutes {
    /// The table at `path`, not read yet.
    pub fn new(path: PathBuf) -> SavedRoutes {
        SavedRoutes {
            path,
            seen: None,
            realms: Vec::new(),
            error: None,
            failed: None,
        }
    }

    /// Makes the next read classify the routes again (the policy's realm
    /// rules changed).
    pub fn rules_changed(&mut self) {
        self.seen = None;
        self.failed = None;
    }

    /// The last read's error, while the file stays unreadable.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The realms last read well.
    pub fn current(&self) -> &[(Prefix, RealmId)] {
        &self.realms
    }

    /// Reads the file again if it changed; on failure keeps the last good
    /// realms and says why.
    pub fn refresh(&mut self, policy: &Policy) -> Refresh {
        let now = match fingerprint(&self.path) {
            Ok(f) => f,
            Err(e) => return self.failed(format!("cannot read {}: {e}", self.path.display())),
        };
        if self.seen == Some(now) {
            return Refresh::Unchanged;
        }
        if now.is_some() && now == self.failed {
            // Still the file that failed: the error stands.
            return Refresh::Unchanged;
        }
        let realms = match now {
            None => Vec::new(),
            Some(_) => match load(&self.path) {
                Ok(s) => classify(&s, policy),
                Err(e) => {
                    self.failed = now;
                    return self.failed(e.to_string());
                }
            },
        };
        self.seen = Some(now);
        self.error = None;
        self.failed = None;
        if realms == self.realms {
            return Refresh::Unchanged;
        }
        self.realms = realms;
        Refresh::Changed
    }

    fn failed(&mut self, message: String) -> Refresh {
        self.error = Some(message.clone());
        Refresh::Failed(message)
    }

    /// The realms for a one-shot command: refuses to go on if the table
    /// exists but cannot be read.
    pub fn realms(&mut self, policy: &Policy) -> Result<&[(Prefix, RealmId)]> {
        self.refresh(policy);
        if let Some(e) = self.error.clone() {
            return Err(Error::runtime(format!(
                "{e}\nnothing was changed: without the routes table the route realms would be removed from the kernel"
            ))
            .hint("run `tollgate routes import FILE` again to rebuild it, or remove the file to run without route realms"));
        }
        Ok(&self.realms)
    }
}

/// The realm of every saved best route, by `policy`'s current realm rules
/// (not the rules in force when the table was saved, so that editing the
/// rules takes effect at the next apply).
pub fn classify(s: &Snapshot, policy: &Policy) -> Vec<(Prefix, RealmId)> {
    let rules = routes::RealmRules::from_policy(&policy.realms);
    s.routes
        .iter()
        .filter_map(|r| {
            let peer = s.peers.get(r.peer as usize).map(|p| p.addr);
            let attrs = s.attrs.get(r.attrs as usize)?;
            Some((r.prefix, rules.classify(peer, attrs).realm))
        })
        .collect()
}

/// Reads and decodes the table.
pub fn load(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::runtime(format!("cannot read the routes table {}: {e}", path.display())).hint(
            "run `tollgate routes import FILE` (or `routes listen`) first, or point --state-dir at the folder it used",
        )
    })?;
    Snapshot::decode(&bytes).map_err(|e| {
        Error::runtime(format!("{} is damaged {e}", path.display()))
            .hint("run `tollgate routes import FILE` again to rebuild it")
    })
}

/// Writes the table so that a crash leaves the old one or the new one.
pub fn save(snapshot: &Snapshot, path: &Path) -> Result<()> {
    crate::crash_point::reached("routes-snapshot");
    crate::state_dir::replace_atomically(path, &snapshot.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let text = "[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = { down = \"10mbit\", up = \"10mbit\" }\n[realms]\ndefault = \"world\"\n[realms.world]\nid = 2\n";
        let loaded = policy::load_str("t.toml", text);
        let rendered = loaded.render();
        loaded.policy.unwrap_or_else(|| panic!("{rendered}"))
    }

    #[test]
    fn an_absent_table_is_read_once_and_never_reported_as_changed() {
        let dir = std::env::temp_dir().join(format!("tg-routes-absent-{}", std::process::id()));
        let mut r = SavedRoutes::new(dir.join("routes/table.tgr"));
        let p = policy();
        for _ in 0..5 {
            assert_eq!(r.refresh(&p), Refresh::Unchanged);
        }
        assert!(r.current().is_empty());
    }

    /// A table imported from BIRD's MRT dump (with ADD-PATH), saved at
    /// `path` as `routes import` saves it.
    fn save_good_table(path: &Path) {
        let dump = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../bgp/tests/data/bird-addpath/master4.mrt"),
        )
        .unwrap();
        let mut importer =
            routes::import::Importer::new(routes::RealmRules::from_policy(&policy().realms));
        importer.read(&dump, |_, _| {});
        let (snapshot, report) = importer.finish("master4.mrt", 0);
        assert!(report.prefixes > 0, "{report:?}");
        save(&snapshot, path).unwrap();
    }

    #[test]
    fn a_damaged_table_keeps_the_last_good_realms_and_refuses_one_shot_commands() {
        // Issue 12, item 7: a table read well, then damaged (garbage, then
        // cut in half): the good realms stay, the error is reported, and
        // no change is ever reported for it.
        struct Dir(PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = Dir(std::env::temp_dir().join(format!("tg-routes-bad-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        let path = dir.0.join("routes/table.tgr");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        save_good_table(&path);
        let good_bytes = std::fs::read(&path).unwrap();
        let p = policy();
        let mut r = SavedRoutes::new(path.clone());
        assert_eq!(r.refresh(&p), Refresh::Changed);
        assert_eq!(r.error(), None);
        let good = r.current().to_vec();
        assert!(!good.is_empty());
        assert_eq!(r.realms(&p).unwrap(), &good[..]);

        for damaged in [
            b"not a table".to_vec(),
            good_bytes[..good_bytes.len() / 2].to_vec(),
        ] {
            std::fs::write(&path, &damaged).unwrap();
            let Refresh::Failed(e) = r.refresh(&p) else {
                panic!("a damaged table is an error");
            };
            assert!(e.contains("damaged"), "{e}");
            assert_eq!(r.error(), Some(e.as_str()));
            assert_eq!(r.current(), &good[..], "the last good realms are kept");
            // Read again while it stays damaged: still the error, still
            // the good realms, and never a change.
            for _ in 0..3 {
                assert_eq!(r.refresh(&p), Refresh::Unchanged);
                assert_eq!(r.error(), Some(e.as_str()));
                assert_eq!(r.current(), &good[..]);
            }
            // A one-shot command refuses rather than go on without them.
            let refused = r.realms(&p).unwrap_err().to_string();
            assert!(refused.contains("nothing was changed"), "{refused}");
        }

        // The good table back: the error clears, and since its realms are
        // the ones in force, nothing changed.
        save(&Snapshot::decode(&good_bytes).unwrap(), &path).unwrap();
        assert_eq!(r.refresh(&p), Refresh::Unchanged);
        assert_eq!(r.error(), None);
        assert_eq!(r.realms(&p).unwrap(), &good[..]);

        // A fresh reader (a one-shot command) of a damaged table refuses.
        std::fs::write(&path, b"not a table").unwrap();
        let mut fresh = SavedRoutes::new(path.clone());
        assert!(matches!(fresh.refresh(&p), Refresh::Failed(_)));
        assert!(fresh.current().is_empty());
        assert!(fresh.realms(&p).is_err());
    }
}
