//! One read layer over the history, for the command line and the HTTP API
//! alike, so that `tollgate usage` and `GET /api/v1/tenants/{id}/usage`
//! can never disagree: both call the same function here and only format
//! the answer differently.
//!
//! - [`range`]: a billing period or "since a date" as an instant range;
//! - [`usage`]: totals per tenant × realm × direction × local day, and
//!   per realm (rtacct), closed samples and the open slots together;
//! - [`series`]: one tenant's traffic as columns (`t[]` and one array per
//!   realm × direction), at 5 minutes, an hour or a day;
//! - [`site`]: every tenant's traffic together, per realm × direction, as
//!   columns (the dashboard's overview);
//! - [`bills`]: a period's bills, frozen or computed;
//! - [`latency`]: stored latency minutes (TCP RTT, probes, queues);
//! - [`rates`]: live rates per tenant × realm from two counter readings;
//! - [`names`]: tenants and realms by id or name;
//! - [`transit`]: the site's own bill against each upstream's commit.
//!
//! The store is handed in as `&dyn Store`; nothing here opens a file or
//! reads the clock (`now` is an argument), so the same code serves a
//! SQLite file, ClickHouse, or a test's store. Sums are `u128`: a total
//! can never be clamped on its way to a person.

pub mod bills;
pub mod flows;
pub mod latency;
pub mod names;
pub mod open;
pub mod range;
pub mod rates;
pub mod series;
pub mod site;
pub mod transit;
pub mod usage;

/// A failure to read an answer.
#[derive(Debug)]
pub enum QueryError {
    /// The store failed.
    Store {
        /// What was being read.
        what: &'static str,
        /// The store's error.
        source: history::StoreError,
    },
    /// The question cannot be answered as asked (a bad period, a tenant
    /// that does not exist, …), naming the field.
    Invalid {
        /// The field or argument.
        field: &'static str,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// The stored data cannot be read (damaged, or written by another
    /// version).
    Damaged(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Store { what, source } => write!(f, "cannot read {what}: {source}"),
            QueryError::Invalid { field, problem } => write!(f, "{field}: {problem}"),
            QueryError::Damaged(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for QueryError {}

impl QueryError {
    pub(crate) fn store(what: &'static str) -> impl FnOnce(history::StoreError) -> QueryError {
        move |source| QueryError::Store { what, source }
    }

    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> QueryError {
        QueryError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}
