//! The overage automation's files in the state directory: its records
//! (`overage.json`, written only by the daemon) and the release requests
//! `tollgate overage release` leaves for it (`overage-release/ID`).
//!
//! A request is removed only after the release it asks for is in the
//! policy file and in the records: a crash at any step leaves the request
//! in place, and carrying it out again is harmless.

use crate::error::{Error, Result};
use crate::state_dir::{replace_atomically, StateDir};
use engine::records::Records;
use std::path::PathBuf;

/// Reads the records; none yet is an empty set.
pub fn load(state: &StateDir) -> Result<Records> {
    let path = state.overage_records();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Error::runtime(format!("{} cannot be read: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
        Err(e) => Err(Error::runtime(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// The records as the policy file stands now: a change the daemon began
/// and has not yet recorded as done (see `engine::records`) is shown done
/// or not by what the file says. For reading; the daemon settles the file
/// itself.
pub fn load_settled(state: &StateDir, policy: Option<&policy::Policy>) -> Result<Records> {
    let mut r = load(state)?;
    if let Some(p) = policy {
        r.settle(|id| p.tenant(net_types::TenantId(id)).map(|t| t.plan.clone()));
    }
    Ok(r)
}

/// Writes the records so that a crash leaves the old or the new ones.
pub fn save(state: &StateDir, records: &Records) -> Result<()> {
    crate::crash_point::reached("overage-records");
    let text = serde_json::to_string_pretty(records)
        .map_err(|e| Error::runtime(format!("cannot encode the overage records: {e}")))?;
    replace_atomically(&state.overage_records(), text.as_bytes())
}

/// The release requests waiting, as tenant ids with their files.
pub fn pending_releases(state: &StateDir) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(state.overage_requests()) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let id = e.file_name().to_str()?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Leaves a release request for the daemon.
pub fn request_release(state: &StateDir, tenant: u32) -> Result<()> {
    let dir = state.overage_requests();
    replace_atomically(&dir.join(tenant.to_string()), b"").map_err(|e| {
        e.context("cannot write the release request")
            .hint("the state directory must be writable by you; pass --state-dir if the daemon uses another")
    })
}

/// Removes a carried-out request.
pub fn remove_request(path: &std::path::Path) {
    crate::crash_point::reached("release-request-removed");
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a carried-out release request; it will be seen again and ignored");
    }
}
