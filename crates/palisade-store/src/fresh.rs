//! A map of values read from the shared store and trusted for a short time: the reads
//! every request makes (a user's view, a cache scope's version) need not query the
//! database each time. A change made on this instance [`Fresh::forget`]s its entry at
//! once; one made elsewhere shows within the age (sooner where a notification says so).
//!
//! A value loaded while a change happened is not kept: read [`Fresh::generation`]
//! before loading and hand it to [`Fresh::put`], which refuses a value loaded across a
//! `forget`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

pub struct Fresh<K, V> {
    max_age: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Bumped by every forget: a value loaded across one is not kept.
    generation: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> Fresh<K, V> {
    /// A map whose values are trusted for `max_age` after they were loaded.
    pub fn new(max_age: Duration) -> Fresh<K, V> {
        Fresh {
            max_age,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value at `key`, if it was loaded less than the age ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries();
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.max_age).then(|| value.clone())
    }

    /// The generation to pass to [`Fresh::put`], read before loading.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `value`, loaded at `loaded_at`, unless a forget happened since
    /// `generation` was read.
    pub fn put(&self, key: K, value: V, loaded_at: Instant, generation: u64) {
        let mut entries = self.entries();
        if self.generation() != generation {
            return;
        }
        if entries.len() >= SWEEP_AT {
            let max_age = self.max_age;
            entries.retain(|_, (at, _)| at.elapsed() < max_age);
        }
        entries.insert(key, (loaded_at, value));
    }

    /// Drops the entry of a key that just changed. The generation moves under the lock,
    /// so a value loaded before cannot be kept after.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(key);
    }

    /// Drops every entry.
    pub fn clear(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    /// Entries held (fresh or not yet swept).
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_trusted_for_its_age_only() {
        let fresh = Fresh::new(Duration::from_millis(50));
        let generation = fresh.generation();
        fresh.put("a", 1, Instant::now(), generation);
        assert_eq!(fresh.get("a"), Some(1));
        let old = Instant::now() - Duration::from_millis(60);
        fresh.put("b", 2, old, fresh.generation());
        assert_eq!(fresh.get("b"), None);
    }

    #[test]
    fn a_value_loaded_across_a_forget_is_not_kept() {
        let fresh = Fresh::new(Duration::from_secs(5));
        let generation = fresh.generation();
        fresh.forget("a");
        fresh.put("a", 1, Instant::now(), generation);
        assert_eq!(fresh.get("a"), None);
        fresh.put("a", 2, Instant::now(), fresh.generation());
        assert_eq!(fresh.get("a"), Some(2));
        fresh.forget("a");
        assert_eq!(fresh.get("a"), None);
        fresh.put("b", 3, Instant::now(), fresh.generation());
        fresh.clear();
        assert!(fresh.is_empty());
    }
}
