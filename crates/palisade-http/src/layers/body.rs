//! The request body's size and media type.
//!
//! - At the edge, before routing: a body declared larger than the limit is refused
//!   unread (413). The length of a body without `Content-Length` is enforced while it is
//!   read (`DefaultBodyLimit`, which the JSON extractor honours).
//! - After routing ([`super::guard`]): a body on an unsafe method must be one of the
//!   route's declared media types, else 415. Routing comes first, so a wrong method
//!   answers 405 and an unknown path 404 whatever the body.
//!
//! JSON is `application/json` with no parameter but `charset=utf-8` (RFC 8259 § 8.1:
//! JSON exchanged between systems is UTF-8). Other charsets and the `+json` family
//! (`merge-patch+json`, `json-patch+json`, …) name formats or encodings the handlers do
//! not implement, so they are refused rather than guessed at.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};

use crate::problem::Problem;

pub const APPLICATION_JSON: &str = "application/json";

/// Whether the edge lets a request through to routing.
pub enum BodyCheck {
    Pass,
    /// Answer this at once, without reading the body.
    Refuse(Response),
}

/// The edge's check: 413 for a body declared larger than `limit`.
pub fn check<B>(req: &Request<B>, limit: usize) -> BodyCheck {
    if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        BodyCheck::Refuse(oversized(req))
    } else {
        BodyCheck::Pass
    }
}

/// Whether a routed request's body may reach a handler accepting `accepts`: a safe
/// method or no body passes; otherwise its `Content-Type` must be one of them.
///
/// A body is there when its length says so, when it is chunked, or, with no length
/// declared, when the stream does not end with the head: an HTTP/2 client need not
/// send `content-length` (RFC 9113 § 8.1.1).
pub fn acceptable<B: HttpBody>(req: &Request<B>, accepts: &[String]) -> bool {
    let unsafe_method = !matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let headers = req.headers();
    let has_body = match declared_length(headers) {
        Some(n) => n > 0,
        None => headers.contains_key(header::TRANSFER_ENCODING) || !req.body().is_end_stream(),
    };
    !(unsafe_method && has_body) || accepts.iter().any(|m| is_media_type(headers, m))
}

/// A request [`acceptable`] refused, read (within `limit`) to know: a body that turns
/// out empty is no body (an HTTP/2 client may send its head, then an empty last DATA
/// frame), so the request goes on; any other is answered 415 once read, so the
/// connection stays usable and a client still writing is not cut off mid-request.
pub async fn unless_empty(req: Request, limit: usize) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) if bytes.is_empty() => Ok(Request::from_parts(parts, Body::empty())),
        Ok(_) => Err(not_json().into_response()),
        Err(_) => Err(too_large().into_response()),
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

/// `application/json`, alone or with `charset=utf-8` (case-insensitive, quoted or not).
pub fn is_json(h: &HeaderMap) -> bool {
    is_media_type(h, APPLICATION_JSON)
}

/// Whether the request's `Content-Type` is `essence`, with no parameter but
/// `charset=utf-8`.
fn is_media_type(h: &HeaderMap, essence: &str) -> bool {
    let mut values = h.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(ct) = value.to_str() else { return false };
    let mut parts = ct.split(';');
    if !parts
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case(essence))
    {
        return false;
    }
    parts.all(|param| {
        param.split_once('=').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("charset")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
    })
}

pub fn too_large() -> Problem {
    Problem::from_status(StatusCode::PAYLOAD_TOO_LARGE).with_detail("the request body is too large")
}

pub fn not_json() -> Problem {
    Problem::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .with_detail("the request body must be application/json (UTF-8)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("content-type", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_is_application_json_in_utf_8_only() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
        ] {
            assert!(is_json(&ct(&[ok])), "{ok}");
        }
        for refused in [
            "application/json; charset=utf-16",
            "application/json; charset=latin1",
            "application/json; charset=utf-8; boundary=x",
            "application/json; utf-8",
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/problem+json",
            "application/jsonx",
            "text/json",
            "text/plain",
        ] {
            assert!(!is_json(&ct(&[refused])), "{refused}");
        }
        assert!(!is_json(&HeaderMap::new()));
        assert!(!is_json(&ct(&["application/json", "application/json"])));
    }

    fn text_request(method: Method, headers: &[(&str, &str)], body: Body) -> Request<Body> {
        let mut b = Request::builder()
            .method(method)
            .header("content-type", "text/plain");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body).unwrap()
    }

    #[test]
    fn only_an_unsafe_method_with_a_body_needs_an_accepted_type() {
        let json = vec![APPLICATION_JSON.to_owned()];
        let sized = [("content-length", "3")];
        let req = |m, h: &[(&str, &str)], b| text_request(m, h, b);
        assert!(!acceptable(
            &req(Method::POST, &sized, Body::from("abc")),
            &json
        ));
        assert!(acceptable(
            &req(Method::GET, &sized, Body::from("abc")),
            &json
        ));
        let empty = [("content-length", "0")];
        assert!(acceptable(&req(Method::POST, &empty, Body::empty()), &json));
        let chunked = [("transfer-encoding", "chunked")];
        assert!(!acceptable(
            &req(Method::PATCH, &chunked, Body::from("abc")),
            &json
        ));
        // HTTP/2 without a length: the stream itself tells whether a body follows.
        assert!(!acceptable(
            &req(Method::POST, &[], Body::from("abc")),
            &json
        ));
        assert!(acceptable(&req(Method::POST, &[], Body::empty()), &json));
    }
}
