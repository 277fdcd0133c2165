//! `tollgate replay FILE`: a recorded run fed to a new engine.

use super::Context;
use crate::daemon::Recorded;
use crate::error::{Context as _, Error, Result};
use engine::io::Input;
use engine::Engine;
use std::io::BufRead as _;
use std::path::Path;
use std::process::ExitCode;

pub fn run(_cx: &Context, file: &Path) -> Result<ExitCode> {
    let f = std::fs::File::open(file).runtime(format!("cannot open {}", file.display()))?;
    let mut engine: Option<Engine> = None;
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.runtime(format!("cannot read {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Recorded = serde_json::from_str(&line).map_err(|e| {
            Error::invalid(format!(
                "{}:{}: not a recorded input: {e}",
                file.display(),
                n + 1
            ))
        })?;
        let effects = match (r.input, &mut engine) {
            (Input::Start(s), None) => {
                let (e, first) = Engine::start(r.at, *s)
                    .map_err(|e| Error::invalid(format!("{}:{}: {e}", file.display(), n + 1)))?;
                engine = Some(e);
                first
            }
            (input, Some(e)) => e.handle(r.at, input),
            (_, None) => {
                return Err(Error::invalid(format!(
                    "{}:{}: the recording does not start with the engine's start",
                    file.display(),
                    n + 1
                )))
            }
        };
        for e in effects {
            sayln!("{}", crate::output::json_line(&e)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
