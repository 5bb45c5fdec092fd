//! RFC 9457 problem details: the one shape of every error response.
//!
//! Handlers, extractors and layers return a [`Problem`]; its `IntoResponse` only sets the
//! status and stows the problem in the response's extensions. [`finish`], called by
//! the outermost layer, which knows the request id, writes the body. The same layer turns the bodiless error
//! responses of axum (404, 405, …) and of the edge (timeouts) into problems, so no error
//! leaves the server in another shape. A 5xx never carries its detail.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::layers::request_id::RequestId;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable, machine-readable, e.g. `request.malformed_json`.
    pub code: &'static str,
    pub title: Cow<'static, str>,
    pub detail: Option<String>,
    /// A URI naming the problem type; `about:blank` when the status says it all.
    pub type_uri: &'static str,
    /// Extension members, e.g. `line`/`column` of a syntax error or per-field `errors`.
    pub extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            title: title.into(),
            detail: None,
            type_uri: "about:blank",
            extensions: Map::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Names the problem type with a URI (instead of `about:blank`).
    pub fn typed(mut self, type_uri: &'static str) -> Self {
        self.type_uri = type_uri;
        self
    }

    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// The problem for a bare error status produced outside our handlers.
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "request.bad_request",
            StatusCode::NOT_FOUND => "route.not_found",
            StatusCode::METHOD_NOT_ALLOWED => "request.method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "request.timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "request.body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "request.unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "request.invalid_body",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit.exceeded",
            StatusCode::SERVICE_UNAVAILABLE => "service.unavailable",
            s if s.is_server_error() => "internal",
            _ => "request.error",
        };
        Self::new(status, code, status.canonical_reason().unwrap_or("Error"))
    }

    pub fn internal() -> Self {
        Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// An unknown path, or a record that does not exist or is someone else's: the
    /// answer does not tell which.
    pub fn not_found() -> Self {
        Self::from_status(StatusCode::NOT_FOUND)
    }

    /// 422 `request.invalid_fields`: input that parsed but breaks a rule, one
    /// `{field, message}` per problem.
    pub fn invalid_fields<F: AsRef<str>>(errors: impl IntoIterator<Item = (F, String)>) -> Self {
        let errors: Vec<Value> = errors
            .into_iter()
            .map(|(f, m)| json!({"field": f.as_ref(), "message": m}))
            .collect();
        let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
        let detail = format!("invalid: {}", fields.join(", "));
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid_fields",
            "Some fields are invalid",
        )
        .with_detail(detail)
        .with_extension("errors", Value::Array(errors))
    }

    /// What the body says in `detail`: the problem's own for a client error; for a
    /// server error only a fixed sentence of its status, whatever the cause was.
    fn detail_text(&self) -> &str {
        match (&self.detail, self.status.is_server_error()) {
            (Some(d), false) => d,
            _ => generic_detail(self.status),
        }
    }

    fn body(&self, request_id: Option<&str>) -> Value {
        let mut body = Map::new();
        // Extensions first, so they can never overwrite the standard members.
        if !self.status.is_server_error() {
            body.extend(self.extensions.clone());
        }
        let standard = json!({
            "type": self.type_uri,
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail_text(),
            "code": self.code,
            "request_id": request_id,
        });
        if let Value::Object(m) = standard {
            body.extend(m);
        }
        Value::Object(body)
    }
}

/// The `detail` of a problem that brings none, and of every server error.
fn generic_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "the request is malformed",
        StatusCode::UNAUTHORIZED => "a valid access token is required",
        StatusCode::FORBIDDEN => "the request is not allowed",
        StatusCode::NOT_FOUND => "nothing was found at this address",
        StatusCode::METHOD_NOT_ALLOWED => "the method is not allowed here; see the Allow header",
        StatusCode::REQUEST_TIMEOUT => "the request was not received in time",
        StatusCode::CONFLICT => "the request conflicts with the current state",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the request body's media type is not accepted here",
        StatusCode::UNPROCESSABLE_ENTITY => "the request body breaks a rule",
        StatusCode::TOO_MANY_REQUESTS => "too many requests; retry later",
        StatusCode::SERVICE_UNAVAILABLE => {
            "the service cannot answer now; retry later, with the request_id if it persists"
        }
        s if s.is_server_error() => "an internal error occurred; report the request_id",
        _ => "the request failed",
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Writes every error response as problem+json; see the module documentation.
pub fn finish(mut res: Response, request_id: &RequestId) -> Response {
    let problem = match res.extensions_mut().remove::<Problem>() {
        Some(p) => p,
        // A body with a content type was written on purpose (e.g. /health's 503).
        None if res.status().is_client_error() || res.status().is_server_error() => {
            if res.headers().contains_key(header::CONTENT_TYPE) {
                return res;
            }
            Problem::from_status(res.status())
        }
        None => return res,
    };
    let body = problem.body(Some(request_id.as_str()));
    let (mut parts, _) = res.into_parts();
    parts.status = problem.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_never_carry_detail_or_extensions() {
        let p = Problem::internal()
            .with_detail("connection refused at 10.0.0.3:5432")
            .with_extension("query", json!("SELECT secret"));
        let body = p.body(Some("rid")).to_string();
        assert!(!body.contains("10.0.0.3"), "{body}");
        assert!(body.contains("report the request_id"), "{body}");
        assert!(!body.contains("secret"), "{body}");
        assert!(body.contains("\"request_id\":\"rid\""), "{body}");
    }

    #[test]
    fn every_problem_has_a_detail() {
        for status in [
            400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503,
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            let body = Problem::from_status(status).body(None);
            assert!(
                body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{status}: {body}"
            );
        }
        let p = Problem::invalid_fields([("email", "must be an email address".to_owned())]);
        assert_eq!(p.body(None)["detail"], json!("invalid: email"));
        assert_eq!(p.body(None)["errors"][0]["field"], json!("email"));
    }

    #[test]
    fn extensions_cannot_overwrite_standard_members() {
        let p = Problem::from_status(StatusCode::BAD_REQUEST).with_extension("status", json!(200));
        assert_eq!(p.body(None)["status"], json!(400));
    }
}
