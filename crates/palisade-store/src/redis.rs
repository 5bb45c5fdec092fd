//! The one Redis handle every shared mechanism uses (rate limits, the cache's second
//! level, pub/sub): it connects on first use, reconnects after a failure, and after a
//! failure rests (asks Redis again only after [`REST`], one request at a time), so an
//! outage costs the users of Redis one round trip per second, not one per request.
//! Callers fall back to what they hold in process meanwhile; each fallback is counted
//! in `redis_fallback_total{user}` and logged at most once a minute.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// How long Redis is left alone after it failed.
pub const REST: Duration = Duration::from_secs(1);

pub struct SharedRedis {
    conn: ConnectionManager,
    prefix: String,
    epoch: Instant,
    /// Until when (µs since `epoch`) Redis is not asked; 0 while it answers.
    skip_until: AtomicU64,
    /// When the last fallback was logged (µs since `epoch`).
    last_log: AtomicU64,
}

impl SharedRedis {
    /// Redis at `url`, every key of ours under `prefix`. Fails only on a bad URL: a
    /// Redis that does not answer yet is used once it does.
    pub fn connect(url: &str, prefix: &str) -> redis::RedisResult<SharedRedis> {
        Ok(SharedRedis::new(redis_manager(url)?, prefix))
    }

    pub fn new(conn: ConnectionManager, prefix: &str) -> SharedRedis {
        SharedRedis {
            conn,
            prefix: prefix.to_owned(),
            epoch: Instant::now(),
            skip_until: AtomicU64::new(0),
            last_log: AtomicU64::new(0),
        }
    }

    /// `name` under our prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether Redis failed and has not answered since.
    pub fn is_resting(&self) -> bool {
        self.skip_until.load(Ordering::Relaxed) != 0
    }

    /// Runs `f` on the connection, unless Redis is resting; `None` then, or when `f`
    /// fails (Redis then rests, and the fallback of `user` is counted and logged).
    pub async fn run<T, F, Fut>(&self, user: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.may_ask() {
            metrics::counter!("redis_fallback_total", "user" => user).increment(1);
            return None;
        }
        match f(self.conn.clone()).await {
            Ok(v) => {
                // Written only after an outage: no shared write per call.
                if self.skip_until.load(Ordering::Relaxed) != 0 {
                    self.skip_until.store(0, Ordering::Relaxed);
                }
                Some(v)
            }
            Err(e) => {
                self.fell_back(user, &e);
                None
            }
        }
    }

    /// The round trip of `PING`, or why it failed (which rests Redis, as any failure).
    pub async fn ping(&self) -> Result<Duration, String> {
        let mut conn = self.conn.clone();
        let start = Instant::now();
        let answer = redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| start.elapsed())
            .map_err(|e| e.to_string());
        match &answer {
            Ok(_) => self.skip_until.store(0, Ordering::Relaxed),
            Err(_) => self.rest(),
        }
        answer
    }

    /// Whether this call may ask Redis: always while it answers; after a failure, no
    /// one until [`REST`] has passed, then the one call that claims the next try (the
    /// others fall back while it waits on the reconnection).
    fn may_ask(&self) -> bool {
        let until = self.skip_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        self.now_us() >= until
            && self
                .skip_until
                .compare_exchange(
                    until,
                    self.rest_until(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn rest(&self) {
        self.skip_until.store(self.rest_until(), Ordering::Relaxed);
    }

    /// When Redis may be asked again after a failure now (never 0, which means "asks").
    fn rest_until(&self) -> u64 {
        (self.now_us() + REST.as_micros() as u64).max(1)
    }

    fn fell_back(&self, user: &'static str, e: &redis::RedisError) {
        metrics::counter!("redis_fallback_total", "user" => user).increment(1);
        self.rest();
        let now = self.now_us();
        let last = self.last_log.load(Ordering::Relaxed);
        if now.saturating_sub(last) > 60_000_000
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %e, user, "Redis unreachable: falling back to this instance");
        }
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// A Redis connection that connects on first use and reconnects after a failure, with
/// short timeouts so an outage costs a request milliseconds, not seconds.
fn redis_manager(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(250)))
        .set_number_of_retries(1);
    ConnectionManager::new_lazy_with_config(client, config)
}
