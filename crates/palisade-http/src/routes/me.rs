//! `/api/v1/me*` (`/openapi.json`, tag identity): the signed-in user's account,
//! password, sessions and 2FA. Each handler acts on the caller's own account only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palisade_auth::ids::SessionId;
use palisade_service::identity::twofactor::{BackupCodes, Enrolment};
use palisade_service::identity::{SessionView, UserView};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::list::{List, PageQuery};
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .group(
            Guard::Limited(Tier::General),
            [
                routes!(me, update_me),
                routes!(sessions),
                routes!(end_session),
            ],
        )
        // Whatever checks a password or a code.
        .group(
            Guard::Limited(Tier::Auth),
            [
                routes!(delete_me),
                routes!(change_password),
                routes!(setup_2fa),
                routes!(confirm_2fa),
                routes!(disable_2fa),
            ],
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// 1..=100 characters, no control or format characters.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
}

/// The word that confirms a deletion.
#[derive(Deserialize, ToSchema)]
pub enum Confirm {
    #[serde(rename = "DELETE")]
    Delete,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMe {
    password: String,
    /// Must be `DELETE`.
    confirm: Confirm,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    /// 12..=128 characters, not easy to guess, and not the current one.
    #[schema(min_length = 12, max_length = 128)]
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

#[utoipa::path(get, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = UserView)))]
pub async fn me(
    State(state): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<UserView>, Problem> {
    Ok(Json(state.identity.me(&who).await?))
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "identity", security(("bearer" = [])),
    request_body = UpdateMe, responses((status = 200, body = UserView)))]
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
    request_body = DeleteMe,
    responses((status = 204, description = "The account and its sessions are gone"),
              (status = 403, description = "auth.wrong_password"),
              (status = 409, description = "users.last_admin: the last active admin cannot leave")))]
pub async fn delete_me(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<DeleteMe>,
) -> Result<StatusCode, Problem> {
    // Any other word was refused when the body was read.
    let DeleteMe {
        password,
        confirm: Confirm::Delete,
    } = body;
    state.identity.delete_me(&who, &password, &from).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the password; every other session is ended.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "identity", security(("bearer" = [])),
    request_body = ChangePassword,
    responses((status = 204, description = "Changed; every other session is ended"),
              (status = 403, description = "auth.wrong_password")))]
pub async fn change_password(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .change_password(&who, &body.current_password, &body.new_password, &from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "identity", security(("bearer" = [])),
    params(PageQuery), responses((status = 200, body = List<SessionView>)))]
pub async fn sessions(
    State(state): State<AppState>,
    Authed(who): Authed,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<List<SessionView>>, Problem> {
    let page = state
        .identity
        .my_sessions(&who, q.cursor.as_ref(), q.limit.unwrap_or_default())
        .await?;
    Ok(Json(page.into()))
}

/// Ends one of the caller's sessions; someone else's answers 404.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = SessionId, Path)), responses((status = 204, description = "The session is ended")))]
pub async fn end_session(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<StatusCode, Problem> {
    state.identity.end_my_session(&who, id, &from).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts enrolment: the secret, its otpauth URI and a QR code. 2FA is not on yet.
#[utoipa::path(post, path = "/api/v1/me/2fa/setup", tag = "identity", security(("bearer" = [])),
    request_body = Password,
    responses((status = 200, body = Enrolment),
              (status = 403, description = "auth.wrong_password"),
              (status = 409, description = "auth.2fa_enabled")))]
pub async fn setup_2fa(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<Password>,
) -> Result<Json<Enrolment>, Problem> {
    Ok(Json(
        state
            .identity
            .setup_2fa(&who, &body.password, &from)
            .await?,
    ))
}

/// Confirms enrolment with a code: 2FA is on; the backup codes are shown once.
#[utoipa::path(post, path = "/api/v1/me/2fa/confirm", tag = "identity", security(("bearer" = [])),
    request_body = Code,
    responses((status = 200, body = BackupCodes),
              (status = 403, description = "auth.wrong_code"),
              (status = 409, description = "auth.2fa_enabled, or auth.2fa_not_started")))]
pub async fn confirm_2fa(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<Code>,
) -> Result<Json<BackupCodes>, Problem> {
    Ok(Json(
        state.identity.confirm_2fa(&who, &body.code, &from).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/me/2fa/disable", tag = "identity", security(("bearer" = [])),
    request_body = PasswordAndCode,
    responses((status = 204, description = "2FA is off; every other session is ended"),
              (status = 403, description = "auth.wrong_password, or auth.wrong_code"),
              (status = 409, description = "auth.2fa_disabled")))]
pub async fn disable_2fa(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<PasswordAndCode>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .disable_2fa(&who, &body.password, &body.code, &from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
