//! What the import says about its input: every row it could not
//! represent, every value it had to change, each with the file and line.

use std::fmt;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Something was left out of the policy (a row, a device, a circuit),
    /// or nothing could be imported at all.
    Error,
    /// Something was imported differently from how LibreQoS would shape
    /// it (a rate capped at its parent's, a node merged into another).
    Warning,
    /// Something that has no counterpart in tollgate and was kept as a
    /// comment only (MAC addresses, sqm), or a fact worth knowing.
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One thing the import has to say, with where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The file, as the caller named it.
    pub file: String,
    /// The line (1-based), where one line is to blame.
    pub line: Option<usize>,
    /// What happened.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        file: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            file: file.to_string(),
            line,
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line`, or `file` alone.
    pub fn place(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.place(),
            self.severity.as_str(),
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Counts and diagnostics of one import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Data rows read from ShapedDevices.csv (comments and the header not
    /// counted).
    pub rows: usize,
    /// Rows left out of the policy, each with an error.
    pub rows_skipped: usize,
    /// Circuits in the policy (each one tenant).
    pub tenants: usize,
    /// Devices of those circuits.
    pub devices: usize,
    /// Plans made, one per distinct set of rates.
    pub plans: usize,
    /// Parents made from network.json's nodes.
    pub parents: usize,
    /// Every problem and change, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether the policy written failed to parse or validate: a fault of
    /// the importer, which the fuzz target looks for.
    pub(crate) importer_fault: bool,
}

impl Report {
    /// Whether anything was left out.
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// How many diagnostics of this severity there are.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }
}
