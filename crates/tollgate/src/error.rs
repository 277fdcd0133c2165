//! The binary's one error type and its exit codes.
//!
//! Every failure a person sees says what went wrong and, where there is
//! one, what to do next (the hint). Its kind decides the exit code, so a
//! script can tell a mistake in its input from a failure of the machine:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | invalid input: the policy, an argument or a file given is wrong; nothing was changed |
//! | 2 | runtime failure: the kernel, the store, a socket or a file could not be used |
//! | 3 | partial: some of the work was done and the rest was not (e.g. the kernel refused some changes); running the command again continues |
//!
//! The crates below the binary have typed errors of their own; they become
//! an [`Error`] here with their message, and with a hint where the binary
//! knows what the person can do about it.

use std::fmt;
use std::process::ExitCode;

/// What kind of failure, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The input is wrong (exit 1).
    Invalid,
    /// The machine failed us (exit 2).
    Runtime,
    /// Some of the work was done (exit 3).
    Partial,
}

impl Kind {
    /// The documented exit code.
    pub fn code(self) -> u8 {
        match self {
            Kind::Invalid => 1,
            Kind::Runtime => 2,
            Kind::Partial => 3,
        }
    }
}

/// A failure, for people: what happened and what to do next.
#[derive(Debug)]
pub struct Error {
    /// Decides the exit code.
    pub kind: Kind,
    /// What went wrong, in one or more lines.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

/// The binary's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The input is wrong.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Invalid,
            message: message.into(),
            hint: None,
        }
    }

    /// The machine failed us.
    pub fn runtime(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Runtime,
            message: message.into(),
            hint: None,
        }
    }

    /// Some of the work was done.
    pub fn partial(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Partial,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds what to do next.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Puts `context` in front of the message ("cannot read X: <message>").
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message.trim_end())?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<linux_dataplane::DataplaneError> for Error {
    fn from(e: linux_dataplane::DataplaneError) -> Error {
        use linux_dataplane::DataplaneError as D;
        let denied = matches!(&e, D::Io { error, .. } if error.kind() == std::io::ErrorKind::PermissionDenied);
        let err = Error::runtime(e.to_string());
        if denied {
            err.hint("tollgate needs root (CAP_NET_ADMIN) to read and change the kernel's shaping")
        } else {
            err
        }
    }
}

impl From<history::StoreError> for Error {
    fn from(e: history::StoreError) -> Error {
        Error::runtime(format!("the history store: {e}"))
    }
}

impl From<query::QueryError> for Error {
    fn from(e: query::QueryError) -> Error {
        match e {
            query::QueryError::Invalid { .. } => Error::invalid(e.to_string()),
            _ => Error::runtime(e.to_string()),
        }
    }
}

/// Extension for `Result`s of the crates below: turns their error into an
/// [`Error`] of the given kind with context, in one call.
pub trait Context<T> {
    /// A runtime failure, with `what` in front of the message.
    fn runtime(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn runtime(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::runtime(format!("{what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Kind::Invalid.code(), 1);
        assert_eq!(Kind::Runtime.code(), 2);
        assert_eq!(Kind::Partial.code(), 3);
    }

    #[test]
    fn a_hint_is_printed_on_its_own_line() {
        let e = Error::invalid("no tenant `bob`").hint("`tollgate status` lists them");
        assert_eq!(
            e.to_string(),
            "no tenant `bob`\n  hint: `tollgate status` lists them"
        );
    }
}
