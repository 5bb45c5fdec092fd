//! What stands between routing and an `/api/v1` handler, in this order:
//!
//! 1. the route's rate-limit tier ([`super::rate_limit`]);
//! 2. the body's media type: on an unsafe method, a body must be one the route
//!    declares (JSON unless it says otherwise); any other is read, then answered 415
//!    unless it turned out empty ([`super::body`]).
//!
//! It runs after routing, so an unknown path is 404 and a wrong method 405 whatever
//! the body, and it wraps each route once, where its group is registered.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::body;
use super::rate_limit::{self, Tier};
use crate::state::AppState;

/// A route's guard: its tier and the media types its body may have.
#[derive(Clone)]
pub struct RouteGuard {
    state: AppState,
    tier: Tier,
    accepts: Arc<[String]>,
}

impl RouteGuard {
    pub fn new(state: AppState, tier: Tier, accepts: Vec<String>) -> RouteGuard {
        RouteGuard {
            state,
            tier,
            accepts: accepts.into(),
        }
    }
}

pub async fn layer(State(guard): State<RouteGuard>, mut req: Request, next: Next) -> Response {
    let admitted = match rate_limit::admit(&guard.state, guard.tier, &mut req).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let req = if body::acceptable(&req, &guard.accepts) {
        Ok(req)
    } else {
        body::unless_empty(req, guard.state.body_limit).await
    };
    let mut res = match req {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    };
    if let Some(a) = admitted {
        a.headers(res.headers_mut());
    }
    res
}
