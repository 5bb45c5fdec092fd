//! The cache: moka in process (the first level) and, when Redis is configured, Redis
//! through the shared handle (the second level, which every instance reads). While
//! Redis rests after a failure, the cache is this instance's alone; nothing is wrong
//! meanwhile, only colder.
//!
//! Keys carry the version of their scope ([`crate::repo::cache_scopes`], as this
//! process knows it: [`ScopeVersions`]), so a change is not served stale: the next
//! read asks for a key that no level holds. Old
//! versions are left to expire ([`Cache::ttl`]) or to the first level's size bound.
//! Values above [`COMPRESS_ABOVE`] bytes are kept LZ4-compressed in both levels.
//! `cache_hits_total` / `cache_misses_total{cache_type}` count the lookups.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;

use crate::redis::SharedRedis;

pub mod versions;
pub use versions::ScopeVersions;

/// Values longer than this are compressed.
pub const COMPRESS_ABOVE: usize = 1024;
const RAW: u8 = 0;
const LZ4: u8 = 1;

/// Whether a lookup was answered from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
}

impl Lookup {
    /// The `X-Cache` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
        }
    }
}

/// What the cache holds and how it did, for `GET /api/v1/admin/infra/cache`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries in this process's first level.
    pub entries: u64,
    /// Their stored (compressed) size.
    pub bytes: u64,
    pub redis_configured: bool,
    /// Redis failed and has not answered since: the cache is this instance's alone.
    pub redis_resting: bool,
}

pub struct Cache {
    local: moka::sync::Cache<String, Arc<[u8]>>,
    redis: Option<Arc<SharedRedis>>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cache {
    /// A cache of at most `max_bytes` (stored size) in process, entries living `ttl`.
    pub fn new(redis: Option<Arc<SharedRedis>>, max_bytes: u64, ttl: Duration) -> Cache {
        let local = moka::sync::Cache::builder()
            .weigher(|k: &String, v: &Arc<[u8]>| {
                u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .time_to_live(ttl)
            .build();
        Cache {
            local,
            redis,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The value at `key`, from this process, else from Redis, else from `load`
    /// (which is then stored in both). `cache_type` labels the metrics.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        cache_type: &'static str,
        key: &str,
        load: F,
    ) -> Result<(Vec<u8>, Lookup), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        if let Some(stored) = self.local.get(key) {
            return Ok((self.hit(cache_type, &stored), Lookup::Hit));
        }
        if let Some(stored) = self.shared_get(key).await {
            let stored: Arc<[u8]> = stored.into();
            self.local.insert(key.to_owned(), stored.clone());
            return Ok((self.hit(cache_type, &stored), Lookup::Hit));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cache_misses_total", "cache_type" => cache_type).increment(1);
        let value = load().await?;
        let stored: Arc<[u8]> = encode(&value).into();
        self.local.insert(key.to_owned(), stored.clone());
        self.shared_set(key, &stored).await;
        Ok((value, Lookup::Miss))
    }

    fn hit(&self, cache_type: &'static str, stored: &[u8]) -> Vec<u8> {
        self.hits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cache_hits_total", "cache_type" => cache_type).increment(1);
        decode(stored)
    }

    async fn shared_get(&self, key: &str) -> Option<Vec<u8>> {
        let redis = self.redis.as_ref()?;
        let key = redis.key(&format!("cache:{key}"));
        let stored: Option<Vec<u8>> = redis
            .run("cache", |mut c| async move { c.get(key).await })
            .await
            .flatten();
        // An empty or unreadable value is a miss, not an error.
        stored.filter(|s| decodes(s))
    }

    async fn shared_set(&self, key: &str, stored: &[u8]) {
        let Some(redis) = &self.redis else { return };
        let key = redis.key(&format!("cache:{key}"));
        let ttl = self.ttl.as_secs().max(1);
        let stored = stored.to_vec();
        redis
            .run("cache", |mut c| async move {
                c.set_ex::<_, _, ()>(key, stored, ttl).await
            })
            .await;
    }

    /// Empties this process's level; the shared level's entries are left to expire
    /// (they are only ever read under a current version).
    pub fn clear(&self) {
        self.local.invalidate_all();
    }

    pub fn stats(&self) -> CacheStats {
        self.local.run_pending_tasks();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.local.entry_count(),
            bytes: self.local.weighted_size(),
            redis_configured: self.redis.is_some(),
            redis_resting: self.redis.as_ref().is_some_and(|r| r.is_resting()),
        }
    }
}

/// The stored form: a tag byte, then the value, LZ4-compressed when large.
fn encode(value: &[u8]) -> Vec<u8> {
    if value.len() <= COMPRESS_ABOVE {
        let mut out = Vec::with_capacity(value.len() + 1);
        out.push(RAW);
        out.extend_from_slice(value);
        return out;
    }
    let mut out = vec![LZ4];
    out.extend(lz4_flex::compress_prepend_size(value));
    out
}

fn decode(stored: &[u8]) -> Vec<u8> {
    match stored.split_first() {
        Some((&LZ4, rest)) => lz4_flex::decompress_size_prepended(rest).unwrap_or_default(),
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    }
}

fn decodes(stored: &[u8]) -> bool {
    match stored.split_first() {
        Some((&LZ4, rest)) => lz4_flex::decompress_size_prepended(rest).is_ok(),
        Some((&RAW, _)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_are_compressed_and_come_back_whole() {
        let small = br#"{"a":1}"#.to_vec();
        assert_eq!(encode(&small)[0], RAW);
        assert_eq!(decode(&encode(&small)), small);
        let large = serde_json::to_vec(&vec!["the same words again"; 500]).unwrap();
        let stored = encode(&large);
        assert_eq!(stored[0], LZ4);
        assert!(
            stored.len() < large.len() / 5,
            "{} of {}",
            stored.len(),
            large.len()
        );
        assert_eq!(decode(&stored), large);
        assert!(!decodes(&[LZ4, 1, 2]));
    }

    #[tokio::test]
    async fn a_second_read_is_a_hit_and_a_new_key_a_miss() {
        let cache = Cache::new(None, 1 << 20, Duration::from_secs(60));
        let load = |v: &'static str| move || async move { Ok::<_, ()>(v.as_bytes().to_vec()) };
        assert_eq!(
            cache.get_or_load("t", "k:v1", load("one")).await,
            Ok((b"one".to_vec(), Lookup::Miss))
        );
        assert_eq!(
            cache.get_or_load("t", "k:v1", load("two")).await,
            Ok((b"one".to_vec(), Lookup::Hit))
        );
        assert_eq!(
            cache.get_or_load("t", "k:v2", load("two")).await,
            Ok((b"two".to_vec(), Lookup::Miss))
        );
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.entries), (1, 2, 2));
        cache.clear();
        assert_eq!(cache.stats().entries, 0);
    }
}
