//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Operations come from the handlers' `#[utoipa::path]` annotations ([`crate::routes`]);
//! each names its own success answers and the errors only it gives (409
//! `auth.email_taken`, say). [`finish`] adds what every operation of a kind can answer,
//! from what the edge and the extractors do, so no annotation has to repeat them:
//!
//! | the operation … | can also answer |
//! |---|---|
//! | any | 400 (a missing, repeated or invalid `Host`), 413 (declared body over the limit), 431 (over 100 headers or 16 KiB of them), 500, 503 (timed out, or the service is unavailable) |
//! | takes a JSON body, or is an unsafe method under a tier | 408 (body not received in time), 415 |
//! | takes a JSON body | 400 (malformed JSON), 422 |
//! | takes query parameters | 400 `request.invalid_query` |
//! | takes path parameters | 404 |
//! | needs a bearer token | 401; 403 `auth.csrf` on an unsafe method in cookie mode |
//! | is under a rate-limit tier | 429 with `Retry-After` |
//!
//! Every error is the one [`Problem`](crate::Problem) schema as
//! `application/problem+json`.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use utoipa::OpenApi as _;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem, Paths};
use utoipa::openapi::response::Response;
use utoipa::openapi::security::SecurityScheme;
use utoipa::openapi::{OpenApi, RefOr};

use crate::problem::PROBLEM_JSON;

/// The document before any route is added: the API's version (not the build's), its
/// tags and the bearer scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Palisade",
        version = "1",
        description = "A production-hardened JSON API backend."
    ),
    tags(
        (name = "operations", description = "Probes, metrics and this document"),
        (name = "identity", description = "Accounts, sign-in, sessions and 2FA"),
        (name = "administration", description = "Users, the audit trail and infrastructure"),
    ),
)]
struct Base;

pub fn base() -> OpenApi {
    let mut doc = Base::openapi();
    // utoipa fills in the crate's license; the document describes the API, not the build.
    doc.info.license = None;
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"});
    if let Ok(scheme) = serde_json::from_value::<SecurityScheme>(bearer) {
        components.add_security_scheme("bearer", scheme);
    }
    if let Ok(problem) = serde_json::from_value(problem_schema()) {
        components.schemas.insert("Problem".into(), problem);
    }
    doc
}

/// RFC 9457 problem details, with Palisade's `code` and `request_id`.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error (RFC 9457). `code` is stable and machine-readable; a 5xx never says more than its status.",
        "required": ["type", "title", "status", "detail", "code", "request_id"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the problem type; `about:blank` when the status says it all"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string", "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Per-field problems of a 422",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}}
                }
            },
            "line": {"type": "integer", "description": "Where malformed JSON broke (400)"},
            "column": {"type": "integer"}
        }
    })
}

/// The document as JSON text.
pub fn document() -> String {
    crate::routes::all()
        .openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
}

/// The operations of a path item, with their methods.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::PATCH, &mut item.patch),
        (Method::HEAD, &mut item.head),
        (Method::OPTIONS, &mut item.options),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| Some((m, op.as_mut()?)))
}

/// The media types the routes of `paths` take as a body: their request bodies'
/// declared types, or JSON when they declare none.
pub fn accepted_media_types(paths: &Paths) -> Vec<String> {
    let mut types: Vec<String> = paths
        .paths
        .values()
        .flat_map(|item| {
            [&item.put, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
        })
        .filter_map(|op| match &op.request_body {
            Some(RefOr::T(body)) => Some(body.content.keys().cloned().collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    if types.is_empty() {
        types.push(crate::layers::body::APPLICATION_JSON.to_owned());
    }
    types.sort();
    types.dedup();
    types
}

/// Adds the answers every operation of a kind can give (the module's table), names
/// every response, and gives every error the problem schema.
pub fn finish(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (method, op) in operations_mut(item) {
            for (status, why) in common_answers(&method, op) {
                let key = status.as_u16().to_string();
                match op.responses.responses.get_mut(&key) {
                    Some(RefOr::T(r)) if r.description.is_empty() => r.description = why.into(),
                    Some(RefOr::T(r)) if !r.description.contains(why) && status.as_u16() == 400 => {
                        r.description = format!("{}; {why}", r.description);
                    }
                    Some(_) => {}
                    None => {
                        op.responses
                            .responses
                            .insert(key, RefOr::T(Response::new(why)));
                    }
                }
            }
            for (key, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(r) = response {
                    describe(key, r);
                }
            }
        }
    }
}

/// What `op` can answer besides what its annotation says, and why.
fn common_answers(method: &Method, op: &Operation) -> Vec<(StatusCode, &'static str)> {
    let params = op.parameters.as_deref().unwrap_or_default();
    let takes = |place: ParameterIn| {
        params
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let guarded = op
        .extensions
        .as_ref()
        .is_some_and(|e| e.contains_key("x-rate-limit-tier"));
    let mut out = vec![
        (
            StatusCode::BAD_REQUEST,
            "Malformed request (a missing, repeated or invalid Host header, or one naming another host than :authority)",
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "A declared body over the size limit",
        ),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "More than 100 header fields, or a header block over 16 KiB",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error; the answer carries only its request_id",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "The request timed out, or the service cannot answer now",
        ),
    ];
    // A body sent to an unsafe method is typed by the route's guard and timed by the
    // edge whether or not the operation reads one.
    if op.request_body.is_some() || (guarded && !method.is_safe()) {
        out.extend([
            (
                StatusCode::REQUEST_TIMEOUT,
                "The body was not received within the request timeout",
            ),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The body is not application/json (UTF-8)",
            ),
        ]);
    }
    if op.request_body.is_some() {
        out.extend([
            (
                StatusCode::BAD_REQUEST,
                "Malformed JSON (line and column named)",
            ),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "The body has the wrong shape or breaks a rule (fields named)",
            ),
        ]);
    }
    if takes(ParameterIn::Query) {
        out.push((
            StatusCode::BAD_REQUEST,
            "request.invalid_query: a malformed, repeated or unknown query parameter",
        ));
    }
    if takes(ParameterIn::Path) {
        out.push((
            StatusCode::NOT_FOUND,
            "Nothing found at this address (or not yours)",
        ));
    }
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        out.push((
            StatusCode::UNAUTHORIZED,
            "auth.unauthenticated: no valid access token",
        ));
        if !method.is_safe() {
            out.push((
                StatusCode::FORBIDDEN,
                "auth.csrf: in cookie mode, a missing or wrong X-CSRF-Token or a foreign Origin",
            ));
        }
    }
    if guarded {
        out.push((
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit.exceeded: the route's tier is used up; see Retry-After",
        ));
    }
    out
}

/// Names a response that has no description and gives an error the problem schema.
fn describe(status: &str, r: &mut Response) {
    let code = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok());
    if r.description.is_empty() {
        r.description = code
            .and_then(|c| c.canonical_reason())
            .unwrap_or("Answer")
            .to_owned();
    }
    let is_error = code.is_some_and(|c| c.is_client_error() || c.is_server_error());
    if is_error && r.content.is_empty() {
        let content = json!({"schema": {"$ref": "#/components/schemas/Problem"}});
        if let Ok(c) = serde_json::from_value(content) {
            r.content.insert(PROBLEM_JSON.to_owned(), c);
        }
    }
    if code == Some(StatusCode::TOO_MANY_REQUESTS) && !r.headers.contains_key("Retry-After") {
        let header = json!({"description": "Seconds until a request of this tier is accepted again", "required": true, "schema": {"type": "integer", "minimum": 1}});
        if let Ok(h) = serde_json::from_value(header) {
            r.headers.insert("Retry-After".into(), h);
        }
    }
}
