//! Authentication at the edge of a handler.
//!
//! - [`Authed`]: the caller, from `Authorization: Bearer <access token>`. When the
//!   request also carries the session cookie (cookie mode) and its method is unsafe,
//!   the signed double-submit CSRF token and the `Origin` are checked as well.
//! - [`Origin`](palisade_service::identity::Origin) of the request (IP, user agent,
//!   request id) for sessions and the audit trail: [`origin_of`].
//! - The cookies of cookie mode: [`session_cookie`], [`csrf_cookie`], [`clear_cookies`].
//!
//! Every failure is a bare 401 `auth.unauthenticated` (or 403 `auth.csrf` for CSRF): a
//! client is never told which check its token failed.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use palisade_service::identity::{IdentityError, Origin, Principal};

use crate::layers::client_ip::ClientIp;
use crate::layers::rate_limit::Verified;
use crate::layers::request_id::RequestId;
use crate::problem::Problem;
use crate::state::AppState;

/// Carries the refresh token in cookie mode.
pub const SESSION_COOKIE: &str = "__Host-palisade_session";
/// The CSRF token, readable by the page's script (not HttpOnly).
pub const CSRF_COOKIE: &str = "__Host-palisade_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
pub struct Authed(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = match parts.extensions.remove::<Verified>() {
            // The rate limiter verified it already.
            Some(Verified(p)) => p,
            None => {
                let token = bearer(&parts.headers).ok_or_else(unauthenticated)?;
                state
                    .identity
                    .authenticate(token)
                    .await
                    .map_err(|e| match e {
                        IdentityError::Store(_) => Problem::from(e),
                        _ => unauthenticated(),
                    })?
            }
        };
        if !is_safe(&parts.method) && cookie(&parts.headers, SESSION_COOKIE).is_some() {
            check_csrf(state, &parts.headers, &principal.session_id.to_string())?;
        }
        Ok(Authed(principal))
    }
}

pub fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF checks of a cookie-mode request bound to session `sid`: the header token
/// equals the cookie token and is signed for `sid`, and `Origin`, when sent, is allowed.
pub fn check_csrf(state: &AppState, headers: &HeaderMap, sid: &str) -> Result<(), Problem> {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin_allowed(state, headers, origin)
    {
        return Err(csrf_problem("the request's Origin is not allowed"));
    }
    let header_token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    state
        .csrf
        .check(sid, cookie(headers, CSRF_COOKIE), header_token)
        .map_err(|_| csrf_problem("missing or wrong X-CSRF-Token"))
}

fn origin_allowed(state: &AppState, headers: &HeaderMap, origin: &HeaderValue) -> bool {
    if state.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    // Same origin: the browser's Origin names this very host.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().unwrap_or("");
    host.is_some_and(|h| {
        origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            == Some(h)
    })
}

fn csrf_problem(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "auth.csrf", "CSRF check failed").with_detail(detail)
}

pub fn unauthenticated() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "auth.unauthenticated",
        "Authentication required",
    )
}

/// The caller of the request's bearer token, if it is valid and not revoked; why it
/// is not is left to whoever answers the request.
pub async fn bearer_caller(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let token = bearer(headers)?;
    state.identity.authenticate(token).await.ok()
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Where the request came from.
pub fn origin_of(
    parts_headers: &HeaderMap,
    ip: Option<&ClientIp>,
    rid: Option<&RequestId>,
) -> Origin {
    Origin {
        ip: ip.map(|ip| ip.0.to_string()),
        user_agent: parts_headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        request_id: rid.map(|r| r.as_str().to_owned()),
    }
}

/// The request's [`Origin`], as an extractor.
pub struct RequestOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestOrigin(origin_of(
            &parts.headers,
            parts.extensions.get::<ClientIp>(),
            parts.extensions.get::<RequestId>(),
        )))
    }
}

fn set_cookie(
    name: &str,
    value: &str,
    http_only: bool,
    max_age: u64,
    secure: bool,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// The session cookie carrying `refresh_token`.
pub fn session_cookie(state: &AppState, refresh_token: &str) -> Option<HeaderValue> {
    let max_age = state.identity.settings().refresh_absolute.as_secs();
    set_cookie(
        SESSION_COOKIE,
        refresh_token,
        true,
        max_age,
        state.cookie_secure,
    )
}

/// The CSRF cookie for session `sid`, and the token itself.
pub fn csrf_cookie(state: &AppState, sid: &str) -> (String, Option<HeaderValue>) {
    let token = state.csrf.issue(sid);
    let max_age = state.identity.settings().refresh_absolute.as_secs();
    let cookie = set_cookie(CSRF_COOKIE, &token, false, max_age, state.cookie_secure);
    (token, cookie)
}

/// Both cookies, expired.
pub fn clear_cookies(state: &AppState) -> [Option<HeaderValue>; 2] {
    [
        set_cookie(SESSION_COOKIE, "", true, 0, state.cookie_secure),
        set_cookie(CSRF_COOKIE, "", false, 0, state.cookie_secure),
    ]
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Problem {
        use serde_json::json;
        let p = |status, code, title: &'static str| Problem::new(status, code, title);
        match e {
            IdentityError::InvalidCredentials => p(
                StatusCode::UNAUTHORIZED,
                "auth.invalid_credentials",
                "Invalid email or password",
            ),
            IdentityError::Unauthenticated => unauthenticated(),
            IdentityError::RefreshReused => p(
                StatusCode::UNAUTHORIZED,
                "auth.refresh_reused",
                "The refresh token was already used; the session is revoked",
            ),
            IdentityError::RefreshInvalid => p(
                StatusCode::UNAUTHORIZED,
                "auth.refresh_invalid",
                "Invalid or expired refresh token",
            ),
            IdentityError::EmailTaken => p(
                StatusCode::CONFLICT,
                "auth.email_taken",
                "The email is already registered",
            ),
            IdentityError::Invalid(errors) => p(
                StatusCode::UNPROCESSABLE_ENTITY,
                "request.invalid_fields",
                "Some fields are invalid",
            )
            .with_extension(
                "errors",
                json!(
                    errors
                        .iter()
                        .map(|(f, m)| json!({"field": f, "message": m}))
                        .collect::<Vec<_>>()
                ),
            ),
            IdentityError::WrongPassword => p(
                StatusCode::FORBIDDEN,
                "auth.wrong_password",
                "The password is wrong",
            ),
            IdentityError::WrongCode => p(
                StatusCode::FORBIDDEN,
                "auth.wrong_code",
                "The code is wrong or was already used",
            ),
            IdentityError::TwoFactorOn => p(
                StatusCode::CONFLICT,
                "auth.2fa_enabled",
                "Two-factor authentication is already on",
            ),
            IdentityError::TwoFactorOff => p(
                StatusCode::CONFLICT,
                "auth.2fa_disabled",
                "Two-factor authentication is not on",
            ),
            IdentityError::NoEnrolment => p(
                StatusCode::CONFLICT,
                "auth.2fa_not_started",
                "Start two-factor enrolment first",
            ),
            IdentityError::Forbidden => p(
                StatusCode::FORBIDDEN,
                "auth.forbidden",
                "You lack the permission for this",
            ),
            IdentityError::StepUpRequired => p(
                StatusCode::FORBIDDEN,
                "auth.step_up_required",
                "Sign in again with your second factor to do this",
            ),
            IdentityError::NotFound => Problem::not_found(),
            IdentityError::Store(e) => {
                tracing::error!(error = %e, "identity: database error");
                Problem::internal()
            }
            IdentityError::Hashing(e) => {
                tracing::error!(error = %e, "identity: internal error");
                Problem::internal()
            }
        }
    }
}
