//! Versioned schema migrations, recorded in `schema_version`.
//!
//! Every statement is idempotent (`IF NOT EXISTS`), so two processes that
//! open a new database at once both succeed; a version is recorded after
//! its statements ran, and a database recorded as newer than this build
//! knows is refused.

use crate::client::Client;
use history::StoreError;

/// The newest schema this build writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Each version's statements, `{db}` standing for the database.
const MIGRATIONS: [&str; 5] = [
    include_str!("sql/v1.sql"),
    include_str!("sql/v2.sql"),
    include_str!("sql/v3.sql"),
    include_str!("sql/v4.sql"),
    include_str!("sql/v5.sql"),
];

/// The statements of one migration's text: `;` at a line's end separates
/// them, `--` lines are comments.
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The database's schema version (0 when new).
pub fn version(client: &Client) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT max(version) FROM {}.schema_version FORMAT TSV",
        client.db
    );
    let out = client.query(&sql, "read the schema version")?;
    let text = String::from_utf8_lossy(&out);
    text.trim().parse().map_err(|_| StoreError::Corrupt {
        place: "schema_version.version".into(),
        problem: format!("`{}`", text.trim()),
    })
}

/// Creates the database if needed and brings it to [`SCHEMA_VERSION`].
pub fn migrate(client: &Client) -> Result<(), StoreError> {
    migrate_through(client, SCHEMA_VERSION)
}

/// [`migrate`], stopping at schema `through` (tests make an old database).
pub fn migrate_through(client: &Client, through: i64) -> Result<(), StoreError> {
    let db = &client.db;
    client.query(
        &format!("CREATE DATABASE IF NOT EXISTS {db}"),
        "create the database",
    )?;
    client.query(
        &format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32) \
             ENGINE = MergeTree ORDER BY version"
        ),
        "create schema_version",
    )?;
    let found = version(client)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, text) in MIGRATIONS.iter().enumerate() {
        let v = i as i64 + 1;
        if v <= found || v > through {
            continue;
        }
        for st in statements(text) {
            client.query(&st.replace("{db}", db), &format!("migrate to schema {v}"))?;
        }
        client.query(
            &format!("INSERT INTO {db}.schema_version VALUES ({v})"),
            "record the schema version",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements() {
        let st = statements(MIGRATIONS[0]);
        assert!(st.len() > 15, "{}", st.len());
        assert!(st.iter().all(|s| !s.ends_with(';') && !s.starts_with("--")));
        assert!(st.iter().all(|s| s.starts_with("CREATE ")));
    }
}
