//! Starting the HTTP API (`crates/api`) beside the daemon's loop: the
//! listener is bound before the daemon goes on (a taken port stops it at
//! start, with a hint), and served from a runtime on a thread of its own.

use crate::cli::daemon::RunArgs;
use crate::error::{Context as _, Error, Result};
use crate::state_dir::StateDir;
use engine::snapshot::Snapshot;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// Where the API listens unless the policy or `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9188";

/// The tokens file unless the policy's `[api] tokens` names another,
/// relative to the policy's folder.
pub const DEFAULT_TOKENS: &str = "api-tokens.json";

/// The tokens file for the policy at `config`.
pub fn tokens_path(config: &Path, policy: Option<&policy::Policy>) -> PathBuf {
    let folder = match config.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = policy
        .and_then(|p| p.api.as_ref())
        .and_then(|a| a.tokens.clone())
        .unwrap_or_else(|| DEFAULT_TOKENS.to_string());
    folder.join(name)
}

/// Binds the listener and serves the API; returns where the daemon
/// publishes its snapshots, or `None` with `--no-api`. `commands` hands a
/// command to the daemon's loop.
pub fn start(
    config: &Path,
    state: &StateDir,
    args: &RunArgs,
    first: Snapshot,
    commands: api::Commands,
) -> Result<Option<watch::Sender<Arc<Snapshot>>>> {
    if args.no_api {
        return Ok(None);
    }
    let policy = first.policy.clone();
    let api = policy.api.as_ref();
    let addr: SocketAddr = match (args.listen, api.and_then(|a| a.listen)) {
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => DEFAULT_LISTEN.parse().expect("a valid address"),
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::runtime(format!("cannot listen for the API on {addr}: {e}"))
            .hint("another tollgate (or program) holds the port: pick another with --listen or [api] listen, or run with --no-api")
    })?;
    listener
        .set_nonblocking(true)
        .runtime("cannot set up the API listener")?;
    let (snapshots, receiver) = watch::channel(Arc::new(first));
    let history = state.history();
    let clickhouse = match policy.history.as_ref().map(|h| &h.store) {
        Some(policy::HistoryStore::ClickHouse { url, database }) => {
            Some(history_clickhouse::ClickHouseOptions {
                url: url.clone(),
                database: database.clone(),
                ..history_clickhouse::ClickHouseOptions::default()
            })
        }
        _ => None,
    };
    // Each of the API's readers (at most api::stores::READERS) keeps its
    // own page cache: small, so that the daemon's memory stays bounded.
    let open: api::stores::Opener = Box::new(move || match &clickhouse {
        Some(options) => history_clickhouse::ClickHouseStore::open(options)
            .map(|s| Box::new(s) as Box<dyn history::Store + Send>)
            .map_err(|e| e.to_string()),
        None => history::SqliteStore::open(&history, &history::SqliteOptions { cache_mib: 8 })
            .map(|s| Box::new(s) as Box<dyn history::Store + Send>)
            .map_err(|e| e.to_string()),
    });
    let files = api::files::Files::with_guard_history(
        state.routes_table(),
        state.flows_status(),
        state.guard_history(),
    );
    let app = api::AppState {
        metrics: api::metrics::registry(receiver.clone(), files.clone()),
        snapshot: receiver,
        stores: api::stores::Stores::new(open),
        commands,
        tokens: api::tokens::Tokens::new(Some(tokens_path(config, Some(&policy)))),
        failures: Arc::default(),
        open: Arc::default(),
        files,
        metrics_public: api.is_some_and(|a| a.metrics_public),
    };
    // Reads run on blocking threads, at most api::stores::READERS at once:
    // more threads would only each hold their own allocator arena.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(api::stores::READERS)
        .thread_name("api")
        .enable_all()
        .build()
        .runtime("cannot start the API's runtime")?;
    // TLS files are read now, so that a bad certificate stops the daemon
    // at start with its reason.
    let tls = match api.and_then(|a| a.tls.as_ref()) {
        Some(t) => {
            let folder = match config.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let (cert, key) = (folder.join(&t.certificate), folder.join(&t.key));
            Some(rt.block_on(api::tls(&cert, &key)).map_err(|e| {
                Error::invalid(format!(
                    "cannot use the API's TLS certificate {} and key {}: {e}",
                    cert.display(),
                    key.display()
                ))
                .hint("[api.tls] names PEM files: the certificate chain, and its private key")
            })?)
        }
        None => None,
    };
    let https = tls.is_some();
    std::thread::Builder::new()
        .name("api".into())
        .spawn(move || {
            rt.block_on(async move {
                tokio::spawn(api::site::warm(app.clone()));
                if let Err(e) = api::serve(listener, api::router(app), tls).await {
                    tracing::error!("the API stopped: {e}");
                }
            });
        })
        .runtime("cannot start the API thread")?;
    tracing::info!(%addr, https, "serving the API and the metrics");
    Ok(Some(snapshots))
}
