//! The writes: each becomes an engine command, which edits the policy
//! file as `tollgate tenant move` does (comments kept), validates the
//! result like `check`, writes it, and applies it incrementally. An
//! invalid write changes nothing and answers 422 with the diagnostics.

use crate::auth::Caller;
use crate::decode::Json;
use crate::problem::Problem;
use crate::read::tenant;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use engine::edit::ShapeEdit;
use engine::io::{Answer, Command};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The header a browser session's writes must carry (set by the
/// dashboard's own script, which a page of another site cannot do).
pub const CSRF_HEADER: &str = "x-tollgate-csrf";

/// A move.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The plan.
    pub plan: String,
    /// The parent (leave out to keep it; a shared plan's pool has its own).
    pub parent: Option<String>,
}

/// A rate and ceil in one direction.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapeBody {
    /// Guaranteed rate, e.g. `10mbit`.
    pub rate: Option<String>,
    /// Ceiling, e.g. `20mbit`.
    pub ceil: Option<String>,
}

/// A change to a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// Toward the tenant.
    #[serde(default)]
    pub down: Option<ShapeBody>,
    /// From the tenant.
    #[serde(default)]
    pub up: Option<ShapeBody>,
    /// The committed rate, or `null` to remove it.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub commit: Option<Option<String>>,
}

fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What a write did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// What was done.
    pub message: String,
    /// Kernel changes applied for it.
    pub applied: usize,
    /// Kernel changes refused (retried next round).
    pub failed: usize,
}

fn checked_rate(field: &str, v: &Option<String>) -> Result<(), Problem> {
    if let Some(v) = v {
        net_types::Rate::parse(v).map_err(|e| {
            Problem::invalid(Some(field), format!("`{v}`: {} ({})", e.message, e.hint))
        })?;
    }
    Ok(())
}

pub(crate) async fn send(st: &AppState, command: Command) -> Result<axum::Json<Done>, Problem> {
    let rx =
        (st.commands)(command).ok_or_else(|| Problem::unavailable("the daemon is stopping"))?;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(120), rx)
        .await
        .map_err(|_| Problem::unavailable("the daemon did not answer within two minutes"))?
        .map_err(|_| Problem::unavailable("the daemon dropped the command"))?;
    match answer {
        Answer::Done {
            message,
            applied,
            failed,
        } => Ok(axum::Json(Done {
            message,
            applied,
            failed,
        })),
        Answer::Invalid {
            message,
            diagnostics,
        } => {
            let mut p = Problem::invalid(None, message);
            p.diagnostics = diagnostics;
            Err(p)
        }
        Answer::NotFound { message } => Err(Problem::not_found(message)),
        Answer::Failed { message } => Err(Problem::conflict(message)),
        // Only an agent's batch is answered so (`agents.rs`).
        Answer::BatchAdded { writer, .. } => Err(Problem::conflict(format!(
            "unexpected answer: {writer}'s batch"
        ))),
    }
}

fn csrf(h: &HeaderMap) -> bool {
    h.contains_key(CSRF_HEADER)
}

/// Moves a tenant to another plan (and parent), make-before-break.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/move", tag = "writes", request_body = MoveBody,
    params(("id" = String, Path, description = "The tenant's id or name")),
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn move_tenant(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<MoveBody>,
) -> Result<axum::Json<Done>, Problem> {
    let t = tenant(&st.snapshot.borrow().policy, &caller, &id)?.id.0;
    caller.must_write(csrf(&headers))?;
    if b.plan.is_empty() {
        return Err(Problem::invalid(Some("plan"), "name a plan"));
    }
    send(
        &st,
        Command::Move {
            tenant: t.to_string(),
            plan: b.plan,
            parent: b.parent,
        },
    )
    .await
}

/// Changes a tenant's own rate, ceil or commit.
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "writes", request_body = PatchBody,
    params(("id" = String, Path, description = "The tenant's id or name")),
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_tenant(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<PatchBody>,
) -> Result<axum::Json<Done>, Problem> {
    let t = tenant(&st.snapshot.borrow().policy, &caller, &id)?.id.0;
    caller.must_write(csrf(&headers))?;
    let down = b.down.unwrap_or_default();
    let up = b.up.unwrap_or_default();
    checked_rate("down.rate", &down.rate)?;
    checked_rate("down.ceil", &down.ceil)?;
    checked_rate("up.rate", &up.rate)?;
    checked_rate("up.ceil", &up.ceil)?;
    if let Some(c) = &b.commit {
        checked_rate("commit", c)?;
    }
    send(
        &st,
        Command::Change {
            tenant: t.to_string(),
            down: ShapeEdit {
                rate: down.rate,
                ceil: down.ceil,
            },
            up: ShapeEdit {
                rate: up.rate,
                ceil: up.ceil,
            },
            commit: b.commit,
        },
    )
    .await
}

/// Returns a tenant the overage automation moved to its plan now.
#[utoipa::path(post, path = "/api/v1/overage/{id}/release", tag = "writes",
    params(("id" = String, Path, description = "The tenant's id or name")),
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn release(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Done>, Problem> {
    let t = tenant(&st.snapshot.borrow().policy, &caller, &id)?.id.0;
    caller.must_write(csrf(&headers))?;
    send(&st, Command::Release { tenant: t }).await
}

/// Undoes the transit guard's steps in force and holds off tightening
/// for its hold time (docs/transit.md); answered once the kernel has the
/// policy back.
#[utoipa::path(post, path = "/api/v1/transit/relax", tag = "writes",
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn transit_relax(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<axum::Json<Done>, Problem> {
    caller.must_write(csrf(&headers))?;
    send(&st, Command::TransitRelax).await
}

/// Reads the policy file again (as SIGHUP does).
#[utoipa::path(post, path = "/api/v1/reload", tag = "writes",
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn reload(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<axum::Json<Done>, Problem> {
    caller.must_write(csrf(&headers))?;
    send(&st, Command::Reload).await
}
