//! Cookie mode's cookies: `__Host-palisade_session` carries the refresh token
//! (HttpOnly), `__Host-palisade_csrf` the CSRF token (readable by the page's script).

use http::{HeaderMap, HeaderValue, header};

use crate::state::AppState;

pub const SESSION_COOKIE: &str = "__Host-palisade_session";
pub const CSRF_COOKIE: &str = "__Host-palisade_csrf";

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
