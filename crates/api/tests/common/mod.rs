//! The API's state as the daemon builds it, for tests that drive the
//! router in-process.

use api::AppState;
use engine::snapshot::Snapshot;
use std::path::Path;
use std::sync::Arc;

/// State serving `snapshot` (the sender is dropped: the receiver keeps
/// it), reading the history through `open`, with the routes table and
/// the flow collector's status in `dir`, no tokens and no commands.
pub fn app_state(snapshot: Snapshot, dir: &Path, open: api::stores::Opener) -> AppState {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(snapshot));
    drop(tx);
    let files = api::files::Files::new(dir.join("routes/table.tgr"), dir.join("flows-status.json"));
    AppState {
        metrics: api::metrics::registry(rx.clone(), files.clone()),
        snapshot: rx,
        stores: api::stores::Stores::new(open),
        commands: Arc::new(|_| None),
        tokens: api::tokens::Tokens::new(None),
        failures: Arc::default(),
        open: Arc::default(),
        files,
        metrics_public: false,
    }
}
