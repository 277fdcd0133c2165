//! What the flow collector's module still calls by its old names; each
//! forwards to the piece that owns it now.

use std::path::Path;

/// Opens (creating if needed) the history under `dir`, or the one the
/// policy's `[history]` names.
pub fn open_for_daemon(
    dir: &Path,
    history: Option<&policy::History>,
) -> Result<Box<dyn history::Store + Send>, String> {
    crate::state_dir::StateDir::new(dir)
        .history_store(history, true)
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
