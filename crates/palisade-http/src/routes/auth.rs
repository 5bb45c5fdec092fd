//! `/api/v1/auth/*` (`/openapi.json`, tag identity): register, login (and its 2FA
//! step), refresh, logout, and the CSRF token of cookie mode.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use palisade_service::identity::{LoginOutcome, TokenPair, UserView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::{
    Authed, RequestProvenance, SESSION_COOKIE, check_csrf, clear_cookies, cookie, csrf_cookie,
    session_cookie,
};
use crate::error::unauthenticated;
use crate::extract::{ApiJson, parse};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::me::Code;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .group(
            Guard::Limited(Tier::Auth),
            [
                routes!(register),
                routes!(login),
                routes!(login_mfa),
                routes!(refresh),
                routes!(step_up),
            ],
        )
        .group(
            Guard::Limited(Tier::General),
            [routes!(logout), routes!(csrf)],
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 12..=128 characters, and not easy to guess (zxcvbn score 3 or more, with the
    /// email and name taken into account).
    #[schema(min_length = 12, max_length = 128)]
    password: String,
    /// Shown in admin views and the audit trail; no control or format characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

/// How the client keeps its refresh token.
#[derive(Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the response body (API clients).
    #[default]
    Token,
    /// In the `__Host-palisade_session` cookie, with a CSRF cookie (browsers).
    Cookie,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfa {
    mfa_token: String,
    code: String,
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// Absent in cookie mode: the session cookie carries it.
    refresh_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MfaRequired {
    /// Always `true`.
    mfa_required: bool,
    /// Single use, valid 5 minutes: send it with the code to `/api/v1/auth/login/mfa`.
    mfa_token: String,
}

/// A login's answer: the tokens, or, with 2FA on, the token for the code step.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Tokens(TokenPair),
    MfaRequired(MfaRequired),
}

#[derive(Serialize, ToSchema)]
pub struct CsrfToken {
    csrf_token: String,
}

/// Creates an account with the `member` role.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "identity", request_body = Register,
    responses((status = 201, body = UserView), (status = 409, description = "auth.email_taken"),
              (status = 422, description = "request.invalid_fields: the fields that break a rule, each named")))]
pub async fn register(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<Register>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    let user = state
        .identity
        .register(&body.email, &body.password, &body.name, &from)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The password step; with 2FA on, answers `mfa_required` and a token for the code step.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "identity", request_body = Login,
    responses((status = 200, body = LoginAnswer,
               description = "The tokens; with 2FA on, `mfa_required` and the token for the code step"),
              (status = 401, description = "auth.invalid_credentials: unknown email, wrong password, locked or disabled account alike"),
              (status = 403, description = "auth.email_unverified: the address is not verified yet and `PALISADE_REQUIRE_VERIFIED_EMAIL` is on (a new link is mailed)")))]
pub async fn login(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, Problem> {
    match state
        .identity
        .login(&body.email, &body.password, &from)
        .await?
    {
        LoginOutcome::Tokens(pair) => Ok(signed_in(&state, *pair, body.mode)),
        LoginOutcome::MfaRequired { mfa_token } => {
            Ok(Json(LoginAnswer::MfaRequired(MfaRequired {
                mfa_required: true,
                mfa_token,
            }))
            .into_response())
        }
    }
}

/// The code step of a 2FA login: a TOTP code or a backup code.
#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "identity", request_body = LoginMfa,
    responses((status = 200, body = TokenPair),
              (status = 401, description = "auth.invalid_credentials: an unknown, used or expired mfa_token, or a wrong code")))]
pub async fn login_mfa(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<LoginMfa>,
) -> Result<Response, Problem> {
    let pair = state
        .identity
        .login_mfa(&body.mfa_token, &body.code, &from)
        .await?;
    Ok(signed_in(&state, pair, body.mode))
}

/// The tokens as the client's mode wants them.
fn signed_in(state: &AppState, mut pair: TokenPair, mode: Mode) -> Response {
    if mode == Mode::Token {
        return Json(LoginAnswer::Tokens(pair)).into_response();
    }
    let mut headers = HeaderMap::new();
    let refresh = std::mem::take(&mut pair.refresh_token);
    let (_, csrf) = csrf_cookie(state, &pair.session_id.to_string());
    for c in [session_cookie(state, &refresh), csrf]
        .into_iter()
        .flatten()
    {
        headers.append(header::SET_COOKIE, c);
    }
    (headers, Json(LoginAnswer::Tokens(pair))).into_response()
}

/// Rotates the refresh token. A rotated token presented again after the grace window
/// revokes its whole session (401 `auth.refresh_reused`).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "identity",
    request_body(content = Refresh, description = "Optional in cookie mode: the session cookie carries the token"),
    responses((status = 200, body = TokenPair),
              (status = 401, description = "auth.refresh_reused, auth.refresh_invalid, or auth.unauthenticated without a token"),
              (status = 403, description = "auth.csrf: cookie mode without its CSRF token")))]
pub async fn refresh(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    // The body is optional: cookie-mode clients send none. The route's guard has
    // refused a body that is not JSON (415), whether or not a length was declared.
    let from_body = if body.is_empty() {
        None
    } else {
        parse::<Refresh>(&body)?.refresh_token
    };
    let (token, mode) = match (from_body, cookie(&headers, SESSION_COOKIE)) {
        (Some(t), _) => (t, Mode::Token),
        (None, Some(c)) => {
            let sid = state
                .identity
                .session_of_refresh(c)
                .await?
                .ok_or_else(unauthenticated)?;
            check_csrf(&state, &headers, &sid.to_string())?;
            (c.to_owned(), Mode::Cookie)
        }
        (None, None) => return Err(unauthenticated()),
    };
    let pair = state.identity.refresh(&token, &from).await?;
    Ok(signed_in(&state, pair, mode))
}

/// A second factor again, inside a signed-in session: the answer's access token says
/// `otp` was used now, which `admin:infra` actions require (within 10 minutes). The
/// refresh token is unchanged, so none is returned.
#[utoipa::path(post, path = "/api/v1/auth/step-up", tag = "identity", security(("bearer" = [])),
    request_body = Code,
    responses((status = 200, body = TokenPair),
              (status = 403, description = "auth.wrong_code"),
              (status = 409, description = "auth.2fa_disabled: 2FA is not on")))]
pub async fn step_up(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<Code>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(state.identity.step_up(&who, &body.code, &from).await?))
}

/// Ends the caller's session; its access tokens are refused from now on.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "identity", security(("bearer" = [])),
    responses((status = 204, description = "The session is ended")))]
pub async fn logout(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    state.identity.logout(&who, &from).await?;
    let mut out = HeaderMap::new();
    if cookie(&headers, SESSION_COOKIE).is_some() {
        for c in clear_cookies(&state).into_iter().flatten() {
            out.append(header::SET_COOKIE, c);
        }
        out.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
    }
    Ok((StatusCode::NO_CONTENT, out).into_response())
}

/// A fresh CSRF token (and cookie) for the cookie-mode session.
#[utoipa::path(get, path = "/api/v1/auth/csrf", tag = "identity",
    responses((status = 200, body = CsrfToken),
              (status = 401, description = "auth.unauthenticated: no valid session cookie")))]
pub async fn csrf(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let session = cookie(&headers, SESSION_COOKIE).ok_or_else(unauthenticated)?;
    let sid = state
        .identity
        .session_of_refresh(session)
        .await?
        .ok_or_else(unauthenticated)?;
    let (csrf_token, cookie) = csrf_cookie(&state, &sid.to_string());
    let mut out = HeaderMap::new();
    if let Some(c) = cookie {
        out.insert(header::SET_COOKIE, c);
    }
    Ok((out, Json(CsrfToken { csrf_token })).into_response())
}
