//! `/api/v1/contracts` (`/openapi.json`, tag contracts): create, list, read, change
//! and delete contracts. Every answer carrying a contract carries its `ETag`; a change
//! may name the version it was made against with `If-Match`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_auth::ids::{ContractId, UserId};
use palisade_auth::permissions::Permission;
use palisade_service::billing;
use palisade_service::contracts::fields::{ContractPatch, NewContract, Status, Tag};
use palisade_service::contracts::{ContractView, ListQuery};
use palisade_service::page::{Cursor, Limit};
use palisade_service::search::SearchText;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::list::List;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::General),
        [routes!(create, list), routes!(read, update, delete)],
    )
}

/// A contract with its `ETag: "<version>"`.
struct Tagged(StatusCode, ContractView);

impl IntoResponse for Tagged {
    fn into_response(self) -> Response {
        let Tagged(status, view) = self;
        let etag = format!("\"{}\"", view.version);
        let mut response = (status, Json(view)).into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        response
    }
}

/// Creates a draft contract owned by the caller.
#[utoipa::path(post, path = "/api/v1/contracts", tag = "contracts", security(("bearer" = [])),
    request_body = NewContract,
    responses((status = 201, body = ContractView, description = "The new contract (`status: draft`, `version: 1`)",
               headers(("Location" = String, description = "The contract's URL"),
                       ("ETag" = String, description = "`\"1\"`"))),
              (status = 402, description = "billing.limit_reached: the caller's plan allows no more contracts (`contracts_max`)"),
              (status = 403, description = "auth.forbidden: needs contracts:write"),
              (status = 422, description = "request.invalid_fields")))]
pub async fn create(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<NewContract>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsWrite, &from)
        .await?;
    let limit = billing::Limit::ContractsMax;
    if let Some(max) = state.billing.bound(who.user_id, limit).await? {
        let owned = state.contracts.count_owned(who.user_id).await?;
        state.billing.check_room(limit, owned, max)?;
    }
    let view = state.contracts.create(&who, &from, body).await?;
    let location = format!("/api/v1/contracts/{}", view.id);
    let mut response = Tagged(StatusCode::CREATED, view).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `GET /api/v1/contracts`'s query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContractsQuery {
    /// Items per page, 1..=100 (default 20).
    #[param(inline)]
    limit: Option<Limit>,
    /// The `next_cursor` of the page before.
    #[param(inline)]
    cursor: Option<Cursor>,
    #[param(inline)]
    status: Option<Status>,
    /// Only contracts with this tag.
    #[param(inline)]
    tag: Option<Tag>,
    /// Full text over title, counterparty and description: contracts holding every
    /// word. Any text; operators and punctuation are not interpreted.
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// Only this user's (`records:all` for anyone but oneself).
    #[param(value_type = Option<String>, format = Uuid)]
    owner: Option<UserId>,
    /// Only contracts created after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    created_after: Option<OffsetDateTime>,
    /// Only contracts created before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    created_before: Option<OffsetDateTime>,
}

impl ContractsQuery {
    /// The filters, with `q` parsed (422 when it is too long or empty).
    pub fn filters(&self) -> Result<ListQuery, Problem> {
        filters(
            (self.status, self.tag.clone(), self.q.as_deref(), self.owner),
            (self.created_after, self.created_before),
        )
    }
}

/// The list filters, with `q` parsed (422 when it is too long or empty).
pub fn filters(
    (status, tag, q, owner): (Option<Status>, Option<Tag>, Option<&str>, Option<UserId>),
    (created_after, created_before): (Option<OffsetDateTime>, Option<OffsetDateTime>),
) -> Result<ListQuery, Problem> {
    let q = q
        .map(SearchText::parse)
        .transpose()
        .map_err(|e| Problem::invalid_fields([("q", e)]))?;
    Ok(ListQuery {
        status,
        tag,
        q,
        owner,
        created_after,
        created_before,
    })
}

/// The contracts the caller sees (their own; everyone's with `records:all`), newest
/// first.
#[utoipa::path(get, path = "/api/v1/contracts", tag = "contracts", security(("bearer" = [])),
    params(ContractsQuery),
    responses((status = 200, body = List<ContractView>),
              (status = 403, description = "auth.forbidden: needs contracts:read, and records:all for `owner` other than oneself"),
              (status = 422, description = "request.invalid_fields: `q` empty or longer than 200 characters")))]
pub async fn list(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<ContractsQuery>,
) -> Result<Json<List<ContractView>>, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsRead, &from)
        .await?;
    let filters = q.filters()?;
    let page = state
        .contracts
        .list(
            &who,
            &filters,
            q.cursor.as_ref(),
            q.limit.unwrap_or_default(),
        )
        .await?;
    Ok(Json(page.into()))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ContractView, headers(("ETag" = String, description = "`\"<version>\"`"))),
              (status = 403, description = "auth.forbidden: needs contracts:read")))]
pub async fn read(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<ContractId>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsRead, &from)
        .await?;
    let view = state.contracts.get(&who, id).await?;
    Ok(Tagged(StatusCode::OK, view).into_response())
}

/// Changes a contract. The amount and currency are fixed once it leaves draft.
#[utoipa::path(patch, path = "/api/v1/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid),
           ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: change only that version")),
    request_body = ContractPatch,
    responses((status = 200, body = ContractView, headers(("ETag" = String, description = "`\"<version>\"`"))),
              (status = 403, description = "auth.forbidden: needs contracts:write"),
              (status = 409, description = "contracts.invalid_transition, contracts.locked or contracts.contended"),
              (status = 412, description = "contracts.version_mismatch: `If-Match` names another version"),
              (status = 422, description = "request.invalid_fields")))]
pub async fn update(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<ContractId>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<ContractPatch>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsWrite, &from)
        .await?;
    // A value that is not visible ASCII matches no version.
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or(""));
    let view = state
        .contracts
        .update(&who, &from, id, if_match, patch)
        .await?;
    Ok(Tagged(StatusCode::OK, view).into_response())
}

/// Deletes a draft or cancelled contract without payments.
#[utoipa::path(delete, path = "/api/v1/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "auth.forbidden: needs contracts:write"),
              (status = 409, description = "contracts.has_payments: not a draft or cancelled contract without payments")))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<ContractId>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsWrite, &from)
        .await?;
    state.contracts.delete(&who, &from, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
