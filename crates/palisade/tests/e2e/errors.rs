//! Bad input of every kind answered as problem+json with a `detail`: query strings,
//! media types, routing before the media type, and one of each error class.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::Api;
use crate::harness::{Server, assert_problem, client, raw_exchange};

const PASSWORD: &str = "correct horse battery staple 42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_query_strings_are_problems_naming_the_parameter() {
    let server = Server::start(&[]);
    let api = Api::new(&server);
    let at = api.signed_up("query@example.com", PASSWORD).await;
    let at = at["access_token"].as_str().expect("token");
    for (query, named) in [
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=not%20a%20cursor", "cursor"),
        ("cursor=bm90LWEtcG9zaXRpb24", "cursor"),
        ("colour=blue", "colour"),
    ] {
        let res = client()
            .get(server.url(&format!("/api/v1/me/sessions?{query}")))
            .bearer_auth(at)
            .send()
            .await
            .expect("request");
        let body = assert_problem(res, StatusCode::BAD_REQUEST, "request.invalid_query").await;
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(named)),
            "{query}: {body}"
        );
    }
}

/// Login with a body of `content_type`: what the media-type check makes of it.
async fn login_as(server: &Server, content_type: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(server.url("/api/v1/auth/login"))
        .body(json!({"email": "nobody@example.com", "password": "x"}).to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_application_json_in_utf_8_is_read_as_json() {
    let server = Server::start(&[("PALISADE_RATE_LIMIT_AUTH", "1000/1m")]);
    for accepted in [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON; Charset=UTF-8",
    ] {
        let res = login_as(&server, Some(accepted)).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "auth.invalid_credentials").await;
    }
    for refused in [
        Some("application/json; charset=utf-16"),
        Some("application/json; charset=latin1"),
        Some("application/merge-patch+json"),
        Some("application/json-patch+json"),
        Some("application/vnd.api+json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let res = login_as(&server, refused).await;
        assert_problem(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_comes_before_the_media_type() {
    let server = Server::start(&[]);
    let text = |method: Method, path: &str| {
        client()
            .request(method, server.url(path))
            .header("content-type", "text/plain")
            .body("hello")
            .send()
    };
    let res = text(Method::PUT, "/api/v1/auth/login").await.expect("PUT");
    assert_eq!(res.headers()["allow"], "POST");
    assert_problem(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method_not_allowed",
    )
    .await;
    let res = text(Method::POST, "/api/v1/no/such/thing")
        .await
        .expect("POST");
    assert_problem(res, StatusCode::NOT_FOUND, "route.not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_problem_class_carries_a_detail() {
    let server = Server::start(&[("PALISADE_RATE_LIMIT_AUTH", "5/1m")]);
    let api = Api::new(&server);
    let c = client();
    let url = |p: &str| server.url(p);

    let res = c
        .post(url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .expect("400");
    assert_problem(res, StatusCode::BAD_REQUEST, "request.malformed_json").await;

    let res = c
        .post(url("/api/v1/auth/register"))
        .json(&json!({"email": "not an email", "password": "short", "name": ""}))
        .send()
        .await
        .expect("422");
    let body = assert_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid_fields",
    )
    .await;
    assert!(
        body["errors"].as_array().is_some_and(|e| e.len() == 3),
        "{body}"
    );

    let member = api.signed_up("classes@example.com", PASSWORD).await;
    let at = member["access_token"].as_str().expect("token");
    let res = c
        .post(url("/api/v1/auth/register"))
        .json(&json!({"email": "classes@example.com", "password": PASSWORD, "name": "Again"}))
        .send()
        .await
        .expect("409");
    assert_problem(res, StatusCode::CONFLICT, "auth.email_taken").await;

    let res = c.get(url("/api/v1/me")).send().await.expect("401");
    assert_problem(res, StatusCode::UNAUTHORIZED, "auth.unauthenticated").await;
    let as_member =
        |method: Method, path: &str| c.request(method, url(path)).bearer_auth(at).send();
    let res = as_member(Method::GET, "/api/v1/admin/users")
        .await
        .expect("403");
    assert_problem(res, StatusCode::FORBIDDEN, "auth.forbidden").await;
    for (path, why) in [
        (
            "/api/v1/me/sessions/0190a0d6-0000-7000-8000-000000000000",
            "no such session",
        ),
        ("/api/v1/me/sessions/not-a-uuid", "a malformed id"),
    ] {
        let res = as_member(Method::DELETE, path).await.expect(why);
        assert_problem(res, StatusCode::NOT_FOUND, "route.not_found").await;
    }
    let res = c.delete(url("/health")).send().await.expect("405");
    assert_problem(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method_not_allowed",
    )
    .await;
    // Refused on the declared length, before any of the body is read: a raw head
    // alone, as a client that sends it and waits would.
    let answer = raw_exchange(
        &server,
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(body["code"], "request.body_too_large", "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    // The auth tier: 5 a minute, used up by the five requests above it (the 413 was
    // refused before routing, where the tier is counted).
    let res = c
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "classes@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("429");
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limit.exceeded").await;
}
