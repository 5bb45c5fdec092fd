//! The versions of cache scopes, as this process last read them from the database.
//!
//! A cached value's key carries its scope's version ([`crate::repo::cache_scopes`]),
//! so a read must know the current version; reading it from the database on every
//! request would cost the cache most of its gain. This process therefore trusts a
//! version it read for up to [`MAX_AGE`], and forgets it sooner whenever it learns of a
//! change:
//!
//! - a change made here: at its commit ([`ScopeVersions::bump`]), so this instance's
//!   next read sees it;
//! - a change made on another instance (PostgreSQL): when the bump's notification
//!   arrives, milliseconds after the commit ([`ScopeVersions::subscribe`]); while the
//!   listening connection is down, every version is forgotten and the age bounds the
//!   staleness to [`MAX_AGE`].
//!
//! On SQLite one process serves the file; a change made by another (`palisade db
//! seed`) shows within the age.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fresh::Fresh;
use crate::listen::{Notice, Subscriptions};
use crate::repo::cache_scopes;
use crate::{Db, StoreError, Tx};

/// How long a version read from the database is trusted without news of a change.
pub const MAX_AGE: Duration = Duration::from_secs(1);

pub struct ScopeVersions {
    db: Db,
    known: Arc<Fresh<String, i64>>,
}

impl ScopeVersions {
    pub fn new(db: Db) -> ScopeVersions {
        ScopeVersions {
            db,
            known: Arc::new(Fresh::new(MAX_AGE)),
        }
    }

    /// The current version of `scope`.
    pub async fn version(&self, scope: &str) -> Result<i64, StoreError> {
        if let Some(version) = self.known.get(scope) {
            return Ok(version);
        }
        let loaded_at = Instant::now();
        let generation = self.known.generation();
        let version = cache_scopes::version(&self.db, scope).await?;
        self.known
            .put(scope.to_owned(), version, loaded_at, generation);
        Ok(version)
    }

    /// Moves `scopes` to their next version inside `tx`; this process forgets their
    /// old versions once `tx` commits, other instances when its notification arrives.
    pub async fn bump(&self, tx: &mut Tx, scopes: &[String]) -> Result<(), StoreError> {
        cache_scopes::bump(&mut *tx, scopes).await?;
        let known = Arc::clone(&self.known);
        let scopes = scopes.to_vec();
        tx.on_commit(move || {
            for scope in &scopes {
                known.forget(scope.as_str());
            }
        });
        Ok(())
    }

    /// Forgets the versions other instances change, as their notifications arrive.
    pub fn subscribe(&self, subscriptions: &mut Subscriptions) {
        let known = Arc::clone(&self.known);
        subscriptions.on(cache_scopes::CHANGED, move |notice| match notice {
            Notice::Message(scopes) => scopes.split(' ').for_each(|s| known.forget(s)),
            Notice::Gap => known.clear(),
        });
    }

    /// Forgets every version (the cache is being cleared).
    pub fn clear(&self) {
        self.known.clear();
    }
}
