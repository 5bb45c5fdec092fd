//! `/api/v1/admin/infra/*` (API.md § Administration): infrastructure actions for holders
//! of `admin:infra`. An action that changes something also needs a recent second factor
//! (step-up, `POST /api/v1/auth/step-up`).

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(Guard::Limited(Tier::General), [routes!(clear_cache)])
}

/// Drops this instance's caches (user views, the revocation snapshot); they reload on
/// the next request. Needs `admin:infra` and a second factor within 10 minutes.
#[utoipa::path(post, path = "/api/v1/admin/infra/cache/clear", tag = "administration",
    security(("bearer" = [])),
    responses((status = 204, description = "The caches are dropped"),
              (status = 403, description = "auth.forbidden (needs admin:infra), or auth.step_up_required")))]
pub async fn clear_cache(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
) -> Result<StatusCode, Problem> {
    state.identity.clear_caches(&who, &from).await?;
    Ok(StatusCode::NO_CONTENT)
}
