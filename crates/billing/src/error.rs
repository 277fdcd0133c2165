//! Billing's one error type: bad input, naming the field.

use std::fmt;

/// Bad input to billing, naming the field or place that is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingError {
    /// The field or place.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl BillingError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> BillingError {
        BillingError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for BillingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for BillingError {}
