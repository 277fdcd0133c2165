//! Who is calling: the bearer token, or, for the dashboard, the session
//! cookie (a session id from [`crate::session`], never the token itself),
//! checked against the tokens file, with failed attempts limited per
//! client address.

use crate::problem::Problem;
use crate::tokens::Scope;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per client address in [`WINDOW`].
pub const FAILURES_ALLOWED: u32 = 10;

/// How long failed attempts are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The cookie that carries a signed-in token.
pub const SESSION_COOKIE: &str = "tollgate_session";

/// The caller, once its token checks.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Whether the token came in a cookie (writes then need the CSRF
    /// header).
    pub by_cookie: bool,
}

/// Failed attempts per client address.
#[derive(Default)]
pub struct Failures {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Failures {
    /// Whether `ip` is blocked now.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&ip)
            .is_some_and(|(since, n)| *n >= FAILURES_ALLOWED && now.duration_since(*since) < WINDOW)
    }

    /// Counts a failed attempt.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: forget old entries before adding, and never keep more
        // than a few thousand addresses.
        if seen.len() > 4096 {
            seen.retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
            if seen.len() > 4096 {
                seen.clear();
            }
        }
        let e = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

/// The secret a request carries: `Authorization: Bearer …` (a token),
/// else the session cookie (a session id).
pub(crate) fn secret(parts: &Parts) -> Option<(String, bool)> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let s = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some((s.trim().to_string(), false));
    }
    for v in parts.headers.get_all(axum::http::header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for c in v.split(';') {
            if let Some(s) = c.trim().strip_prefix(&format!("{SESSION_COOKIE}=")) {
                return Some((s.to_string(), true));
            }
        }
    }
    None
}

/// The client's address.
pub fn client(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        let ip = client(parts);
        let now = Instant::now();
        if state.failures.blocked(ip, now) {
            return Err(Problem::too_many(format!(
                "more than {FAILURES_ALLOWED} failed attempts from {ip} in the last {} s; wait and try again with a valid token",
                WINDOW.as_secs()
            )));
        }
        let Some((secret, by_cookie)) = secret(parts) else {
            return Err(Problem::unauthorized(
                "send `Authorization: Bearer TOKEN`; `tollgate token add NAME --scope read` makes one",
            ));
        };
        let known = if by_cookie {
            state.tokens.session(&secret, now)
        } else {
            state.tokens.check(&secret)
        };
        match known {
            Some((name, scope)) => Ok(Caller {
                name,
                scope,
                by_cookie,
            }),
            None => {
                state.failures.failed(ip, now);
                Err(Problem::unauthorized(if by_cookie {
                    "the session has ended (signed out, expired, the daemon restarted, or its token revoked); sign in again"
                } else {
                    "the token is not valid (revoked, or mistyped)"
                }))
            }
        }
    }
}

impl Caller {
    /// Refuses a caller that may not write.
    pub fn must_write(&self, parts_csrf: bool) -> Result<(), Problem> {
        if !self.scope.may_write() {
            return Err(Problem::forbidden(format!(
                "token `{}` has scope `{}`; changes need an admin token",
                self.name, self.scope
            )));
        }
        if self.by_cookie && !parts_csrf {
            return Err(Problem::forbidden(
                "a write from a browser session needs the `X-Tollgate-CSRF` header",
            ));
        }
        Ok(())
    }

    /// Refuses a caller that sees one tenant only.
    pub fn must_see_site(&self) -> Result<(), Problem> {
        if self.scope.site_wide() {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "token `{}` sees one tenant only; ask for /api/v1/tenants/ID",
                self.name
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_after_the_limit_and_are_forgotten_after_the_window() {
        let f = Failures::default();
        let ip = IpAddr::from([192, 0, 2, 7]);
        let t0 = Instant::now();
        for _ in 0..FAILURES_ALLOWED {
            assert!(!f.blocked(ip, t0));
            f.failed(ip, t0);
        }
        assert!(f.blocked(ip, t0));
        assert!(!f.blocked(IpAddr::from([192, 0, 2, 8]), t0));
        assert!(!f.blocked(ip, t0 + WINDOW));
    }

    /// A page another site makes the browser load can send the session
    /// cookie but cannot set a header: a write by cookie needs the CSRF
    /// header, a write by bearer token does not, and a read token never
    /// writes.
    #[test]
    fn a_write_by_cookie_needs_the_csrf_header() {
        let caller = |scope, by_cookie| Caller {
            name: "ops".into(),
            scope,
            by_cookie,
        };
        let code = |r: Result<(), Problem>| r.err().map(|p| p.status);
        assert_eq!(
            code(caller(Scope::Admin, true).must_write(false)),
            Some(403)
        );
        assert_eq!(code(caller(Scope::Admin, true).must_write(true)), None);
        assert_eq!(code(caller(Scope::Admin, false).must_write(false)), None);
        assert_eq!(code(caller(Scope::Read, false).must_write(true)), Some(403));
        assert_eq!(
            code(caller(Scope::Tenant(1), true).must_write(true)),
            Some(403)
        );
    }
}
