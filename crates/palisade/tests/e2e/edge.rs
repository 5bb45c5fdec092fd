//! In-process: the application's layer stack around routes of the test's own (a JSON
//! echo, a panic, a slow handler), for behaviour no public endpoint shows; and the
//! route table against the document.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use palisade::app;
use palisade::testing;
use palisade_http::layers::rate_limit::Tier;
use palisade_http::routes::{self, Guard, Routes};
use palisade_http::{ApiJson, App};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Signup {
    email: String,
    age: u8,
}

#[utoipa::path(post, path = "/echo", request_body = Object, responses((status = 200)))]
async fn echo(ApiJson(body): ApiJson<Signup>) -> axum::Json<Signup> {
    axum::Json(body)
}

#[utoipa::path(get, path = "/boom", responses((status = 200)))]
async fn boom() -> &'static str {
    panic!("secret internal detail: db password is hunter2")
}

#[utoipa::path(get, path = "/slow", responses((status = 200)))]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

/// The application with the test routes, a request timeout of 200 ms, and a
/// loopback peer as operator.
async fn test_app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = testing::config(dir.path(), &[("PALISADE_REQUEST_TIMEOUT", "200ms")]);
    let routes = Routes::default().group(
        Guard::Limited(Tier::General),
        [
            utoipa_axum::routes!(echo),
            utoipa_axum::routes!(boom),
            utoipa_axum::routes!(slow),
        ],
    );
    let app = app::build_with(&config, routes).await.expect("app");
    (app.http, dir)
}

/// `req` through the application, with the `Host` every HTTP/1.1 request carries.
async fn send(app: &App, mut req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    req.headers_mut()
        .entry(http::header::HOST)
        .or_insert(http::HeaderValue::from_static("localhost"));
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
    assert_eq!(
        body["detail"], "an internal error occurred; report the request_id",
        "a 5xx says nothing of its cause"
    );
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

/// The application serving every real route, with a loopback peer (an operator).
async fn served(
    app: &App,
    method: &http::Method,
    path: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .body(Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    send(app, req).await
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_api_route_has_a_tier() {
    let (app, _dir) = testing::app(&[]).await;
    let doc = serde_json::to_value(routes::all().openapi()).expect("document");
    let app = app.http;
    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 20, "{paths:?}");
    for (template, item) in paths {
        let path = template
            .replace("{id}", "0190a0d6-0000-7000-8000-000000000000")
            .replace("{delivery}", "0190a0d6-0000-7000-8000-000000000001");
        assert!(
            !path.contains('{'),
            "a parameter the test does not fill: {template}"
        );
        let documented: Vec<&str> = METHODS
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .collect();
        for m in METHODS {
            let method: http::Method = m.to_uppercase().parse().expect("method");
            let (status, headers, body) = served(&app, &method, &path).await;
            if documented.contains(&m) {
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && body["code"] != "route.not_found",
                    "{m} {template} is documented but not served: {status} {body}"
                );
                let op = &item[m];
                if template.starts_with("/api/v1/") {
                    assert!(
                        op["x-rate-limit-tier"].is_string(),
                        "{m} {template} has no rate-limit tier"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {template} is served but not documented: {body}"
                );
                let allow: Vec<String> = headers["allow"]
                    .to_str()
                    .expect("allow")
                    .split(',')
                    .map(|a| a.trim().to_ascii_lowercase())
                    .filter(|a| a != "head")
                    .collect();
                let mut want: Vec<String> = documented.iter().map(|d| d.to_string()).collect();
                let mut allow = allow;
                allow.sort();
                want.sort();
                assert_eq!(allow, want, "Allow of {template}");
            }
        }
    }
}

#[test]
fn routes_are_only_registered_through_the_annotated_groups() {
    // A route added with axum's own `route` would be served but not documented, and
    // would have no tier: every route goes through `routes!(handler)` in a group.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../palisade-http/src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            for needle in [".route(", ".route_service(", ".nest(", ".nest_service("] {
                assert!(
                    !text.contains(needle),
                    "{} registers a route with `{needle}`",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn whatever_checks_a_password_or_a_code_is_the_auth_tier() {
    let doc = serde_json::to_value(routes::all().openapi()).expect("document");
    let schemas = &doc["components"]["schemas"];
    let secret_fields = [
        "password",
        "current_password",
        "code",
        "mfa_token",
        "refresh_token",
    ];
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let Some(reference) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            else {
                continue;
            };
            let name = reference.rsplit('/').next().expect("name");
            let props = schemas[name]["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if secret_fields.iter().any(|f| props.contains_key(*f)) {
                checked += 1;
                assert_eq!(
                    op["x-rate-limit-tier"], "auth",
                    "{method} {template} takes a credential but is not the auth tier"
                );
            }
        }
    }
    assert!(
        checked >= 9,
        "only {checked} credential-taking operations found"
    );
    // And what checks none is not: signing out must not spend the auth tier.
    for (template, method) in [("/api/v1/auth/logout", "post"), ("/api/v1/me", "get")] {
        assert_eq!(
            doc["paths"][template][method]["x-rate-limit-tier"], "general",
            "{method} {template}"
        );
    }
}
