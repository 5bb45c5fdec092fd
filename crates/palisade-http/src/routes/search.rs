//! `GET /api/v1/search` (`/openapi.json`, tag contracts): ranked full-text search over
//! the contracts and payments the caller sees.

use axum::Json;
use axum::extract::State;
use palisade_auth::permissions::Permission;
use palisade_service::page::Limit;
use palisade_service::search::{self, SearchHit, SearchText, SearchType};
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
    /// What to search, comma-separated: `contracts`, `payments` (default: both).
    #[param(pattern = "^(contracts|payments)(,(contracts|payments))*$")]
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

/// Ranked full-text search over the contracts (title, counterparty, description) and
/// payments (description) the caller sees. Scores rank within one kind; the kinds are
/// merged by score.
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
    let types = match &q.types {
        Some(list) => {
            SearchType::parse_list(list).map_err(|e| Problem::invalid_fields([("types", e)]))?
        }
        None => SearchType::ALL.to_vec(),
    };
    let limit = q.limit.unwrap_or_default();
    let mut lists = Vec::new();
    for t in types {
        lists.push(match t {
            SearchType::Contracts => state.contracts.search(&who, &text, limit).await?,
            SearchType::Payments => state.payments.search(&who, &text, limit).await?,
        });
    }
    let items = search::merge(lists, limit.get() as usize);
    Ok(Json(SearchResults { items }))
}
