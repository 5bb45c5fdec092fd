//! The background database health check.
//!
//! Every interval a task pings the primary, keeps the result in [`DbHealth`] (read by
//! `/ready` and `/health` without touching the database), and refreshes the
//! `database_up` and `db_pool_connections` gauges. The task ends by itself once every
//! [`DbHealth`] handle is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::Db;

/// The latest verdict of the health check. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DbHealth {
    up: Arc<AtomicBool>,
}

impl DbHealth {
    /// Starts the check; the first ping runs at once.
    pub fn spawn(db: Db, every: Duration, timeout: Duration) -> DbHealth {
        let up = Arc::new(AtomicBool::new(true));
        let weak = Arc::downgrade(&up);
        tokio::spawn(run(db, weak, every, timeout));
        DbHealth { up }
    }

    /// Whether the last ping succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

async fn run(db: Db, up: Weak<AtomicBool>, every: Duration, timeout: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(flag) = up.upgrade() else { return };
        let now_up = match tokio::time::timeout(timeout, db.ping()).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "database health check failed");
                false
            }
            Err(_) => false,
        };
        let was_up = flag.swap(now_up, Ordering::Relaxed);
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
    }
}
