//! A central tollgate's side of agents (issue 16, item 3; docs/agents.md):
//!
//! - `POST /api/v1/history/batches`: one agent batch (writer, sequence,
//!   samples, coverage), carried out by the engine as the daemon's own
//!   writes are (the daemon is the history's only writer), answered with
//!   the writer's committed sequence; a batch already committed is a
//!   success with `duplicate: true`, so an agent that re-sends after a
//!   crash or a lost answer counts once;
//! - `GET /api/v1/agents/{writer}`: where a writer stands in the history
//!   (what an agent asks at start);
//! - `GET /api/v1/agents`: each writer that shipped here (kept across
//!   restarts), its last sequence, last slot, lag and counts.
//!
//! An `agent` token may call these three and nothing else; an `admin`
//! token may too.

use crate::auth::Caller;
use crate::problem::Problem;
use crate::AppState;
use accounting::{Sample, SlotCoverage};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use engine::io::{Answer, Command};
use engine::shipped::newest_slot;
use engine::shipping::ShippedBatch;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest batch body: one slot of 10,000 tenants × 2 directions ×
/// a few realms and bands is some tens of thousands of samples of about
/// 150 bytes each.
pub const BATCH_LIMIT: usize = 64 * 1024 * 1024;

/// One agent batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// The agent's name: 1 to 64 of `A-Z a-z 0-9 . _ -` (not `flows`).
    pub writer: String,
    /// Strictly increasing per writer (an agent sends the slot's index ×
    /// 4096 for a slot's first batch, then the next numbers for what was
    /// added to it later).
    pub sequence: u64,
    /// The samples, as `tollgate run` records them:
    /// `{"slot", "key": {"tenant", "realm", "direction", "band", "source"}, "bytes", "packets"}`.
    #[schema(value_type = Vec<Object>)]
    pub samples: Vec<Sample>,
    /// The slots observed: `{"slot", "status": "measured" | "estimated" | "partial"}`.
    #[schema(value_type = Vec<Object>)]
    pub coverage: Vec<SlotCoverage>,
}

/// What the central did with a batch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Added {
    /// The writer.
    pub writer: String,
    /// The writer's committed sequence in the history.
    pub sequence: u64,
    /// The batch was already committed before: it counted once.
    pub duplicate: bool,
}

/// Where a writer stands in the history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WriterStanding {
    /// The writer.
    pub writer: String,
    /// Its last committed sequence, `null` if it never wrote.
    pub sequence: Option<u64>,
}

/// One writer that shipped here (kept across restarts).
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRow {
    /// The writer.
    pub writer: String,
    /// Its last committed sequence.
    pub sequence: u64,
    /// The last slot its batches carried (the slot's index, 5-minute
    /// slots from the epoch).
    pub last_slot: Option<i64>,
    /// When that slot ended (RFC 3339).
    pub last_slot_end: Option<String>,
    /// Seconds from that slot's end to now: how far behind it is.
    pub lag_seconds: Option<i64>,
    /// When its last batch arrived (RFC 3339); `null` for a writer known
    /// only from the shared store.
    pub received: Option<String>,
    /// How this daemon knows the writer: `api` (its batches came here)
    /// or `store` (it writes straight into the shared ClickHouse history,
    /// `[central] store = "clickhouse"`: its sequence and lag are read
    /// from the store, its batches are not counted here).
    pub via: AgentVia,
    /// Batches committed (counted across restarts).
    pub batches: u64,
    /// The bytes of their samples.
    pub bytes: u64,
    /// Batches sent again that were already committed (counted once).
    pub duplicates: u64,
    /// Batches refused for their content (the agent parks them).
    pub refused: u64,
    /// Why the last one was refused.
    pub last_refusal: Option<String>,
}

/// How a daemon knows a writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentVia {
    /// Its batches came through this daemon's API.
    Api,
    /// It writes into the history this daemon reads.
    Store,
}

/// The agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agents {
    /// Each writer, by name.
    pub agents: Vec<AgentRow>,
}

fn must_be_agent_or_admin(caller: &Caller) -> Result<(), Problem> {
    use crate::tokens::Scope;
    if caller.by_cookie || !matches!(caller.scope, Scope::Agent | Scope::Admin) {
        return Err(Problem::forbidden(format!(
            "token `{}` has scope `{}`; agents' batches need an `agent` (or `admin`) bearer token",
            caller.name, caller.scope
        )));
    }
    Ok(())
}

fn must_see_agents(caller: &Caller) -> Result<(), Problem> {
    use crate::tokens::Scope;
    match caller.scope {
        Scope::Agent | Scope::Admin | Scope::Read => Ok(()),
        Scope::Tenant(_) => Err(Problem::forbidden(format!(
            "token `{}` sees one tenant only",
            caller.name
        ))),
    }
}

pub(crate) fn valid(body: &BatchBody) -> Result<(), Problem> {
    if !policy::valid_writer(&body.writer) {
        return Err(Problem::invalid(
            Some("writer"),
            format!(
                "`{}` cannot name a writer: use 1 to 64 letters, digits, `.`, `_` or `-` (not `flows`, the flow collector's)",
                body.writer
            ),
        ));
    }
    if body.sequence == 0 {
        return Err(Problem::invalid(
            Some("sequence"),
            "sequences start at 1 (an agent sends the slot's index × 4096)",
        ));
    }
    Ok(())
}

/// Adds one agent batch to the history, exactly once.
#[utoipa::path(post, path = "/api/v1/history/batches", tag = "agents", request_body = BatchBody,
    responses((status = 200, body = Added), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn add_batch(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<axum::Json<Added>, Problem> {
    must_be_agent_or_admin(&caller)?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(Problem::bad_request(
            "send the body as `Content-Type: application/json`",
        ));
    }
    let body: BatchBody = crate::decode::json_up_to(&bytes, BATCH_LIMIT)?;
    valid(&body)?;
    let command = Command::AddBatch(Box::new(ShippedBatch {
        writer: body.writer,
        sequence: body.sequence,
        samples: body.samples,
        coverage: body.coverage,
    }));
    let rx =
        (st.commands)(command).ok_or_else(|| Problem::unavailable("the daemon is stopping"))?;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(120), rx)
        .await
        .map_err(|_| Problem::unavailable("the daemon did not answer within two minutes"))?
        .map_err(|_| Problem::unavailable("the daemon dropped the command"))?;
    match answer {
        Answer::BatchAdded {
            writer,
            sequence,
            duplicate,
        } => Ok(axum::Json(Added {
            writer,
            sequence,
            duplicate,
        })),
        Answer::Invalid { message, .. } => Err(Problem::invalid(None, message)),
        // The store's trouble (busy, gone): the agent keeps the batch and
        // tries again.
        Answer::Failed { message } => Err(Problem::unavailable(message)),
        Answer::NotFound { message } | Answer::Done { message, .. } => {
            Err(Problem::unavailable(message))
        }
    }
}

/// Where one writer stands in the history.
#[utoipa::path(get, path = "/api/v1/agents/{writer}", tag = "agents",
    params(("writer" = String, Path, description = "The writer's name")),
    responses((status = 200, body = WriterStanding), (status = 403, body = Problem)))]
pub async fn standing(
    State(st): State<AppState>,
    caller: Caller,
    Path(writer): Path<String>,
) -> Result<axum::Json<WriterStanding>, Problem> {
    must_see_agents(&caller)?;
    if !policy::valid_writer(&writer) {
        return Err(Problem::invalid(
            Some("writer"),
            format!("`{writer}` cannot name a writer"),
        ));
    }
    let name = writer.clone();
    let state = st
        .stores
        .with(move |s| {
            s.writer_state(&name)
                .map_err(|e| Problem::unavailable(format!("the history: {e}")))
        })
        .await?;
    Ok(axum::Json(WriterStanding {
        writer,
        sequence: state.map(|s| s.sequence),
    }))
}

/// The writers that shipped here, with their lag.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = Agents), (status = 403, body = Problem)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Agents>, Problem> {
    must_see_agents(&caller)?;
    let snap = st.snapshot.borrow().clone();
    // Agents that write straight into a shared store never reach this
    // daemon: the store says where they stand.
    let stored = st
        .stores
        .with(|s| {
            s.writers()
                .map_err(|e| Problem::unavailable(format!("the history: {e}")))
        })
        .await?;
    let lag = |slot: Option<accounting::Slot>| {
        let (end, lag) = engine::shipped::lag(slot, snap.now);
        (end.map(|t| t.to_string()), lag)
    };
    let mut agents: Vec<AgentRow> = snap
        .agents
        .iter()
        .map(|(writer, a)| {
            let (last_slot_end, lag_seconds) = lag(a.last_slot);
            AgentRow {
                writer: writer.clone(),
                sequence: a.sequence,
                last_slot: a.last_slot.map(|s| s.0),
                last_slot_end,
                lag_seconds,
                received: Some(a.at.to_string()),
                via: AgentVia::Api,
                batches: a.batches,
                bytes: a.bytes,
                duplicates: a.duplicates,
                refused: a.refused,
                last_refusal: a.last_refusal.clone(),
            }
        })
        .collect();
    for w in stored {
        if w.writer == "flows" || snap.agents.contains_key(&w.writer) {
            continue;
        }
        let slot = newest_slot(w.sequence);
        let (last_slot_end, lag_seconds) = lag(slot);
        agents.push(AgentRow {
            writer: w.writer,
            sequence: w.sequence,
            last_slot: slot.map(|s| s.0),
            last_slot_end,
            lag_seconds,
            received: None,
            via: AgentVia::Store,
            batches: 0,
            bytes: 0,
            duplicates: 0,
            refused: 0,
            last_refusal: None,
        });
    }
    agents.sort_by(|a, b| a.writer.cmp(&b.writer));
    Ok(axum::Json(Agents { agents }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Scope;

    fn caller(scope: Scope, by_cookie: bool) -> Caller {
        Caller {
            name: "t".into(),
            scope,
            by_cookie,
        }
    }

    #[test]
    fn the_agent_scope_adds_batches_and_sees_nothing_else() {
        let agent: Scope = "agent".parse().unwrap();
        assert_eq!(agent, Scope::Agent);
        assert_eq!(agent.to_string(), "agent");
        assert!(!agent.may_write() && !agent.may_see(1) && !agent.site_wide());
        assert!(must_be_agent_or_admin(&caller(Scope::Agent, false)).is_ok());
        assert!(must_be_agent_or_admin(&caller(Scope::Admin, false)).is_ok());
        for refused in [
            caller(Scope::Read, false),
            caller(Scope::Tenant(1), false),
            caller(Scope::Admin, true),
        ] {
            assert_eq!(must_be_agent_or_admin(&refused).unwrap_err().status, 403);
        }
        assert!(must_see_agents(&caller(Scope::Read, false)).is_ok());
        assert!(must_see_agents(&caller(Scope::Tenant(1), false)).is_err());
    }

    #[test]
    fn a_batch_names_its_bad_field() {
        let body = |writer: &str, sequence: u64| {
            crate::decode::json::<BatchBody>(
                format!(
                    r#"{{"writer":"{writer}","sequence":{sequence},"samples":[],"coverage":[]}}"#
                )
                .as_bytes(),
            )
            .unwrap()
        };
        assert!(valid(&body("hv1", 5)).is_ok());
        for (b, field) in [
            (body("flows", 5), "writer"),
            (body("a b", 5), "writer"),
            (body("hv1", 0), "sequence"),
        ] {
            let p = valid(&b).unwrap_err();
            assert_eq!((p.status, p.field.as_deref()), (422, Some(field)));
        }
        let p = crate::decode::json::<BatchBody>(
            br#"{"writer":"hv1","sequence":1,"samples":[{"slot":1}],"coverage":[]}"#,
        )
        .unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.field.unwrap().starts_with("samples[0]"));
    }
}
