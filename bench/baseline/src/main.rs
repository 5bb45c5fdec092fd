//! The benchmark's baseline: a bare axum server answering `GET /health` with the same
//! JSON as palisade, with no layers at all. It prints its address the way palisade does
//! (`{"message":"listening","addr":…}`) so the bench script starts both alike.
//!
//! With `BASELINE_HEADERS=palisade` the handler also returns palisade's response
//! headers (as constants, still no middleware), so the two answers are the same size on
//! the wire and the comparison isolates the cost of palisade's layers.

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// What palisade sends on `GET /health`, besides `content-type`, `content-length` and `date`.
const PALISADE_HEADERS: &[(&str, &str)] = &[
    ("vary", "origin"),
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
    ("cache-control", "no-store"),
    ("x-request-id", "01a20631-2d13-7738-b7d2-9cb91ad1433b"),
];

async fn bare() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn same_headers() -> Response {
    let mut res = Json(json!({ "status": "ok" })).into_response();
    for (name, value) in PALISADE_HEADERS {
        res.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    res
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let router = match std::env::var("BASELINE_HEADERS").as_deref() {
        Ok("palisade") => Router::new().route("/health", get(same_headers)),
        _ => Router::new().route("/health", get(bare)),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "{}",
        json!({ "message": "listening", "addr": listener.local_addr()?.to_string() })
    );
    axum::serve(listener, router).await
}
