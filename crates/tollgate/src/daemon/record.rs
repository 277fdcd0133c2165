//! `tollgate run --record FILE`: every input the engine receives, with its
//! time, one JSON line each, so that a run (a production incident, a test)
//! can be fed to an engine again and give the same effects.

use crate::error::{Context as _, Result};
use engine::io::Input;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::Path;

/// One recorded input.
#[derive(Serialize, Deserialize)]
pub struct Recorded {
    /// When it was handed to the engine.
    pub at: Timestamp,
    /// What.
    pub input: Input,
}

/// Writes the inputs, when asked to.
pub struct Recorder {
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Recorder {
    /// Creates `path` (or records nothing).
    pub fn open(path: Option<&Path>) -> Result<Recorder> {
        let file = path
            .map(|p| {
                std::fs::File::create(p)
                    .map(std::io::BufWriter::new)
                    .runtime(format!("cannot create the recording {}", p.display()))
            })
            .transpose()?;
        Ok(Recorder { file })
    }

    /// Records one input.
    pub fn write(&mut self, at: Timestamp, input: &Input) -> Result<()> {
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        let line = serde_json::to_string(&RecordedRef { at, input })
            .runtime("cannot encode an input for the recording")?;
        writeln!(f, "{line}")
            .and_then(|()| f.flush())
            .runtime("cannot write the recording")
    }
}

#[derive(Serialize)]
struct RecordedRef<'a> {
    at: Timestamp,
    input: &'a Input,
}
