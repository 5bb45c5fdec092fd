//! Refuses a request body before any handler sees it when it is too large (by its
//! declared length: 413) or not JSON on an unsafe method (415). The length of a body
//! without `Content-Length` is enforced while it is read (`DefaultBodyLimit`, which the
//! JSON extractor honours).

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};

use crate::problem::Problem;

/// What to do with a request's body.
pub enum BodyCheck {
    /// Let it through to the handler.
    Pass,
    /// Answer this at once, without reading the body.
    Refuse(Response),
    /// A body within the limit that is not JSON: read and discard it, then answer 415
    /// ([`discard_then_refuse`]), so the connection stays usable and a client still
    /// writing is not cut off mid-request.
    NotJson,
}

pub fn check<B>(req: &Request<B>, limit: usize) -> BodyCheck {
    let unsafe_method = !matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let declared = declared_length(req.headers());
    if declared.is_some_and(|n| n > limit as u64) {
        return BodyCheck::Refuse(oversized(req));
    }
    let has_body =
        declared.is_some_and(|n| n > 0) || req.headers().contains_key(header::TRANSFER_ENCODING);
    if unsafe_method && has_body && !is_json(req.headers()) {
        BodyCheck::NotJson
    } else {
        BodyCheck::Pass
    }
}

pub async fn discard_then_refuse(body: Body, limit: usize) -> Response {
    match axum::body::to_bytes(body, limit).await {
        Ok(_) => not_json().into_response(),
        Err(_) => too_large().into_response(),
    }
}

/// The answer to a body declared too large, given without reading it: on HTTP/1 the
/// unread bytes still sit on the connection, so it is closed rather than reused (a
/// client reusing it would see its next request fail).
fn oversized<B>(req: &Request<B>) -> Response {
    let mut res = too_large().into_response();
    if req.version() <= Version::HTTP_11 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

fn declared_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// `application/json` or any `application/*+json`, parameters (charset) allowed.
pub fn is_json(h: &HeaderMap) -> bool {
    let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub fn too_large() -> Problem {
    Problem::from_status(StatusCode::PAYLOAD_TOO_LARGE).with_detail("the request body is too large")
}

pub fn not_json() -> Problem {
    Problem::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .with_detail("the request body must be application/json")
}

#[cfg(test)]
mod tests {
    use super::is_json;
    use http::HeaderMap;

    fn ct(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", v.parse().unwrap());
        h
    }

    #[test]
    fn recognises_json_media_types() {
        assert!(is_json(&ct("application/json")));
        assert!(is_json(&ct("Application/JSON; charset=utf-8")));
        assert!(is_json(&ct("application/merge-patch+json")));
        assert!(!is_json(&ct("text/plain")));
        assert!(!is_json(&ct("application/jsonx")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
