//! `/api/v1/admin/infra/*` (API.md § Administration): infrastructure actions for holders
//! of `admin:infra`. An action that changes something also needs a recent second factor
//! (step-up, `POST /api/v1/auth/step-up`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use crate::auth::{Authed, RequestOrigin};
use crate::problem::Problem;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/admin/infra/cache/clear", post(clear_cache))
}

/// Drops this instance's caches (user views, the revocation snapshot); they reload on
/// the next request. Needs `admin:infra` and a second factor within 10 minutes.
#[utoipa::path(post, path = "/api/v1/admin/infra/cache/clear", tag = "administration",
    security(("bearer" = [])),
    responses((status = 204), (status = 401),
              (status = 403, description = "auth.forbidden, or auth.step_up_required")))]
pub async fn clear_cache(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
) -> Result<StatusCode, Problem> {
    state.identity.clear_caches(&who, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}
