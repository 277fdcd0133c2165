//! The transit guard's files in the state directory: its state
//! (`transit-guard.json`, written only by the daemon, atomically) and the
//! relax request `tollgate transit relax` leaves for it
//! (`transit-relax`, removed once the daemon has taken it).

use crate::error::{Error, Result};
use crate::state_dir::{replace_atomically, StateDir};
use engine::transit_run::TransitState;

/// Reads the guard's state; none yet is no step.
pub fn load(state: &StateDir) -> Result<TransitState> {
    let path = state.transit_guard();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::runtime(format!("{} cannot be read: {e}", path.display())).hint(
                "it is the transit guard's own file; remove it to start the guard from no step",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TransitState::default()),
        Err(e) => Err(Error::runtime(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the state so that a crash leaves the old or the new one.
pub fn save(state: &StateDir, s: &TransitState) -> Result<()> {
    crate::crash_point::reached("transit-guard");
    let text = serde_json::to_string_pretty(s)
        .map_err(|e| Error::runtime(format!("cannot encode the transit guard's state: {e}")))?;
    replace_atomically(&state.transit_guard(), text.as_bytes())
}

/// Leaves a relax request for the daemon.
pub fn request_relax(state: &StateDir) -> Result<()> {
    replace_atomically(&state.transit_relax(), b"").map_err(|e| {
        e.context("cannot write the relax request").hint(
            "the state directory must be writable by you; pass --state-dir if the daemon uses another",
        )
    })
}

/// Takes a waiting relax request: true if there was one (it is removed
/// before it is carried out, so it is carried out once).
pub fn take_relax(state: &StateDir) -> bool {
    let path = state.transit_relax();
    if !path.exists() {
        return false;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the transit relax request");
            false
        }
    }
}
