//! Handlers, grouped by resource. Each module exposes `routes()` returning its router.

pub mod admin;
pub mod auth;
pub mod infra;
pub mod me;
pub mod ops;
mod paging;

use axum::Router;

use crate::state::AppState;

/// Every `/api/v1` route.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(me::routes())
        .merge(admin::routes())
        .merge(infra::routes())
}
