//! `/api/v1/admin/*` and `/api/v1/audit` (`/openapi.json`, tag administration). Each
//! handler names its permission first.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palisade_auth::ids::UserId;
use palisade_auth::permissions::{Permission, Role};
use palisade_service::audit::EventView;
use palisade_service::identity::UserView;
use palisade_service::identity::admin::UserPatch;
use palisade_service::page::{Cursor, Limit};
use palisade_store::repo::audit::Filter;
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::list::{List, PageQuery};
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::General),
        [
            routes!(list_users),
            routes!(update_user),
            routes!(end_sessions),
            routes!(audit),
        ],
    )
}

/// Every user, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "administration", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = List<UserView>, description = "Users in the order they were created"),
              (status = 403, description = "auth.forbidden: needs users:read")))]
pub async fn list_users(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<List<UserView>>, Problem> {
    state
        .identity
        .require(&who, Permission::UsersRead, &from)
        .await?;
    let page = state
        .identity
        .list_users(q.cursor.as_ref(), q.limit.unwrap_or_default())
        .await?;
    Ok(Json(page.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// The user's roles from now on: at least one.
    #[schema(min_items = 1)]
    roles: Option<Vec<Role>>,
    disabled: Option<bool>,
    /// Only `false`: lifts a lockout (locking by hand is not offered).
    #[serde(default, deserialize_with = "only_false")]
    #[schema(schema_with = false_only)]
    locked: Option<bool>,
    /// Puts the user on this plan (a plan id of `GET /api/v1/billing/plans`) until
    /// Stripe next reports on their subscription.
    plan: Option<String>,
}

fn only_false<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<bool>::deserialize(d)? {
        Some(true) => Err(serde::de::Error::custom(
            "only false (lift a lockout) is accepted",
        )),
        other => Ok(other),
    }
}

fn false_only() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
        .enum_values(Some([Some(false), None]))
        .into()
}

/// Changes roles, disables or enables, lifts a lockout. A role change or disabling
/// ends the user's sessions. The last active admin cannot be disabled or demoted.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "administration", security(("bearer" = [])),
    params(("id" = UserId, Path)), request_body = PatchUser,
    responses((status = 200, body = UserView),
              (status = 403, description = "auth.forbidden: needs users:write"),
              (status = 409, description = "users.last_admin: the change would leave no active admin"),
              (status = 422, description = "request.invalid_fields: no such plan")))]
pub async fn update_user(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<UserView>, Problem> {
    state
        .identity
        .require(&who, Permission::UsersWrite, &from)
        .await?;
    if let Some(plan) = &body.plan {
        state.billing.plan(plan)?;
    }
    let patch = UserPatch {
        roles: body.roles,
        disabled: body.disabled,
        unlock: body.locked == Some(false),
    };
    let view = state
        .identity
        .update_user(Some(&who), id, patch, &from)
        .await?;
    if let Some(plan) = &body.plan {
        state
            .billing
            .set_plan(&from, Some(who.user_id), id, plan)
            .await?;
    }
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/sessions", tag = "administration",
    security(("bearer" = [])), params(("id" = UserId, Path)),
    responses((status = 204, description = "Every session of the user is ended"),
              (status = 403, description = "auth.forbidden: needs users:write")))]
pub async fn end_sessions(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<UserId>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .require(&who, Permission::UsersWrite, &from)
        .await?;
    state
        .identity
        .end_user_sessions(Some(&who), id, &from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An audit action's name as a filter: `[a-z0-9_.]`, at most 100 characters.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct ActionName(String);

impl TryFrom<String> for ActionName {
    type Error = &'static str;

    fn try_from(name: String) -> Result<Self, &'static str> {
        let ok = name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if ok {
            Ok(ActionName(name))
        } else {
            Err("an action name ([a-z0-9_.], at most 100)")
        }
    }
}

/// `GET /api/v1/audit`'s filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Items per page, 1..=100 (default 20).
    #[param(inline)]
    limit: Option<Limit>,
    /// The `next_cursor` of the page before.
    #[param(inline)]
    cursor: Option<Cursor>,
    /// Only events of this user.
    actor: Option<Uuid>,
    /// Only events of this action (`auth.login`, …).
    #[param(value_type = Option<String>, max_length = 100, pattern = "^[a-z0-9_.]+$")]
    action: Option<ActionName>,
    /// Only events at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
}

/// Audit events, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "administration", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = List<EventView>),
              (status = 403, description = "auth.forbidden: needs audit:read")))]
pub async fn audit(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<List<EventView>>, Problem> {
    state
        .identity
        .require(&who, Permission::AuditRead, &from)
        .await?;
    let filter = Filter {
        actor: q.actor,
        action: q.action.map(|a| a.0),
        since: q.since,
        before: None,
    };
    let page = state
        .identity
        .audit_events(filter, q.cursor.as_ref(), q.limit.unwrap_or_default())
        .await?;
    Ok(Json(page.into()))
}
