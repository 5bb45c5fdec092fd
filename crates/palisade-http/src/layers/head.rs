//! Rules on a request's head that the HTTP library does not enforce itself:
//!
//! - `Host` (RFC 9112 § 3.2): an HTTP/1.1 request carries exactly one, and no request
//!   carries two; its value is `host[:port]` (no user information, RFC 9110 § 7.2).
//!   On HTTP/2 the authority is `:authority`, and a `Host` beside it must name the same
//!   (RFC 9113 § 8.3.1). Otherwise 400.
//! - at most [`MAX_HEADERS`] header fields: hyper refuses more with 431 on HTTP/1; the
//!   same limit holds here for HTTP/2, where hyper bounds only the block's size.

use axum::response::{IntoResponse, Response};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, StatusCode, Uri, Version, header};

use crate::problem::Problem;

/// The baseline's limit on header fields per request.
pub const MAX_HEADERS: usize = 100;

/// The refusal of a request whose head breaks a rule, if it does.
pub fn check(version: Version, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if let Some(why) = bad_host(version, uri, headers) {
        return Some(
            Problem::new(StatusCode::BAD_REQUEST, "request.bad_host", "Bad Request")
                .with_detail(why)
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

/// What is wrong with the request's `Host`, if anything.
fn bad_host(version: Version, uri: &Uri, headers: &HeaderMap) -> Option<&'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let (host, second) = (hosts.next(), hosts.next());
    if second.is_some() || (version == Version::HTTP_11 && host.is_none()) {
        return Some("an HTTP/1.1 request carries exactly one Host header (RFC 9112 § 3.2)");
    }
    let host = host?;
    let authority = host
        .to_str()
        .ok()
        .and_then(|h| h.parse::<Authority>().ok())
        .filter(|a| !a.as_str().contains('@') && !a.host().is_empty() && port_is_a_number(a));
    let Some(authority) = authority else {
        return Some("Host is host[:port] (RFC 9110 § 7.2)");
    };
    if version == Version::HTTP_2
        && let Some(pseudo) = uri.authority()
        && !same_origin_server(uri, pseudo, &authority)
    {
        return Some("Host and :authority name different hosts (RFC 9113 § 8.3.1)");
    }
    None
}

/// Whether two authorities name the same server: host names compared without case or
/// a trailing dot, a missing port read as the scheme's default.
fn same_origin_server(uri: &Uri, a: &Authority, b: &Authority) -> bool {
    let default_port = if uri.scheme() == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    };
    let host = |a: &Authority| a.host().trim_end_matches('.').to_ascii_lowercase();
    let port = |a: &Authority| a.port_u16().unwrap_or(default_port);
    host(a) == host(b) && port(a) == port(b)
}

/// The parser takes any characters after the host's `:`; a port is digits (or none).
fn port_is_a_number(a: &Authority) -> bool {
    let after_host = a.as_str().get(a.host().len()..).unwrap_or_default();
    matches!(after_host, "" | ":") || a.port_u16().is_some()
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

    fn refused(version: Version, uri: &str, pairs: &[(&'static str, &str)]) -> bool {
        check(version, &uri.parse().unwrap(), &headers(pairs)).is_some()
    }

    #[test]
    fn host_is_required_once_on_http_1_1() {
        let one = [("host", "a.example")];
        let two = [("host", "a.example"), ("host", "b.example")];
        assert!(!refused(Version::HTTP_11, "/", &one));
        assert!(refused(Version::HTTP_11, "/", &[]));
        assert!(refused(Version::HTTP_11, "/", &two));
        assert!(!refused(Version::HTTP_10, "/", &[]), "HTTP/1.0 may omit it");
        assert!(
            !refused(Version::HTTP_2, "http://a.example/", &[]),
            ":authority names it"
        );
        assert!(refused(Version::HTTP_2, "http://a.example/", &two));
    }

    #[test]
    fn host_is_host_and_port() {
        for fine in [
            "a.example",
            "a.example:8080",
            "127.0.0.1:3000",
            "[::1]:3000",
        ] {
            assert!(!refused(Version::HTTP_11, "/", &[("host", fine)]), "{fine}");
        }
        for bad in [
            "",
            "user@a.example",
            "a.example/path",
            "a example",
            "a.example:port",
            "[::1",
        ] {
            assert!(refused(Version::HTTP_11, "/", &[("host", bad)]), "{bad:?}");
        }
    }

    #[test]
    fn on_http_2_host_and_authority_agree() {
        let uri = "http://a.example:3000/health";
        assert!(!refused(
            Version::HTTP_2,
            uri,
            &[("host", "a.example:3000")]
        ));
        assert!(!refused(
            Version::HTTP_2,
            uri,
            &[("host", "A.Example:3000")]
        ));
        assert!(!refused(
            Version::HTTP_2,
            uri,
            &[("host", "a.example.:3000")]
        ));
        assert!(refused(Version::HTTP_2, uri, &[("host", "b.example:3000")]));
        assert!(refused(Version::HTTP_2, uri, &[("host", "a.example")]));
        let tls = "https://a.example/health";
        assert!(!refused(Version::HTTP_2, tls, &[("host", "a.example:443")]));
        assert!(refused(Version::HTTP_2, tls, &[("host", "a.example:80")]));
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
        let uri = Uri::from_static("http://a.example/");
        assert!(check(Version::HTTP_2, &uri, &h).is_none(), "100 pass");
        h.append("x-one-more", "v".parse().unwrap());
        let refused = check(Version::HTTP_2, &uri, &h).expect("101 refused");
        assert_eq!(
            refused.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
