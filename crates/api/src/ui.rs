//! What the dashboard adds to the router: its pages and files
//! ([`dashboard::router`]), sign-in and sign-out ([`crate::session`]),
//! the site's figures ([`crate::site`]) and the graphs drawn on the
//! server ([`crate::graph`]). One function, so that [`crate::router`]
//! mounts it all with one `merge`.

use crate::AppState;
use axum::routing::get;
use axum::Router;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/session",
            get(crate::session::current)
                .post(crate::session::sign_in)
                .delete(crate::session::sign_out),
        )
        .route("/api/v1/site", get(crate::site::summary))
        .route("/api/v1/site/usage", get(crate::site::usage))
        .route("/api/v1/site/{file}", get(crate::graph::site_graph))
        .route("/api/v1/plans", get(crate::site::plans))
        .route(
            "/api/v1/tenants/{id}/{file}",
            get(crate::graph::tenant_graph),
        )
        .merge(dashboard::router())
}
