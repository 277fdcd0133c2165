//! The accounting state committed with the daemon's last batch, and the
//! traffic it holds for slots that have not closed yet.
//!
//! The daemon commits the accountant's state with every batch, and that
//! state holds the traffic already attributed to the slots still open.
//! Readers add it to the closed samples, so that what they show is
//! everything recorded up to the daemon's last read, not only what was
//! recorded up to the last 5-minute boundary.

use crate::QueryError;
use accounting::{AccountantState, OpenSample};
use history::Store;

/// The accountant's state committed with the last batch, with its
/// sequence number, if any.
pub fn last_state(store: &dyn Store) -> Result<Option<(u64, AccountantState)>, QueryError> {
    let Some(stored) = store
        .last_state()
        .map_err(QueryError::store("the accounting state"))?
    else {
        return Ok(None);
    };
    let state = AccountantState::decode(&stored.blob).map_err(|e| {
        QueryError::Damaged(format!(
            "{e} (this history was written by another tollgate version, or is damaged; move it aside to start a new one)"
        ))
    })?;
    Ok(Some((stored.sequence, state)))
}

/// Traffic recorded in slots that have not closed yet.
pub fn open_samples(store: &dyn Store) -> Result<Vec<OpenSample>, QueryError> {
    Ok(last_state(store)?.map_or_else(Vec::new, |(_, s)| s.open_samples))
}
