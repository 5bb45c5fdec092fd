//! The extractors every handler takes its input with; each refuses bad input with a
//! problem that names what is wrong.
//!
//! [`ApiJson<T>`], the body:
//! - not `application/json` → 415
//! - larger than the body limit → 413
//! - not JSON → 400 naming the line and column
//! - JSON of the wrong shape (unknown field, wrong type, missing field) → 422 naming the
//!   field; request types use `#[serde(deny_unknown_fields)]`, so no mass assignment.
//!
//! [`ApiQuery<T>`], the query string: a malformed value, a repeated or unknown
//! parameter → 400 `request.invalid_query` naming the parameter.
//!
//! [`ApiPath<T>`], the path's parameters: one that does not parse (an id that is not a
//! UUID) names nothing that exists → 404.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::layers::body::{is_json, not_json, too_large};
use crate::problem::Problem;

/// The query string, parsed into `T` (a struct with `#[serde(deny_unknown_fields)]`).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(ApiQuery)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                if field == "." || field.is_empty() {
                    invalid_query(&message)
                } else {
                    invalid_query(&format!("{field}: {message}"))
                }
            })
    }
}

/// 400 `request.invalid_query`.
pub fn invalid_query(detail: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "request.invalid_query",
        "Invalid query parameter",
    )
    .with_detail(detail)
}

/// The path's parameters, parsed into `T`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|_| Problem::not_found())
    }
}

#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let bytes = json_body(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// The bytes of a JSON body (415 for another type, 413 above the limit), unparsed.
pub async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    if !is_json(req.headers()) {
        return Err(not_json());
    }
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "request.unreadable_body",
                "Bad Request",
            )
            .with_detail("the request body could not be read")
        }
    })
}

/// Deserialises `bytes` as `T`, mapping errors as the module documentation says.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        problem(&field, &e.into_inner())
    })?;
    de.end().map_err(|e| problem("", &e))?;
    Ok(value)
}

/// Deserialises an already-parsed JSON `value` as `T`: the 422 of [`parse`] for a
/// value of the wrong shape.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        problem(&field, &e.into_inner())
    })
}

fn problem(field: &str, e: &serde_json::Error) -> Problem {
    match e.classify() {
        serde_json::error::Category::Data => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid_body",
            "The request body has the wrong shape",
        )
        .with_detail(e.to_string())
        .with_extension(
            "errors",
            json!([{ "field": field, "message": message_of(e) }]),
        ),
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            "request.malformed_json",
            "The request body is not valid JSON",
        )
        .with_detail(format!(
            "{} at line {} column {}",
            message_of(e),
            e.line(),
            e.column()
        ))
        .with_extension("line", json!(e.line()))
        .with_extension("column", json!(e.column())),
    }
}

/// serde_json's message without its trailing " at line L column C".
fn message_of(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    #[test]
    fn syntax_errors_are_400_with_position() {
        let p = parse::<Body>(b"{\n  \"name\": \"x\",,\n}").unwrap_err();
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert_eq!(p.code, "request.malformed_json");
        assert_eq!(p.extensions["line"], json!(2));
        assert!(p.detail.unwrap().contains("line 2 column"));
    }

    #[test]
    fn unknown_fields_are_422_naming_the_field() {
        let p = parse::<Body>(br#"{"name":"x","inner":{"n":1,"admin":true}}"#).unwrap_err();
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.extensions["errors"][0]["field"], json!("inner.admin"));
        assert!(
            p.extensions["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field `admin`")
        );
    }

    #[test]
    fn wrong_types_are_422() {
        let p = parse::<Body>(br#"{"name":"x","inner":{"n":300}}"#).unwrap_err();
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.extensions["errors"][0]["field"], json!("inner.n"));
    }

    #[test]
    fn trailing_garbage_and_truncation_are_400() {
        assert_eq!(
            parse::<Body>(br#"{"name":"x"} {}"#).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse::<Body>(br#"{"name":"#).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn valid_bodies_parse() {
        assert!(parse::<Body>(br#"{"name":"x","inner":{"n":3}}"#).is_ok());
    }
}
