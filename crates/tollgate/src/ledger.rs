//! What the flow collector's module still calls by its old names; each
//! forwards to the piece that owns it now.

use std::path::Path;

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
