//! `GET /api/v1/dashboard` (`/openapi.json`, tag contracts): aggregates of the caller's
//! records, or everyone's, from the cache when current (`X-Cache: hit|miss`).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use palisade_auth::permissions::Permission;
use palisade_service::dashboard::{DashboardView, Scope};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::ApiQuery;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(Guard::Limited(Tier::General), [routes!(dashboard)])
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// `own` (default) or `all` (`records:all`).
    #[param(inline)]
    scope: Option<Scope>,
}

/// Counts and sums of contracts and payments: the caller's, or everyone's.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "contracts", security(("bearer" = [])),
    params(DashboardQuery),
    responses((status = 200, body = DashboardView,
               headers(("X-Cache" = String, description = "`hit` or `miss`"))),
              (status = 403, description = "auth.forbidden: needs contracts:read, and records:all for `scope=all`")))]
pub async fn dashboard(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsRead, &from)
        .await?;
    let (json, lookup) = state
        .dashboard
        .read(&who, q.scope.unwrap_or_default())
        .await?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (
            header::HeaderName::from_static("x-cache"),
            HeaderValue::from_static(lookup.as_str()),
        ),
    ];
    Ok((headers, json).into_response())
}
