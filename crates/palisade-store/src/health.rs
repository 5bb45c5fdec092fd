//! The background database health check.
//!
//! Every interval a task pings the primary and counts the migrations not yet applied,
//! keeps both in [`DbHealth`] (read by `/ready` and `/health` without touching the
//! database), and refreshes the `database_up` and `db_pool_connections` gauges. The
//! task is one of the server's [`Tasks`] and stops with them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::Db;
use crate::background::Tasks;
use crate::schema::{self, Counts};

/// `applied` before the migration status was first read.
const UNKNOWN: usize = usize::MAX;

/// The latest verdict of the health check. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DbHealth {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    up: AtomicBool,
    applied: AtomicUsize,
    pending: AtomicUsize,
}

impl DbHealth {
    /// Checks once, then every `every` among `tasks`.
    pub async fn start(db: Db, every: Duration, timeout: Duration, tasks: &mut Tasks) -> DbHealth {
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            applied: AtomicUsize::new(UNKNOWN),
            pending: AtomicUsize::new(0),
        });
        check(&db, &state, timeout).await;
        let shared = state.clone();
        tasks.every("database health check", every, move || {
            let (db, state) = (db.clone(), shared.clone());
            async move { check(&db, &state, timeout).await }
        });
        DbHealth { state }
    }

    /// Whether the last ping succeeded.
    pub fn is_up(&self) -> bool {
        self.state.up.load(Ordering::Relaxed)
    }

    /// Migrations of this build not applied on the database, at the last check.
    pub fn pending_migrations(&self) -> usize {
        self.state.pending.load(Ordering::Relaxed)
    }

    /// Applied and pending migrations at the last check; `None` before the status could
    /// first be read.
    pub fn migration_counts(&self) -> Option<Counts> {
        let applied = self.state.applied.load(Ordering::Relaxed);
        (applied != UNKNOWN).then(|| Counts {
            applied,
            pending: self.pending_migrations(),
        })
    }
}

async fn check(db: &Db, state: &State, timeout: Duration) {
    let now_up = match tokio::time::timeout(timeout, db.ping()).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "database health check failed");
            false
        }
        Err(_) => false,
    };
    let was_up = state.up.swap(now_up, Ordering::Relaxed);
    match (was_up, now_up) {
        (true, false) => {
            tracing::warn!(backend = db.backend().as_str(), "database unreachable")
        }
        (false, true) => {
            tracing::info!(backend = db.backend().as_str(), "database reachable again")
        }
        _ => {}
    }
    metrics::gauge!("database_up").set(if now_up { 1.0 } else { 0.0 });
    db.record_pool_gauges();
    if now_up {
        match tokio::time::timeout(timeout, schema::counts(db)).await {
            Ok(Ok(c)) => {
                state.pending.store(c.pending, Ordering::Relaxed);
                state.applied.store(c.applied, Ordering::Relaxed);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the migration status"),
            Err(_) => tracing::warn!("reading the migration status timed out"),
        }
    }
}
