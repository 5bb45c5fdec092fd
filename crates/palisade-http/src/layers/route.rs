//! Carries the matched route template (`/api/v1/users/{id}`, never the raw path) from
//! the router out to the metrics and access-log layers, which run before routing.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

#[derive(Clone, Debug)]
pub struct RouteTemplate(pub String);

/// Applied with `Router::layer`, so it runs after routing, where `MatchedPath` is known.
pub async fn tag(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut res = next.run(req).await;
    if let Some(route) = route {
        res.extensions_mut().insert(RouteTemplate(route));
    }
    res
}
