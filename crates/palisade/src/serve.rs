//! `palisade serve`: wires the store, the services and the HTTP layer together, serves
//! until SIGTERM/SIGINT, drains, and closes the pools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palisade_auth::access::AccessTokens;
use palisade_auth::csrf::Csrf;
use palisade_auth::password::{BASELINE, Passwords};
use palisade_auth::refresh::RefreshTokens;
use palisade_http::{AppState, Shared, openapi, server, telemetry::Metrics};
use palisade_migrate::Quiet;
use palisade_migrate::engine::Plan;
use palisade_service::HealthService;
use palisade_service::audit::Audit;
use palisade_service::identity::{Hasher, Identity};
use palisade_store::ratelimit::{self, RateLimiter};
use palisade_store::{Db, DbHealth, redact_url, schema};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::keys;

/// How often expired sessions, refresh tokens and MFA challenges are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Longest wait for the pools to close once the drain is over.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(config: Config) -> anyhow::Result<()> {
    let metrics = Metrics::global();
    metrics.spawn_upkeep();

    let db = Db::connect(&config.store)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&config.store.url)))?;
    tracing::info!(backend = db.backend().as_str(), "database connected");
    if config.migrate_on_start {
        migrate_on_start(&db).await?;
    }
    let db_health = DbHealth::start(
        db.clone(),
        config.db_health_interval,
        config.store.connect_timeout * 2,
    )
    .await;
    if db_health.pending_migrations() > 0 {
        tracing::warn!(
            pending = db_health.pending_migrations(),
            "migrations are pending: not ready until they are applied (palisade migrate up)"
        );
    }
    let limiter = limiter(&config).await;
    let health = HealthService::new(db.clone(), db_health).with_redis(limiter.probe());
    let (identity, csrf) = identity(&config, &db)?;
    spawn_cleanup(identity.clone());

    let state = AppState::from(Shared {
        db: db.clone(),
        health: health.clone(),
        identity,
        csrf,
        cookie_secure: config.identity.cookie_secure,
        allowed_origins: Arc::from(config.http.allowed_origins.clone()),
        limiter,
        rate_limits: config.rate_limits.clone(),
        metrics,
        ops_allow: Arc::from(config.http.ops_allow.clone()),
        body_limit: config.http.body_limit,
        openapi: openapi::document().into(),
    });
    let app = palisade_http::app(state, &config.http, palisade_http::routes::all());

    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr().context("listener has no address")?;
    tracing::info!(addr = %bound, env = ?config.env, "listening");

    let drain = server::serve(
        listener,
        app,
        &config.http,
        health,
        server::shutdown_signal(),
    )
    .await;
    if tokio::time::timeout(POOL_CLOSE_TIMEOUT, db.close())
        .await
        .is_err()
    {
        tracing::warn!("database pools did not close in time");
    }
    tracing::info!(?drain, "stopped");
    Ok(())
}

/// Applies this build's pending migrations. Instances starting together take turns
/// on the runner lock; each migration is applied once.
pub async fn migrate_on_start(db: &Db) -> anyhow::Result<()> {
    let report = schema::migrator(db)?
        .execute(&Plan::Up { to: None }, false, &Quiet)
        .await
        .context("migrations failed; nothing else was started")?;
    if !report.steps.is_empty() {
        tracing::info!(applied = report.steps.len(), "migrations applied");
    }
    Ok(())
}

/// The identity service and the CSRF signer, from the configured (or development) keys.
pub fn identity(config: &Config, db: &Db) -> anyhow::Result<(Identity, Csrf)> {
    let c = &config.identity;
    let keys = keys::load(c)?;
    let access = AccessTokens::new(&keys.signing, &c.issuer, &c.audience, c.access_ttl);
    let refresh = RefreshTokens::new(&keys.signing.derive("palisade refresh-token v1"))?;
    let csrf = Csrf::new(&keys.signing.derive("palisade csrf v1"))?;
    let hasher = Hasher::new(
        Passwords::new(BASELINE)?,
        c.hash_threads.unwrap_or_else(Hasher::default_threads),
    );
    let identity = Identity::new(
        db.clone(),
        hasher,
        access,
        refresh,
        keys.secrets,
        Audit::new(db.clone()),
        c.settings.clone(),
    );
    Ok((identity, csrf))
}

/// The rate limiter: shared through Redis when `REDIS_URL` is set, else this
/// instance's own. A Redis that does not answer at start is used once it does; until
/// then the limits are this instance's.
async fn limiter(config: &Config) -> RateLimiter {
    let Some(url) = &config.redis_url else {
        return RateLimiter::in_process();
    };
    let conn = match ratelimit::redis_manager(url) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(error = %e, redis = %redact_url(url), "REDIS_URL is not usable: rate limits are this instance's own");
            return RateLimiter::in_process();
        }
    };
    let limiter = RateLimiter::shared(conn, &config.redis_prefix);
    match limiter.ping_redis().await {
        Some(Ok(_)) => tracing::info!("rate limits are shared through Redis"),
        Some(Err(e)) => {
            tracing::error!(error = %e, redis = %redact_url(url), "Redis unreachable at start: rate limits are this instance's own until it answers");
        }
        None => {}
    }
    limiter
}

/// Deletes expired identity rows every hour, for as long as the server runs.
fn spawn_cleanup(identity: Identity) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CLEANUP_EVERY);
        loop {
            every.tick().await;
            match identity.delete_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "expired sessions and tokens deleted"),
                Err(e) => tracing::warn!(error = %e, "cleanup of expired sessions failed"),
            }
        }
    });
}
