//! Reading requests: query strings and JSON bodies into typed values, with
//! a problem naming the field for anything that does not fit. Pure
//! functions over bytes, so the fuzz target can drive them directly.

use crate::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The largest body a write takes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The longest query string read.
pub const QUERY_LIMIT: usize = 4096;

/// The field a serde error is about: the path it names.
fn problem_for(path: String, e: &str) -> Problem {
    // serde names an unknown member in the message, not in the path.
    // …and a missing member likewise (the path is its parent's).
    let member = e
        .strip_prefix("unknown field `")
        .or_else(|| e.strip_prefix("missing field `"));
    let field = if let Some(rest) = member {
        let name = rest.split('`').next().unwrap_or("");
        if path.is_empty() || path == "." {
            name.to_string()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path
        } else {
            format!("{path}.{name}")
        }
    } else {
        path
    };
    let field = (!field.is_empty() && field != ".").then_some(field);
    Problem::invalid(field.as_deref(), e.to_string())
}

/// Decodes a query string.
pub fn query<T: DeserializeOwned>(raw: &str) -> Result<T, Problem> {
    if raw.len() > QUERY_LIMIT {
        return Err(Problem::bad_request(format!(
            "the query string is longer than {QUERY_LIMIT} bytes"
        )));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        problem_for(path, &e.into_inner().to_string())
    })
}

/// Decodes a JSON body.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    json_up_to(bytes, BODY_LIMIT)
}

/// Decodes a JSON body of at most `limit` bytes (an agent's batch is
/// larger than a write's body).
pub fn json_up_to<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, Problem> {
    if bytes.len() > limit {
        return Err(Problem::too_large(limit));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Problem::bad_request(format!("the body is not valid JSON: {inner}"))
        } else {
            problem_for(path, &inner.to_string())
        }
    })?;
    de.end().map_err(|e| {
        Problem::bad_request(format!("the body has more after its JSON value: {e}"))
    })?;
    Ok(value)
}

/// A decoded query string.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query<T>, Problem> {
        query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// A decoded JSON body.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Json<T>, Problem> {
        let ct = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(Problem::bad_request(
                "send the body as `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| Problem::too_large(BODY_LIMIT))?;
        json(&bytes).map(Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rate: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        down: Option<Inner>,
        limit: Option<u32>,
    }

    #[test]
    fn problems_name_the_field() {
        let p = json::<Body>(br#"{"down": {"rate": 5}}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("down.rate")));
        let p = json::<Body>(br#"{"down": {"speed": "1mbit"}}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("down.speed"));
        let p = json::<Body>(br#"{"up": 1}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("up"));
        let p = json::<Body>(b"{").unwrap_err();
        assert_eq!(p.status, 400);
        let p = json::<Body>(b"{} {}").unwrap_err();
        assert_eq!(p.status, 400);
        let p = query::<Body>("limit=many").unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("limit")));
        assert!(query::<Body>("limit=5").is_ok());
        let p = query::<Body>(&"x".repeat(5000)).unwrap_err();
        assert_eq!(p.status, 400);
    }
}
