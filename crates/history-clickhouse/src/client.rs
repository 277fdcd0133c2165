//! One database on one server: queries, inserts, the server's version.

use crate::http::{encode, Endpoint, HttpError};
use crate::rowbinary::Truncated;
use history::StoreError;
use std::time::{Duration, Instant};

/// ClickHouse's "query with this id is already running".
const QUERY_ALREADY_RUNNING: u32 = 216;

/// A server's version, as `SELECT version()` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// The year-like major (18, 19, … 25).
    pub major: u32,
    /// The minor.
    pub minor: u32,
}

impl Version {
    /// Parses `18.16.1` or `24.8.4.13`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.');
        Some(Version {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }

    /// MergeTree `TTL` (19.6).
    pub fn has_ttl(self) -> bool {
        self >= Version {
            major: 19,
            minor: 6,
        }
    }

    /// `LowCardinality` without the experimental setting (19.3).
    pub fn has_low_cardinality(self) -> bool {
        self >= Version {
            major: 19,
            minor: 3,
        }
    }

    /// `insert_deduplication_token` and `non_replicated_deduplication_window` (22.2).
    pub fn has_dedup_token(self) -> bool {
        self >= Version {
            major: 22,
            minor: 2,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

pub(crate) fn backend(
    context: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Backend {
        context: context.into(),
        source: Box::new(e),
    }
}

/// An HTTP failure as the store's error: a connection that failed is
/// [`StoreError::Unreachable`] (nothing was sent), anything else
/// [`StoreError::Backend`].
pub(crate) fn from_http(context: impl Into<String>, e: HttpError) -> StoreError {
    match e {
        HttpError::Connect(e) => StoreError::Unreachable {
            context: context.into(),
            source: Box::new(e),
        },
        e => backend(context, e),
    }
}

/// A truncated answer: the server's data is not what the store wrote.
pub(crate) fn truncated(place: &str) -> impl FnOnce(Truncated) -> StoreError + '_ {
    move |t| StoreError::Corrupt {
        place: place.to_string(),
        problem: t.to_string(),
    }
}

/// What became of one insert attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The server took it (and ran the views).
    Yes,
    /// An insert with the same `query_id` still runs: nothing was sent.
    AnotherRuns,
}

/// The store's connection: the server, the database, its version.
pub(crate) struct Client {
    endpoint: Endpoint,
    /// The database, checked to be a plain identifier.
    pub db: String,
    /// The server's version.
    pub version: Version,
    timeout: Duration,
}

impl Client {
    /// Checks the database's name and the URL without connecting.
    pub fn check(url: &str, db: &str, timeout: Duration) -> Result<Endpoint, StoreError> {
        let ok = db
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok || db.len() > 64 {
            return Err(StoreError::Invalid {
                field: "history.database".into(),
                problem: format!("`{db}` is not a plain name (letters, digits, _)"),
            });
        }
        Endpoint::parse(url, timeout).map_err(|e| StoreError::Invalid {
            field: "history.url".into(),
            problem: e.to_string(),
        })
    }

    /// Connects: reads the server's version.
    pub fn connect(url: &str, db: &str, timeout: Duration) -> Result<Client, StoreError> {
        let endpoint = Client::check(url, db, timeout)?;
        let mut client = Client {
            endpoint,
            db: db.to_string(),
            version: Version { major: 0, minor: 0 },
            timeout,
        };
        let v = client.query("SELECT version()", "read the server's version")?;
        let text = String::from_utf8_lossy(&v).into_owned();
        client.version = Version::parse(&text).ok_or_else(|| StoreError::Corrupt {
            place: "version()".into(),
            problem: format!("`{}` is not a version", text.trim()),
        })?;
        Ok(client)
    }

    /// Runs `sql` (any statement; a SELECT says its FORMAT) and returns the
    /// answer.
    pub fn query(&self, sql: &str, context: &str) -> Result<Vec<u8>, StoreError> {
        self.endpoint
            .post("", sql.as_bytes())
            .map_err(|e| from_http(format!("{context} ({})", self.db), e))
    }

    /// Inserts a RowBinary `body` into `table` as one block, under
    /// `query_id`: while an insert with that id still runs on the server
    /// (the client gave up waiting, the server did not), the server refuses
    /// the same id, and this waits until it finished or `timeout` passed.
    pub fn insert(
        &self,
        table: &str,
        body: &[u8],
        query_id: &str,
        context: &str,
    ) -> Result<(), StoreError> {
        let start = Instant::now();
        loop {
            match self.try_insert(table, body, query_id, context)? {
                Inserted::Yes => return Ok(()),
                Inserted::AnotherRuns if start.elapsed() < self.timeout => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Inserted::AnotherRuns => {
                    return Err(StoreError::Invalid {
                        field: "insert".into(),
                        problem: format!("an earlier insert {query_id} still runs on the server"),
                    })
                }
            }
        }
    }

    /// One attempt at [`Client::insert`]: [`Inserted::AnotherRuns`] when
    /// the server refused it because an insert with this id still runs.
    pub fn try_insert(
        &self,
        table: &str,
        body: &[u8],
        query_id: &str,
        context: &str,
    ) -> Result<Inserted, StoreError> {
        // One block however large the batch, so that its rows and what the
        // views derive from it land in one piece.
        let params = format!(
            "query={}&query_id={}&max_insert_block_size=1000000000",
            encode(&format!("INSERT INTO {}.{table} FORMAT RowBinary", self.db)),
            encode(query_id)
        );
        match self.endpoint.post(&params, body) {
            Ok(_) => Ok(Inserted::Yes),
            Err(HttpError::Server { code, .. }) if code == QUERY_ALREADY_RUNNING => {
                Ok(Inserted::AnotherRuns)
            }
            Err(e) => Err(from_http(context, e)),
        }
    }

    /// Waits until no query with this id runs on the server (an insert the
    /// client stopped waiting for), at most the timeout.
    pub fn wait_for(&self, query_id: &str) -> Result<(), StoreError> {
        let start = Instant::now();
        loop {
            let sql = format!(
                "SELECT count() FROM system.processes WHERE query_id = '{}' FORMAT TSV",
                query_id
            );
            let n = self.query(&sql, "look for a running insert")?;
            if String::from_utf8_lossy(&n).trim() == "0" {
                return Ok(());
            }
            if start.elapsed() >= self.timeout {
                return Err(StoreError::Invalid {
                    field: "insert".into(),
                    problem: format!("an earlier insert {query_id} still runs on the server"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_features_follow_them() {
        let old = Version::parse("18.16.1").unwrap();
        assert_eq!(
            old,
            Version {
                major: 18,
                minor: 16
            }
        );
        assert!(!old.has_ttl() && !old.has_low_cardinality() && !old.has_dedup_token());
        let new = Version::parse("24.8.4.13\n").unwrap();
        assert!(new.has_ttl() && new.has_low_cardinality() && new.has_dedup_token());
        assert_eq!(Version::parse("x"), None);
    }
}
