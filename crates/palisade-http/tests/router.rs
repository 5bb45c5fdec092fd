//! The full layer stack around test-only routes (a JSON echo, a panic, a slow handler),
//! for behaviour the binary has no public endpoint for yet.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use palisade_auth::access::{AccessTokens, SigningKey};
use palisade_auth::csrf::Csrf;
use palisade_auth::password::{BASELINE, Passwords};
use palisade_auth::refresh::RefreshTokens;
use palisade_auth::secretbox::SecretBox;
use palisade_http::layers::rate_limit::RateLimitSettings;
use palisade_http::telemetry::Metrics;
use palisade_http::{ApiJson, App, AppState, HttpSettings, Shared, app};
use palisade_service::HealthService;
use palisade_service::audit::Audit;
use palisade_service::identity::{Hasher, Identity, IdentitySettings};
use palisade_store::ratelimit::RateLimiter;
use palisade_store::{Db, DbHealth, StoreSettings};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Signup {
    email: String,
    age: u8,
}

async fn echo(ApiJson(body): ApiJson<Signup>) -> axum::Json<Signup> {
    axum::Json(body)
}

async fn boom() -> &'static str {
    panic!("secret internal detail: db password is hunter2")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

async fn test_app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&StoreSettings::new(format!(
        "sqlite://{}/t.db",
        dir.path().display()
    )))
    .await
    .expect("db");
    let health = HealthService::new(
        db.clone(),
        DbHealth::start(db.clone(), Duration::from_secs(30), Duration::from_secs(5)).await,
    );
    let key = SigningKey::generate_ed25519();
    let identity = Identity::new(
        db.clone(),
        Hasher::new(Passwords::new(BASELINE).expect("argon2"), 1),
        AccessTokens::new(&key, "palisade", "palisade-api", Duration::from_secs(900)),
        RefreshTokens::new(&key.derive("refresh")).expect("key"),
        SecretBox::new(&key.derive("box")).expect("key"),
        Audit::new(db.clone()),
        IdentitySettings::default(),
    );
    let state = AppState::from(Shared {
        db,
        health,
        identity,
        csrf: Csrf::new(&key.derive("csrf")).expect("key"),
        cookie_secure: true,
        allowed_origins: Arc::from(vec![]),
        limiter: RateLimiter::in_process(),
        rate_limits: RateLimitSettings::default(),
        metrics: Metrics::global(),
        ops_allow: Arc::from(vec![]),
        openapi: "{}".into(),
    });
    let settings = HttpSettings {
        request_timeout: Duration::from_millis(200),
        ..HttpSettings::default()
    };
    let api = Router::new()
        .route("/echo", post(echo))
        .route("/boom", get(boom))
        .route("/slow", get(slow));
    (app(state, &settings, api), dir)
}

async fn send(app: &App, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

fn post_json(body: impl Into<Body>) -> Request<Body> {
    Request::post("/echo")
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

#[tokio::test]
async fn a_valid_body_reaches_the_handler() {
    let (app, _dir) = test_app().await;
    let (status, _, body) = send(&app, post_json(r#"{"email":"a@example.com","age":30}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["age"], 30);
}

#[tokio::test]
async fn malformed_json_is_400_naming_line_and_column() {
    let (app, _dir) = test_app().await;
    let (status, headers, body) = send(
        &app,
        post_json("{\n \"email\": \"a@b.c\",\n \"age\": 3,,\n}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "request.malformed_json");
    assert_eq!(body["line"], 3);
    assert!(body["column"].as_u64().is_some());
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().expect("ascii")
    );
}

#[tokio::test]
async fn an_unknown_field_is_422_naming_it() {
    let (app, _dir) = test_app().await;
    let (status, _, body) = send(
        &app,
        post_json(r#"{"email":"a@b.c","age":3,"role":"admin"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "request.invalid_body");
    assert_eq!(body["errors"][0]["field"], "role");
}

#[tokio::test]
async fn a_missing_content_type_is_415() {
    let (app, _dir) = test_app().await;
    let req = Request::post("/echo")
        .body(Body::from(r#"{"email":"a","age":1}"#))
        .expect("request");
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "request.unsupported_media_type");
}

#[tokio::test]
async fn a_declared_oversized_body_is_413_and_closes_the_connection() {
    let (app, _dir) = test_app().await;
    let req = Request::post("/echo")
        .header("content-type", "application/json")
        .header("content-length", (2 * 1024 * 1024).to_string())
        .body(Body::from(vec![b' '; 2 * 1024 * 1024]))
        .expect("request");
    let (status, headers, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "request.body_too_large");
    assert_eq!(
        headers.get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "{headers:?} {body}"
    );
}

#[tokio::test]
async fn a_streamed_oversized_body_is_413() {
    let (app, _dir) = test_app().await;
    // No Content-Length: the limit is enforced while the body is read.
    let chunks =
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 * 1024])));
    let body = Body::from_stream(futures_lite_stream(chunks));
    let req = Request::post("/echo")
        .header("content-type", "application/json")
        .body(body)
        .expect("request");
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "request.body_too_large");
}

/// An iterator as a `Stream`, without pulling in a stream crate for one test.
fn futures_lite_stream<I: Iterator + Unpin>(iter: I) -> impl futures_core::Stream<Item = I::Item> {
    struct S<I>(I);
    impl<I: Iterator + Unpin> futures_core::Stream for S<I> {
        type Item = I::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<I::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    S(iter)
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_without_internals() {
    let (app, _dir) = test_app().await;
    let (status, headers, body) = send(
        &app,
        Request::get("/boom").body(Body::empty()).expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "internal");
    assert!(body.get("detail").is_none());
    assert!(!body.to_string().contains("hunter2"));
    assert!(body["request_id"].is_string());
    assert_eq!(
        headers["x-content-type-options"], "nosniff",
        "security headers on a 500 too"
    );
}

#[tokio::test]
async fn a_request_past_its_timeout_is_a_503_problem() {
    let (app, _dir) = test_app().await;
    let started = std::time::Instant::now();
    let (status, _, body) = send(
        &app,
        Request::get("/slow").body(Body::empty()).expect("request"),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "service.unavailable");
}
