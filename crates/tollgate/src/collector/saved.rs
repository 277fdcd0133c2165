//! What the collector keeps in its state directory besides the history:
//! the decoders' templates (`flows-templates.bin`), and samples a stop
//! could not commit (`flows-pending.json`).
//!
//! Both are written whole with [`crate::state_dir::replace_atomically`]:
//! a new file, flushed to disk, renamed over the old one, and the
//! directory flushed, so a crash leaves either the old file or the new
//! one, never half of one.

use accounting::{Sample, SlotCoverage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The decoders' saved states, one per worker.
pub const TEMPLATES_FILE: &str = "flows-templates.bin";

/// Samples and coverage a stopping collector could not commit (the
/// history was unavailable): committed first at the next start.
pub const PENDING_FILE: &str = "flows-pending.json";

pub use flow_collector::saved::{decode_states, encode_states};

/// Reads the templates file, refusing one larger than `max` bytes (the
/// collector's memory limit: no file may make it exceed that). `None`
/// when there is none.
pub fn read_templates(dir: &Path, max: u64) -> Result<Option<Vec<Vec<u8>>>, String> {
    let path = dir.join(TEMPLATES_FILE);
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if len > max {
        tracing::warn!(
            "{} is {len} bytes, more than the memory limit allows; its templates are not used",
            path.display()
        );
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some(decode_states(&bytes)))
}

/// Samples and coverage carried from a stop to the next start.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Pending {
    /// Attributed usage not yet committed.
    pub samples: Vec<Sample>,
    /// Slots observed, not yet committed.
    pub coverage: Vec<SlotCoverage>,
    /// The collector's last committed batch when this was saved. A
    /// history holding a later batch of the collector already has these
    /// samples (the file outlived its commit, after a power cut): they are
    /// not added twice. Absent in files of older versions.
    #[serde(default)]
    pub after_sequence: Option<u64>,
}

/// Where the pending file of `dir` is.
pub fn pending_path(dir: &Path) -> PathBuf {
    dir.join(PENDING_FILE)
}

/// Reads what a previous stop could not commit.
pub fn read_pending(dir: &Path) -> Result<Option<Pending>, String> {
    let path = pending_path(dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Saves what could not be committed.
pub fn write_pending(dir: &Path, p: &Pending) -> crate::error::Result<()> {
    let text = serde_json::to_vec(p).map_err(|e| {
        crate::error::Error::runtime(format!("cannot encode the pending samples: {e}"))
    })?;
    crate::state_dir::replace_atomically(&pending_path(dir), &text)
}
