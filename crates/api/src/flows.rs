//! `GET /api/v1/flows/top`: the top talkers of the flow records kept in
//! ClickHouse (`[history.flows]`), the shape of `tollgate flows top
//! --json`. Site-wide: a tenant's token is refused (the records name
//! every tenant's peers).

use crate::auth::Caller;
use crate::decode::Query;
use crate::problem::Problem;
use crate::AppState;
use axum::extract::State;
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

/// `GET /api/v1/flows/top`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TopParams {
    /// What talkers are: `src`, `dst`, `src-port`, `dst-port`, `proto` or `as`.
    pub by: Option<String>,
    /// From: a duration back from now (`1h`, `7d`) or an RFC 3339 time
    /// (default `1h`).
    pub since: Option<String>,
    /// How many talkers, 1 to 10,000 (default 10).
    pub limit: Option<usize>,
}

/// The top talkers over the range, the most bytes first.
#[utoipa::path(get, path = "/api/v1/flows/top", tag = "flows", params(TopParams),
    responses((status = 200, description = "`{by, from, to, talkers: [{key, bytes, packets}]}`; `key` an address (null: records without one) or a number"),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn top(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<TopParams>,
) -> Result<axum::Json<query::flows::FlowTop>, Problem> {
    caller.must_see_site()?;
    let Some(by) = p.by else {
        return Err(Problem::invalid(
            Some("by"),
            "say what talkers are: src, dst, src-port, dst-port, proto or as",
        ));
    };
    let q = query::flows::query(
        &by,
        p.since.as_deref().unwrap_or("1h"),
        p.limit,
        Timestamp::now(),
    )?;
    st.stores
        .with(move |store| Ok(axum::Json(query::flows::top(store, &q)?)))
        .await
}
