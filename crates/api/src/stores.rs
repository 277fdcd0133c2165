//! Connections to the history for readers: a few kept open and reused,
//! each query run on a blocking thread so that a slow read never holds
//! the server's workers. At most [`READERS`] read at once; more requests
//! wait their turn, so that a crowd of clients costs queueing, not a
//! connection (and its page cache) each.

use crate::problem::Problem;
use history::Store;
use std::sync::{Arc, Mutex};

/// Opens a connection.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Store + Send>, String> + Send + Sync>;

/// The idle connections, and how to open another.
pub struct Stores {
    open: Opener,
    idle: Mutex<Vec<Box<dyn Store + Send>>>,
    turns: tokio::sync::Semaphore,
    /// The site's settled days (`query::site`), read once: the overview
    /// of a month of 10,000 tenants then reads only its recent days.
    pub site_days: Mutex<query::site::DayCache>,
}

/// Connections reading at once (and kept open between reads): reads are
/// CPU-bound on cached pages, so more than a few only share the cores.
pub const READERS: usize = 4;

impl Stores {
    /// Readers opened with `open`.
    pub fn new(open: Opener) -> Arc<Stores> {
        Arc::new(Stores {
            open,
            idle: Mutex::new(Vec::new()),
            turns: tokio::sync::Semaphore::new(READERS),
            site_days: Mutex::default(),
        })
    }

    /// Runs `f` with a connection, on a blocking thread.
    pub async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, Problem> + Send + 'static,
    {
        let turn = self
            .turns
            .acquire()
            .await
            .map_err(|e| Problem::unavailable(format!("the history's readers: {e}")))?;
        let me = self.clone();
        let out = tokio::task::spawn_blocking(move || {
            let store = me.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let store = match store {
                Some(s) => s,
                None => {
                    (me.open)().map_err(|e| Problem::unavailable(format!("the history: {e}")))?
                }
            };
            let out = f(store.as_ref());
            let mut idle = me.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < READERS {
                idle.push(store);
            }
            out
        })
        .await
        .map_err(|e| Problem::unavailable(format!("a reader failed: {e}")))?;
        drop(turn);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_crowd_of_requests_shares_a_few_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        // Created first, as the daemon's writer does before any reader.
        drop(history::SqliteStore::open(&path, &history::SqliteOptions { cache_mib: 1 }).unwrap());
        let opened = Arc::new(AtomicUsize::new(0));
        let count = opened.clone();
        let stores = Stores::new(Box::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
            history::SqliteStore::open(&path, &history::SqliteOptions { cache_mib: 1 })
                .map(|s| Box::new(s) as Box<dyn Store + Send>)
                .map_err(|e| e.to_string())
        }));
        let busy = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..40 {
                let (stores, busy, most) = (stores.clone(), busy.clone(), most.clone());
                tasks.push(tokio::spawn(async move {
                    stores
                        .with(move |store| {
                            let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            // Long enough that the crowd overlaps.
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            let state = store
                                .last_state()
                                .map_err(|e| Problem::unavailable(format!("the history: {e}")));
                            busy.fetch_sub(1, Ordering::SeqCst);
                            state.map(|_| ())
                        })
                        .await
                }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        });
        assert!(
            most.load(Ordering::SeqCst) <= READERS,
            "{most:?} read at once"
        );
        assert!(
            opened.load(Ordering::SeqCst) <= READERS,
            "{opened:?} opened"
        );
    }
}
