//! Rate-limit tiers: 429 with its headers, shared through Redis, allow-listed addresses, and Redis failing or late.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::backends::{PASSWORD, start_with};

async fn the_auth_tier_answers_429_with_its_headers(postgres: bool) {
    let e = start_with(postgres, &[("PALISADE_RATE_LIMIT_AUTH", "3/1m")]).await;
    let api = &e.api;
    for i in 0..3 {
        let r = api.login("nobody@example.com", "wrong password 1234").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert_eq!(r.headers["ratelimit-policy"], "\"auth\";q=3;w=60");
        assert_eq!(
            r.headers["ratelimit"]
                .to_str()
                .ok()
                .map(|v| v.starts_with(&format!("\"auth\";r={};", 2 - i))),
            Some(true),
            "{:?}",
            r.headers["ratelimit"]
        );
    }
    let r = api
        .login("nobody@example.com", "wrong password 1234")
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    // Other routes are the general tier, counted apart.
    let me = api.call(Method::GET, "/api/v1/me", None, &[]).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.headers["ratelimit-policy"], "\"general\";q=300;w=60");

    let detailed = api.call(Method::GET, "/health/detailed", None, &[]).await;
    if postgres {
        assert_eq!(
            detailed.body["redis"]["reachable"], true,
            "{}",
            detailed.body
        );
        assert!(detailed.body["redis"]["latency_ms"].is_number());
    } else {
        assert_eq!(detailed.body["redis"], Value::Null, "no Redis configured");
    }

    if postgres {
        // A second instance on the same Redis shares the limit.
        let (_other, other) = e.second_instance();
        let r = other
            .login("nobody@example.com", "wrong password 1234")
            .await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the limit is shared: {}",
            r.body
        );
    }
}

async fn allow_listed_addresses_bypass_the_limits(postgres: bool) {
    let e = start_with(
        postgres,
        &[
            ("PALISADE_RATE_LIMIT_AUTH", "2/1m"),
            ("PALISADE_RATE_LIMIT_ALLOW", "127.0.0.0/8"),
        ],
    )
    .await;
    for _ in 0..4 {
        let r = e
            .api
            .login("nobody@example.com", "wrong password 1234")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.headers.get("ratelimit").is_none());
    }
}

/// Redis failing every command: limits fall back to the instance and keep limiting,
/// `/health/detailed` says so, and sign-in goes on.
async fn a_failing_redis_degrades_to_local_limits() {
    let url = palisade_store::testing::failing_redis().await;
    let e = start_with(
        false,
        &[("REDIS_URL", &url), ("PALISADE_RATE_LIMIT_AUTH", "3/1m")],
    )
    .await;
    let detailed = e.api.call(Method::GET, "/health/detailed", None, &[]).await;
    assert_eq!(
        detailed.body["redis"]["reachable"], false,
        "{}",
        detailed.body
    );
    assert_eq!(detailed.body["status"], "degraded");
    let _r = e
        .api
        .register("fallback@example.com", PASSWORD, "F")
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        e.api.login("fallback@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        e.api.login("fallback@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let r = e.api.login("fallback@example.com", PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the local limit still holds"
    );
}

/// Redis is down when the server starts: `/health/detailed` says so and the limits are
/// the instance's own; once Redis answers, the health turns and the limits move there.
async fn a_redis_down_at_start_is_used_once_it_answers() {
    let addr = palisade_store::testing::free_port();
    let prefix = format!("palisade_test:{}:", uuid::Uuid::now_v7());
    let e = start_with(
        false,
        &[
            ("REDIS_URL", &format!("redis://{addr}")),
            ("PALISADE_REDIS_PREFIX", &prefix),
        ],
    )
    .await;
    let detailed = e.api.call(Method::GET, "/health/detailed", None, &[]).await;
    assert_eq!(
        detailed.body["redis"]["reachable"], false,
        "{}",
        detailed.body
    );
    let r = e.api.register("early@example.com", PASSWORD, "E").await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "limited in-process: {}",
        r.body
    );

    let redis_url = std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL is not set");
    let _redis = palisade_store::testing::tcp_proxy(addr, &redis_url).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = e.api.call(Method::GET, "/health/detailed", None, &[]).await;
        if d.body["redis"]["reachable"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Redis never came back: {}",
            d.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut redis = redis::Client::open(redis_url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        e.api.login("early@example.com", PASSWORD).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}rl:*"))
            .query_async(&mut redis)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the limits never moved to Redis"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_redis_falls_back() {
    a_failing_redis_degrades_to_local_limits().await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start() {
    a_redis_down_at_start_is_used_once_it_answers().await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_auth_tier() {
    the_auth_tier_answers_429_with_its_headers(false).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redis_auth_tier_shared_by_two_instances() {
    the_auth_tier_answers_429_with_its_headers(true).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_allow_list() {
    allow_listed_addresses_bypass_the_limits(false).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redis_allow_list() {
    allow_listed_addresses_bypass_the_limits(true).await;
}
