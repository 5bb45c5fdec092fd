//! Rules on a request's head that the HTTP library does not enforce itself:
//!
//! - `Host` (RFC 9112 § 3.2): an HTTP/1.1 request carries exactly one, and no request
//!   carries two; otherwise 400. (HTTP/2 names the authority in `:authority`.)
//! - at most [`MAX_HEADERS`] header fields: hyper refuses more with 431 on HTTP/1; the
//!   same limit holds here for HTTP/2, where hyper bounds only the block's size.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, Version, header};

use crate::problem::Problem;

/// The baseline's limit on header fields per request.
pub const MAX_HEADERS: usize = 100;

/// The refusal of a request whose head breaks a rule, if it does.
pub fn check(version: Version, headers: &HeaderMap) -> Option<Response> {
    let hosts = headers.get_all(header::HOST).iter().count();
    if hosts > 1 || (version == Version::HTTP_11 && hosts == 0) {
        return Some(
            Problem::new(StatusCode::BAD_REQUEST, "request.bad_host", "Bad Request")
                .with_detail("an HTTP/1.1 request carries exactly one Host header (RFC 9112 § 3.2)")
                .into_response(),
        );
    }
    if headers.len() > MAX_HEADERS {
        return Some(
            Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request.too_many_headers",
                "Request Header Fields Too Large",
            )
            .with_detail("a request carries at most 100 header fields")
            .into_response(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn host_is_required_once_on_http_1_1() {
        let one = headers(&[("host", "a.example")]);
        let two = headers(&[("host", "a.example"), ("host", "b.example")]);
        assert!(check(Version::HTTP_11, &one).is_none());
        assert!(check(Version::HTTP_11, &HeaderMap::new()).is_some());
        assert!(check(Version::HTTP_11, &two).is_some());
        assert!(
            check(Version::HTTP_10, &HeaderMap::new()).is_none(),
            "HTTP/1.0 may omit it"
        );
        assert!(
            check(Version::HTTP_2, &HeaderMap::new()).is_none(),
            ":authority names it"
        );
        assert!(check(Version::HTTP_2, &two).is_some());
    }

    #[test]
    fn at_most_a_hundred_headers() {
        let mut h = headers(&[("host", "a.example")]);
        for i in 0..99 {
            h.append(
                format!("x-h{i}").parse::<http::HeaderName>().unwrap(),
                "v".parse().unwrap(),
            );
        }
        assert!(check(Version::HTTP_2, &h).is_none(), "100 pass");
        h.append("x-one-more", "v".parse().unwrap());
        let refused = check(Version::HTTP_2, &h).expect("101 refused");
        assert_eq!(
            refused.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
