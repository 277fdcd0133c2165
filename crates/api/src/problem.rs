//! Errors as RFC 9457 problem details (`application/problem+json`), each
//! naming the field at fault where there is one.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem, as the API answers it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type", serialize_with = "uri")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time, and what to do.
    pub detail: String,
    /// The field (query parameter, body member, path segment) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The policy's diagnostics, for a write that would make it invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<serde_json::Value>,
}

fn uri<S: serde::Serializer>(kind: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("https://tollgate.invalid/problems/{kind}"))
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            diagnostics: Vec::new(),
        }
    }

    /// 400: the request cannot be read (malformed JSON, a bad query string).
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request cannot be read",
            detail,
        )
    }

    /// 401: no token, or one that is not valid.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid token is needed",
            detail,
        )
    }

    /// 403: the token may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The token may not do this",
            detail,
        )
    }

    /// 404: no such thing (or one the token may not see).
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 409: the state changed under the request.
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "The change was not made",
            detail,
        )
    }

    /// 413: the body is too large.
    pub fn too_large(limit: usize) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The request body is too large",
            format!("bodies are limited to {limit} bytes"),
        )
    }

    /// 422: the request is readable but its values are not valid.
    pub fn invalid(field: Option<&str>, detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "The request's values are not valid",
            detail,
        );
        p.field = field.map(str::to_owned);
        p
    }

    /// 429: too many failed attempts.
    pub fn too_many(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many",
            "Too many failed attempts",
            detail,
        )
    }

    /// 500 or 503: the daemon could not answer.
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The daemon could not answer",
            detail,
        )
    }

    /// With the field named.
    #[must_use]
    pub fn field(mut self, field: &str) -> Problem {
        self.field = Some(field.to_owned());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<query::QueryError> for Problem {
    fn from(e: query::QueryError) -> Problem {
        match e {
            query::QueryError::Invalid { field, problem } => Problem::invalid(Some(field), problem),
            other => Problem::unavailable(other.to_string()),
        }
    }
}
