//! Palisade's HTTP surface.
//!
//! A request enters through [`server::serve`] (connection limits), passes the layers of
//! [`layers`] (in the order documented there), is routed to a handler in [`routes`],
//! whose errors are [`Problem`]s rendered as RFC 9457 problem+json.
//!
//! To add an endpoint: write the handler in `routes/<resource>.rs` with a
//! `#[utoipa::path]` annotation, add it to that module's `routes()`, list it in
//! [`openapi::ApiDoc`], and take its body with [`ApiJson`].

pub mod auth;
pub mod extract;
pub mod layers;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod server;
mod settings;
mod state;
pub mod telemetry;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::Layer;

pub use extract::ApiJson;
pub use problem::Problem;
pub use settings::HttpSettings;
pub use state::{AppState, Shared};

use layers::cors::CorsPolicy;
use layers::edge::{Edge, EdgeConfig};
use layers::route::TagRouteLayer;

/// The whole application as one service: the edge around the router. The body limit
/// wraps the router once instead of each route (`Router::layer` boxes every route
/// again per layer).
pub type App = Edge<<DefaultBodyLimit as Layer<Router>>::Service>;

/// The whole application: the operations routes plus `api` (the resource routes,
/// rate-limited), inside the edge ([`layers`]).
pub fn app(state: AppState, settings: &HttpSettings, api: Router<AppState>) -> App {
    let metrics = &state.metrics.http;
    let limited = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        layers::rate_limit::layer,
    ));
    let router = routes::ops::routes(&state)
        .merge(limited)
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
