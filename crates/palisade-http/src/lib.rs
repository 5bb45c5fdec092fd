//! Palisade's HTTP surface.
//!
//! A request enters through [`server::serve`] (connection limits), passes the layers of
//! [`layers`] (in the order documented there), is routed to a handler in [`routes`],
//! whose errors are [`Problem`]s rendered as RFC 9457 problem+json.
//!
//! To add an endpoint: write the handler in `routes/<resource>.rs` with its
//! `#[utoipa::path]` annotation, taking its input with [`ApiJson`], [`ApiQuery`] and
//! [`ApiPath`], and add `routes!(handler)` to a group of that module's `routes()` under
//! its rate-limit tier. The route, its document entry and its tier then come from
//! that one declaration.

pub mod auth;
pub mod error;
pub mod extract;
pub mod idempotent;
pub mod layers;
pub mod openapi;
pub mod problem;
pub mod prometheus;
pub mod routes;
pub mod server;
mod settings;
mod state;
mod watched;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::Layer;

pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use problem::Problem;
pub use settings::HttpSettings;
pub use state::{AppState, Shared};

use layers::cors::CorsPolicy;
use layers::edge::{Edge, EdgeConfig};
use layers::route::TagRouteLayer;
use routes::Routes;

/// The whole application as one service: the edge around the router. The body limit
/// wraps the router once instead of each route (`Router::layer` boxes every route
/// again per layer).
pub type App = Edge<<DefaultBodyLimit as Layer<Router>>::Service>;

/// The whole application: `routes` (each behind its guard) inside the edge
/// ([`layers`]).
pub fn app(state: AppState, settings: &HttpSettings, routes: Routes) -> App {
    let metrics = &state.metrics.http;
    let router = routes
        .into_router(&state)
        .fallback(|| async { Problem::not_found() })
        .layer(TagRouteLayer)
        .with_state(state);
    Edge::new(
        DefaultBodyLimit::max(settings.body_limit).layer(router),
        EdgeConfig {
            trusted_proxies: settings.trusted_proxies.clone(),
            behind_tls: settings.behind_tls,
            cors: CorsPolicy::new(&settings.allowed_origins),
            body_limit: settings.body_limit,
            request_timeout: settings.request_timeout,
            metrics,
        },
    )
}
