//! The store's one error type.

use std::fmt;

/// Why a store operation failed. A failed operation changed nothing: every
/// write runs in one transaction.
#[derive(Debug)]
pub enum StoreError {
    /// The database refused or failed; `context` says what was being done.
    Database {
        /// What the store was doing.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Another store's backend (a ClickHouse server) refused or failed;
    /// `context` says what was being done.
    Backend {
        /// What the store was doing.
        context: String,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend's server could not be reached: the connection failed,
    /// so nothing was sent and nothing can have been stored. A caller may
    /// rely on that (the daemon's local copy of its last committed batch
    /// stays certain).
    Unreachable {
        /// What the store was doing.
        context: String,
        /// Why the connection failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A batch with this sequence number (or a later one) is already stored.
    AlreadyAppended {
        /// The batch's sequence number.
        sequence: u64,
        /// The last stored sequence number.
        last: u64,
    },
    /// The period is already frozen; frozen periods never change.
    AlreadyFrozen(String),
    /// The period has not ended at the time it was to be frozen.
    PeriodNotClosed {
        /// The period's label.
        label: String,
    },
    /// The database was written by a newer tollgate.
    SchemaTooNew {
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// Bad input, naming the field.
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// A stored value this build cannot read.
    Corrupt {
        /// Where (table.column).
        place: String,
        /// What is wrong.
        problem: String,
    },
}

impl StoreError {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Database { context, source }
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn corrupt(place: impl Into<String>, problem: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            place: place.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database { context, source } => write!(f, "{context}: {source}"),
            StoreError::Backend { context, source } => write!(f, "{context}: {source}"),
            StoreError::Unreachable { context, source } => {
                write!(f, "{context}: cannot reach the server: {source}")
            }
            StoreError::AlreadyAppended { sequence, last } => write!(
                f,
                "batch {sequence} is already stored (the last stored batch is {last})"
            ),
            StoreError::AlreadyFrozen(l) => {
                write!(
                    f,
                    "period {l} is already frozen; frozen periods never change"
                )
            }
            StoreError::PeriodNotClosed { label } => {
                write!(f, "period {label} has not ended yet and cannot be frozen")
            }
            StoreError::SchemaTooNew { found, known } => write!(
                f,
                "the history database has schema version {found}; this tollgate knows up to {known}"
            ),
            StoreError::Invalid { field, problem } => write!(f, "{field}: {problem}"),
            StoreError::Corrupt { place, problem } => {
                write!(f, "stored value in {place} cannot be read: {problem}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Database { source, .. } => Some(source),
            StoreError::Backend { source, .. } | StoreError::Unreachable { source, .. } => {
                Some(source.as_ref())
            }
            _ => None,
        }
    }
}
