//! Crash injection, for the tests that prove a crash loses nothing.
//!
//! With `TOLLGATE_CRASH_AT=POINT` (or `POINT:N` for the Nth time) in its
//! environment, the process aborts when it reaches that point: no
//! destructors run and nothing is flushed, as after `kill -9` or a power
//! cut between two writes. Unset, [`reached`] costs one atomic load. The
//! points are named where the daemon writes:
//!
//! | point | just before |
//! |---|---|
//! | `store-commit` | a batch is committed to the history |
//! | `store-committed` | the batch is committed, before anything else happens |
//! | `policy-edit` | the policy file is replaced by an edit |
//! | `policy-edited` | the edit is on disk, before its records are saved |
//! | `overage-records` | the overage records are saved |
//! | `transit-guard` | the transit guard's state is saved |
//! | `release-request-removed` | a carried-out release request is removed |
//! | `routes-snapshot` | the routes table is saved |
//! | `ship-saved` | an agent's batch is saved in its shipping ledger, before it is sent |
//! | `ship-answered` | the central answered an agent's batch, before the ledger is updated |
//! | `before-rename` | any file replaced atomically: the new text is on disk under its temporary name, not yet renamed |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that names the point.
pub const VARIABLE: &str = "TOLLGATE_CRASH_AT";

fn target() -> &'static Option<(String, u64)> {
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    TARGET.get_or_init(|| {
        let v = std::env::var(VARIABLE).ok()?;
        Some(match v.split_once(':') {
            Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
            None => (v, 1),
        })
    })
}

/// Aborts the process if `point` is the one named in the environment (the
/// Nth time it is reached).
pub fn reached(point: &str) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let Some((wanted, nth)) = target() else {
        return;
    };
    if wanted == point && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        eprintln!("tollgate: {VARIABLE}={point}: crashing here on purpose");
        std::process::abort();
    }
}
