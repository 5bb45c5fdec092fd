//! Liveness, readiness and health: what each probe means.
//!
//! - live: the process serves requests; nothing else is checked.
//! - ready: the database answered the last background check, none of this build's
//!   migrations is pending, and no graceful shutdown has begun (a load balancer must
//!   stop sending traffic before the drain ends).
//! - healthy: the database answered the last background check.
//! - detailed: a live ping with its latency, pool usage, memory and uptime, for operators.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use palisade_store::redis::SharedRedis;
use palisade_store::{Db, DbHealth, PoolStats};
use serde::Serialize;
use utoipa::ToSchema;

/// Why the instance should or should not receive traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    ShuttingDown,
    DatabaseUnreachable,
    MigrationsPending,
}

#[derive(Clone)]
pub struct HealthService {
    db: Db,
    db_health: DbHealth,
    started: Instant,
    draining: Arc<AtomicBool>,
    /// Tells long-lived answers (notification streams) that the drain began.
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    redis: Option<Arc<SharedRedis>>,
}

impl HealthService {
    pub fn new(db: Db, db_health: DbHealth) -> Self {
        Self {
            db,
            db_health,
            started: Instant::now(),
            draining: Arc::new(AtomicBool::new(false)),
            shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
            redis: None,
        }
    }

    /// Reports this Redis in `detailed` (when `REDIS_URL` is configured).
    pub fn with_redis(mut self, redis: Option<Arc<SharedRedis>>) -> Self {
        self.redis = redis;
        self
    }

    /// From now on the instance reports not-ready; called when a graceful shutdown begins.
    pub fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    /// Becomes `true` when a graceful shutdown begins: an answer that would run
    /// until its client leaves (a stream) ends then, so the drain is not held.
    pub fn shutting_down(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn readiness(&self) -> Readiness {
        if self.draining.load(Ordering::SeqCst) {
            Readiness::ShuttingDown
        } else if !self.db_health.is_up() {
            Readiness::DatabaseUnreachable
        } else if self.db_health.pending_migrations() > 0 {
            Readiness::MigrationsPending
        } else {
            Readiness::Ready
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.db_health.is_up()
    }

    /// How long this instance has been up.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The database as the operator sees it: pinged now rather than trusting the last
    /// check.
    pub async fn database(&self) -> DatabaseHealth {
        let ping = self.db.ping().await;
        DatabaseHealth {
            backend: self.db.backend().as_str(),
            reachable: ping.is_ok(),
            latency_ms: ping.ok().map(|d| d.as_secs_f64() * 1000.0),
            pool: self.db.stats().into(),
            replica_pool: self.db.replica_stats().map(Into::into),
        }
    }

    /// The operator's view.
    pub async fn detailed(&self) -> DetailedHealth {
        let database = self.database().await;
        let reachable = database.reachable;
        // From the background check: reading the tracking table here would open a
        // connection of its own per request.
        let migrations = self.db_health.migration_counts().map(|c| MigrationsHealth {
            applied: c.applied,
            pending: c.pending,
        });
        let redis = match &self.redis {
            None => None,
            Some(probe) => {
                let ping = probe.ping().await;
                Some(RedisHealth {
                    reachable: ping.is_ok(),
                    latency_ms: ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
                    shared_state: if ping.is_ok() { "redis" } else { "in_process" },
                })
            }
        };
        let redis_down = redis.as_ref().is_some_and(|r| !r.reachable);
        DetailedHealth {
            status: if reachable && !redis_down {
                "ok"
            } else {
                "degraded"
            },
            database,
            redis,
            migrations,
            memory: MemoryHealth {
                rss_bytes: resident_set_bytes(),
            },
            uptime_seconds: self.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailedHealth {
    /// `ok` or `degraded`.
    pub status: &'static str,
    pub database: DatabaseHealth,
    /// Present when `REDIS_URL` is configured (shared rate limits and cache); while it
    /// is down both fall back to each instance and the status is `degraded`.
    pub redis: Option<RedisHealth>,
    /// This build's migrations on the database at the last background check; absent
    /// before it could first be read.
    pub migrations: Option<MigrationsHealth>,
    pub memory: MemoryHealth,
    pub uptime_seconds: u64,
    pub version: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    pub reachable: bool,
    /// Round trip of `SELECT 1`, when it succeeded.
    pub latency_ms: Option<f64>,
    pub pool: PoolUsage,
    pub replica_pool: Option<PoolUsage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedisHealth {
    pub reachable: bool,
    /// Round trip of `PING`, when it succeeded.
    pub latency_ms: Option<f64>,
    /// Where rate limits and the cache's second level live now: `redis`, or
    /// `in_process` while Redis does not answer.
    pub shared_state: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolUsage {
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

impl From<PoolStats> for PoolUsage {
    fn from(s: PoolStats) -> Self {
        Self {
            size: s.size,
            idle: s.idle,
            in_use: s.in_use,
            max: s.max,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationsHealth {
    pub applied: usize,
    pub pending: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryHealth {
    /// Resident set size, when the platform reports it.
    pub rss_bytes: Option<u64>,
}

/// Resident set size from `/proc/self/status` (Linux); `None` elsewhere.
pub(crate) fn resident_set_bytes() -> Option<u64> {
    ProcStatus::read()?.resident_bytes()
}

/// `/proc/self/status` (Linux), read once for several of its fields.
pub(crate) struct ProcStatus(String);

impl ProcStatus {
    pub(crate) fn read() -> Option<ProcStatus> {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .map(ProcStatus)
    }

    /// The number of the line starting with `field` (`Threads:`, say).
    pub(crate) fn field(&self, field: &str) -> Option<u64> {
        let line = self.0.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub(crate) fn resident_bytes(&self) -> Option<u64> {
        self.field("VmRSS:").map(|kib| kib * 1024)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_resident_set_on_linux() {
        let rss = super::resident_set_bytes().expect("VmRSS on Linux");
        assert!(
            rss > 1024 * 1024,
            "a test process uses more than 1 MiB: {rss}"
        );
    }
}
