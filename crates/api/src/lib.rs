//! tollgate's HTTP API, served by `tollgate run` on one listener (the
//! policy's `[api] listen`, default `127.0.0.1:9188`), with the metrics.
//!
//! - Reads answer from the query layer (`crates/query`, the same code as
//!   the command line) over the history, and from the engine's snapshot,
//!   which the daemon publishes after every input: a read never waits for
//!   the engine.
//! - Writes become engine commands ([`engine::io::Command`]), carried out
//!   like `tollgate tenant move`: edited in the policy file, validated,
//!   applied incrementally; an invalid one changes nothing (422).
//! - Who may do what: bearer tokens ([`tokens`]), `read`, `admin` or
//!   `tenant:ID`; a tenant token sees its own tenant only, and any other
//!   tenant's URL is 404, exactly like a tenant that does not exist.
//! - Errors are RFC 9457 problem details ([`problem`]); `GET
//!   /api/v1/openapi.json` describes everything ([`openapi`]).
//! - Series are columns (`t[]`, one array per series), as Akvorado sends
//!   its graphs, so a month of 5-minute points stays small.
//! - The dashboard ([`ui`]): its pages and files, sign-in to a session
//!   cookie ([`session`]), the site's figures ([`site`]) and graphs drawn
//!   on the server ([`graph`]).

pub mod agents;
pub mod auth;
pub mod decode;
pub mod files;
pub mod flows;
pub mod fuzzing;
pub mod graph;
pub mod guard;
pub mod latency;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod read;
pub mod session;
pub mod site;
pub mod stores;
pub mod tokens;
pub mod transit;
pub mod ui;
pub mod write;

use axum::routing::{get, post};
use axum::Router;
use engine::io::{Answer, Command};
use engine::snapshot::Snapshot;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

/// Hands a command to the engine; `None` when the daemon is stopping.
pub type Commands = Arc<dyn Fn(Command) -> Option<oneshot::Receiver<Answer>> + Send + Sync>;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The engine's latest snapshot.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Readers of the history.
    pub stores: Arc<stores::Stores>,
    /// The engine's command queue.
    pub commands: Commands,
    /// The tokens.
    pub tokens: tokens::Tokens,
    /// Failed attempts per client.
    pub failures: Arc<auth::Failures>,
    /// The routes table and the flow collector's status.
    pub files: Arc<files::Files>,
    /// The metrics registry.
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// Whether `/metrics` needs no token from anywhere.
    pub metrics_public: bool,
    /// The open slots of the history's last accounting state, decoded
    /// once per committed batch rather than once per request.
    pub open: OpenCache,
}

/// The history's open slots, with the committed batch they are as of.
pub type OpenCache = Arc<std::sync::Mutex<Option<(u64, Arc<Vec<accounting::OpenSample>>)>>>;

async fn not_found() -> problem::Problem {
    problem::Problem::not_found("no such endpoint; GET /api/v1/openapi.json lists them")
}

async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::json(),
    )
}

/// The API's routes. Methods other than the ones listed answer 405.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/status", get(read::status))
        .route("/api/v1/tenants", get(read::tenants))
        .route(
            "/api/v1/tenants/{id}",
            get(read::tenant_one).patch(write::patch_tenant),
        )
        .route("/api/v1/tenants/{id}/usage", get(read::usage))
        .route("/api/v1/tenants/{id}/bill", get(read::bill))
        .route("/api/v1/tenants/{id}/move", post(write::move_tenant))
        .route("/api/v1/bills", get(read::bills))
        .route("/api/v1/realms", get(read::realms))
        .route("/api/v1/top", get(read::top))
        .route("/api/v1/overage", get(read::overage))
        .route("/api/v1/overage/{id}/release", post(write::release))
        .route("/api/v1/routes/lookup", get(read::lookup))
        .route("/api/v1/flows/status", get(read::flows))
        .route("/api/v1/flows/top", get(flows::top))
        .route("/api/v1/transit", get(transit::report))
        .route("/api/v1/reload", post(write::reload))
        .route("/api/v1/transit/relax", post(write::transit_relax))
        .route("/api/v1/guard", get(guard::status))
        .route("/api/v1/guard/history", get(guard::history))
        .route("/api/v1/guard/ban", post(guard::ban))
        .route("/api/v1/guard/unban", post(guard::unban))
        .route("/api/v1/latency", get(latency::status))
        .route("/api/v1/latency/history", get(latency::history))
        .route(
            "/api/v1/history/batches",
            post(agents::add_batch)
                .layer(axum::extract::DefaultBodyLimit::max(agents::BATCH_LIMIT)),
        )
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/agents/{writer}", get(agents::standing))
        .route("/metrics", get(metrics::scrape))
        .merge(ui::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(decode::BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(150),
        ))
        .with_state(state)
}

/// TLS for the listener: a certificate chain and its key, PEM files.
pub type Tls = axum_server::tls_rustls::RustlsConfig;

/// Loads the certificate and key (refusing files that are not PEM).
pub async fn tls(certificate: &std::path::Path, key: &std::path::Path) -> std::io::Result<Tls> {
    // One process-wide provider; installing it twice is harmless. ring
    // rather than aws-lc-rs: no C toolchain build (cmake, a large C
    // library) in the normal build; ring lacks only the post-quantum key
    // exchanges, which browsers fall back from.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(certificate, key).await
}

/// Serves `app` on `listener` (plain HTTP, or HTTPS with `tls`) until the
/// process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<Tls>,
) -> std::io::Result<()> {
    match tls {
        None => {
            let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(tokio::net::TcpListener::from_std(listener)?, service).await
        }
        Some(config) => {
            // Marks requests as HTTPS, so that the session cookie is Secure.
            let service = app
                .layer(axum::Extension(session::Https))
                .into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum_server::from_tcp_rustls(listener, config)
                .serve(service)
                .await
        }
    }
}
