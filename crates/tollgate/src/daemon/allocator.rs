//! The daemon's allocator setting: few glibc arenas.
//!
//! glibc gives threads their own malloc arenas (up to eight per core), and
//! memory freed in an arena stays with it. The daemon's API threads build
//! large answers now and then (the status of 10,000 tenants' classes is
//! megabytes), and with an arena each the daemon at 10,000 tenants held
//! 160–170 MB; with two it holds about 140 MB
//! (`bench/daemon_rss.sh 10000`). An operator's own `MALLOC_ARENA_MAX`
//! wins.

/// Limits glibc to two arenas unless `MALLOC_ARENA_MAX` says otherwise.
/// Called before the daemon starts its threads.
pub fn use_few_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a glibc tunable; it is called before the
    // daemon starts any thread, and its failure (0) leaves the default.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
