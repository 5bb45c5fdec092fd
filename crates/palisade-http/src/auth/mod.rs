//! Authentication at the edge of a handler.
//!
//! - [`extract`]: the caller ([`Authed`]) from `Authorization: Bearer <access token>`,
//!   and where the request came from ([`RequestProvenance`]).
//! - [`csrf`]: cookie mode's checks on unsafe methods: the signed double-submit token
//!   and the `Origin` header.
//! - [`cookies`]: reading and setting cookie mode's cookies.
//!
//! Every failure is a bare 401 `auth.unauthenticated` (or 403 `auth.csrf` for CSRF): a
//! client is never told which check its token failed.

pub mod cookies;
pub mod csrf;
pub mod extract;

pub use cookies::{
    CSRF_COOKIE, SESSION_COOKIE, clear_cookies, cookie, csrf_cookie, session_cookie,
};
pub use csrf::check_csrf;
pub use extract::{Authed, RequestProvenance, Verified, bearer_caller};
