//! `GET /api/v1/search` (`/openapi.json`, tag contracts): ranked full-text search over
//! the records the caller sees.

use axum::Json;
use axum::extract::State;
use palisade_auth::permissions::Permission;
use palisade_service::contracts::search::{SearchHit, SearchText};
use palisade_service::page::Limit;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::ApiQuery;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(Guard::Limited(Tier::General), [routes!(search)])
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Any text: every word must occur; quotes, `*`, `OR`, `NEAR`, `-` and SQL are
    /// searched for as words or ignored as punctuation, never interpreted.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// What to search, comma-separated: `contracts` (the default).
    #[param(pattern = "^contracts(,contracts)*$")]
    types: Option<String>,
    /// Results, 1..=100 (default 20).
    #[param(inline)]
    limit: Option<Limit>,
}

/// Search results, best first.
#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    items: Vec<SearchHit>,
}

/// Ranked full-text search over title, counterparty and description of the contracts
/// the caller sees.
#[utoipa::path(get, path = "/api/v1/search", tag = "contracts", security(("bearer" = [])),
    params(SearchQuery),
    responses((status = 200, body = SearchResults),
              (status = 403, description = "auth.forbidden: needs contracts:read"),
              (status = 422, description = "request.invalid_fields: `q` empty or longer than 200 characters, or an unknown type")))]
pub async fn search(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResults>, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsRead, &from)
        .await?;
    let text = SearchText::parse(&q.q).map_err(|e| Problem::invalid_fields([("q", e)]))?;
    if let Some(types) = &q.types
        && types.split(',').any(|t| t != "contracts")
    {
        return Err(Problem::invalid_fields([(
            "types",
            "searchable: contracts".to_owned(),
        )]));
    }
    let items = state
        .contracts
        .search(&who, &text, q.limit.unwrap_or_default())
        .await?;
    Ok(Json(SearchResults { items }))
}
