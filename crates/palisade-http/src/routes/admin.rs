//! `/api/v1/admin/*` and `/api/v1/audit` (API.md § Administration). Each handler names
//! its permission first.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use palisade_auth::permissions::{Permission, Role};
use palisade_service::audit::EventView;
use palisade_service::identity::UserView;
use palisade_service::identity::admin::UserPatch;
use palisade_store::repo::audit::Filter;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Authed, RequestOrigin};
use crate::extract::ApiJson;
use crate::problem::Problem;
use crate::routes::paging::{Page, bad_query, limit};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/users", get(list_users))
        .route(
            "/api/v1/admin/users/{id}",
            axum::routing::patch(update_user),
        )
        .route("/api/v1/admin/users/{id}/sessions", delete(end_sessions))
        .route("/api/v1/audit", get(audit))
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    items: Vec<UserView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "administration", security(("bearer" = [])),
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = UserList), (status = 403)))]
pub async fn list_users(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    Query(page): Query<Page>,
) -> Result<Json<UserList>, Problem> {
    state
        .identity
        .require(&who, Permission::UsersRead, &origin)
        .await?;
    let after = match &page.cursor {
        None => None,
        Some(c) => Some(decode_user_cursor(c).ok_or_else(|| bad_query("cursor", "not a cursor"))?),
    };
    let found = state.identity.list_users(after, limit(page.limit)?).await?;
    Ok(Json(UserList {
        items: found.items,
        next_cursor: found
            .next
            .map(|(at, id)| format!("{}_{id}", at.unix_timestamp_nanos())),
    }))
}

fn decode_user_cursor(c: &str) -> Option<(OffsetDateTime, Uuid)> {
    let (nanos, id) = c.split_once('_')?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
    Some((at, id.parse().ok()?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
    locked: Option<bool>,
}

/// Changes roles, disables or enables, lifts a lockout. A role change or disabling
/// ends the user's sessions.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "administration", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = PatchUser,
    responses((status = 200, body = UserView), (status = 403), (status = 404), (status = 422)))]
pub async fn update_user(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<UserView>, Problem> {
    state
        .identity
        .require(&who, Permission::UsersWrite, &origin)
        .await?;
    let id: Uuid = id.parse().map_err(|_| Problem::not_found())?;
    let roles = match body.roles {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| n.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    palisade_service::identity::IdentityError::Invalid(vec![(
                        "roles",
                        e.to_string(),
                    )])
                })?,
        ),
    };
    if body.locked == Some(true) {
        return Err(palisade_service::identity::IdentityError::Invalid(vec![(
            "locked",
            "only false (lift a lockout) is accepted".into(),
        )])
        .into());
    }
    let patch = UserPatch {
        roles,
        disabled: body.disabled,
        locked: body.locked,
    };
    Ok(Json(
        state
            .identity
            .update_user(Some(&who), id, patch, &origin)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/sessions", tag = "administration",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn end_sessions(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .require(&who, Permission::UsersWrite, &origin)
        .await?;
    let id: Uuid = id.parse().map_err(|_| Problem::not_found())?;
    state
        .identity
        .end_user_sessions(Some(&who), id, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<u64>,
    cursor: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    items: Vec<EventView>,
    next_cursor: Option<String>,
}

/// Audit events, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "administration", security(("bearer" = [])),
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query),
           ("actor" = Option<Uuid>, Query), ("action" = Option<String>, Query),
           ("since" = Option<String>, Query, description = "RFC 3339")),
    responses((status = 200, body = AuditList), (status = 403)))]
pub async fn audit(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditList>, Problem> {
    state
        .identity
        .require(&who, Permission::AuditRead, &origin)
        .await?;
    let limit = limit(q.limit)?;
    let filter = Filter {
        actor: q
            .actor
            .map(|a| a.parse().map_err(|_| bad_query("actor", "not a UUID")))
            .transpose()?,
        action: q
            .action
            .map(|a| {
                if a.chars().any(char::is_control) {
                    Err(bad_query("action", "must not contain control characters"))
                } else {
                    Ok(a)
                }
            })
            .transpose()?,
        since: q
            .since
            .map(|s| {
                OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| bad_query("since", "not RFC 3339"))
            })
            .transpose()?,
        before: q
            .cursor
            .map(|c| c.parse().map_err(|_| bad_query("cursor", "not a cursor")))
            .transpose()?,
    };
    let items = state
        .identity
        .audit()
        .list(&filter, limit)
        .await
        .map_err(|e| Problem::from(palisade_service::identity::IdentityError::from(e)))?;
    let next_cursor = (items.len() as u64 == limit)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(AuditList { items, next_cursor }))
}
