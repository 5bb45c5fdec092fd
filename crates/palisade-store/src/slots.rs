//! Concurrency slots: at most `max` holders of a key at once (two running exports per
//! user), agreed on by every instance through Redis, or by this instance alone while
//! Redis rests or without it.
//!
//! In Redis a key is a sorted set of holders scored by when their lease ends; taking
//! a slot first drops lapsed leases, so a holder that died frees its slot after
//! [`LEASE`]. A live holder renews its lease every third of it, and gives the slot
//! back when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;

use crate::redis::SharedRedis;

/// How long a slot outlives a holder that stopped renewing it.
pub const LEASE: Duration = Duration::from_secs(60);

/// KEYS[1] the set; ARGV[1] the holder, ARGV[2] the lease (ms), ARGV[3] the most
/// holders. Returns 1 when the slot is taken.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// KEYS[1] the set; ARGV[1] the holder, ARGV[2] the lease (ms). Extends a held lease.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// The scripts, hashed once (Redis runs them by their SHA-1).
static TAKE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(TAKE));
static RENEW_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RENEW));

#[derive(Clone)]
pub struct Slots {
    redis: Option<Arc<SharedRedis>>,
    local: Arc<Mutex<HashMap<String, usize>>>,
}

/// A taken slot; dropping it gives the slot back.
pub struct Slot {
    held: Held,
}

enum Held {
    Local(Arc<Mutex<HashMap<String, usize>>>, String),
    Shared {
        redis: Arc<SharedRedis>,
        key: String,
        holder: String,
        renewal: tokio::task::JoinHandle<()>,
    },
}

impl Slots {
    pub fn new(redis: Option<Arc<SharedRedis>>) -> Slots {
        Slots {
            redis,
            local: Arc::default(),
        }
    }

    /// A slot of `key` if fewer than `max` are taken.
    pub async fn take(&self, key: &str, max: usize) -> Option<Slot> {
        if let Some(redis) = &self.redis {
            let set = redis.key(&format!("slots:{key}"));
            let holder = uuid::Uuid::now_v7().to_string();
            let (set2, holder2) = (set.clone(), holder.clone());
            let taken = redis
                .run("slots", |mut c| async move {
                    TAKE_SCRIPT
                        .key(set2)
                        .arg(holder2)
                        .arg(LEASE.as_millis() as u64)
                        .arg(max)
                        .invoke_async::<u8>(&mut c)
                        .await
                })
                .await;
            match taken {
                Some(1) => {
                    let renewal = tokio::spawn(renew(redis.clone(), set.clone(), holder.clone()));
                    return Some(Slot {
                        held: Held::Shared {
                            redis: redis.clone(),
                            key: set,
                            holder,
                            renewal,
                        },
                    });
                }
                Some(_) => return None,
                // Redis rests: this instance counts alone meanwhile.
                None => {}
            }
        }
        let mut table = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let n = table.entry(key.to_owned()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            held: Held::Local(self.local.clone(), key.to_owned()),
        })
    }
}

/// Renews a shared lease every third of it, until aborted.
async fn renew(redis: Arc<SharedRedis>, key: String, holder: String) {
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let (key, holder) = (key.clone(), holder.clone());
        redis
            .run("slots", |mut c| async move {
                RENEW_SCRIPT
                    .key(key)
                    .arg(holder)
                    .arg(LEASE.as_millis() as u64)
                    .invoke_async::<u8>(&mut c)
                    .await
            })
            .await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        match &self.held {
            Held::Local(table, key) => {
                let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = table.get_mut(key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        table.remove(key);
                    }
                }
            }
            Held::Shared {
                redis,
                key,
                holder,
                renewal,
            } => {
                renewal.abort();
                let (redis, key, holder) = (redis.clone(), key.clone(), holder.clone());
                // Given back in the background; if Redis fails now, the lease lapses.
                tokio::spawn(async move {
                    redis
                        .run("slots", |mut c| async move {
                            c.zrem::<_, _, u8>(key, holder).await
                        })
                        .await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_max_at_once_per_key_in_process() {
        let slots = Slots::new(None);
        let a = slots.take("u1", 2).await.expect("first");
        let _b = slots.take("u1", 2).await.expect("second");
        assert!(slots.take("u1", 2).await.is_none());
        assert!(slots.take("u2", 2).await.is_some(), "keys are apart");
        drop(a);
        assert!(
            slots.take("u1", 2).await.is_some(),
            "a dropped slot is free again"
        );
    }
}
