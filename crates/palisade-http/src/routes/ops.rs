//! Operations endpoints (`/openapi.json`, tag operations): probes, metrics, the OpenAPI
//! document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_service::{DetailedHealth, Readiness};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

/// Outside the rate limiter: probes must answer however busy the API is.
pub fn routes() -> Routes {
    Routes::default()
        .group(
            Guard::Open,
            [
                routes!(live),
                routes!(ready),
                routes!(health),
                routes!(openapi),
                routes!(jwks),
            ],
        )
        .group(Guard::Ops, [routes!(health_detailed), routes!(metrics)])
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(value_type = String, pattern = "^(ok|ready|degraded)$")]
    status: &'static str,
}

/// The process is serving; nothing else is checked.
#[utoipa::path(get, path = "/live", tag = "operations", responses((status = 200, body = Status)))]
pub async fn live() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Whether this instance should receive traffic.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, body = Status),
    (status = 503, description = "service.database_unavailable, service.migrations_pending or service.shutting_down"),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    // A 5xx carries no detail, so the reason is in the stable code.
    let code = match state.health.readiness() {
        Readiness::Ready => return Json(Status { status: "ready" }).into_response(),
        Readiness::ShuttingDown => "service.shutting_down",
        Readiness::DatabaseUnreachable => "service.database_unavailable",
        Readiness::MigrationsPending => "service.migrations_pending",
    };
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, "Service Unavailable").into_response()
}

/// Coarse health, safe to expose: no versions, no internals.
#[utoipa::path(get, path = "/health", tag = "operations", responses(
    (status = 200, body = Status),
    (status = 503, body = Status, content_type = "application/json", description = "degraded"),
))]
pub async fn health(State(state): State<AppState>) -> Response {
    if state.health.is_healthy() {
        Json(Status { status: "ok" }).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status { status: "degraded" }),
        )
            .into_response()
    }
}

/// Database, pool, memory and uptime, for operators (`PALISADE_OPS_ALLOW` or `admin:infra`).
#[utoipa::path(get, path = "/health/detailed", tag = "operations", responses(
    (status = 200, body = DetailedHealth),
    (status = 404, description = "The caller is not an operator"),
))]
pub async fn health_detailed(State(state): State<AppState>) -> Json<DetailedHealth> {
    Json(state.health.detailed().await)
}

/// Prometheus text exposition, for operators (`PALISADE_OPS_ALLOW` or `admin:infra`).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
    (status = 404, description = "The caller is not an operator"),
))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.db.record_pool_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, content_type = "application/json", body = Object, description = "OpenAPI 3.1")))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

/// The public key of the access-token signer (RFC 7517); empty with HS256.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "JWK set", content_type = "application/json", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.identity.access_tokens().jwks()),
    )
        .into_response()
}
