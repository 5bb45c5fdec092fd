//! The response headers of docs/SECURITY.md § HTTP, on every response (errors,
//! preflights and 404s included). `Cache-Control: no-store` is the default for every
//! response that does not set its own: an API's answers are per-caller, and a cached
//! one is a leak waiting for a shared cache.

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue, header};

const ALWAYS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), microphone=(), payment=(), usb=()",
    ),
    ("x-permitted-cross-domain-policies", "none"),
];

const HSTS: &str = "max-age=31536000; includeSubDomains";

static X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// Every default header in one map, cloned per response: one copy instead of a hashed
/// insert per header.
fn defaults(tls: bool) -> &'static HeaderMap {
    fn build(tls: bool) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(ALWAYS.len() + 8);
        for (name, value) in ALWAYS {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if tls {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        h
    }
    static PLAIN: LazyLock<HeaderMap> = LazyLock::new(|| build(false));
    static TLS: LazyLock<HeaderMap> = LazyLock::new(|| build(true));
    if tls { &TLS } else { &PLAIN }
}

/// Sets the headers on `h`; `tls`: whether TLS terminates at or before this server
/// (`PALISADE_BEHIND_TLS`), which turns HSTS on. A header the response set itself
/// (its own `Cache-Control`, a page's own policy) is kept.
pub fn apply(h: &mut HeaderMap, tls: bool) {
    let own = std::mem::replace(h, defaults(tls).clone());
    h.extend(own);
    h.remove(header::SERVER);
    h.remove(&X_POWERED_BY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_set_and_the_response_keeps_its_own() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        h.append(header::VARY, HeaderValue::from_static("origin"));
        h.append(header::VARY, HeaderValue::from_static("accept"));
        h.insert(header::SERVER, HeaderValue::from_static("hyper"));
        apply(&mut h, false);
        assert_eq!(h[header::CACHE_CONTROL], "max-age=60");
        assert_eq!(h.get_all(header::VARY).iter().count(), 2);
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(!h.contains_key(header::SERVER));
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));

        let mut h = HeaderMap::new();
        apply(&mut h, true);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], HSTS);
    }
}
