//! `/api/v1/me*` (API.md § Identity): the signed-in user's account, password, sessions
//! and 2FA. Each handler acts on the caller's own account only.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use palisade_service::identity::twofactor::{BackupCodes, Enrolment};
use palisade_service::identity::{IdentityError, SessionView, UserView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Authed, RequestOrigin};
use crate::extract::ApiJson;
use crate::problem::Problem;
use crate::routes::paging::{Page, bad_query, limit};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me).patch(update_me).delete(delete_me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/sessions", get(sessions))
        .route("/api/v1/me/sessions/{id}", delete(end_session))
        .route("/api/v1/me/2fa/setup", post(setup_2fa))
        .route("/api/v1/me/2fa/confirm", post(confirm_2fa))
        .route("/api/v1/me/2fa/disable", post(disable_2fa))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMe {
    password: String,
    /// Must be `DELETE`.
    confirm: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Password {
    password: String,
}

/// A TOTP code (or, where a second factor is checked, a backup code).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    pub(crate) code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordAndCode {
    password: String,
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401)))]
pub async fn me(
    State(state): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<UserView>, Problem> {
    Ok(Json(state.identity.me(&who).await?))
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    request_body = UpdateMe, responses((status = 200, body = UserView), (status = 422)))]
pub async fn update_me(
    State(state): State<AppState>,
    Authed(who): Authed,
    ApiJson(body): ApiJson<UpdateMe>,
) -> Result<Json<UserView>, Problem> {
    let user = match body.name {
        Some(name) => state.identity.rename(&who, &name).await?,
        None => state.identity.me(&who).await?,
    };
    Ok(Json(user))
}

/// Deletes the account; needs the password and `confirm: "DELETE"`.
#[utoipa::path(delete, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    request_body = DeleteMe, responses((status = 204), (status = 403), (status = 422)))]
pub async fn delete_me(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<DeleteMe>,
) -> Result<StatusCode, Problem> {
    if body.confirm != "DELETE" {
        return Err(IdentityError::Invalid(vec![("confirm", "must be \"DELETE\"".into())]).into());
    }
    state
        .identity
        .delete_me(&who, &body.password, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the password; every other session is ended.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "identity", security(("bearer" = [])),
    request_body = ChangePassword, responses((status = 204), (status = 403), (status = 422)))]
pub async fn change_password(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .change_password(&who, &body.current_password, &body.new_password, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "identity", security(("bearer" = [])),
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = SessionList)))]
pub async fn sessions(
    State(state): State<AppState>,
    Authed(who): Authed,
    Query(page): Query<Page>,
) -> Result<Json<SessionList>, Problem> {
    let before = page
        .cursor
        .map(|c| c.parse().map_err(|_| bad_query("cursor", "not a cursor")))
        .transpose()?;
    let found = state
        .identity
        .my_sessions(&who, before, limit(page.limit)?)
        .await?;
    Ok(Json(SessionList {
        items: found.items,
        next_cursor: found.next.map(|id| id.to_string()),
    }))
}

/// Ends one of the caller's sessions; someone else's answers 404.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404)))]
pub async fn end_session(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id: Uuid = id.parse().map_err(|_| Problem::not_found())?;
    state.identity.end_my_session(&who, id, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts enrolment: the secret, its otpauth URI and a QR code. 2FA is not on yet.
#[utoipa::path(post, path = "/api/v1/me/2fa/setup", tag = "identity", security(("bearer" = [])),
    request_body = Password, responses((status = 200, body = Enrolment), (status = 403), (status = 409)))]
pub async fn setup_2fa(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<Password>,
) -> Result<Json<Enrolment>, Problem> {
    Ok(Json(
        state
            .identity
            .setup_2fa(&who, &body.password, &origin)
            .await?,
    ))
}

/// Confirms enrolment with a code: 2FA is on; the backup codes are shown once.
#[utoipa::path(post, path = "/api/v1/me/2fa/confirm", tag = "identity", security(("bearer" = [])),
    request_body = Code, responses((status = 200, body = BackupCodes), (status = 403), (status = 409)))]
pub async fn confirm_2fa(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<Code>,
) -> Result<Json<BackupCodes>, Problem> {
    Ok(Json(
        state
            .identity
            .confirm_2fa(&who, &body.code, &origin)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/me/2fa/disable", tag = "identity", security(("bearer" = [])),
    request_body = PasswordAndCode, responses((status = 204), (status = 403), (status = 409)))]
pub async fn disable_2fa(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestOrigin(origin): RequestOrigin,
    ApiJson(body): ApiJson<PasswordAndCode>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .disable_2fa(&who, &body.password, &body.code, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
