//! The caller of a request, and where the request came from.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, Method, header};
use palisade_service::identity::{IdentityError, Principal, Provenance};

use super::cookies::{SESSION_COOKIE, cookie};
use super::csrf::check_csrf;
use crate::error::unauthenticated;
use crate::layers::client_ip::ClientIp;
use crate::layers::request_id::RequestId;
use crate::problem::Problem;
use crate::state::AppState;

/// An authenticated caller. In cookie mode (the session cookie comes along) an unsafe
/// method must also pass the CSRF checks.
pub struct Authed(pub Principal);

/// A caller whose token was verified earlier on the request's way (by the rate
/// limiter, which keys on the user), so [`Authed`] does not verify it again.
#[derive(Clone)]
pub struct Verified(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = match parts.extensions.remove::<Verified>() {
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

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The caller of the request's bearer token, if it is valid and not revoked; why it
/// is not is left to whoever answers the request.
pub async fn bearer_caller(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let token = bearer(headers)?;
    state.identity.authenticate(token).await.ok()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Where the request came from (address, user agent, request id), for sessions and
/// the audit trail.
pub struct RequestProvenance(pub Provenance);

impl<S: Send + Sync> FromRequestParts<S> for RequestProvenance {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestProvenance(Provenance {
            ip: parts
                .extensions
                .get::<ClientIp>()
                .map(|ip| ip.0.to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.as_str().to_owned()),
        }))
    }
}
