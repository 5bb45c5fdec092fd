//! `palisade serve`: wires the store, the services and the HTTP layer together, serves
//! until SIGTERM/SIGINT, drains, and closes the pools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use palisade_http::{AppState, Shared, openapi, server, telemetry::Metrics};
use palisade_migrate::Quiet;
use palisade_migrate::engine::Plan;
use palisade_service::HealthService;
use palisade_store::{Db, DbHealth, redact_url, schema};
use tokio::net::TcpListener;

use crate::config::Config;

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
    let health = HealthService::new(db.clone(), db_health);

    let state = AppState::from(Shared {
        db: db.clone(),
        health: health.clone(),
        metrics,
        ops_allow: Arc::from(config.http.ops_allow.clone()),
        openapi: openapi::document().into(),
    });
    let app = palisade_http::app(state, &config.http, Router::new());

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
async fn migrate_on_start(db: &Db) -> anyhow::Result<()> {
    let report = schema::migrator(db)?
        .execute(&Plan::Up { to: None }, false, &Quiet)
        .await
        .context("migrations failed; nothing else was started")?;
    if !report.steps.is_empty() {
        tracing::info!(applied = report.steps.len(), "migrations applied");
    }
    Ok(())
}
