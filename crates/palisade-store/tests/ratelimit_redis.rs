//! The shared rate limiter on the real Redis (`TEST_REDIS_URL`): the Lua script agrees
//! with the Rust arithmetic, instances share one limit, and an unreachable Redis falls
//! back to the in-process table.

use std::time::Duration;

use std::sync::Arc;

use palisade_store::ratelimit::{Quota, RateLimiter};
use palisade_store::redis::SharedRedis;

/// A limiter on the Redis at `url`, keys under `prefix`.
fn shared(url: &str, prefix: &str) -> RateLimiter {
    RateLimiter::shared(Arc::new(
        SharedRedis::connect(url, prefix).expect("redis url"),
    ))
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TEST_REDIS_URL is not set: these tests need Redis, e.g. redis://127.0.0.1:6379")
    })
}

fn prefix() -> String {
    format!("palisade_test:{}:", uuid::Uuid::now_v7())
}

#[tokio::test]
async fn two_instances_share_one_limit_through_redis() {
    let url = redis_url();
    let p = prefix();
    let a = shared(&url, &p);
    let b = shared(&url, &p);
    let quota = Quota {
        count: 4,
        window: Duration::from_secs(60),
        burst: 4,
    };
    let mut remaining = Vec::new();
    for limiter in [&a, &b, &a, &b] {
        let v = limiter.check("ip:192.0.2.1", &quota).await;
        assert!(v.allowed);
        remaining.push(v.remaining);
    }
    assert_eq!(remaining, vec![3, 2, 1, 0]);
    let refused = b.check("ip:192.0.2.1", &quota).await;
    assert!(!refused.allowed);
    // 60 s / 4 = 15 s between requests; Redis's clock moved a little since.
    assert!(
        refused.retry_after > Duration::from_secs(14)
            && refused.retry_after <= Duration::from_secs(15)
    );
    assert!(
        a.check("ip:192.0.2.2", &quota).await.allowed,
        "other keys are apart"
    );
}

#[tokio::test]
async fn a_failing_redis_falls_back_to_the_process() {
    let l = shared(&palisade_store::testing::failing_redis().await, &prefix());
    let quota = Quota {
        count: 2,
        window: Duration::from_secs(60),
        burst: 2,
    };
    assert!(l.check("k", &quota).await.allowed);
    assert!(l.check("k", &quota).await.allowed);
    assert!(
        !l.check("k", &quota).await.allowed,
        "the in-process table limits while Redis fails"
    );
}

/// Redis is down when the limiter starts (nothing listens on its port), then comes up:
/// the limiter limits in-process meanwhile and moves to Redis once it answers.
#[tokio::test]
async fn a_redis_that_comes_up_later_is_used() {
    let addr = palisade_store::testing::free_port();
    let p = prefix();
    let l = shared(&format!("redis://{addr}"), &p);
    let quota = Quota {
        count: 1000,
        window: Duration::from_secs(60),
        burst: 1000,
    };
    assert!(l.check("ip:192.0.2.9", &quota).await.allowed, "in-process");
    let _proxy = palisade_store::testing::tcp_proxy(addr, &redis_url()).await;
    let mut redis = redis::Client::open(redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = format!("{p}rl:ip:192.0.2.9");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(l.check("ip:192.0.2.9", &quota).await.allowed);
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        if exists {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the limiter never moved to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After Redis fails, requests stay off it for a second (no request waits on it), then
/// one request tries it again.
#[tokio::test]
async fn after_a_failure_redis_rests_for_a_second() {
    use std::sync::atomic::Ordering;
    let (url, commands) = palisade_store::testing::failing_redis_counted().await;
    let l = shared(&url, &prefix());
    let quota = Quota {
        count: 1000,
        window: Duration::from_secs(60),
        burst: 1000,
    };
    l.check("ip:192.0.2.5", &quota).await;
    let after_first = commands.load(Ordering::SeqCst);
    assert!(after_first >= 1, "the first request asked Redis");
    for _ in 0..20 {
        assert!(l.check("ip:192.0.2.5", &quota).await.allowed);
    }
    assert_eq!(commands.load(Ordering::SeqCst), after_first, "Redis rests");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    l.check("ip:192.0.2.5", &quota).await;
    assert!(
        commands.load(Ordering::SeqCst) > after_first,
        "then it is asked again"
    );
}
