//! The revocation set: sessions ended (logout, password change, disable, …) whose
//! access tokens may still be unexpired. Checked on every authenticated request from a
//! snapshot at most `max_age` old (1 s), reloaded from the shared store, so a session
//! ended on one instance is refused by every instance within that time. A session
//! ended on this instance is refused here at once.
//!
//! Only sessions revoked within the access-token lifetime (plus leeway) can carry a
//! valid token, so the snapshot holds only those: its size is bounded by the
//! revocations of the last quarter hour, not by history.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use palisade_auth::ids::SessionId;
use palisade_store::repo::sessions;
use palisade_store::{Db, StoreError};

pub struct Revocations {
    db: Db,
    max_age: Duration,
    /// How far back a revocation still matters: token lifetime + leeway.
    horizon: Duration,
    snapshot: RwLock<Snapshot>,
    reload: tokio::sync::Mutex<()>,
}

struct Snapshot {
    ids: HashSet<SessionId>,
    /// When the load that produced `ids` started; `None` before the first.
    loaded_at: Option<Instant>,
}

impl Revocations {
    pub fn new(db: Db, max_age: Duration, horizon: Duration) -> Revocations {
        Revocations {
            db,
            max_age,
            horizon,
            snapshot: RwLock::new(Snapshot {
                ids: HashSet::new(),
                loaded_at: None,
            }),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether session `sid` is revoked, as of at most `max_age` ago.
    pub async fn is_revoked(&self, sid: SessionId) -> Result<bool, StoreError> {
        if let Some(answer) = self.fresh_lookup(sid) {
            return Ok(answer);
        }
        // One request reloads; the others wait for its result instead of querying too.
        let _reloading = self.reload.lock().await;
        if let Some(answer) = self.fresh_lookup(sid) {
            return Ok(answer);
        }
        let started = Instant::now();
        let since = palisade_store::repo::now() - self.horizon;
        let ids = sessions::revoked_since(&self.db, since).await?;
        let mut snap = self.write();
        snap.ids = ids.into_iter().collect();
        snap.loaded_at = Some(started);
        Ok(snap.ids.contains(&sid))
    }

    /// Refuses `sid` on this instance from now on, without waiting for the next load.
    pub fn note(&self, sids: &[SessionId]) {
        self.write().ids.extend(sids.iter().copied());
    }

    /// Sessions in the snapshot, and how old it is (`None` before the first load or
    /// after [`Revocations::expire`]).
    pub fn stats(&self) -> (usize, Option<Duration>) {
        let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
        (snap.ids.len(), snap.loaded_at.map(|t| t.elapsed()))
    }

    /// Makes the next lookup reload the snapshot.
    pub fn expire(&self) {
        self.write().loaded_at = None;
    }

    fn fresh_lookup(&self, sid: SessionId) -> Option<bool> {
        let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
        let fresh = snap.loaded_at.is_some_and(|t| t.elapsed() < self.max_age);
        fresh.then(|| snap.ids.contains(&sid))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|p| p.into_inner())
    }
}
