//! Users as `GET /me` shows them, kept for at most [`MAX_AGE`]: the endpoint every
//! client polls need not query the database each time. A change made on this instance
//! drops its entry at once; one made on another shows within the age (as stale as the
//! revocation set).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palisade_auth::ids::UserId;

use super::UserView;

/// How stale a cached view may be.
const MAX_AGE: Duration = Duration::from_secs(1);
/// Cached views kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub(super) struct ViewCache {
    views: Mutex<HashMap<UserId, (Instant, UserView)>>,
    /// Bumped by every change: a view loaded across a change is not cached.
    generation: AtomicU64,
}

impl ViewCache {
    fn views(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (Instant, UserView)>> {
        self.views.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(&self, id: UserId) -> Option<UserView> {
        let views = self.views();
        let (at, view) = views.get(&id)?;
        (at.elapsed() < MAX_AGE).then(|| view.clone())
    }

    /// The generation to pass to [`ViewCache::put`], read before loading.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `view` unless a change happened since `generation` was read.
    pub(super) fn put(&self, view: &UserView, loaded_at: Instant, generation: u64) {
        let mut views = self.views();
        if self.generation() != generation {
            return;
        }
        if views.len() >= SWEEP_AT {
            views.retain(|_, (at, _)| at.elapsed() < MAX_AGE);
        }
        views.insert(view.id, (loaded_at, view.clone()));
    }

    /// Drops the view of a user whose account just changed. The generation is bumped
    /// under the lock, so a view loaded before cannot be cached after.
    pub(super) fn forget(&self, id: UserId) {
        let mut views = self.views();
        self.generation.fetch_add(1, Ordering::SeqCst);
        views.remove(&id);
    }

    /// Views held (fresh or not yet swept).
    pub(super) fn len(&self) -> usize {
        self.views().len()
    }

    /// Drops every view.
    pub(super) fn clear(&self) {
        let mut views = self.views();
        self.generation.fetch_add(1, Ordering::SeqCst);
        views.clear();
    }
}
