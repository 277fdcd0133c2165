//! The history under `--state-dir`: opening it, and the traffic that is
//! recorded but not yet in a closed 5-minute sample.
//!
//! The daemon commits the accountant's state with every batch, and that
//! state holds the traffic already attributed to the slots still open. The
//! readers (`usage`, `realms`, `bill`) add it to the closed samples, so
//! that what they show is everything recorded up to the daemon's last read,
//! not only what was recorded up to the last 5-minute boundary.

use accounting::{AccountantState, OpenSample};
use clap::Args;
use history::{SqliteOptions, SqliteStore, Store};
use std::path::{Path, PathBuf};

/// The history file's name inside the state directory.
pub const HISTORY_FILE: &str = "history.sqlite";

/// The state directory unless `--state-dir` or `TOLLGATE_STATE_DIR` say
/// otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tollgate";

/// The state directory for code that is not handed `--state-dir`:
/// `TOLLGATE_STATE_DIR`, else the default.
pub fn state_dir_from_env() -> PathBuf {
    std::env::var_os("TOLLGATE_STATE_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from)
}

/// Where the history is and how it is billed; shared by every command that
/// reads or writes it.
#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// Where the daemon keeps its history (history.sqlite) and overage
    /// records.
    #[arg(long, env = "TOLLGATE_STATE_DIR", default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The daemon's settings file: [accounting] and [retention], and
    /// [billing]/[overage] for installs whose policy lacks them
    /// (docs/accounting.md) [default: /etc/tollgate/accounting.toml, or
    /// built-in defaults if that file does not exist].
    #[arg(long, env = "TOLLGATE_ACCOUNTING", value_name = "FILE")]
    pub accounting: Option<PathBuf>,
}

impl StateArgs {
    /// The settings file's settings alone (`--accounting`), before the
    /// policy's `[billing]` and `[overage]` are taken into account.
    pub fn file_settings(&self) -> Result<crate::settings::Settings, String> {
        crate::settings::Settings::load(self.accounting.as_deref())
    }

    /// The settings in force: the file's, with the policy's `[billing]`
    /// and `[overage]` when `loaded` holds a valid policy.
    pub fn settings(
        &self,
        loaded: Option<&policy::Loaded>,
    ) -> Result<crate::settings::Settings, String> {
        crate::settings::Settings::resolve(self.file_settings()?, loaded)
    }
}

/// Opens (creating if needed) the daemon's history.
pub fn open_for_daemon(dir: &Path) -> Result<SqliteStore, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the state directory {}: {e}\n  hint: pass --state-dir DIR, or create it for the daemon's user",
            dir.display()
        )
    })?;
    let path = dir.join(HISTORY_FILE);
    SqliteStore::open(&path, &SqliteOptions::default())
        .map_err(|e| format!("cannot open the history {}: {e}", path.display()))
}

/// Opens an existing history for reading; refuses to create one.
pub fn open_for_reading(dir: &Path) -> Result<SqliteStore, String> {
    let path = dir.join(HISTORY_FILE);
    if !path.exists() {
        return Err(format!(
            "there is no history at {}\n  hint: `tollgate run` records it; pass --state-dir (or set TOLLGATE_STATE_DIR) if it keeps it elsewhere",
            path.display()
        ));
    }
    SqliteStore::open(&path, &SqliteOptions { cache_mib: 16 })
        .map_err(|e| format!("cannot open the history {}: {e}", path.display()))
}

/// The accountant's state committed with the last batch, if any.
pub fn last_state(store: &dyn Store) -> Result<Option<(u64, AccountantState)>, String> {
    let Some(stored) = store
        .last_state()
        .map_err(|e| format!("cannot read the accounting state: {e}"))?
    else {
        return Ok(None);
    };
    let state = AccountantState::decode(&stored.blob).map_err(|e| {
        format!(
            "{e}\n  hint: this history was written by another tollgate version, or is damaged; move it aside to start a new one"
        )
    })?;
    Ok(Some((stored.sequence, state)))
}

/// Traffic recorded in slots that have not closed yet.
pub fn open_samples(store: &dyn Store) -> Result<Vec<OpenSample>, String> {
    Ok(last_state(store)?.map_or_else(Vec::new, |(_, s)| s.open_samples))
}

/// Bytes for people, in powers of 1024 as vnStat prints them.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}", units[i])
}

/// A count for people: `980`, `12.3k`, `4.5M`, as rtacct prints packets.
pub fn human_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=9_999_999 => format!("{:.1}k", n as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
        assert_eq!(human_count(980), "980");
        assert_eq!(human_count(12_345), "12.3k");
        assert_eq!(human_count(45_000_000), "45.0M");
    }
}
