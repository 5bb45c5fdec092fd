//! Palisade's HTTP surface.
//!
//! A request enters through [`server::serve`] (connection limits), passes the layers of
//! [`layers`] (in the order documented there), is routed to a handler in [`routes`],
//! whose errors are [`Problem`]s rendered as RFC 9457 problem+json.
//!
//! To add an endpoint: write the handler in `routes/<resource>.rs` with a
//! `#[utoipa::path]` annotation, add it to that module's `routes()`, list it in
//! [`openapi::ApiDoc`], and take its body with [`ApiJson`].

pub mod extract;
pub mod layers;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod server;
mod settings;
mod state;
pub mod telemetry;

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

pub use extract::ApiJson;
pub use problem::Problem;
pub use settings::HttpSettings;
pub use state::AppState;

use layers::observe::{self, Observe};
use layers::{body, cors, route};

/// The whole application: the operations routes plus `api` (the resource routes).
pub fn app(state: AppState, settings: &HttpSettings, api: Router<AppState>) -> Router {
    let routes = routes::ops::routes(&state)
        .merge(api)
        .fallback(|| async { Problem::not_found() })
        .layer(from_fn(route::tag))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .with_state(state);
    let observe = Arc::new(Observe {
        trusted_proxies: settings.trusted_proxies.clone(),
        behind_tls: settings.behind_tls,
    });
    // `Router::layer` wraps each route separately, after routing; as the fallback of an
    // otherwise empty router, the whole router sits inside the stack, so these layers
    // run before routing, in the order written, for every request.
    Router::new().fallback_service(routes).layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(observe, observe::layer))
            .layer(CatchPanicLayer::custom(on_panic))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                settings.request_timeout,
            ))
            .layer(cors::layer(&settings.allowed_origins))
            .layer(from_fn_with_state(
                body::BodyLimit(settings.body_limit),
                body::layer,
            )),
    )
}

fn on_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "handler panicked");
    Problem::internal().into_response()
}
