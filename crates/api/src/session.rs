//! The dashboard's sign-in and sign-out: a token entered once becomes a
//! session whose id is an HttpOnly, SameSite=Strict cookie (Secure when
//! the listener speaks TLS), so the page's script never holds the token.
//!
//! Cross-site requests cannot use the session: SameSite=Strict keeps the
//! cookie off them, every write also needs the `X-Tollgate-CSRF` header
//! (which a page of another site cannot send without a CORS preflight,
//! and the API answers none), and sign-in takes only a JSON body (which a
//! plain HTML form cannot send).

use crate::auth::{client, Caller, SESSION_COOKIE};
use crate::decode::Json;
use crate::problem::Problem;
use crate::tokens::{Scope, SESSION_LIFETIME};
use crate::write::CSRF_HEADER;
use crate::AppState;
use axum::extract::{FromRequestParts as _, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::ToSchema;

/// Marks a request that came over TLS (set by [`crate::serve`]), so that
/// the cookie is `Secure` there.
#[derive(Clone, Copy, Debug)]
pub struct Https;

/// A sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The API token (`tollgate token add`).
    pub token: String,
}

/// Who is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Whether anyone is: `false` (and nothing else) for a request with
    /// no token and no cookie, so that the sign-in page loads without an
    /// error.
    pub signed_in: bool,
    /// The token's name.
    pub name: String,
    /// Its scope: `read`, `admin` or `tenant:ID`.
    pub scope: String,
    /// The one tenant it sees, for a tenant token.
    pub tenant: Option<u32>,
    /// Whether it may change things.
    pub may_write: bool,
    /// The billing zone, in which the dashboard shows times.
    pub zone: String,
}

fn session(st: &AppState, name: String, scope: Scope) -> Session {
    Session {
        signed_in: true,
        name,
        scope: scope.to_string(),
        tenant: match scope {
            Scope::Tenant(t) => Some(t),
            _ => None,
        },
        may_write: scope.may_write(),
        zone: st.snapshot.borrow().settings.cycle.zone_name().to_string(),
    }
}

/// The cookie that sets (or, with `None`, clears) the session.
pub fn cookie(id: Option<&str>, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let text = match id {
        Some(id) => format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_LIFETIME.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    // Only ASCII: the id is hex.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Who is signed in (also answers for a bearer token); `signed_in:
/// false` without any credentials, 401 for credentials that are not
/// valid.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = Session), (status = 401, body = Problem)))]
pub async fn current(
    State(st): State<AppState>,
    mut parts: Parts,
) -> Result<axum::Json<Session>, Problem> {
    if crate::auth::secret(&parts).is_none() {
        return Ok(axum::Json(Session {
            signed_in: false,
            name: String::new(),
            scope: String::new(),
            tenant: None,
            may_write: false,
            zone: st.snapshot.borrow().settings.cycle.zone_name().to_string(),
        }));
    }
    let caller = Caller::from_request_parts(&mut parts, &st).await?;
    Ok(axum::Json(session(&st, caller.name, caller.scope)))
}

/// Signs in: exchanges a token for a session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn sign_in(
    State(st): State<AppState>,
    parts: Parts,
    Json(body): Json<SignIn>,
) -> Result<Response, Problem> {
    if !parts.headers.contains_key(CSRF_HEADER) {
        return Err(Problem::forbidden(
            "sign-in from a browser needs the `X-Tollgate-CSRF` header",
        ));
    }
    let ip = client(&parts);
    let now = Instant::now();
    if st.failures.blocked(ip, now) {
        return Err(Problem::too_many(format!(
            "more than {} failed attempts from {ip} in the last {} s; wait and try again",
            crate::auth::FAILURES_ALLOWED,
            crate::auth::WINDOW.as_secs()
        )));
    }
    let Some((id, name, scope)) = st.tokens.open_session(body.token.trim(), now) else {
        st.failures.failed(ip, now);
        return Err(
            Problem::unauthorized("the token is not valid (revoked, or mistyped)").field("token"),
        );
    };
    let https = parts.extensions.get::<Https>().is_some();
    let mut r = axum::Json(session(&st, name, scope)).into_response();
    r.headers_mut().insert(SET_COOKIE, cookie(Some(&id), https));
    Ok(r)
}

/// Signs out: the session ends for good, and the cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204), (status = 403, body = Problem)))]
pub async fn sign_out(parts: Parts, State(st): State<AppState>) -> Result<Response, Problem> {
    let https = parts.extensions.get::<Https>().is_some();
    if let Some((id, true)) = crate::auth::secret(&parts) {
        if !parts.headers.contains_key(CSRF_HEADER) {
            return Err(Problem::forbidden(
                "sign-out from a browser needs the `X-Tollgate-CSRF` header",
            ));
        }
        st.tokens.close_session(&id);
    }
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, cookie(None, https));
    Ok((axum::http::StatusCode::NO_CONTENT, headers).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_httponly_strict_and_secure_over_tls() {
        let c = cookie(Some("tgs_ab"), true);
        let c = c.to_str().unwrap();
        for part in [
            "tollgate_session=tgs_ab",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!cookie(Some("x"), false)
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(cookie(None, false).to_str().unwrap().contains("Max-Age=0"));
    }
}
