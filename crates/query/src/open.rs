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
    // A batch appended without the accountant's state (another writer's
    // tool, a test's or a bench's history) leaves no open slots to add.
    if stored.blob.is_empty() {
        return Ok(None);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use history::{Batch, SqliteOptions, SqliteStore};

    #[test]
    fn a_batch_without_a_state_has_no_open_slots_and_a_damaged_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("tg-query-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.sqlite");
        let mut store = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
        assert!(open_samples(&store).unwrap().is_empty(), "no batch yet");
        let batch = |sequence, state: &'static [u8]| Batch {
            sequence,
            samples: &[],
            coverage: &[],
            state,
        };
        store.append(&batch(1, &[])).unwrap();
        assert!(open_samples(&store).unwrap().is_empty(), "an empty state");
        store.append(&batch(2, b"nonsense")).unwrap();
        let e = open_samples(&store).unwrap_err();
        assert!(e.to_string().contains("move it aside"), "{e}");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
