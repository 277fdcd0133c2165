//! How API tokens are listed.

use api::tokens::TokenFile;
use std::fmt::Write as _;

/// The tokens as a table (names and scopes; secrets are never kept).
pub fn tokens(f: &TokenFile) -> String {
    let mut out = format!("{:<24} {:<14} {}\n", "name", "scope", "created");
    for t in &f.tokens {
        let _ = writeln!(
            out,
            "{:<24} {:<14} {}",
            t.name,
            t.scope.to_string(),
            t.created
        );
    }
    out
}
