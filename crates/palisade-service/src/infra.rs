//! The infrastructure statistics (`GET /api/v1/admin/infra/*`, `admin:infra`): read
//! only, each a view of one part of the running system. Counts that every instance
//! shares come from the database (the audit trail, the lockout table); counts of one
//! instance (its caches, threads, descriptors) say so.

use std::sync::Arc;

use palisade_store::cache::Cache;
use palisade_store::ratelimit::RateLimiter;
use palisade_store::repo::{audit, lockout, now, stats};
use palisade_store::{Db, StoreError, schema};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::audit::Action;
use crate::health::{DatabaseHealth, HealthService, ProcStatus};
use crate::identity::lockout::{HOUR, HOURLY_CAP};
use crate::identity::{Identity, IdentityError, Principal, Provenance};

/// The largest tables `database` lists.
const LARGEST_TABLES: u64 = 10;

/// A statistic could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Migrations(#[from] palisade_migrate::MigrateError),
}

#[derive(Clone)]
pub struct Infra {
    db: Db,
    health: HealthService,
    identity: Identity,
    limiter: Arc<RateLimiter>,
    records: Arc<Cache>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseStats {
    /// What `/health/detailed` says of the database, measured now.
    #[serde(flatten)]
    pub health: DatabaseHealth,
    pub size_bytes: i64,
    /// Largest first.
    pub largest_tables: Vec<TableStats>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableStats {
    pub name: String,
    /// PostgreSQL: the planner's estimate; SQLite: counted.
    pub rows: i64,
    /// With its indexes (PostgreSQL only).
    pub size_bytes: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityStats {
    /// Accounts refused now: locked, or at the hourly cap of failures.
    pub lockouts_active: i64,
    /// The last hour, then the last day.
    pub windows: Vec<SecurityWindow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityWindow {
    /// `1h` or `24h`.
    pub window: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Sign-ins, second factors, step-ups and refusals, from the audit trail (every
    /// instance's).
    pub events: Vec<EventCount>,
    /// Refresh tokens presented again after their rotation (each revoked a session).
    pub refresh_reuses: i64,
    /// Rate-limit refusals by tier, as the audit trail records them: each client key
    /// at most once a minute. `/metrics` counts every refusal of one instance
    /// (`rate_limited_total`).
    pub rate_limited: Vec<TierCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventCount {
    /// `auth.login`, `auth.step_up`, `authz.denied`, …
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Why it failed (`password`, `code`, `locked`, `unknown_email`, …), when said.
    pub reason: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierCount {
    pub tier: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationStats {
    pub applied: usize,
    pub pending: usize,
    /// Applied files that changed, applied versions whose file is gone, pending
    /// versions older than an applied one.
    pub problems: usize,
    pub migrations: Vec<MigrationEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationEntry {
    pub version: u64,
    pub name: String,
    /// `applied`, `pending`, `out_of_order`, `drifted` or `missing_file`.
    #[schema(value_type = String)]
    pub state: palisade_migrate::State,
    /// RFC 3339, when applied.
    pub applied_at: Option<String>,
}

/// This instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemStats {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub rss_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_descriptors: Option<u64>,
    pub hashing: HashingStats,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HashingStats {
    pub threads: usize,
    /// Hashing now.
    pub busy: usize,
    /// Waiting for a thread.
    pub queued: usize,
}

/// The caches: the record cache (dashboard aggregates; this instance's first level,
/// Redis the shared second) and what else this instance keeps.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStats {
    /// Lookups of the record cache answered from either level, since start.
    pub hits: u64,
    /// Lookups it had to compute.
    pub misses: u64,
    /// Entries in this instance's first level.
    pub entries: u64,
    /// Their size as stored (large values compressed).
    pub bytes: u64,
    /// The second level: `shared` (Redis answers), `resting` (Redis failed: this
    /// instance's level only, until it answers again), or `absent` (no `REDIS_URL`).
    pub redis: &'static str,
    pub caches: Vec<CacheEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CacheEntry {
    /// `user_views`, `revocations`, `rate_limits`.
    pub name: &'static str,
    pub entries: usize,
    /// What it holds, for how long, and where it is shared.
    pub description: &'static str,
    /// How old the cached data is, when it is one load.
    pub age_ms: Option<u64>,
    /// `process`, or `redis` while the limits are shared through it.
    pub scope: &'static str,
}

impl Infra {
    pub fn new(
        db: Db,
        health: HealthService,
        identity: Identity,
        limiter: Arc<RateLimiter>,
        records: Arc<Cache>,
    ) -> Infra {
        Infra {
            db,
            health,
            identity,
            limiter,
            records,
        }
    }

    /// Drops this instance's caches (`admin:infra` with step-up): the identity caches
    /// and the record cache's first level. The shared level needs no clearing: its
    /// entries are only read under their scope's current version.
    pub async fn clear_caches(
        &self,
        who: &Principal,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        self.identity.clear_caches(who, from).await?;
        self.records.clear();
        Ok(())
    }

    pub async fn database(&self) -> Result<DatabaseStats, InfraError> {
        let size_bytes = stats::database_size(&self.db).await?;
        let tables = stats::largest_tables(&self.db, LARGEST_TABLES).await?;
        Ok(DatabaseStats {
            health: self.health.database().await,
            size_bytes,
            largest_tables: tables
                .into_iter()
                .map(|t| TableStats {
                    name: t.name,
                    rows: t.rows,
                    size_bytes: t.bytes,
                })
                .collect(),
        })
    }

    pub async fn security(&self) -> Result<SecurityStats, InfraError> {
        let at = now();
        let mut windows = Vec::new();
        for (window, span) in [("1h", HOUR), ("24h", 24 * HOUR)] {
            let since = at - span;
            let tallies = audit::tally_since(&self.db, since).await?;
            let count_of = |action: &str| {
                tallies
                    .iter()
                    .filter(|t| t.action == action)
                    .map(|t| t.n)
                    .sum()
            };
            windows.push(SecurityWindow {
                window,
                since,
                refresh_reuses: count_of(Action::RefreshReused.as_str()),
                rate_limited: tallies
                    .iter()
                    .filter(|t| t.action == Action::RateLimited.as_str())
                    .map(|t| TierCount {
                        tier: t.detail.clone().unwrap_or_default(),
                        count: t.n,
                    })
                    .collect(),
                events: tallies
                    .into_iter()
                    .filter(|t| t.action.starts_with("auth.") || t.action.starts_with("authz."))
                    .map(|t| EventCount {
                        action: t.action,
                        outcome: t.outcome,
                        reason: t.detail,
                        count: t.n,
                    })
                    .collect(),
            });
        }
        Ok(SecurityStats {
            lockouts_active: lockout::locked_at(&self.db, at, HOURLY_CAP, at - HOUR).await?,
            windows,
        })
    }

    pub async fn migrations(&self) -> Result<MigrationStats, InfraError> {
        let status = schema::migrator(&self.db)?.status().await?;
        let count = |state| status.with_state(state).count();
        use palisade_migrate::State;
        Ok(MigrationStats {
            applied: count(State::Applied),
            pending: count(State::Pending) + count(State::OutOfOrder),
            problems: status
                .entries
                .iter()
                .filter(|e| e.state.is_problem())
                .count(),
            migrations: status
                .entries
                .iter()
                .map(|e| MigrationEntry {
                    version: e.version,
                    name: e.name.clone(),
                    state: e.state,
                    applied_at: e.applied.as_ref().map(|a| a.applied_at.clone()),
                })
                .collect(),
        })
    }

    pub fn system(&self) -> SystemStats {
        let load = self.identity.hashing_load();
        let status = ProcStatus::read();
        SystemStats {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self.health.uptime().as_secs(),
            rss_bytes: status.as_ref().and_then(ProcStatus::resident_bytes),
            threads: status.as_ref().and_then(|s| s.field("Threads:")),
            open_descriptors: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            hashing: HashingStats {
                threads: load.threads,
                busy: load.busy,
                queued: load.queued,
            },
        }
    }

    pub fn cache(&self) -> CacheStats {
        let (views, revoked, revocations_age) = self.identity.caches();
        let limiter_scope = if self.limiter.is_shared() && !self.limiter.is_resting() {
            "redis"
        } else {
            "process"
        };
        let records = self.records.stats();
        CacheStats {
            hits: records.hits,
            misses: records.misses,
            entries: records.entries,
            bytes: records.bytes,
            redis: match (records.redis_configured, records.redis_resting) {
                (false, _) => "absent",
                (true, true) => "resting",
                (true, false) => "shared",
            },
            caches: vec![
                CacheEntry {
                    name: "user_views",
                    entries: views,
                    description: "users as GET /api/v1/me shows them, at most 1 s old; dropped on every change made here",
                    age_ms: None,
                    scope: "process",
                },
                CacheEntry {
                    name: "revocations",
                    entries: revoked,
                    description: "sessions ended within an access token's lifetime, reloaded from the database when older than 1 s",
                    age_ms: revocations_age.map(|d| d.as_millis() as u64),
                    scope: "process",
                },
                CacheEntry {
                    name: "rate_limits",
                    entries: self.limiter.local_keys(),
                    description: "rate-limit counters kept in this process: all of them without Redis, those counted while Redis failed with it",
                    age_ms: None,
                    scope: limiter_scope,
                },
            ],
        }
    }
}
