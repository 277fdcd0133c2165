//! `latency-status.json`, as the daemon last wrote it: read by `tollgate
//! latency` and `tollgate status`.

use crate::error::{Error, Result};
use crate::state_dir::StateDir;
use std::time::Duration;

/// Older than this, the daemon is not writing it.
pub const STALE: Duration = Duration::from_secs(5);

/// The status, or `None` if the daemon never wrote one here.
pub fn read(state: &StateDir) -> Result<Option<api::latency::LatencyStatus>> {
    let path = state.latency_status();
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| Error::runtime(format!("{} cannot be read: {e}", path.display())))
}

/// Whether `s` is older than [`STALE`].
pub fn stale(s: &api::latency::LatencyStatus) -> bool {
    let age = jiff::Timestamp::now().duration_since(s.as_of);
    age > jiff::SignedDuration::try_from(STALE).unwrap_or_default()
}
