//! What the flow collector's module still calls by its old names; each
//! forwards to the piece that owns it now.

use std::path::{Path, PathBuf};

/// The state directory from the environment, else the default.
pub fn state_dir_from_env() -> PathBuf {
    std::env::var_os("TOLLGATE_STATE_DIR")
        .map_or_else(|| PathBuf::from(crate::state_dir::DEFAULT), PathBuf::from)
}

/// Opens (creating if needed) the history under `dir`.
pub fn open_for_daemon(dir: &Path) -> Result<history::SqliteStore, String> {
    crate::state_dir::StateDir::new(dir)
        .open_history()
        .map_err(|e| e.to_string())
}

/// See [`crate::output::bytes`].
pub fn human_bytes(bytes: u64) -> String {
    crate::output::bytes(bytes)
}

/// See [`crate::output::count`].
pub fn human_count(n: u64) -> String {
    crate::output::count(n)
}
