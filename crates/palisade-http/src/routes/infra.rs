//! `/api/v1/admin/infra/*` (`/openapi.json`, tag administration): infrastructure
//! statistics and actions for holders of `admin:infra`. Reading needs the permission
//! alone; an action that changes something also needs a recent second factor (step-up,
//! `POST /api/v1/auth/step-up`).

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use http::request::Parts;
use palisade_auth::permissions::Permission;
use palisade_service::infra::{
    CacheStats, DatabaseStats, MigrationStats, SecurityStats, SystemStats,
};
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::General),
        [
            routes!(database),
            routes!(security),
            routes!(migrations),
            routes!(system),
            routes!(cache),
            routes!(clear_cache),
        ],
    )
}

/// A holder of `admin:infra` (the denial of anyone else is recorded).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Authed(who) = Authed::from_request_parts(parts, state).await?;
        let Ok(RequestProvenance(from)) = RequestProvenance::from_request_parts(parts, state).await;
        state
            .identity
            .require(&who, Permission::AdminInfra, &from)
            .await?;
        Ok(Operator)
    }
}

/// The database: backend, pools, latency, size and the largest tables.
#[utoipa::path(get, path = "/api/v1/admin/infra/database", tag = "administration",
    security(("bearer" = [])),
    responses((status = 200, body = DatabaseStats),
              (status = 403, description = "auth.forbidden: needs admin:infra")))]
pub async fn database(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<DatabaseStats>, Problem> {
    Ok(Json(state.infra.database().await?))
}

/// Sign-ins and their failures by kind over the last hour and day, lockouts now,
/// rate-limit refusals by tier, refresh-token reuses.
#[utoipa::path(get, path = "/api/v1/admin/infra/security", tag = "administration",
    security(("bearer" = [])),
    responses((status = 200, body = SecurityStats),
              (status = 403, description = "auth.forbidden: needs admin:infra")))]
pub async fn security(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<SecurityStats>, Problem> {
    Ok(Json(state.infra.security().await?))
}

/// Every migration of this build and of the database, with its state (as
/// `palisade migrate status`).
#[utoipa::path(get, path = "/api/v1/admin/infra/migrations", tag = "administration",
    security(("bearer" = [])),
    responses((status = 200, body = MigrationStats),
              (status = 403, description = "auth.forbidden: needs admin:infra")))]
pub async fn migrations(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<MigrationStats>, Problem> {
    Ok(Json(state.infra.migrations().await?))
}

/// This instance: version, uptime, memory, threads, descriptors, hashing threads.
#[utoipa::path(get, path = "/api/v1/admin/infra/system", tag = "administration",
    security(("bearer" = [])),
    responses((status = 200, body = SystemStats),
              (status = 403, description = "auth.forbidden: needs admin:infra")))]
pub async fn system(State(state): State<AppState>, _: Operator) -> Json<SystemStats> {
    Json(state.infra.system())
}

/// This instance's caches: what each holds and how much.
#[utoipa::path(get, path = "/api/v1/admin/infra/cache", tag = "administration",
    security(("bearer" = [])),
    responses((status = 200, body = CacheStats),
              (status = 403, description = "auth.forbidden: needs admin:infra")))]
pub async fn cache(State(state): State<AppState>, _: Operator) -> Json<CacheStats> {
    Json(state.infra.cache())
}

/// Drops this instance's caches (user views, the revocation snapshot, the record
/// cache's first level); they reload on the next request. Needs `admin:infra` and a second factor within 10 minutes.
#[utoipa::path(post, path = "/api/v1/admin/infra/cache/clear", tag = "administration",
    security(("bearer" = [])),
    responses((status = 204, description = "The caches are dropped"),
              (status = 403, description = "auth.forbidden (needs admin:infra), or auth.step_up_required")))]
pub async fn clear_cache(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
) -> Result<StatusCode, Problem> {
    state.infra.clear_caches(&who, &from).await?;
    Ok(StatusCode::NO_CONTENT)
}
