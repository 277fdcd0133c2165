//! What can go wrong in the lab, each with what to do next.

use std::fmt;
use std::path::PathBuf;

/// A lab operation failed. `Display` names what failed and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabError {
    /// A lab (or what is left of one) already exists.
    AlreadyUp {
        /// The `tg-lab-*` namespaces found.
        namespaces: Vec<String>,
    },
    /// No lab is running.
    NotUp,
    /// Some of the lab's namespaces are gone.
    Incomplete {
        /// The namespaces missing.
        missing: Vec<String>,
    },
    /// The requested lab cannot be built as asked.
    Spec(String),
    /// The example policy, or the policy emitted from it, does not load.
    Policy {
        /// The file.
        file: PathBuf,
        /// Its rendered diagnostics.
        diagnostics: String,
    },
    /// A program the lab needs is not installed.
    MissingTool {
        /// The program.
        tool: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// A command failed.
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: String,
    },
    /// A traffic flow could not be measured.
    Traffic {
        /// Which flow.
        flow: String,
        /// Why.
        error: String,
    },
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::AlreadyUp { namespaces } if namespaces.is_empty() => write!(
                f,
                "a lab already exists (its state file is in {})\n  next: run `tollgate lab down` first",
                super::STATE_DIR
            ),
            LabError::AlreadyUp { namespaces } => write!(
                f,
                "a lab already exists: namespaces {}\n  next: run `tollgate lab down` first",
                namespaces.join(", ")
            ),
            LabError::NotUp => write!(
                f,
                "no lab is running\n  next: run `tollgate lab up` first"
            ),
            LabError::Incomplete { missing } => write!(
                f,
                "the lab is incomplete: {} missing\n  next: run `tollgate lab down`, then `tollgate lab up` again",
                missing.join(", ")
            ),
            LabError::Spec(why) => write!(f, "cannot build this lab: {why}"),
            LabError::Policy { file, diagnostics } => write!(
                f,
                "the lab's policy {} does not load:\n{diagnostics}\n  next: fix the example policy; `tollgate check -c {}` shows the same",
                file.display(),
                file.display()
            ),
            LabError::MissingTool { tool, package } => write!(
                f,
                "`{tool}` is not installed\n  next: install it (`apt-get install {package}`), or run `cargo xtask ci`, which installs what the lab needs"
            ),
            LabError::Command { command, output } => write!(
                f,
                "`{command}` failed: {}\n  next: run `tollgate lab down` to remove what is left, then try again; the lab needs root",
                output.trim()
            ),
            LabError::Io { path, error } => write!(
                f,
                "cannot write or read {}: {error}\n  next: the lab needs root and a writable /run",
                path.display()
            ),
            LabError::Traffic { flow, error } => write!(
                f,
                "cannot measure {flow}: {error}\n  next: check `tollgate lab status`; if the lab is broken, `tollgate lab down` and `tollgate lab up` again"
            ),
        }
    }
}

impl std::error::Error for LabError {}
