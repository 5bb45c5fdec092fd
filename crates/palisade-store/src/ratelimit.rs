//! Rate limiting by GCRA (the generic cell rate algorithm): per key, one number, the
//! theoretical arrival time (TAT) of the next request. A quota of `count` per `window`
//! spaces requests `window / count` apart and lets `burst` of them come at once.
//!
//! The state lives in Redis when it is configured, updated atomically by one Lua script
//! on Redis's own clock (`TIME`), so every instance shares one limit. Without Redis, or
//! while Redis rests after a failure ([`SharedRedis`]), an in-process table applies the
//! same arithmetic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis::SharedRedis;

/// A limit: `count` requests per `window`, `burst` of them at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub window: Duration,
    pub burst: u32,
}

impl Quota {
    /// Microseconds between two requests at the sustained rate.
    fn interval_us(&self) -> u64 {
        (self.window.as_micros() as u64 / u64::from(self.count.max(1))).max(1)
    }
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Until the quota is whole again.
    pub reset: Duration,
    /// Until the next request would be allowed (zero when allowed).
    pub retry_after: Duration,
}

/// GCRA on `tat` (µs, `None` for a fresh key) at `now` (µs): the verdict and the TAT to
/// store when the request is allowed. The Lua script below is this function in Lua.
pub fn gcra(tat: Option<u64>, now: u64, q: &Quota) -> (Verdict, Option<u64>) {
    let t = q.interval_us();
    let burst = u64::from(q.burst.max(1));
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + t;
    // The latest TAT a request may leave behind: `burst` intervals ahead of now.
    let limit = now + burst * t;
    if new_tat > limit {
        let v = Verdict {
            allowed: false,
            remaining: 0,
            reset: Duration::from_micros(tat - now),
            retry_after: Duration::from_micros(new_tat - limit),
        };
        return (v, None);
    }
    let remaining = ((limit - new_tat) / t).min(burst) as u32;
    let v = Verdict {
        allowed: true,
        remaining,
        reset: Duration::from_micros(new_tat - now),
        retry_after: Duration::ZERO,
    };
    (v, Some(new_tat))
}

/// [`gcra`] in Lua: KEYS[1] the key, ARGV[1] the interval (µs), ARGV[2] the burst.
/// Returns {allowed, remaining, reset µs, retry µs}.
const SCRIPT: &str = r#"
local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + t
local limit = now + burst * t
if new_tat > limit then
  return {0, 0, tat - now, new_tat - limit}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
local remaining = math.floor((limit - new_tat) / t)
if remaining > burst then remaining = burst end
return {1, remaining, new_tat - now, 0}
"#;

/// Entries kept in process before expired ones are swept.
const SWEEP_AT: usize = 100_000;

pub struct RateLimiter {
    redis: Option<Arc<SharedRedis>>,
    script: redis::Script,
    local: Mutex<HashMap<String, u64>>,
    epoch: Instant,
}

impl RateLimiter {
    /// In-process only (one instance, or no Redis).
    pub fn in_process() -> RateLimiter {
        RateLimiter {
            redis: None,
            script: redis::Script::new(SCRIPT),
            local: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Shared through `redis` (keys `rl:…` under its prefix), in process while it
    /// rests.
    pub fn shared(redis: Arc<SharedRedis>) -> RateLimiter {
        RateLimiter {
            redis: Some(redis),
            ..RateLimiter::in_process()
        }
    }

    /// Keys counted in this process (all of them without Redis; those of requests
    /// limited in-process while Redis failed, with it).
    pub fn local_keys(&self) -> usize {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the limits are shared through Redis (when it answers).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Whether Redis failed and has not answered since: the limits are this
    /// instance's meanwhile.
    pub fn is_resting(&self) -> bool {
        self.redis.as_ref().is_some_and(|r| r.is_resting())
    }

    /// Counts one request of `key` against `quota`.
    pub async fn check(&self, key: &str, quota: &Quota) -> Verdict {
        if let Some(redis) = &self.redis {
            let key = redis.key(&format!("rl:{key}"));
            let mut invocation = self.script.key(key);
            invocation.arg(quota.interval_us()).arg(quota.burst.max(1));
            let answer = redis
                .run("rate_limit", |mut conn| async move {
                    invocation
                        .invoke_async::<(u8, u32, u64, u64)>(&mut conn)
                        .await
                })
                .await;
            if let Some((allowed, remaining, reset, retry)) = answer {
                return Verdict {
                    allowed: allowed == 1,
                    remaining,
                    reset: Duration::from_micros(reset),
                    retry_after: Duration::from_micros(retry),
                };
            }
        }
        self.check_local(key, quota)
    }

    fn check_local(&self, key: &str, quota: &Quota) -> Verdict {
        let mut table = self.local.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the lock, so `now` never goes back behind a TAT another thread
        // stored: a clock read before waiting for the lock (or before being preempted)
        // refused requests of a quota whose tolerance is shorter than that wait.
        let now = self.epoch.elapsed().as_micros() as u64;
        if table.len() >= SWEEP_AT {
            table.retain(|_, tat| *tat > now);
        }
        let (verdict, new_tat) = gcra(table.get(key).copied(), now, quota);
        if let Some(t) = new_tat {
            match table.get_mut(key) {
                Some(slot) => *slot = t,
                None => {
                    table.insert(key.to_owned(), t);
                }
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    fn q(count: u32, window_s: u64, burst: u32) -> Quota {
        Quota {
            count,
            window: Duration::from_secs(window_s),
            burst,
        }
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let quota = q(10, 10, 3);
        let mut tat = None;
        let now = 100 * SEC;
        for i in 0..3 {
            let (v, t) = gcra(tat, now, &quota);
            assert!(v.allowed, "request {i}");
            assert_eq!(v.remaining, 2 - i);
            tat = t;
        }
        let (v, t) = gcra(tat, now, &quota);
        assert!(!v.allowed && t.is_none());
        assert_eq!(v.retry_after, Duration::from_secs(1));
        // One interval later, one more.
        let (v, t) = gcra(tat, now + SEC, &quota);
        assert!(v.allowed);
        let (v, _) = gcra(t, now + SEC, &quota);
        assert!(!v.allowed);
    }

    #[test]
    fn the_auth_tier_allows_ten_per_quarter_hour() {
        let quota = q(10, 900, 10);
        let mut tat = None;
        let now = 5 * SEC;
        for _ in 0..10 {
            let (v, t) = gcra(tat, now, &quota);
            assert!(v.allowed);
            tat = t;
        }
        let (v, _) = gcra(tat, now, &quota);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, Duration::from_secs(90));
        assert_eq!(v.reset, Duration::from_secs(900));
    }

    #[test]
    fn a_clock_near_zero_counts_the_same() {
        let (v, _) = gcra(None, 0, &q(3, 60, 3));
        assert_eq!(v.remaining, 2);
    }

    #[tokio::test]
    async fn the_in_process_limiter_keeps_keys_apart() {
        let l = RateLimiter::in_process();
        let quota = q(2, 60, 2);
        assert!(l.check("a", &quota).await.allowed);
        assert!(l.check("a", &quota).await.allowed);
        assert!(!l.check("a", &quota).await.allowed);
        assert!(l.check("b", &quota).await.allowed);
    }
}
