//! The response headers of SECURITY-BASELINE.md § HTTP, on every response (errors,
//! preflights and 404s included). `Cache-Control: no-store` is the default for every
//! response that does not set its own: an API's answers are per-caller, and a cached
//! one is a leak waiting for a shared cache.

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

/// Sets the headers on `h`; `tls`: whether TLS terminates at or before this server
/// (`PALISADE_BEHIND_TLS`), which turns HSTS on.
pub fn apply(h: &mut HeaderMap, tls: bool) {
    h.reserve(ALWAYS.len() + 3);
    for (name, value) in ALWAYS {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.remove(header::SERVER);
    h.remove("x-powered-by");
}
