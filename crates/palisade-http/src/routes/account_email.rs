//! Account e-mail (`/openapi.json`, tag identity): verifying the address, a forgotten
//! password, a change of address (`palisade_service::identity::email`). Every route is
//! in the auth tier: each sends mail or spends a token.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::ApiJson;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::Auth),
        [
            routes!(request_verification),
            routes!(verify_email),
            routes!(forgot_password),
            routes!(reset_password),
            routes!(change_email),
        ],
    )
}

/// Sends the caller a link (24 h, single use) that verifies their address; nothing
/// when it is verified already.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/request", tag = "identity",
    security(("bearer" = [])),
    responses((status = 202, description = "The link is on its way"),
              (status = 429, description = "mail.too_many: three mails this hour to the address already")))]
pub async fn request_verification(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
) -> Result<StatusCode, Problem> {
    state.identity.request_verification(&who, &from).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A token from a mailed link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkToken {
    #[schema(min_length = 1, max_length = 200)]
    token: String,
}

/// Uses a verification link's token (the address is verified), or an address change's
/// (the account moves to the new address, verified; the old one is told).
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "identity",
    request_body = LinkToken,
    responses((status = 204, description = "Verified"),
              (status = 404, description = "auth.token_invalid: unknown, used or expired"),
              (status = 409, description = "auth.email_taken: the new address got an account meanwhile")))]
pub async fn verify_email(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<LinkToken>,
) -> Result<StatusCode, Problem> {
    state.identity.verify_email(&body.token, &from).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    #[schema(max_length = 254)]
    email: String,
}

/// Sends a reset link (30 min, single use) if the address has an account that may
/// sign in. The answer is the same, in the same time, whether or not it has one.
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "identity",
    request_body = ForgotPassword,
    responses((status = 202, description = "If the address has an account, a link is on its way"),
              (status = 422, description = "request.invalid_fields: longer than an address can be")))]
pub async fn forgot_password(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<ForgotPassword>,
) -> Result<StatusCode, Problem> {
    state.identity.forgot_password(&body.email, &from)?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    #[schema(min_length = 1, max_length = 200)]
    token: String,
    /// The password rules of registration.
    #[schema(min_length = 12, max_length = 128)]
    new_password: String,
}

/// Sets a new password with a reset link's token: every session ends, and a lockout
/// is lifted.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "identity",
    request_body = ResetPassword,
    responses((status = 204, description = "Changed; every session is ended"),
              (status = 404, description = "auth.token_invalid: unknown, used or expired"),
              (status = 422, description = "request.invalid_fields: a weak password")))]
pub async fn reset_password(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<ResetPassword>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .reset_password(&body.token, &body.new_password, &from)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmail {
    #[schema(format = Email, max_length = 254)]
    new_email: String,
    password: String,
    /// A TOTP or backup code: required when 2FA is on.
    code: Option<String>,
}

/// Asks to move the account to a new address. The change waits for the link sent to
/// the new address (24 h); the current address is told at once.
#[utoipa::path(post, path = "/api/v1/me/email", tag = "identity", security(("bearer" = [])),
    request_body = ChangeEmail,
    responses((status = 202, description = "The confirmation link is on its way"),
              (status = 403, description = "auth.wrong_password, or auth.wrong_code"),
              (status = 409, description = "auth.email_taken"),
              (status = 422, description = "request.invalid_fields"),
              (status = 429, description = "mail.too_many")))]
pub async fn change_email(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<ChangeEmail>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .change_email(
            &who,
            &body.new_email,
            &body.password,
            body.code.as_deref(),
            &from,
        )
        .await?;
    Ok(StatusCode::ACCEPTED)
}
