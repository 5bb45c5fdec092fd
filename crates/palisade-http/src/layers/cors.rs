//! CORS from the `ALLOWED_ORIGINS` allow-list: exact origins only, with credentials,
//! never `*` and never `null` (configuration refuses both), preflight cached 10 min.
//!
//! A request without `Origin` (every non-browser client, and same-origin browser
//! GETs) gets only `Vary: Origin`; the allow-list is consulted only when an origin
//! asks. tower-http's `CorsLayer` did the same work but was cloned, allow-list and
//! all, with the service on every request (docs/ARCHITECTURE.md).

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use axum::response::{IntoResponse, Response};

const ALLOW_METHODS: &str = "GET,HEAD,POST,PUT,PATCH,DELETE";
const ALLOW_HEADERS: &str = "content-type,authorization,x-csrf-token,x-request-id,idempotency-key";
const EXPOSE_HEADERS: &str = "x-request-id,ratelimit,ratelimit-policy,retry-after";
const MAX_AGE_SECS: &str = "600";

/// The configured allow-list.
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    origins: Vec<HeaderValue>,
}

/// What the policy decided for one request.
#[derive(Clone, Debug, Default)]
pub struct CorsGrant {
    /// The request's origin, when it is on the list.
    origin: Option<HeaderValue>,
}

impl CorsPolicy {
    pub fn new(origins: &[HeaderValue]) -> Self {
        CorsPolicy {
            origins: origins.to_vec(),
        }
    }

    /// Looks the request's `Origin` up in the allow-list (byte for byte).
    pub fn grant(&self, h: &HeaderMap) -> CorsGrant {
        let origin = h
            .get(header::ORIGIN)
            .filter(|o| self.origins.iter().any(|allowed| allowed == *o))
            .cloned();
        CorsGrant { origin }
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `None` for any other request. An origin not
    /// on the list gets no `Access-Control-Allow-*` headers, which the browser reads as
    /// a refusal.
    pub fn preflight(method: &Method, h: &HeaderMap, grant: &CorsGrant) -> Option<Response> {
        let is_preflight = method == Method::OPTIONS
            && h.contains_key(header::ORIGIN)
            && h.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !is_preflight {
            return None;
        }
        let mut res = StatusCode::NO_CONTENT.into_response();
        let out = res.headers_mut();
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        if let Some(origin) = &grant.origin {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            out.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            out.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE_SECS),
            );
        }
        Some(res)
    }
}

impl CorsGrant {
    /// The CORS headers of an ordinary (not preflight) response.
    pub fn apply(&self, h: &mut HeaderMap) {
        h.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = &self.origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    fn policy() -> CorsPolicy {
        CorsPolicy::new(&[HeaderValue::from_static("https://app.example.com")])
    }

    #[test]
    fn only_listed_origins_are_granted() {
        let p = policy();
        assert!(
            p.grant(&headers(&[("origin", "https://app.example.com")]))
                .origin
                .is_some()
        );
        for o in [
            "null",
            "https://app.example.com.evil.example",
            "http://app.example.com",
            "https://APP.example.com",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
            assert!(p.grant(&h).origin.is_none(), "{o} granted");
        }
    }

    #[test]
    fn a_request_without_origin_gets_only_vary() {
        let mut out = HeaderMap::new();
        policy().grant(&HeaderMap::new()).apply(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[header::VARY], "origin");
    }

    #[test]
    fn a_granted_request_gets_credentials_and_exposed_headers() {
        let mut out = HeaderMap::new();
        policy()
            .grant(&headers(&[("origin", "https://app.example.com")]))
            .apply(&mut out);
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(
            out[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .is_ok_and(|v| v.contains("x-request-id"))
        );
    }

    #[test]
    fn preflights_are_answered_and_refused_origins_get_nothing_to_go_on() {
        let p = policy();
        let good = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        let res =
            CorsPolicy::preflight(&Method::OPTIONS, &good, &p.grant(&good)).expect("preflight");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert!(
            res.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_HEADERS)
        );

        let evil = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]);
        let res =
            CorsPolicy::preflight(&Method::OPTIONS, &evil, &p.grant(&evil)).expect("preflight");
        assert!(
            !res.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert!(
            !res.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_METHODS)
        );

        // A plain OPTIONS (no Access-Control-Request-Method) is routed like any request.
        let plain = headers(&[("origin", "https://app.example.com")]);
        assert!(CorsPolicy::preflight(&Method::OPTIONS, &plain, &p.grant(&plain)).is_none());
        assert!(CorsPolicy::preflight(&Method::POST, &good, &p.grant(&good)).is_none());
    }
}
