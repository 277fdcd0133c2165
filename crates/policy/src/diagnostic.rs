//! Problems found in a policy, each with a place and a way to fix it.

use crate::source::{Sources, Span};
use serde::Serialize;
use std::fmt::Write as _;

/// How bad a problem is. Errors make the policy invalid; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy cannot be applied.
    Error,
    /// The policy can be applied, but probably does not say what was meant.
    Warning,
}

/// One problem: where it is, what it is, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where, if the problem has a place.
    pub span: Option<Span>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Option<Span>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Option<Span>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic the way compilers do:
    ///
    /// ```text
    /// policy.toml:12:8: error: ceil (5mbit) is below rate (10mbit)
    ///    |     ceil = "5mbit"
    ///    = hint: raise ceil to at least 10mbit, or lower rate
    /// ```
    pub fn render(&self, sources: &Sources) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        match self.span {
            Some(span) => {
                let _ = writeln!(out, "{}: {sev}: {}", sources.location(span), self.message);
                if let Some(file) = sources.get(span.file) {
                    let (line, _) = file.line_col(span.start);
                    let text = file.text.lines().nth(line - 1).unwrap_or("");
                    let _ = writeln!(out, "   | {text}");
                    let snippet = file.snippet(span.start, span.end);
                    if !snippet.is_empty() && snippet.trim() != text.trim() {
                        let _ = writeln!(out, "   | here: {snippet}");
                    }
                }
            }
            None => {
                let _ = writeln!(out, "{sev}: {}", self.message);
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "   = hint: {hint}");
        }
        out
    }

    /// The diagnostic as a JSON-ready record with a resolved location.
    pub fn to_record(&self, sources: &Sources) -> DiagnosticRecord {
        let (file, line, column, text) =
            match self.span.and_then(|s| Some((s, sources.get(s.file)?))) {
                Some((span, f)) => {
                    let (l, c) = f.line_col(span.start);
                    (
                        Some(f.name.clone()),
                        Some(l),
                        Some(c),
                        Some(f.snippet(span.start, span.end).to_owned()),
                    )
                }
                None => (None, None, None, None),
            };
        DiagnosticRecord {
            severity: self.severity,
            file,
            line,
            column,
            text,
            message: self.message.clone(),
            hint: self.hint.clone(),
        }
    }
}

/// A diagnostic with its place spelled out, for `--json` output.
#[derive(Clone, Debug, Serialize)]
pub struct DiagnosticRecord {
    /// Error or warning.
    pub severity: Severity,
    /// The file's name.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// The offending text.
    pub text: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}
