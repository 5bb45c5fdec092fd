//! The real binary on loopback (embedded SQLite), attacked from outside.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::harness::{Server, assert_problem, client, raw_exchange};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const SECURITY_HEADERS: &[(&str, &str)] = &[
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
];

fn assert_hardened(res: &reqwest::Response, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            res.headers().get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{what}: header {name}"
        );
    }
    assert!(
        res.headers().get("server").is_none(),
        "{what}: Server header"
    );
    assert!(
        res.headers().get("x-powered-by").is_none(),
        "{what}: X-Powered-By header"
    );
    assert!(
        res.headers().get("x-request-id").is_some(),
        "{what}: X-Request-ID"
    );
    assert!(
        res.headers().get("strict-transport-security").is_none(),
        "{what}: HSTS without TLS"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = Server::start(&[]);
    let c = client();
    let cases = [
        (Method::GET, "/health"),
        (Method::GET, "/live"),
        (Method::GET, "/ready"),
        (Method::GET, "/openapi.json"),
        (Method::GET, "/no/such/route"),
        (Method::DELETE, "/health"),
    ];
    for (method, path) in cases {
        let res = c
            .request(method.clone(), server.url(path))
            .send()
            .await
            .expect("request");
        assert_hardened(&res, &format!("{method} {path}"));
    }
    let res = c
        .post(server.url("/health"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("request");
    assert_hardened(&res, "415");
}

#[tokio::test]
async fn hsts_is_sent_behind_tls() {
    let server = Server::start(&[("PALISADE_BEHIND_TLS", "true")]);
    let res = client()
        .get(server.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[tokio::test]
async fn probes_answer() {
    let server = Server::start(&[]);
    let c = client();
    for (path, status) in [("/live", "ok"), ("/health", "ok"), ("/ready", "ready")] {
        let res = c.get(server.url(path)).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body, serde_json::json!({ "status": status }), "{path}");
    }
    let detailed: Value = c
        .get(server.url("/health/detailed"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(detailed["database"]["backend"], "sqlite");
    assert_eq!(detailed["database"]["reachable"], true);
    assert!(detailed["database"]["pool"]["max"] == 20, "{detailed}");
    assert!(
        detailed["memory"]["rss_bytes"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{detailed}"
    );
    assert!(detailed["uptime_seconds"].is_u64() && detailed["version"].is_string());
    // The public health answer discloses no version or internals.
    let public = c
        .get(server.url("/health"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(
        !public.contains(env!("CARGO_PKG_VERSION")) && !public.contains("sqlite"),
        "{public}"
    );
}

#[tokio::test]
async fn every_error_class_is_a_problem() {
    let server = Server::start(&[]);
    let c = client();

    // The server answers on the declared length, before reading the 2 MiB, and closes
    // the connection. A raw head alone: a client writing the body could see its write
    // fail before it reads the answer.
    let answer = raw_exchange(
        &server,
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let head = answer.to_ascii_lowercase();
    assert!(head.contains("connection: close"), "{answer}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{answer}"
    );
    let (head_text, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let problem: Value = serde_json::from_str(body).expect("a problem body");
    assert_eq!(problem["status"], 413, "{problem}");
    assert_eq!(problem["code"], "request.body_too_large", "{problem}");
    assert!(
        problem["title"].is_string() && problem["type"].is_string(),
        "{problem}"
    );
    let request_id = head_text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-request-id: ")
                .map(str::to_owned)
        })
        .expect("X-Request-ID");
    assert_eq!(problem["request_id"], request_id.trim(), "{answer}");

    let res = c
        .post(server.url("/api/v1/auth/register"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("text/plain");
    assert_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "request.unsupported_media_type",
    )
    .await;

    let res = c
        .get(server.url("/api/v1/nope"))
        .send()
        .await
        .expect("unknown");
    assert_problem(res, StatusCode::NOT_FOUND, "route.not_found").await;

    let res = c
        .put(server.url("/health"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.headers()["allow"], "GET,HEAD");
    assert_problem(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method_not_allowed",
    )
    .await;

    // TRACE must not echo the request (cross-site tracing): a problem, not our headers back.
    let res = c
        .request(Method::TRACE, server.url("/health"))
        .header("cookie", "session=very-secret-cookie")
        .send()
        .await
        .expect("TRACE");
    let body = assert_problem(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method_not_allowed",
    )
    .await;
    assert!(!body.to_string().contains("very-secret-cookie"));
    // Once the TRACE request's line is out, no line may hold the cookie.
    server.wait_for_log("\"method\":\"TRACE\"");
    assert!(
        !server.logs().contains("very-secret-cookie"),
        "a cookie reached the logs"
    );
}

#[tokio::test]
async fn the_request_id_is_kept_when_valid_and_replaced_otherwise() {
    let server = Server::start(&[]);
    let c = client();
    let res = c
        .get(server.url("/nope"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["x-request-id"], "trace-abc.123");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["request_id"], "trace-abc.123");

    let forged = "x\"}\n{\"level\":\"ERROR\"";
    let res = c
        .get(server.url("/health"))
        .header("x-request-id", forged.replace('\n', " "))
        .send()
        .await
        .expect("request");
    let id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        uuid_like(&id),
        "a malformed id is replaced by a UUID, got {id}"
    );

    let a = c
        .get(server.url("/live"))
        .send()
        .await
        .expect("request")
        .headers()["x-request-id"]
        .clone();
    let b = c
        .get(server.url("/live"))
        .send()
        .await
        .expect("request")
        .headers()["x-request-id"]
        .clone();
    assert_ne!(a, b);
    // The access log line carries the id.
    server.wait_for_log("\"request_id\":\"trace-abc.123\"");
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.chars().filter(|c| *c == '-').count() == 4
        && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[tokio::test]
async fn cors_answers_only_listed_origins() {
    let server = Server::start(&[("ALLOWED_ORIGINS", "https://app.example.com")]);
    let c = client();
    let res = c
        .get(server.url("/health"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");

    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.example",
    ] {
        let res = c
            .get(server.url("/health"))
            .header("origin", origin)
            .send()
            .await
            .expect("request");
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "{origin} was allowed"
        );
    }

    let res = c
        .request(Method::OPTIONS, server.url("/health"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-csrf-token",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(res.headers()["access-control-max-age"], "600");
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_hardened(&res, "preflight");
}

#[tokio::test]
async fn operations_endpoints_are_hidden_from_other_addresses() {
    // Loopback is not in this allow-list, so the test client is a stranger.
    let server = Server::start(&[("PALISADE_OPS_ALLOW", "10.0.0.0/8")]);
    let c = client();
    for path in ["/metrics", "/health/detailed"] {
        let res = c.get(server.url(path)).send().await.expect("request");
        assert_problem(res, StatusCode::NOT_FOUND, "route.not_found").await;
    }
    // A forged X-Forwarded-For does not help: loopback is not a trusted proxy here.
    let res = c
        .get(server.url("/metrics"))
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        c.get(server.url("/health"))
            .send()
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    // Loopback is a trusted proxy; the forwarded client 10.1.2.3 is an operator.
    let server = Server::start(&[
        ("PALISADE_OPS_ALLOW", "10.0.0.0/8"),
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.0/8"),
    ]);
    let c = client();
    let res = c
        .get(server.url("/metrics"))
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .get(server.url("/metrics"))
        .header("x-forwarded-for", "10.1.2.3, 8.8.8.8")
        .send()
        .await
        .expect("request");
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the right-most untrusted hop is the client"
    );
}

#[tokio::test]
async fn metrics_use_route_templates_and_the_reference_names() {
    let server = Server::start(&[]);
    let c = client();
    c.get(server.url("/health")).send().await.expect("request");
    c.get(server.url("/users/12345/secret-path"))
        .send()
        .await
        .expect("request");
    let text = c
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for name in [
        "# TYPE http_request_duration_seconds histogram",
        "# TYPE http_requests_total counter",
        "# TYPE http_requests_in_progress gauge",
        "# TYPE db_pool_connections gauge",
        "# TYPE database_up gauge",
        "# TYPE database_query_duration_seconds histogram",
        "database_query_duration_seconds_count{operation=\"ping\",table=\"none\"}",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_cpu_seconds_total counter",
        "http_requests_total{method=\"GET\",route=\"/health\",status_code=\"200\"} 1",
        "http_requests_total{method=\"GET\",route=\"unmatched\",status_code=\"404\"} 1",
        "db_pool_connections{pool=\"primary\",state=\"max\"} 20",
    ] {
        assert!(text.contains(name), "missing `{name}` in:\n{text}");
    }
    assert!(
        !text.contains("secret-path"),
        "a raw path leaked into a label"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_operations_endpoints() {
    let server = Server::start(&[]);
    let doc: Value = client()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{doc}"
    );
    for path in [
        "/live",
        "/ready",
        "/health",
        "/health/detailed",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from the document"
        );
    }
    // The answers the edge gives any request are on every operation.
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            for status in ["400", "413", "431", "500", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    // An unsafe method without a body of its own still has any body sent typed and
    // timed.
    let logout = &doc["paths"]["/api/v1/auth/logout"]["post"];
    assert!(logout["requestBody"].is_null(), "{logout}");
    for status in ["408", "415"] {
        assert!(
            logout["responses"][status].is_object(),
            "logout lacks {status}"
        );
    }
}

#[test]
fn a_client_that_stalls_on_its_headers_is_cut_off() {
    let server = Server::start(&[("PALISADE_HEADER_READ_TIMEOUT", "500ms")]);
    let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .expect("partial headers");
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf); // ends when the server closes the connection
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "connection held for {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(400),
        "closed before the timeout: {waited:?}"
    );
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
}

#[test]
fn too_many_headers_are_refused() {
    let server = Server::start(&[]);
    let mut req = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let head = raw_exchange(&server, req.as_bytes());
    assert!(
        head.starts_with("HTTP/1.1 431"),
        "expected 431, got: {head}"
    );
}

#[test]
fn an_oversized_header_block_is_refused() {
    let server = Server::start(&[]);
    let req = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let head = raw_exchange(&server, req.as_bytes());
    assert!(
        head.starts_with("HTTP/1.1 431"),
        "expected 431, got: {head}"
    );
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut server = Server::start(&[]);
    server.terminate();
    assert_eq!(
        server.wait(Duration::from_secs(15)),
        Some(0),
        "{}",
        server.logs()
    );
    server.wait_for_log("\"drain\":\"Complete\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_signing_key_is_pkcs8_that_openssl_reads() {
    let server = Server::start(&[]);
    let pem = server.dir().join("data/jwt-ed25519.pem");
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&pem)
        .args(["-pubout", "-outform", "DER"])
        .output()
        .expect("openssl (Debian package openssl) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The public key OpenSSL derives is the one the server publishes.
    let jwks: Value = client()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let x = jwks["keys"][0]["x"].as_str().expect("x");
    let public = crate::api::b64_decode(x);
    assert!(
        out.stdout.ends_with(&public),
        "openssl and the JWKS disagree"
    );
}
