//! Cookie mode's CSRF checks (OWASP CSRF Prevention Cheat Sheet): the signed
//! double-submit token, and the `Origin` header when the browser sends one.

use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::cookies::{CSRF_COOKIE, cookie};
use crate::problem::Problem;
use crate::state::AppState;

pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF checks of a cookie-mode request bound to session `sid`: the header token
/// equals the cookie token and is signed for `sid`, and `Origin`, when sent, is allowed.
pub fn check_csrf(state: &AppState, headers: &HeaderMap, sid: &str) -> Result<(), Problem> {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin_allowed(state, headers, origin)
    {
        return Err(refused("the request's Origin is not allowed"));
    }
    let header_token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    state
        .csrf
        .check(sid, cookie(headers, CSRF_COOKIE), header_token)
        .map_err(|_| refused("missing or wrong X-CSRF-Token"))
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

fn refused(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "auth.csrf", "CSRF check failed").with_detail(detail)
}
