//! Connections to the history for readers: a few kept open and reused,
//! each query run on a blocking thread so that a slow read never holds
//! the server's workers.

use crate::problem::Problem;
use history::Store;
use std::sync::{Arc, Mutex};

/// Opens a connection.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Store + Send>, String> + Send + Sync>;

/// The idle connections, and how to open another.
pub struct Stores {
    open: Opener,
    idle: Mutex<Vec<Box<dyn Store + Send>>>,
    /// The site's settled days (`query::site`), read once: the overview
    /// of a month of 10,000 tenants then reads only its recent days.
    pub site_days: Mutex<query::site::DayCache>,
}

/// Idle connections kept.
const KEEP: usize = 8;

impl Stores {
    /// Readers opened with `open`.
    pub fn new(open: Opener) -> Arc<Stores> {
        Arc::new(Stores {
            open,
            idle: Mutex::new(Vec::new()),
            site_days: Mutex::default(),
        })
    }

    /// Runs `f` with a connection, on a blocking thread.
    pub async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, Problem> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = me.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let store = match store {
                Some(s) => s,
                None => {
                    (me.open)().map_err(|e| Problem::unavailable(format!("the history: {e}")))?
                }
            };
            let out = f(store.as_ref());
            let mut idle = me.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEEP {
                idle.push(store);
            }
            out
        })
        .await
        .map_err(|e| Problem::unavailable(format!("a reader failed: {e}")))?
    }
}
