//! The state directory and every file in it.
//!
//! One type owns the layout, so that every command (and the daemon) finds
//! the same file in the same place: the directory comes from `--state-dir`
//! (or `TOLLGATE_STATE_DIR`), once, in `main`, and is handed down.
//!
//! | file | written by | what |
//! |---|---|---|
//! | `history.sqlite` | the daemon | samples, rollups, bills, accounting state |
//! | `overage.json` | the daemon | tenants it moved into the overage plan |
//! | `overage-release/ID` | `overage release` | a release request, until carried out |
//! | `routes/table.tgr` | `routes import`, `routes listen`, the daemon's speaker | the saved routes table |
//! | `flows-status.json` | the flow collector | its counters, for `flows status` |
//! | `flows-quarantine.jsonl` | the flow collector | records refused as implausible |
//! | `vifs-offline.json` | `hook vif offline` | interfaces whose VM is going |
//! | `guard-state.json` | `guard watch` | the ladder's incidents and rungs, restored at start |
//! | `transit-guard.json` | the daemon | the transit guard's steps in force and its last actions |
//! | `transit-relax` | `transit relax` | a relax request, until the daemon carries it out |
//!
//! Files that must survive a crash whole are replaced with
//! [`replace_atomically`]: a crash leaves the old file or the new one.
//! This file is the only place in the workspace that renames a file
//! (`cargo xtask tidy` refuses a rename anywhere else), so no file can be
//! replaced without the fsyncs that make that true.

use crate::error::{Error, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The state directory unless `--state-dir` or `TOLLGATE_STATE_DIR` say
/// otherwise.
pub const DEFAULT: &str = "/var/lib/tollgate";

/// The state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The history store.
    pub fn history(&self) -> PathBuf {
        self.root.join("history.sqlite")
    }

    /// The overage automation's records.
    pub fn overage_records(&self) -> PathBuf {
        self.root.join("overage.json")
    }

    /// The folder of overage release requests.
    pub fn overage_requests(&self) -> PathBuf {
        self.root.join("overage-release")
    }

    /// The saved routes table.
    pub fn routes_table(&self) -> PathBuf {
        self.root.join("routes").join("table.tgr")
    }

    /// The guard's ladder state (`guard watch`, `run`).
    pub fn guard_state(&self) -> PathBuf {
        self.root.join("guard-state.json")
    }

    /// The guard's ended attacks, one JSON line each (`guard history`);
    /// the one before at `guard-history.jsonl.1`.
    pub fn guard_history(&self) -> PathBuf {
        self.root.join("guard-history.jsonl")
    }

    /// The guard's status as the daemon last wrote it (`guard status`).
    pub fn guard_status(&self) -> PathBuf {
        self.root.join("guard-status.json")
    }

    /// Latency's figures and alarms as the daemon last published them
    /// (what `tollgate latency` reads; the shape of `GET /api/v1/latency`).
    pub fn latency_status(&self) -> PathBuf {
        self.root.join("latency-status.json")
    }

    /// Bans and unbans `tollgate guard ban|unban` leave for the daemon
    /// (`NAME.json`), and its answers (`NAME.answer`).
    pub fn guard_requests(&self) -> PathBuf {
        self.root.join("guard-requests")
    }

    /// The transit guard's state (the daemon's, restored at start).
    pub fn transit_guard(&self) -> PathBuf {
        self.root.join("transit-guard.json")
    }

    /// A relax request `tollgate transit relax` leaves for the daemon.
    pub fn transit_relax(&self) -> PathBuf {
        self.root.join("transit-relax")
    }

    /// Interfaces taken offline by `hook vif offline`.
    pub fn offline_vifs(&self) -> PathBuf {
        self.root.join("vifs-offline.json")
    }

    /// Opens (creating if needed) the history, for the daemon and the
    /// flow collector.
    pub fn open_history(&self) -> Result<history::SqliteStore> {
        self.create()?;
        let path = self.history();
        history::SqliteStore::open(&path, &history::SqliteOptions::default())
            .map_err(|e| Error::runtime(format!("cannot open the history {}: {e}", path.display())))
    }

    /// Opens an existing history for reading; refuses to create one.
    pub fn read_history(&self) -> Result<history::SqliteStore> {
        let path = self.history();
        if !path.exists() {
            return Err(Error::runtime(format!("there is no history at {}", path.display())).hint(
                "`tollgate run` records it; pass --state-dir (or set TOLLGATE_STATE_DIR) if it keeps it elsewhere",
            ));
        }
        history::SqliteStore::open(&path, &history::SqliteOptions { cache_mib: 16 })
            .map_err(|e| Error::runtime(format!("cannot open the history {}: {e}", path.display())))
    }

    /// Opens the history the policy's `[history]` names: the SQLite file
    /// here (created if `create`, for the daemon and the flow collector;
    /// else it must exist), or a database on a ClickHouse server
    /// (docs/clickhouse.md).
    pub fn history_store(
        &self,
        history: Option<&policy::History>,
        create: bool,
    ) -> Result<Box<dyn history::Store + Send>> {
        match history.map(|h| &h.store) {
            Some(policy::HistoryStore::ClickHouse { url, database }) => {
                let options = clickhouse(url, database);
                history_clickhouse::ClickHouseStore::open(&options)
                    .map(|s| Box::new(s) as Box<dyn history::Store + Send>)
                    .map_err(|e| {
                        Error::runtime(format!(
                            "cannot open the history in ClickHouse at {url} (database {database}): {e}"
                        ))
                        .hint("check that the server runs, and [history] url and database in the policy")
                    })
            }
            _ if create => Ok(Box::new(self.open_history()?)),
            _ => Ok(Box::new(self.read_history()?)),
        }
    }

    /// The daemon's copy of the last batch a ClickHouse history committed
    /// (`accounting_copy.rs` reads and writes it).
    pub fn accounting_copy(&self) -> PathBuf {
        self.root.join("accounting-copy")
    }

    /// The daemon's history: as [`StateDir::history_store`] creates it,
    /// except that a ClickHouse store connects at its first use and again
    /// at each use until the server answers, so that the daemon starts,
    /// shapes and accounts while the server is away. `true` with it when
    /// it is ClickHouse.
    pub fn daemon_history(
        &self,
        history: Option<&policy::History>,
    ) -> Result<(Box<dyn history::Store + Send>, bool)> {
        match history.map(|h| &h.store) {
            Some(policy::HistoryStore::ClickHouse { url, database }) => {
                let options = clickhouse(url, database);
                let store =
                    history_clickhouse::ClickHouseStore::open_lazily(&options).map_err(|e| {
                        Error::invalid(format!(
                            "[history] ClickHouse at {url} (database {database}): {e}"
                        ))
                    })?;
                Ok((Box::new(store), true))
            }
            _ => Ok((Box::new(self.open_history()?), false)),
        }
    }

    /// An agent's shipping ledger: what the central holds from it
    /// (docs/agents.md).
    pub fn shipping_ledger(&self) -> PathBuf {
        self.root.join("shipping-ledger.json")
    }

    /// On a central, where the agents stand, for `tollgate status`.
    pub fn agents_status(&self) -> PathBuf {
        self.root.join("agents-status.json")
    }

    /// An agent's shipping status, for `tollgate status`.
    pub fn shipping_status(&self) -> PathBuf {
        self.root.join("shipping-status.json")
    }

    /// The flow collector's status.
    pub fn flows_status(&self) -> PathBuf {
        self.root.join("flows-status.json")
    }

    /// Creates the directory (and its parents) if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| {
            Error::runtime(format!(
                "cannot create the state directory {}: {e}",
                self.root.display()
            ))
            .hint("pass --state-dir DIR (or set TOLLGATE_STATE_DIR) for a folder you can write")
        })
    }
}

/// The options of the ClickHouse history at `url`, database `database`.
fn clickhouse(url: &str, database: &str) -> history_clickhouse::ClickHouseOptions {
    history_clickhouse::ClickHouseOptions {
        url: url.to_string(),
        database: database.to_string(),
        ..history_clickhouse::ClickHouseOptions::default()
    }
}

/// Replaces `path`'s contents so that a crash at any moment leaves either
/// the old file or the new one, never half of each, and never neither:
/// the new text goes to a temporary file in the same folder, which is
/// flushed to disk, renamed over the old one, and then the folder itself
/// is flushed so that the rename is on disk too. The folder is created if
/// needed.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        Error::runtime(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("create the folder of", e))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tollgate-new"));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    crate::crash_point::reached("before-rename");
    move_durably(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Renames `from` to `to` (replacing `to`, in the same folder) and
/// flushes the folder, so that the rename itself survives a crash: for a
/// file set aside whole, as the flow quarantine's rotation does.
pub fn move_durably(from: &Path, to: &Path) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        Error::runtime(format!("cannot {what} {}: {e}", to.display()))
    };
    std::fs::rename(from, to).map_err(|e| fail("replace", e))?;
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("flush the folder of", e))
}

/// Removes `path` (absent already is fine) and flushes its folder, so that
/// after a power cut the file does not come back: a file whose presence
/// means "still to do" must stay gone once done.
pub fn remove_durably(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot remove {}: {e}",
                path.display()
            )))
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| {
            Error::runtime(format!(
                "cannot flush the folder of {}: {e}",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_lives_under_the_one_root() {
        let s = StateDir::new("/srv/tg");
        for p in [
            s.history(),
            s.overage_records(),
            s.overage_requests(),
            s.routes_table(),
            s.offline_vifs(),
            s.guard_state(),
            s.guard_status(),
            s.guard_requests(),
            s.transit_guard(),
            s.transit_relax(),
            s.latency_status(),
        ] {
            assert!(p.starts_with("/srv/tg"), "{}", p.display());
        }
    }

    #[test]
    fn a_replaced_file_has_the_new_text_and_no_leftovers() {
        let dir = std::env::temp_dir().join(format!("tg-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("f.json");
        replace_atomically(&path, b"old").unwrap();
        replace_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_moved_file_replaces_its_target_and_a_missing_one_names_the_target() {
        let dir = std::env::temp_dir().join(format!("tg-move-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (from, to) = (dir.join("q.jsonl"), dir.join("q.1.jsonl"));
        std::fs::write(&from, "new").unwrap();
        std::fs::write(&to, "old").unwrap();
        move_durably(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "new");
        assert!(!from.exists());
        let e = move_durably(&from, &to).unwrap_err().to_string();
        assert!(e.contains("q.1.jsonl"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
